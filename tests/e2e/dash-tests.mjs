// Browser tests of ShoalDash (dash.js 5 + the engine), registered into tests/e2e/run.mjs and
// run with the same origin, tracker and browser. The page is pages/dash-harness.html; the
// media is media/dash (scripts/gen-dash-media.mjs: two video representations + audio, 2 s
// segments, as SegmentTemplate $Number$, SegmentTimeline $Time$ and SegmentList byte ranges).
import { ensureDashMedia } from '../../scripts/gen-dash-media.mjs';

const MPD = (flavour) => `/media/dash/${flavour}/manifest.mpd`;
// A short buffer keeps dash.js loading while it plays (so requests are in flight to abort).
const SHORT_BUFFER = { streaming: { buffer: { bufferTimeAtTopQuality: 4, bufferTimeAtTopQualityLongForm: 4, stableBufferTime: 4 } } };

export function registerDashTests({ test, openHarness, playsOn, assertGenuine, check, sleep }) {
  const open = (env, id, opts = {}) => {
    ensureDashMedia();
    return openHarness(env, id, { page: 'dash-harness.html', src: MPD('number'), ...opts });
  };
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

}
