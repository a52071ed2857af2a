// Browser tests of the consent switch (`p2p`, `setP2P`) and of the QoE API (`qoe()`, the
// 'qoe' event), registered into tests/e2e/run.mjs and run with its origin, tracker and browser.
//
// Each page is instrumented before any of its scripts runs (a context init script):
// - `window.__rtc` counts RTCPeerConnection constructions;
// - `window.__shoal` is the page's ShoalHls: pages/harness.html keeps it in a module-local
//   object (`Object.assign(h, {hls, shoal, fake})`), so a setter on Object.prototype named
//   `shoal` catches that assignment and then turns itself into an ordinary own property.
// Swarm ids are unique per test (`swarmId`), so the tracker's swarm list tells whether this
// test's viewers announced, whatever earlier tests left behind.

const INSTRUMENT = () => {
  window.__rtc = 0;
  const Native = window.RTCPeerConnection;
  if (Native) {
    window.RTCPeerConnection = new Proxy(Native, {
      construct(target, args, newTarget) {
        window.__rtc++;
        return Reflect.construct(target, args, newTarget);
      },
    });
  }
  Object.defineProperty(Object.prototype, 'shoal', {
    configurable: true,
    set(v) {
      if (v && typeof v === 'object' && typeof v.qoe === 'function') window.__shoal = v;
      Object.defineProperty(this, 'shoal', { value: v, writable: true, enumerable: true, configurable: true });
    },
  });
};

export function registerPrivacyTests({ test, openHarness, playsOn, assertGenuine, check, waitFor, sleep, Skip }) {
  /** openHarness with the instrumented context. */
  const open = (env, id, opts) => {
    const browser = env.browser;
    const wrapped = {
      ...env,
      browser: {
        newContext: async (o) => {
          const c = await browser.newContext(o);
          await c.addInitScript(INSTRUMENT);
          return c;
        },
      },
    };
    return openHarness(wrapped, id, opts);
  };
  const rtc = (v) => v.page.evaluate(() => window.__rtc);
  const call = (v, method, arg) => v.page.evaluate(([m, a]) => window.__shoal[m](a), [method, arg]);
  const swarmKeys = (env) => new Set(Object.keys(env.tracker.counts().perSwarm));
  const newSwarms = (env, before) => Object.entries(env.tracker.counts().perSwarm).filter(([k]) => !before.has(k));
  const unique = (name) => `privacy-${name}-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  // Short, fast peer connects; the live-edge delay does not matter for VOD.
  const SWARM = { peerConnectTimeoutMs: 8000 };

  test('privacy: p2p off → no RTCPeerConnection, no announce, plays over HTTP', { engine: 'real' }, async (env) => {
    const before = swarmKeys(env);
    const v = await open(env, 'prv-off', { shoal: { p2p: false, swarmId: unique('off') } });
    const s = await playsOn(v, 8);
    assertGenuine(s, v.id);
    check((await rtc(v)) === 0, `${await rtc(v)} RTCPeerConnection(s) constructed with p2p off`);
    check(newSwarms(env, before).length === 0, `the tracker saw an announce: ${JSON.stringify(newSwarms(env, before))}`);
    check(s.diag.trackersConnected === 0 && s.diag.peerConns === 0, `tracker/peer sockets open: ${JSON.stringify(s.diag)}`);
    check(s.stats.p2pActive === false && s.stats.p2pDown === 0, 'P2P active while off');
    check(s.stats.httpDown + s.stats.fallbackHttp > 0, 'no HTTP bytes');
    return `t=${s.currentTime.toFixed(1)} s, 0 RTCPeerConnection, 0 announces`;
  });

  test('privacy: setP2P(false) closes peers and tracker, keeps playing; setP2P(true) reconnects', { engine: 'real' }, async (env) => {
    const before = swarmKeys(env);
    const shoal = { ...SWARM, swarmId: unique('toggle') };
    const a = await open(env, 'prv-a', { shoal });
    const b = await open(env, 'prv-b', { shoal });
    await b.until('a peer connected', (s) => s.stats.peers >= 1 || `peers=${s.stats.peers}`, 45_000);
    await call(b, 'setP2P', false);
    const off = await b.until('no peer, no tracker socket after setP2P(false)', (s) =>
      (s.stats.peers === 0 && s.diag.peerConns === 0 && s.diag.trackersConnected === 0) || `peers=${s.stats.peers} conns=${s.diag.peerConns} trackers=${s.diag.trackersConnected}`, 10_000);
    check(off.stats.p2pActive === false, 'p2pActive still true');
    // The tracker drops b's announces with its socket: one viewer left per swarm of this test.
    await waitFor('tracker forgets b', async () => {
      const mine = newSwarms(env, before);
      return mine.length > 0 && mine.every(([, n]) => n <= 1) ? { ok: true, value: mine } : { ok: false, why: JSON.stringify(mine) };
    }, 15_000);
    const rtcOff = await rtc(b);
    const s = await playsOn(b, 8);
    check((await rtc(b)) === rtcOff, `${(await rtc(b)) - rtcOff} RTCPeerConnection(s) constructed while off`);
    check(s.stats.peers === 0, `peers=${s.stats.peers} while off`);
    await call(b, 'setP2P', true);
    const on = await b.until('a peer again after setP2P(true)', (s) => s.stats.peers >= 1 || `peers=${s.stats.peers}`, 45_000);
    check((await rtc(b)) > rtcOff, 'no RTCPeerConnection after switching on');
    await playsOn(b, 4);
    assertGenuine(await b.snap(), b.id);
    assertGenuine(await a.snap(), a.id);
    return `off: 0 new RTCPeerConnection over ${s.currentTime.toFixed(0)} s of play; on: ${on.stats.peers} peer(s)`;
  });

  test('privacy: p2p off at start, setP2P(true) later connects', { engine: 'real' }, async (env) => {
    const before = swarmKeys(env);
    const shoal = { ...SWARM, swarmId: unique('late') };
    const a = await open(env, 'prv-late-a', { shoal });
    const b = await open(env, 'prv-late-b', { shoal: { ...shoal, p2p: false } });
    await playsOn(b, 4);
    check((await rtc(b)) === 0, 'RTCPeerConnection constructed while off');
    check(newSwarms(env, before).every(([, n]) => n <= 1), 'b announced while off');
    await call(b, 'setP2P', true);
    await sleep(0);
    const errs = (await b.snap()).errors;
    if (errs.some((e) => e.includes('cannot turn P2P on at run time'))) {
      throw new Skip('the engine has no setPolicy input yet: an engine built with P2P off cannot be switched on');
    }
    const s = await b.until('a peer after setP2P(true)', (s) => s.stats.peers >= 1 || `peers=${s.stats.peers} errors=${s.errors.slice(-2).join('; ')}`, 45_000);
    check((await rtc(b)) > 0, 'no RTCPeerConnection after switching on');
    assertGenuine(await a.snap(), a.id);
    return `${s.stats.peers} peer(s) after consent`;
  });

  test('privacy: minSwarmSize 2 with one other viewer → announced, no RTCPeerConnection; a third viewer opens it', { engine: 'real' }, async (env) => {
    const before = swarmKeys(env);
    const shoal = { ...SWARM, swarmId: unique('min'), minSwarmSize: 2, core: { announceIntervalMs: 3000 } };
    const a = await open(env, 'prv-min-a', { shoal });
    const b = await open(env, 'prv-min-b', { shoal });
    await waitFor('both viewers announced', async () => {
      const mine = newSwarms(env, before);
      return mine.some(([, n]) => n >= 2) ? { ok: true, value: mine } : { ok: false, why: JSON.stringify(mine) };
    }, 30_000);
    await playsOn(b, 6);
    check((await rtc(a)) === 0 && (await rtc(b)) === 0, `RTCPeerConnection below the minimum: a=${await rtc(a)} b=${await rtc(b)}`);
    const c = await open(env, 'prv-min-c', { shoal });
    const s = await c.until('a peer once 3 viewers are in the swarm', (s) => s.stats.peers >= 1 || `peers=${s.stats.peers}`, 45_000);
    check((await rtc(c)) > 0, 'c connected without an RTCPeerConnection?');
    return `2 viewers: 0 RTCPeerConnection; 3 viewers: ${s.stats.peers} peer(s)`;
  });

  test('integrity: integrityPublicKey reaches the engine', { engine: 'real' }, async (env) => {
    // A well-formed key nobody signed with: the engine must still serve segments (no manifest
    // configured, so nothing is rejected).
    const key = `ed25519:${Buffer.alloc(32, 7).toString('base64')}`;
    const v = await open(env, 'int-key', { trackers: [], shoal: { integrityPublicKey: key } });
    const s = await playsOn(v, 4);
    check(s.diag.engineReady && s.diag.adapter.fragmentsEngine > 0, `engine not serving: ${JSON.stringify(s.diag.adapter)} errors=${s.errors.join('; ')}`);
    check(!s.errors.some((e) => e.includes('fatal') || e.includes('integrityPublicKey')), `errors: ${s.errors.join('; ')}`);
    return 'engine accepted integrityPublicKey';
  });

  test('integrity: an engine that refuses integrityPublicKey → P2P off, plays over HTTP', { engine: 'fake' }, async (env) => {
    // An engine double that does not know the field (as a custom build that predates it): the
    // shim must not run it without the key; every fragment goes over hls.js's own loader.
    const key = `ed25519:${Buffer.alloc(32, 7).toString('base64')}`;
    const v = await open(env, 'int-refused', { engine: 'fake', fake: { refuseConfig: ['integrityPublicKey'] }, shoal: { integrityPublicKey: key } });
    const s = await playsOn(v, 6);
    assertGenuine(s, v.id);
    check(s.errors.some((e) => e.startsWith('core fatal') && e.includes('refused the configuration')), `no fatal error for the refused key: ${s.errors.join('; ')}`);
    check(s.stats.p2pActive === false && s.stats.p2pDown === 0, `P2P still on: ${JSON.stringify(s.stats)}`);
    check(s.diag.adapter.fragmentsEngine === 0, `${s.diag.adapter.fragmentsEngine} fragments through an engine without the key`);
    check(s.diag.adapter.fragmentsFallback >= 3, `only ${s.diag.adapter.fragmentsFallback} fragments over the fallback`);
    return `fallback fragments=${s.diag.adapter.fragmentsFallback}`;
  });

  test('qoe: startup, rebuffering, TTFB, bitrate, bytes after a short play', {}, async (env) => {
    const v = await open(env, 'qoe', { trackers: [], shoal: { statsIntervalMs: 500 } });
    await v.page.evaluate(() => {
      window.__qoeEvents = 0;
      window.__shoal.on('qoe', () => window.__qoeEvents++);
    });
    const s = await playsOn(v, 6);
    const q = await v.page.evaluate(() => window.__shoal.qoe());
    const events = await v.page.evaluate(() => window.__qoeEvents);
    const fin = (x) => typeof x === 'number' && Number.isFinite(x);
    check(fin(q.startupMs) && q.startupMs > 0 && q.startupMs < 30_000, `startupMs=${q.startupMs}`);
    check(Number.isInteger(q.rebufferCount) && q.rebufferCount >= 0 && q.rebufferCount === s.stalls, `rebufferCount=${q.rebufferCount}, page saw ${s.stalls} stalls`);
    check(fin(q.rebufferRatio) && q.rebufferRatio >= 0 && q.rebufferRatio < 1, `rebufferRatio=${q.rebufferRatio}`);
    check(q.playingMs >= 5000, `playingMs=${q.playingMs} after ${s.currentTime.toFixed(1)} s of play`);
    check(fin(q.ttfb.http) && q.ttfb.http > 0 && q.ttfbSamples.http >= 3, `ttfb.http=${q.ttfb.http} (${q.ttfbSamples.http} samples)`);
    check(q.ttfb.p2p === null && q.ttfbSamples.p2p === 0, `p2p TTFB without peers: ${q.ttfb.p2p}`);
    // The media's renditions are a few hundred kbit/s to a few Mbit/s.
    check(fin(q.effectiveBitrate) && q.effectiveBitrate > 50_000 && q.effectiveBitrate < 50_000_000, `effectiveBitrate=${q.effectiveBitrate}`);
    check(fin(q.levelBitrate) && q.levelBitrate > 0, `levelBitrate=${q.levelBitrate}`);
    check(q.bytes.http > 0 && q.bytes.p2p === 0 && q.offload === 0 && q.peers === 0, `bytes ${JSON.stringify(q.bytes)} offload ${q.offload}`);
    check(events >= 2, `${events} 'qoe' events`);
    return `startup ${q.startupMs.toFixed(0)} ms, ttfb.http ${q.ttfb.http.toFixed(1)} ms, ${(q.effectiveBitrate / 1000).toFixed(0)} kbit/s (level ${(q.levelBitrate / 1000).toFixed(0)}), rebuffers ${q.rebufferCount}`;
  });
}
