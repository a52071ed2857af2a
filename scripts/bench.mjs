#!/usr/bin/env node
// Swarm benchmark: N headless viewers against the local origin and tracker, run twice with
// fresh browsers — Shoal (P2P on) and the baseline (P2P off, everything else identical) —
// then a JSON report and a comparison table. Run it through scripts/bench.sh, which puts it in
// a private network namespace.
//
//   node scripts/bench.mjs --player hlsjs|dashjs --scenario SCENARIO --viewers N --duration S
//        [--json FILE] [--media DIR|hibitrate] [--flavour ts|fmp4|byterange; dashjs: number|time|ranges] [--modes shoal,baseline]
//        [--stagger-ms 1000] [--baseline shim|plain] [--window 6] [--separate-browsers]
//        [--poisoners K [--poison-kind corrupt-upload|corrupt-upload-subtle|lie-have]]
//        [--warmup-s 10] [--outage-s 60] [--fault-mode fail|stall] [--throttle-kbps R] [--rounds K]
//        [--strict-bytes] [--joins K [--join-gap-ms 1000]] [--shoal-config JSON]
//
// SCENARIO: live | vod, or a CDN fault on top of one of them (faults hit media segments only;
// playlists keep coming, as when a CDN's media path or a viewer's route to it fails):
//   cdn-partial-outage   live; every second viewer (v1, v3, …) loses the CDN (--fault-mode fail:
//                        HTTP 503 at once; stall: no byte until the outage ends) for --outage-s
//                        seconds, --warmup-s after the last join; the others keep it
//   cdn-full-outage-vod  VOD; every viewer loses the CDN (503) after --warmup-s, to the end
//   cdn-throttled        live; every second viewer's CDN is throttled to --throttle-kbps
//                        (default: half the top rendition's BANDWIDTH) for --outage-s seconds
// Each run then gains `affected: {viewers, rebufferRatio, stalls, …}`: the faulted viewers'
// figures from the fault's start to the end of the run. The baseline gets the same faults.
// --poisoners K: the first K viewers to join run the shim's test-only testFault build
// (default corrupt-upload: every Data payload they send is inverted). They are left out of
// every figure; `corruptedDelivered` and `bannedPeers` count honest viewers only and
// `attack` says which honest viewers banned them.
//
// Byte check: each viewer's bytesReceived (origin bytes to its cookie + peer bytes the shim
// reports) is compared with the bytes its player loaded (fragBytes); a viewer more than 5% apart
// is printed as a WARNING and listed in the run's byteCheck.mismatched, as an `undercount` (the
// player got bytes no counter saw: --strict-bytes exits 3) or an `overfetch` (bytes fetched and
// not handed to the player: lookahead still unplayed when the run stopped, spot checks, copies).
// --joins K (the join benchmark): once the swarm has watched --duration seconds, K more viewers
// join it one at a time, each closed as soon as it plays; the run gains `joins`: their startup
// median and the median of each step of their startup trace (ms since navigation start: page
// started the player, shim constructed, engine ready, manifest, first fragment requested and
// loaded, playing). With --rounds, K joins per round and mode.
// --rounds K runs the modes K times, alternating (shoal, baseline, shoal, …): each run object
// then holds the figures over all K rounds' viewers (startup median over K×N startups, bytes
// summed) and `rounds`, the main figures of each round. Startup medians of one 6-viewer round
// swing by ±30% on a busy 2-core machine; alternating rounds spreads that over both modes.
// --duration is how long the swarm watches once every viewer has joined (joins are staggered).
// The baseline uses the shim with p2p:false when the shim is built (same code path minus P2P),
// or plain hls.js with --baseline plain / when js-shim/dist is missing.
// Viewers share one Chromium (a context each) unless --separate-browsers; each run reports the
// CPU seconds its browsers used (cpuSeconds, from /proc of the browser processes) and per GB
// received (cpuSecondsPerGB); with both modes, `cpuPerPeerGB` is what a peer byte costs: Shoal's
// CPU minus the baseline's (scaled to the bytes Shoal's viewers received) per GB from peers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureMedia, startOrigin, startTracker, launchBrowser, launchViewer, ROOT } from './lib/index.mjs';
import { summarizeRun, comparisonTable, median } from './lib/metrics.mjs';
import { descendantsCpuSeconds } from './lib/cpu.mjs';
import { ensureDashMedia } from './gen-dash-media.mjs';
import { generateHibitrateMedia } from './gen-hibitrate-media.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : d);
const player = opt('--player', 'hlsjs');
const scenario = opt('--scenario', 'live');
const N = Number(opt('--viewers', 4));
const duration = Number(opt('--duration', 60));
const jsonFile = opt('--json', null);
const mediaArg = opt('--media', null);
const flavour = opt('--flavour', player === 'dashjs' ? 'number' : 'ts');
const staggerMs = Number(opt('--stagger-ms', 1000));
const baselineKind = opt('--baseline', 'shim');
const windowSegments = Number(opt('--window', 6));
const separate = argv.includes('--separate-browsers');
let modes = opt('--modes', 'shoal,baseline').split(',').filter(Boolean);
const rounds = Number(opt('--rounds', 1));
const strictBytes = argv.includes('--strict-bytes');
// --shoal-config JSON: extra shim options for every viewer of both modes (e.g. {"abrTiming":"capacity"}).
let shoalExtra;
try { shoalExtra = JSON.parse(opt('--shoal-config', '{}')); } catch { console.error('bench: --shoal-config must be JSON'); process.exit(2); }
const joinsK = Number(opt('--joins', 0));
const joinGapMs = Number(opt('--join-gap-ms', 1000));
if (!(Number.isInteger(joinsK) && joinsK >= 0)) { console.error('bench: --joins must be a non-negative integer'); process.exit(2); }

if (player === 'dashjs' && mediaArg === 'hibitrate') { console.error('bench: --media hibitrate is HLS (hls.js) only'); process.exit(2); }
if (!['hlsjs', 'dashjs'].includes(player)) { console.error(`bench: --player must be hlsjs or dashjs`); process.exit(2); }
const SCENARIOS = { live: 'live', vod: 'vod', 'cdn-partial-outage': 'live', 'cdn-full-outage-vod': 'vod', 'cdn-throttled': 'live' };
if (!SCENARIOS[scenario]) { console.error(`bench: --scenario must be one of ${Object.keys(SCENARIOS).join('|')}`); process.exit(2); }
const stream = SCENARIOS[scenario];
const poisoners = Number(opt('--poisoners', 0));
const poisonKind = opt('--poison-kind', 'corrupt-upload');
const warmupS = Number(opt('--warmup-s', 10));
const outageS = Number(opt('--outage-s', 60));
const faultMode = opt('--fault-mode', 'fail');
if (!(poisoners >= 0 && poisoners < N)) { console.error('bench: --poisoners must be in 0..viewers-1'); process.exit(2); }
if (!['corrupt-upload', 'corrupt-upload-subtle', 'lie-have'].includes(poisonKind)) { console.error('bench: bad --poison-kind'); process.exit(2); }
if (!['fail', 'stall'].includes(faultMode)) { console.error('bench: --fault-mode must be fail or stall'); process.exit(2); }
if (!(Number.isInteger(rounds) && rounds >= 1)) { console.error('bench: --rounds must be a positive integer'); process.exit(2); }
if (!(N >= 1) || !(duration > 0)) { console.error('bench: --viewers and --duration must be positive'); process.exit(2); }

const shimBuilt = fs.existsSync(path.join(ROOT, 'js-shim/dist/index.js'));
const notes = [];
if (!shimBuilt && modes.includes('shoal')) {
  notes.push('js-shim/dist/index.js missing: Shoal run skipped (npm run build)');
  modes = modes.filter((m) => m !== 'shoal');
}
if (process.env.SHOAL_NETNS !== '1') notes.push('not inside the private network namespace (use scripts/bench.sh)');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// --media hibitrate: the 15 Mbit/s + 1 Mbit/s stream (scripts/gen-hibitrate-media.mjs).
const mediaDir = mediaArg === 'hibitrate' ? generateHibitrateMedia() : mediaArg ? path.resolve(mediaArg) : ensureMedia();
const origin = await startOrigin({ mediaDir, live: stream === 'live', windowSegments, quiet: true });
const tracker = await startTracker({ quiet: true });
const masters = origin.masters;
// dash.js plays media/dash/<flavour>/manifest.mpd (scripts/gen-dash-media.mjs).
if (player === 'dashjs') ensureDashMedia({ outDir: path.join(mediaDir, 'dash') });
const src = player === 'dashjs' ? `/${stream === 'live' ? 'live' : 'media'}/dash/${flavour}/manifest.mpd`
  : origin.masterPath(masters[flavour] ? flavour : Object.keys(masters)[0]);
const fault = faultPlan();
if (fault) console.log(`bench: fault ${JSON.stringify(fault)}`);
console.log(`bench: ${scenario}, ${N} viewers, ${duration} s, src ${src}, origin ${origin.url}, tracker ${tracker.url}`);
notes.forEach((n) => console.log(`bench: note: ${n}`));

/** Highest BANDWIDTH of the HLS master (bit/s), or null. */
function topBitrate() {
  try {
    const text = fs.readFileSync(path.join(mediaDir, masters[flavour] || Object.values(masters)[0]), 'utf8');
    const bw = [...text.matchAll(/[:,]BANDWIDTH=(\d+)/g)].map((m) => Number(m[1]));
    return bw.length ? Math.max(...bw) : null;
  } catch { return null; }
}

/** The scenario's CDN fault: which viewers (by index), when (s after the last join), how. */
function faultPlan() {
  if (!scenario.startsWith('cdn-')) return null;
  const half = [...Array(N).keys()].filter((i) => i % 2 === 1);
  if (scenario === 'cdn-full-outage-vod') {
    return { mode: 'fail', status: 503, atS: warmupS, forS: duration, viewers: [...Array(N).keys()] };
  }
  if (scenario === 'cdn-partial-outage') {
    return { mode: faultMode, status: 503, atS: warmupS, forS: outageS, viewers: half };
  }
  const kbps = Number(opt('--throttle-kbps', 0)) || (topBitrate() ? Math.round(topBitrate() / 2000) : 0);
  if (!kbps) { console.error('bench: cdn-throttled needs --throttle-kbps (no HLS master to read the top bitrate from)'); process.exit(2); }
  return { mode: 'throttle', rateBps: Math.round((kbps * 1000) / 8), kbps, topBitrate: topBitrate(), atS: warmupS, forS: outageS, viewers: half };
}

let chromiumVersion = null;
let stopping = false;
const live = new Set();
process.on('SIGINT', () => { stopping = true; });

async function runOnce(mode) {
  origin.resetStats();
  origin.clearFaults();
  const browser = await launchBrowser();
  chromiumVersion = browser.version();
  const cpu0 = descendantsCpuSeconds();
  const viewers = [];
  const failedViewers = [];
  const p2p = mode === 'shoal';
  const shim = mode === 'baseline' && (baselineKind === 'plain' || !shimBuilt) ? 'none' : 'auto';
  const t0 = Date.now();
  const poisonIds = [...Array(poisoners).keys()].map((i) => `${mode}-v${i}`);
  const affectedIds = fault ? fault.viewers.map((i) => `${mode}-v${i}`) : null;
  const faultStart = {};
  let faultAt = null;
  try {
    for (let i = 0; i < N && !stopping; i++) {
      if (i > 0) await sleep(staggerMs); // realistic, staggered joins
      try {
        const v = await launchViewer({
          browser, separate, originUrl: origin.url, id: `${mode}-v${i}`, src, p2p, trackers: [tracker.url], shim, player,
          shoalConfig: { ...shoalExtra, ...(i < poisoners ? { testFault: poisonKind } : {}) },
        });
        viewers.push(v);
        live.add(v);
      } catch (e) {
        // A viewer that cannot even open counts as one that never played (startup null).
        console.error(`bench: ${mode}-v${i} failed to open: ${e.message}`);
        failedViewers.push(`${mode}-v${i}`);
      }
    }
    const joined = Date.now();
    const end = joined + duration * 1000;
    while (Date.now() < end && !stopping) {
      if (fault && faultAt === null && Date.now() >= joined + fault.atS * 1000) {
        // Snapshot the affected viewers first: their figures count from here.
        for (const v of viewers) if (affectedIds.includes(v.id)) faultStart[v.id] = await v.metrics().catch(() => null);
        const forMs = Math.max(1000, Math.min(fault.forS * 1000, end - Date.now()));
        origin.addFault({ mode: fault.mode, status: fault.status, rateBps: fault.rateBps, durationMs: forMs, clients: affectedIds });
        faultAt = Math.round((Date.now() - t0) / 1000);
        console.log(`  [${mode} ${faultAt}s] fault ${fault.mode} on ${affectedIds.join(',')} for ${Math.round(forMs / 1000)} s`);
      }
      const nextFault = fault && faultAt === null ? joined + fault.atS * 1000 : Infinity;
      await sleep(Math.max(0, Math.min(5000, end - Date.now(), nextFault - Date.now())));
      const snaps = await Promise.all(viewers.map((v) => v.metrics().catch(() => null)));
      const line = snaps.map((s, i) => {
        if (!s) return `v${i}:?`;
        const off = s.shoal && (s.shoal.p2pDown + s.shoal.httpDown) ? Math.round((100 * s.shoal.p2pDown) / (s.shoal.p2pDown + s.shoal.httpDown)) : 0;
        return `v${i}:${s.state[0]} ${s.bufferS.toFixed(0)}s${p2p ? ` ${off}%` : ''}`;
      }).join(' | ');
      console.log(`  [${mode} ${Math.round((Date.now() - t0) / 1000)}s] ${line}`);
    }
    // --joins K: K more viewers join the running swarm one at a time, each closed once it plays.
    const joins = [];
    for (let k = 0; k < joinsK && !stopping; k++) {
      const id = `${mode}-j${k}`;
      let v = null;
      try {
        v = await launchViewer({ browser, separate, originUrl: origin.url, id, src, p2p, trackers: [tracker.url], shim, player, shoalConfig: shoalExtra });
        const m = await v.waitFor((x) => x.startupMs !== null, 20_000);
        joins.push({ id, startupMs: m.startupMs, trace: m.trace ?? null, firstFrag: m.fragLog?.[0] ?? null });
        console.log(`  [${mode} join ${k + 1}/${joinsK}] startup ${m.startupMs} ms ${JSON.stringify(m.trace)}`);
      } catch (e) {
        console.error(`bench: ${id}: ${e.message}`);
        joins.push({ id, startupMs: null, trace: null, error: e.message.slice(0, 200) });
      } finally {
        if (v) await v.close();
      }
      await sleep(joinGapMs);
    }
    const snapshots = {};
    const coreEvents = {};
    const peerIds = {};
    for (const v of viewers) {
      snapshots[v.id] = await v.metrics().catch(() => null);
      coreEvents[v.id] = await v.coreEvents().catch(() => []);
      peerIds[v.id] = await v.peerId().catch(() => null);
    }
    for (const id of failedViewers) snapshots[id] = null;
    return {
      mode, snapshots, originClients: origin.stats().clients, poisoners: poisonIds, affected: affectedIds, faultStart,
      coreEvents, peerIds, faultAt, joins,
      wallSeconds: Math.round((Date.now() - t0) / 1000),
      cpuSeconds: Math.round((descendantsCpuSeconds() - cpu0) * 10) / 10,
      consoleErrors: Object.fromEntries(viewers.map((v) => [v.id, v.log.slice(-5).map((l) => l.slice(0, 300))])),
    };
  } finally {
    for (const v of viewers) { await v.close(); live.delete(v); }
    await browser.close().catch(() => {});
  }
}

/** One run object from the raw results of a mode's rounds (viewer ids gain `r<k>:` beyond round 1). */
function summarizeRounds(mode, raws) {
  const tag = (k, id) => (k === 0 ? id : `r${k + 1}:${id}`);
  const retag = (k, obj) => Object.fromEntries(Object.entries(obj || {}).map(([id, v]) => [tag(k, id), v]));
  const merged = { mode, snapshots: {}, originClients: {}, poisoners: [], affected: fault ? [] : null, faultStart: {}, coreEvents: {}, peerIds: {} };
  raws.forEach((r, k) => {
    for (const key of ['snapshots', 'originClients', 'faultStart', 'coreEvents', 'peerIds']) Object.assign(merged[key], retag(k, r[key]));
    merged.poisoners.push(...r.poisoners.map((id) => tag(k, id)));
    if (fault) merged.affected.push(...r.affected.map((id) => tag(k, id)));
  });
  const summary = summarizeRun(merged);
  if (fault) summary.fault = { ...fault, startedAtS: raws[0].faultAt, viewers: raws[0].affected };
  if (poisoners) summary.poisonKind = poisonKind;
  summary.wallSeconds = raws.reduce((a, r) => a + r.wallSeconds, 0);
  summary.cpuSeconds = Math.round(raws.reduce((a, r) => a + r.cpuSeconds, 0) * 10) / 10;
  summary.browsers = separate ? 'one per viewer' : 'one, a context per viewer';
  summary.consoleErrors = Object.assign({}, ...raws.map((r, k) => retag(k, r.consoleErrors)));
  if (joinsK) summary.joins = joinFigures(raws.flatMap((r) => r.joins));
  if (raws.length > 1) {
    summary.rounds = raws.map((r) => {
      const one = summarizeRun(r);
      return { offload: one.offload, startupMsMedian: one.startupMsMedian, rebufferRatio: one.rebufferRatio, stalls: one.stalls, cdnBytes: one.cdnBytes, cpuSeconds: r.cpuSeconds };
    });
  }
  return summary;
}

/** Join-benchmark figures: startup median over every join, and the median of each trace step. */
function joinFigures(joins) {
  const ok = joins.filter((j) => Number.isFinite(j.startupMs));
  const steps = ['start', 'shim', 'engineReady', 'manifest', 'fragRequest', 'fragLoaded', 'playing'];
  const traceMedian = Object.fromEntries(steps.map((k) => [k, median(ok.map((j) => j.trace?.[k]))]));
  // From the page starting the player to playing: the page's own load (module fetches, the same
  // code in both modes, and the noisiest part on a busy machine) left out.
  const fromPlayer = ok.map((j) => (Number.isFinite(j.trace?.start) ? j.startupMs - j.trace.start : null));
  return {
    joins: joins.length, played: ok.length, startupMsMedian: median(ok.map((j) => j.startupMs)),
    fromPlayerStartMsMedian: median(fromPlayer), traceMedian, perJoin: joins,
  };
}

const raw = Object.fromEntries(modes.map((m) => [m, []]));
const runs = {};
try {
  for (let k = 0; k < rounds && !stopping; k++) {
    for (const mode of modes) {
      if (stopping) break;
      console.log(`bench: run '${mode}'${rounds > 1 ? ` (round ${k + 1} of ${rounds})` : ''}`);
      raw[mode].push(await runOnce(mode));
    }
  }
  for (const mode of modes) if (raw[mode].length) runs[mode] = summarizeRounds(mode, raw[mode]);
} finally {
  await tracker.close();
  await origin.close();
}

// CPU per byte: the browsers' CPU seconds per GB the viewers received, per mode, and what a
// peer byte adds: Shoal's CPU minus the baseline's (scaled to the bytes Shoal's viewers
// received) per GB delivered from peers. Sender and receiver share the browser, so this covers
// both ends.
const GB = 1e9;
for (const r of Object.values(runs)) {
  const recv = r.byteCheck.received;
  r.cpuSecondsPerGB = recv ? Math.round((r.cpuSeconds / (recv / GB)) * 10) / 10 : null;
}
let cpuPerPeerGB = null;
if (runs.shoal && runs.baseline && runs.shoal.p2pBytes && runs.baseline.byteCheck.received) {
  // The baseline's CPU scaled to the bytes Shoal's viewers received: decoding costs with the
  // bitrate played, so a run whose viewers played a lower rendition is not credited for it.
  const scale = runs.shoal.byteCheck.received / runs.baseline.byteCheck.received;
  const extra = runs.shoal.cpuSeconds - runs.baseline.cpuSeconds * scale;
  cpuPerPeerGB = {
    extraCpuSeconds: Math.round(extra * 10) / 10,
    peerGB: Math.round((runs.shoal.p2pBytes / GB) * 1000) / 1000,
    cpuSecondsPerPeerGB: Math.round((extra / (runs.shoal.p2pBytes / GB)) * 10) / 10,
    baselineCpuSecondsPerGB: runs.baseline.cpuSecondsPerGB,
    // Decoding does not cost in proportion to bytes: when the modes' viewers received (played)
    // more than 10% apart, the figure mixes a bitrate difference into the peer cost.
    receivedRatio: Math.round(scale * 1000) / 1000,
    comparable: Math.abs(scale - 1) <= 0.1,
  };
}

const report = {
  date: new Date().toISOString(),
  command: `npm run bench -- ${argv.join(' ')}`,
  player, scenario, stream, viewers: N, poisoners, durationS: duration, staggerMs, flavour, src, rounds,
  media: mediaArg ? mediaArg : 'media/ (scripts/gen-media.mjs)',
  limit: Math.round((1 - 1 / (N - poisoners)) * 1000) / 1000,
  machine: {
    cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGB: Math.round(os.totalmem() / 1e9),
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100), node: process.version, chromium: chromiumVersion,
    netns: process.env.SHOAL_NETNS === '1',
  },
  notes,
  cpuPerPeerGB,
  runs,
};
console.log('\n' + comparisonTable(Object.values(runs)));
console.log(`limit (1 - 1/N): ${(report.limit * 100).toFixed(1)}%`);
for (const r of Object.values(runs)) {
  if (!r.joins) continue;
  const t = r.joins.traceMedian;
  console.log(`joins ${r.mode}: ${r.joins.played}/${r.joins.joins} played, startup median ${r.joins.startupMsMedian} ms (${r.joins.fromPlayerStartMsMedian} ms from the player's start); trace medians ${Object.entries(t).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ')}`);
}
if (runs.shoal?.joins && runs.baseline?.joins && runs.baseline.joins.startupMsMedian) {
  const ratio = (k) => Math.round((runs.shoal.joins[k] / runs.baseline.joins[k]) * 1000) / 1000;
  report.joinStartupRatio = ratio('startupMsMedian');
  report.joinFromPlayerStartRatio = ratio('fromPlayerStartMsMedian');
  console.log(`join startup median Shoal / baseline: ${report.joinStartupRatio} (from the player's start: ${report.joinFromPlayerStartRatio})`);
}
if (cpuPerPeerGB) {
  console.log(`browser CPU per peer GB: ${cpuPerPeerGB.cpuSecondsPerPeerGB} s (${cpuPerPeerGB.extraCpuSeconds} s over the baseline for ${cpuPerPeerGB.peerGB} GB from peers; baseline ${cpuPerPeerGB.baselineCpuSecondsPerGB} s per GB received)` +
    (cpuPerPeerGB.comparable ? '' : `; NOT comparable: Shoal's viewers received ${cpuPerPeerGB.receivedRatio}x the baseline's bytes`));
}
// Every viewer's bytes are counted the same way in both modes (origin bytes to its cookie + the
// shim's peer bytes); the player's own count must agree, or the figures above are not honest.
const mismatches = Object.values(runs).flatMap((r) => r.byteCheck.mismatched.map((m) => ({ mode: r.mode, ...m })));
for (const m of mismatches) {
  console.log(`bench: WARNING ${m.mode} ${m.id} ${m.kind}: ${(m.bytesReceived / 1e6).toFixed(2)} MB counted received, the player got ${(m.fragBytes / 1e6).toFixed(2)} MB (${(m.discrepancy * 100).toFixed(1)}% apart)`);
}
const undercounts = mismatches.filter((m) => m.kind === 'undercount');
report.byteCheckFailed = undercounts.length > 0;
if (jsonFile) {
  fs.mkdirSync(path.dirname(path.resolve(jsonFile)), { recursive: true });
  fs.writeFileSync(jsonFile, JSON.stringify(report, null, 2) + '\n');
  console.log(`bench: wrote ${jsonFile}`);
}
process.exit(strictBytes && undercounts.length ? 3 : 0);
