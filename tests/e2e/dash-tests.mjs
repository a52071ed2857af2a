// Browser tests of ShoalDash (dash.js 5 + the engine), registered into tests/e2e/run.mjs and
// run with the same origin, tracker and browser. The page is pages/dash-harness.html; the
// media is media/dash (scripts/gen-dash-media.mjs: two video representations + audio, 2 s
// segments, as SegmentTemplate $Number$, SegmentTimeline $Time$ and SegmentList byte ranges).
import { ensureDashMedia } from '../../scripts/gen-dash-media.mjs';

const MPD = (flavour) => `/media/dash/${flavour}/manifest.mpd`;
// A short buffer keeps dash.js loading while it plays (so requests are in flight to abort).
const SHORT_BUFFER = { streaming: { buffer: { bufferTimeAtTopQuality: 4, bufferTimeAtTopQualityLongForm: 4, stableBufferTime: 4 } } };

// Runs in the page before its scripts: counts RTCPeerConnection constructions (`__pcs`) and
// catches the harness's ShoalDash as it is stored (`Object.assign(h, {player, shoal, fake})`)
// through a one-shot `shoal` setter on Object.prototype (`__dash`).
const WATCH_PAGE = () => {
  window.__pcs = 0;
  const Pc = window.RTCPeerConnection;
  window.RTCPeerConnection = new Proxy(Pc, { construct: (t, a, n) => (window.__pcs++, Reflect.construct(t, a, n)) });
  Object.defineProperty(Object.prototype, 'shoal', {
    configurable: true,
    set(v) {
      if (v && typeof v.setP2P === 'function') window.__dash = v;
      Object.defineProperty(this, 'shoal', { value: v, writable: true, enumerable: true, configurable: true });
    },
  });
};

export function registerDashTests({ test, openHarness, playsOn, assertGenuine, check, waitFor, sleep }) {
  const open = (env, id, opts = {}) => {
    ensureDashMedia();
    return openHarness(env, id, { page: 'dash-harness.html', src: MPD('number'), ...opts });
  };
  /** `open` with WATCH_PAGE installed in the page's context. */
  const openWatched = (env, id, opts) => open({
    ...env,
    browser: { newContext: async (o) => { const c = await env.browser.newContext(o); await c.addInitScript(WATCH_PAGE); return c; } },
  }, id, opts);
  const pcs = (v) => v.page.evaluate(() => window.__pcs);
  const swarmKeys = (env) => new Set(Object.keys(env.tracker.counts().perSwarm));
  /** Swarms (info hash → viewers) the tracker learnt of since `before`: this test's, its swarm id being unique. */
  const newSwarms = (env, before) => Object.entries(env.tracker.counts().perSwarm).filter(([k]) => !before.has(k));
  const unique = (name) => `dash-${name}-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  // playsOn, with the stall history in the failure message (when and where playback stalled).
  const playsOnLogged = (v, seconds) => playsOn(v, seconds, 60_000).catch(async (e) => {
    const s = await v.snap().catch(() => null);
    if (!s) throw e;
    throw new Error(`${e.message} [stalls: ${s.stallLog.join(', ')}; first playing at ${s.firstPlayingAt} ms; level ${s.level}; last ABR kbit/s ${s.throughput.slice(-8).join(',')}]`);
  });
  const noDashErrors = (s, id) => check(!s.errors.some((e) => e.startsWith('dash ERROR')), `${id}: dash.js error: ${s.errors.join('; ')}`);

  test('dash: media segments go through the engine, bytes genuine ($Number$, $Time$, byte ranges)', {}, async (env) => {
    const out = [];
    for (const flavour of ['number', 'time', 'ranges']) {
      const v = await open(env, `dad-${flavour}`, { src: MPD(flavour), trackers: [] });
      const s = await playsOn(v, 6);
      noDashErrors(s, v.id);
      assertGenuine(s, v.id);
      const a = s.diag.adapter;
      check(a.fragmentsEngine >= 4, `${v.id}: only ${a.fragmentsEngine} segments via the engine`);
      check(a.fragmentsFallback === 0, `${v.id}: ${a.fragmentsFallback} segments fell back`);
      check(s.stats.httpDown > 0, `${v.id}: engine downloaded nothing`);
      check((s.diag.inputs.playlist ?? 0) >= 2, `${v.id}: no playlists fed (video + audio swarms)`);
      check((s.diag.inputs.playhead ?? 0) >= 1, `${v.id}: no playhead fed`);
      check(s.throughput.length >= 1, `${v.id}: dash.js stored no throughput sample`);
      out.push(`${flavour}: ${s.verified} verified, ${a.fragmentsEngine} via engine, ${s.throughput.length} ABR samples`);
      await v.close();
    }
    return out.join('; ');
  });

  test('dash: swarm of 4 plays continuously, P2P bytes, genuine bytes', { engine: 'real' }, async (env) => {
    const vs = [];
    for (let i = 0; i < 4; i++) {
      vs.push(await open(env, `dsw${i}`));
      await sleep(1500); // staggered joins, like a real audience
    }
    const results = await Promise.all(vs.map((v) => playsOnLogged(v, 16)));
    results.forEach((s, i) => { noDashErrors(s, vs[i].id); assertGenuine(s, vs[i].id); });
    const p2p = results.map((s) => s.stats.p2pDown);
    check(p2p.filter((b) => b > 0).length >= 2, `P2P bytes per viewer: ${p2p.join(', ')}`);
    check(results.every((s) => s.throughput.length >= 2), `ABR samples per viewer: ${results.map((s) => s.throughput.length).join(', ')}`);
    return `p2pDown=${p2p.join(',')} offload=${results.map((s) => s.stats.offload.toFixed(2)).join(',')} ` +
      `abrSamples=${results.map((s) => s.throughput.length).join(',')} held=${results.map((s) => s.diag.adapter.held).join(',')}`;
  });

  test('dash: live (dynamic MPD, a Period per loop): 3 viewers play, P2P bytes, genuine', { engine: 'real' }, async (env) => {
    const vs = [];
    for (let i = 0; i < 3; i++) {
      vs.push(await open(env, `dlv${i}`, { src: '/live/dash/number/manifest.mpd' }));
      await sleep(1000);
    }
    // Live playback starts at the live edge (a jump in currentTime): measure from there.
    await Promise.all(vs.map((v) => v.until('playing at the live edge', (s) => (s.currentTime > 10 && s.verified > 0) || `t=${s.currentTime.toFixed(1)}`, 40_000)));
    const results = await Promise.all(vs.map((v) => playsOnLogged(v, 12)));
    if (process.env.SHOAL_E2E_DEBUG) results.forEach((s) => console.log(JSON.stringify({ v: s.verified, ve: s.verifyErrors, fb: s.fragBytes, c: s.corrupted, e: s.errors.slice(-3), a: s.diag.adapter, t: s.currentTime })));
    results.forEach((s, i) => { noDashErrors(s, vs[i].id); assertGenuine(s, vs[i].id); });
    const p2p = results.map((s) => s.stats.p2pDown);
    check(p2p.some((b) => b > 0), `no P2P bytes in the live swarm: ${p2p.join(', ')}`);
    return `p2pDown=${p2p.join(',')} offload=${results.map((s) => s.stats.offload.toFixed(2)).join(',')} t=${results.map((s) => s.currentTime.toFixed(0)).join(',')}`;
  });

  test('dash: tracker down plays over HTTP', {}, async (env) => {
    const v = await open(env, 'dtrdown', { trackers: ['ws://127.0.0.1:9'] });
    const s = await playsOn(v, 8);
    noDashErrors(s, v.id);
    assertGenuine(s, v.id);
    check(s.stats.p2pDown === 0, 'p2p bytes without a tracker?');
    check(s.stats.httpDown + s.stats.fallbackHttp > 0, 'no HTTP bytes');
    check(s.errors.some((e) => e.startsWith('tracker')), 'tracker failure not reported');
    return `t=${s.currentTime.toFixed(1)} s`;
  });

  test('dash: core throws: P2P off, pending and later requests over dash.js XHR', {}, async (env) => {
    const v = await open(env, 'dthrows', { shoal: { testFault: 'core-throws' } });
    const s = await playsOn(v, 8);
    noDashErrors(s, v.id);
    assertGenuine(s, v.id);
    check(s.stats.p2pActive === false, 'p2pActive still true after the core threw');
    check(s.errors.some((e) => e.startsWith('core fatal')), `no fatal core error reported: ${s.errors.join('; ')}`);
    check(s.diag.adapter.fragmentsEngine >= 1, 'the engine never delivered before the fault');
    check(s.diag.adapter.fragmentsFallback + s.diag.adapter.passthrough >= 3, 'later segments did not go over dash.js XHR');
    check(s.stats.fallbackHttp > 0, 'fallbackHttp not counted');
    return `engine=${s.diag.adapter.fragmentsEngine} fallback=${s.diag.adapter.fragmentsFallback} passthrough=${s.diag.adapter.passthrough}`;
  });

  test('dash: a seek or quality switch aborts cancel the engine request', {}, async (env) => {
    const v = await open(env, 'dabort', { trackers: [], dash: SHORT_BUFFER });
    await playsOn(v, 2);
    const throttle = () => fetch(`${env.origin.url}/_shoal/fault`, { method: 'POST', body: JSON.stringify({ mode: 'throttle', rateBps: 40_000, durationMs: 6000, clients: ['dabort'] }) });
    const pending = () => v.until('a request pending in the engine', (s) => s.diag.pendingRequests > 0 || `pending=${s.diag.pendingRequests}`, 15_000);
    const aborted = (before, label) => v.until(label, (s) => (s.diag.inputs.segmentAborted ?? 0) > (before.diag.inputs.segmentAborted ?? 0) || 'no segmentAborted', 10_000);
    await throttle();
    const before = await pending();
    await v.page.evaluate(() => window.harness.seek(40));
    const s = await aborted(before, 'segmentAborted after a seek');
    check(s.diag.adapter.aborted >= 1, 'adapter did not count the abort');
    const after = await v.until('playing after the seek', (x) => x.currentTime > 42 || `t=${x.currentTime.toFixed(1)}`, 30_000);
    assertGenuine(after, v.id);
    await throttle();
    const mid = await pending();
    await v.page.evaluate((l) => window.harness.setLevel(l), mid.level === 0 ? 1 : 0);
    const s2 = await aborted(mid, 'segmentAborted after a quality switch');
    await v.until('playing after the switch', (x) => x.currentTime > s2.currentTime + 2 || `t=${x.currentTime.toFixed(1)}`, 30_000);
    return `aborts=${s2.diag.adapter.aborted}, cancelHttp=${s2.diag.outputs.cancelHttp ?? 0}`;
  });

  test('dash: p2p off → no RTCPeerConnection, no announce; setP2P(true) later joins the swarm', { engine: 'real' }, async (env) => {
    const before = swarmKeys(env);
    const shoal = { swarmId: unique('consent'), peerConnectTimeoutMs: 8000 };
    const a = await openWatched(env, 'dcons-a', { shoal });
    await waitFor('viewer a announced', async () => {
      const mine = newSwarms(env, before);
      return mine.length > 0 ? { ok: true, value: mine } : { ok: false, why: 'no announce yet' };
    }, 30_000);
    const b = await openWatched(env, 'dcons-b', { shoal: { ...shoal, p2p: false } });
    const off = await playsOn(b, 6);
    assertGenuine(off, b.id);
    check((await pcs(b)) === 0, `${await pcs(b)} RTCPeerConnection(s) constructed with p2p off`);
    check(newSwarms(env, before).every(([, n]) => n <= 1), `b announced while off: ${JSON.stringify(newSwarms(env, before))}`);
    check(off.diag.trackersConnected === 0 && off.diag.peerConns === 0, `tracker/peer sockets open while off: ${JSON.stringify(off.diag)}`);
    check(off.stats.p2pActive === false && off.stats.p2pDown === 0, 'P2P active while off');
    check(off.diag.adapter.fragmentsEngine > 0, 'the engine served nothing with p2p off (it should, over HTTP)');
    await b.page.evaluate(() => window.__dash.setP2P(true));
    const on = await b.until('a peer after setP2P(true)', (s) => s.stats.peers >= 1 || `peers=${s.stats.peers} errors=${s.errors.slice(-2).join('; ')}`, 45_000);
    check((await pcs(b)) > 0, 'no RTCPeerConnection after setP2P(true)');
    check(newSwarms(env, before).some(([, n]) => n >= 2), `the tracker never saw b: ${JSON.stringify(newSwarms(env, before))}`);
    await playsOn(b, 4);
    assertGenuine(await b.snap(), b.id);
    assertGenuine(await a.snap(), a.id);
    return `off: 0 RTCPeerConnection, 0 announces over ${off.currentTime.toFixed(0)} s; on: ${on.stats.peers} peer(s)`;
  });

  test('dash: qoe() after playback: startup, TTFB, bitrate, bytes by source add up; qoe events', {}, async (env) => {
    const v = await openWatched(env, 'dqoe', { trackers: [], shoal: { statsIntervalMs: 500 } });
    await v.page.evaluate(() => {
      window.__qoeEvents = 0;
      window.__dash.on('qoe', () => window.__qoeEvents++);
    });
    await playsOn(v, 6);
    // One evaluation: the QoE figures and the counters they derive from, at the same instant.
    const [q, s, events] = await v.page.evaluate(() => [window.__dash.qoe(), window.harness.snapshot(), window.__qoeEvents]);
    const fin = (x) => typeof x === 'number' && Number.isFinite(x);
    check(fin(q.startupMs) && q.startupMs > 0 && q.startupMs < 30_000, `startupMs=${q.startupMs}`);
    check(q.rebufferCount === s.stalls, `rebufferCount=${q.rebufferCount}, page saw ${s.stalls} stalls`);
    check(fin(q.rebufferRatio) && q.rebufferRatio >= 0 && q.rebufferRatio < 1, `rebufferRatio=${q.rebufferRatio}`);
    check(q.playingMs >= 5000, `playingMs=${q.playingMs}`);
    check(fin(q.ttfb.http) && q.ttfb.http > 0 && q.ttfbSamples.http >= 3, `ttfb.http=${q.ttfb.http} (${q.ttfbSamples.http} samples)`);
    check(q.ttfb.p2p === null && q.ttfbSamples.p2p === 0, `p2p TTFB without peers: ${q.ttfb.p2p}`);
    check(fin(q.effectiveBitrate) && q.effectiveBitrate > 50_000 && q.effectiveBitrate < 50_000_000, `effectiveBitrate=${q.effectiveBitrate}`);
    check(fin(q.levelBitrate) && q.levelBitrate > 0, `levelBitrate=${q.levelBitrate}`);
    // Bytes by source: the same counters as stats(), and they cover every media byte dash.js got.
    check(q.bytes.http === s.stats.httpDown + s.stats.fallbackHttp && q.bytes.p2p === s.stats.p2pDown && q.bytes.upload === s.stats.p2pUp,
      `qoe bytes ${JSON.stringify(q.bytes)} vs stats ${JSON.stringify(s.stats)}`);
    const a = s.diag.adapter;
    check(a.deliveredHttp + a.deliveredP2p <= s.stats.httpDown + s.stats.p2pDown, `delivered ${a.deliveredHttp}+${a.deliveredP2p} > engine downloads`);
    check(s.fragBytes > 0 && s.fragBytes <= a.deliveredHttp + a.deliveredP2p + a.fallbackHttp,
      `dash.js got ${s.fragBytes} media bytes, sources account for ${a.deliveredHttp + a.deliveredP2p + a.fallbackHttp}`);
    check(q.bytes.p2p === 0 && q.offload === 0 && q.peers === 0, `p2p without peers: ${JSON.stringify(q.bytes)}`);
    check(events >= 2, `${events} 'qoe' events`);
    return `startup ${q.startupMs.toFixed(0)} ms, ttfb.http ${q.ttfb.http.toFixed(1)} ms (${q.ttfbSamples.http}), ` +
      `${(q.effectiveBitrate / 1000).toFixed(0)} kbit/s (rep ${(q.levelBitrate / 1000).toFixed(0)}), media ${s.fragBytes} B of ${q.bytes.http} B HTTP`;
  });
}
