// Turns viewer snapshots (demo-page/player.mjs) and the origin's per-client byte counts into
// the benchmark's per-run figures. One definition for every run, so Shoal and the baseline are
// compared on equal terms:
//   bytesReceived(viewer) = segment bytes the origin sent to that viewer's cookie
//                           + bytes the shim reports it received from peers (p2pDown)
//   offload               = sum p2pDown / sum bytesReceived
//   rebufferRatio         = sum stalled ms / sum watched ms
// and checks it against what the player itself received (fragBytes, counted in the page): the
// two counts must agree within BYTE_CHECK_TOLERANCE per viewer in every mode, or the run's
// `byteCheck.mismatched` names the viewers: `undercount` when the player got bytes no counter
// saw (e.g. from a browser cache), `overfetch` when bytes were fetched and not (yet) handed to
// the player (segments fetched ahead when the run stopped, spot checks, duplicate copies).

export const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const sum = (xs) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
const mean = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length ? sum(v) / v.length : null;
};
const r3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

/** Largest relative difference between a viewer's bytesReceived and fragBytes that passes. */
export const BYTE_CHECK_TOLERANCE = 0.05;

/** How far a viewer's two byte counts are apart, relative to the larger one (0 when both are 0). */
export function byteDiscrepancy(received, fragBytes) {
  const hi = Math.max(received, fragBytes);
  return hi ? Math.abs(received - fragBytes) / hi : 0;
}

/**
 * @param {{mode: string, snapshots: Record<string, object>, originClients: Record<string, object>,
 *   poisoners?: string[], affected?: string[], faultStart?: Record<string, object>,
 *   coreEvents?: Record<string, object[]>, peerIds?: Record<string, string|null>}} run
 *   poisoners: viewer ids running a malicious build; they are left out of every figure and
 *   reported apart (`attack`). affected: ids whose CDN path was faulted; `affected` figures
 *   count from faultStart (their snapshots when the fault began) to the end.
 */
export function summarizeRun({ mode, snapshots, originClients, poisoners = [], affected = null, faultStart = {}, coreEvents = {}, peerIds = {} }) {
  const bad = new Set(poisoners);
  const all = summarizeViewers(mode, snapshots, originClients, coreEvents);
  const out = aggregate(mode, all.filter((v) => !bad.has(v.id)));
  if (poisoners.length) out.attack = attackFigures(all, bad, peerIds);
  if (affected) out.affected = affectedFigures(all, snapshots, new Set(affected), faultStart);
  return out;
}

function summarizeViewers(mode, snapshots, originClients, coreEvents) {
  return Object.entries(snapshots).map(([id, s]) => {
    const o = originClients[id] || {};
    const cdn = o.segmentBytes || 0;
    const sh = s && s.shoal && !s.shoal.error ? s.shoal : null;
    const p2p = sh ? sh.p2pDown || 0 : 0;
    const received = cdn + p2p;
    const lat = median(s?.latencySamples || []);
    return {
      id, mode: s?.mode ?? 'missing', state: s?.state ?? 'missing',
      startupMs: s?.startupMs ?? null, stalls: s?.stalls ?? 0, stalledMs: Math.round(s?.stalledMs ?? 0),
      watchedMs: Math.round(s?.watchedMs ?? 0),
      rebufferRatio: s?.watchedMs ? r3((s.stalledMs || 0) / s.watchedMs) : null,
      liveLatencyS: lat, liveLatencyFirstS: s?.latencySamples?.[0] ?? null,
      liveLatencyLastS: s?.latencySamples?.length ? s.latencySamples[s.latencySamples.length - 1] : null, currentTime: r3(s?.currentTime), bufferS: r3(s?.bufferS),
      cdnBytes: cdn, cdnRequests: o.segmentRequests || 0, cdnStatus: o.status || {}, cdnLog: o.segmentLog || [],
      p2pBytes: p2p, p2pUpBytes: sh ? sh.p2pUp || 0 : 0, bytesReceived: received,
      offload: received ? r3(p2p / received) : 0,
      fragBytes: s?.fragBytes ?? 0, fragments: s?.fragments ?? 0,
      byteDiscrepancy: r3(byteDiscrepancy(received, s?.fragBytes ?? 0)),
      playbackRatio: s?.playbackRatio ?? null,
      avgBitrate: s?.avgBitrate ? Math.round(s.avgBitrate) : null, levelSwitches: s?.levelSwitches ?? 0,
      verified: s?.verified ?? 0, corrupted: s?.corrupted ?? 0, verifyErrors: s?.verifyErrors ?? 0,
      peers: sh ? sh.peers ?? null : null, bannedPeers: sh ? sh.peersBanned || 0 : 0,
      shoal: sh, diag: s?.diag ?? null, events: (s?.events || []).slice(-10), fragLog: s?.fragLog ?? [], errors: (s?.errors || []).slice(-10),
      coreEvents: coreEvents[id] || [],
      loads: s?.loads ?? undefined,
    };
  });
}

function aggregate(mode, perViewer) {
  const recv = sum(perViewer.map((v) => v.bytesReceived));
  const p2p = sum(perViewer.map((v) => v.p2pBytes));
  const watched = sum(perViewer.map((v) => v.watchedMs));
  return {
    mode,
    viewerMode: [...new Set(perViewer.map((v) => v.mode))].join(','),
    viewers: perViewer.length,
    offload: recv ? r3(p2p / recv) : 0,
    cdnBytes: sum(perViewer.map((v) => v.cdnBytes)),
    p2pBytes: p2p,
    startupMsMedian: median(perViewer.map((v) => v.startupMs)),
    rebufferRatio: watched ? r3(sum(perViewer.map((v) => v.stalledMs)) / watched) : null,
    stalls: sum(perViewer.map((v) => v.stalls)),
    corruptedDelivered: sum(perViewer.map((v) => v.corrupted)),
    verifiedFragments: sum(perViewer.map((v) => v.verified)),
    bannedPeers: sum(perViewer.map((v) => v.bannedPeers)),
    liveLatencyS: r3(median(perViewer.map((v) => v.liveLatencyS))),
    bytesPerViewer: perViewer.length ? Math.round(recv / perViewer.length) : 0,
    // Runs differ slightly in watched time (joins, startup); this rate compares them fairly.
    bytesPerWatchedSecond: watched ? Math.round(recv / (watched / 1000)) : null,
    avgBitrate: mean(perViewer.map((v) => v.avgBitrate)) && Math.round(mean(perViewer.map((v) => v.avgBitrate))),
    levelSwitches: sum(perViewer.map((v) => v.levelSwitches)),
    playbackRatioMedian: median(perViewer.map((v) => v.playbackRatio)),
    playing: perViewer.filter((v) => v.startupMs !== null).length,
    byteCheck: byteCheck(perViewer),
    perViewer,
  };
}

/** The run's two byte counts side by side, and the viewers where they disagree. */
function byteCheck(perViewer) {
  const received = sum(perViewer.map((v) => v.bytesReceived));
  const fragBytes = sum(perViewer.map((v) => v.fragBytes));
  const mismatched = perViewer.filter((v) => v.byteDiscrepancy > BYTE_CHECK_TOLERANCE)
    .map((v) => ({
      id: v.id, bytesReceived: v.bytesReceived, fragBytes: v.fragBytes, discrepancy: v.byteDiscrepancy,
      // undercount: the player got bytes no counter saw (the accounting is broken);
      // overfetch: bytes fetched and not (yet) handed to the player (lookahead, spot checks, copies).
      kind: v.bytesReceived < v.fragBytes ? 'undercount' : 'overfetch',
    }));
  return { received, fragBytes, ratio: fragBytes ? r3(received / fragBytes) : null, tolerance: BYTE_CHECK_TOLERANCE, mismatched };
}

/** What the poisoners did and what it cost them: bans of their peer ids by honest viewers. */
function attackFigures(all, bad, peerIds) {
  const attackerIds = new Set([...bad].map((id) => peerIds[id]).filter(Boolean));
  const honest = all.filter((v) => !bad.has(v.id));
  const byViewer = honest.map((v) => {
    const evs = v.coreEvents;
    const fromAttacker = (e) => attackerIds.has(e.peer);
    return {
      id: v.id,
      verificationFailedFromAttacker: evs.filter((e) => e.kind === 'verificationFailed' && fromAttacker(e)).length,
      bannedAttacker: evs.some((e) => e.kind === 'peerBanned' && fromAttacker(e)),
      banReasons: [...new Set(evs.filter((e) => e.kind === 'peerBanned' && fromAttacker(e)).map((e) => e.reason))],
      bannedHonest: evs.filter((e) => e.kind === 'peerBanned' && !fromAttacker(e)).length,
      // Honest peers this viewer banned, by viewer id when known (a false positive).
      bannedHonestPeers: evs.filter((e) => e.kind === 'peerBanned' && !fromAttacker(e))
        .map((e) => ({ peer: Object.keys(peerIds).find((k) => peerIds[k] === e.peer) ?? e.peer, reason: e.reason })),
    };
  });
  return {
    poisoners: [...bad],
    attackerPeerIds: [...attackerIds],
    attackerUpBytes: sum(all.filter((v) => bad.has(v.id)).map((v) => v.p2pUpBytes)),
    honestViewersBanningAttacker: byViewer.filter((b) => b.bannedAttacker).length,
    honestViewersRejectingAttackerData: byViewer.filter((b) => b.verificationFailedFromAttacker > 0).length,
    honestPeersBanned: sum(byViewer.map((b) => b.bannedHonest)),
    byViewer,
  };
}

/** Figures of the faulted viewers over the fault window (from its start to the end of the run). */
function affectedFigures(all, snapshots, ids, faultStart) {
  const vs = all.filter((v) => ids.has(v.id));
  const win = vs.map((v) => {
    const s = snapshots[v.id];
    const f = faultStart[v.id];
    const watched = (s?.watchedMs ?? 0) - (f?.watchedMs ?? 0);
    const stalled = (s?.stalledMs ?? 0) - (f?.stalledMs ?? 0);
    const cdnEv = v.coreEvents.filter((e) => /cdn/i.test(String(e.kind)));
    return {
      id: v.id, stalls: (s?.stalls ?? 0) - (f?.stalls ?? 0), stalledMs: Math.round(stalled), watchedMs: Math.round(watched),
      p2pBytes: (v.p2pBytes || 0) - (f?.shoal?.p2pDown ?? 0),
      httpBytes: (s?.shoal?.httpDown ?? 0) - (f?.shoal?.httpDown ?? 0),
      cdnEvents: cdnEv.map((e) => ({ t: e.t, kind: e.kind, reason: e.reason ?? e.detail ?? null })),
    };
  });
  const watched = sum(win.map((w) => w.watchedMs));
  return {
    viewers: vs.length,
    ids: vs.map((v) => v.id),
    rebufferRatio: watched ? r3(sum(win.map((w) => w.stalledMs)) / watched) : null,
    stalls: sum(win.map((w) => w.stalls)),
    stalledMs: sum(win.map((w) => w.stalledMs)),
    watchedMs: watched,
    p2pBytesDuringFault: sum(win.map((w) => w.p2pBytes)),
    httpBytesDuringFault: sum(win.map((w) => w.httpBytes)),
    // Whole run (hls.js's played bitrate is not split at the fault): compare with the baseline.
    avgBitrate: mean(vs.map((v) => v.avgBitrate)) && Math.round(mean(vs.map((v) => v.avgBitrate))),
    cdnDegradedEvents: sum(win.map((w) => w.cdnEvents.filter((e) => /degrad/i.test(e.kind)).length)),
    cdnRecoveredEvents: sum(win.map((w) => w.cdnEvents.filter((e) => /recover/i.test(e.kind)).length)),
    perViewer: win,
  };
}

const MB = (b) => (b / 1e6).toFixed(2);
const pct = (x) => (x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
const num = (x, d = 0) => (x === null || x === undefined ? '-' : Number(x).toFixed(d));

/** A readable side-by-side table of runs. */
export function comparisonTable(runs) {
  const rows = [
    ['viewers playing', (r) => `${r.playing}/${r.viewers}`],
    ['player mode', (r) => r.viewerMode],
    ['offload', (r) => pct(r.offload)],
    ['CDN bytes (origin)', (r) => `${MB(r.cdnBytes)} MB`],
    ['P2P bytes', (r) => `${MB(r.p2pBytes)} MB`],
    ['bytes per viewer', (r) => `${MB(r.bytesPerViewer)} MB`],
    ['player fragment bytes', (r) => (r.byteCheck ? `${MB(r.byteCheck.fragBytes)} MB (received/player ${num(r.byteCheck.ratio, 3)})` : '-')],
    ['byte counts disagree', (r) => (r.byteCheck ? `${r.byteCheck.mismatched.length} viewers` : '-')],
    ['bytes per watched s', (r) => (r.bytesPerWatchedSecond ? `${num(r.bytesPerWatchedSecond / 1000)} kB/s` : '-')],
    ['startup median', (r) => `${num(r.startupMsMedian)} ms`],
    ['startup median per round', (r) => (r.rounds ? r.rounds.map((x) => num(x.startupMsMedian)).join(' / ') : '-')],
    ['offload per round', (r) => (r.rounds ? r.rounds.map((x) => pct(x.offload)).join(' / ') : '-')],
    ['rebuffer ratio', (r) => pct(r.rebufferRatio)],
    ['stalls', (r) => num(r.stalls)],
    ['live latency median', (r) => (r.liveLatencyS === null ? '-' : `${num(r.liveLatencyS, 2)} s`)],
    ['avg bitrate', (r) => (r.avgBitrate ? `${num(r.avgBitrate / 1000)} kbit/s` : '-')],
    ['level switches', (r) => num(r.levelSwitches)],
    ['playback speed (median)', (r) => (r.playbackRatioMedian ? `${num(r.playbackRatioMedian, 3)}x` : '-')],
    ['corrupted delivered', (r) => `${num(r.corruptedDelivered)} of ${r.corruptedDelivered + r.verifiedFragments} checked`],
    ['banned peers', (r) => num(r.bannedPeers)],
    ['attacker banned by', (r) => (r.attack ? `${r.attack.honestViewersBanningAttacker} honest viewers` : '-')],
    ['affected viewers', (r) => (r.affected ? String(r.affected.viewers) : '-')],
    ['affected rebuffer ratio', (r) => (r.affected ? pct(r.affected.rebufferRatio) : '-')],
    ['affected stalls', (r) => (r.affected ? num(r.affected.stalls) : '-')],
    ['affected P2P during fault', (r) => (r.affected ? `${MB(r.affected.p2pBytesDuringFault)} MB` : '-')],
    ['browser CPU', (r) => (r.cpuSeconds === undefined ? '-' : `${num(r.cpuSeconds)} s in ${r.wallSeconds} s`)],
    ['browser CPU per GB received', (r) => (r.cpuSecondsPerGB ? `${num(r.cpuSecondsPerGB, 1)} s` : '-')],
  ];
  const names = runs.map((r) => r.mode);
  const cells = rows.map(([label, f]) => [label, ...runs.map((r) => String(f(r)))]);
  const widths = [Math.max(...cells.map((c) => c[0].length)), ...names.map((n, i) => Math.max(n.length, ...cells.map((c) => c[i + 1].length)))];
  const line = (c) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(['', ...names]), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
