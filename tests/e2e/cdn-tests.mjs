// CDN path-failure browser tests (issue 8 item 6), registered into tests/e2e/run.mjs.
// Three viewers share a live stream; the origin then fails (HTTP 503, or holds without a byte)
// the media segments of one of them only (its `shoal_viewer` cookie), as when that viewer's
// route to the CDN breaks while its peers still reach it. The viewer must take its next
// segments from peers without a stall, and go back to HTTP once the path recovers.
import { launchViewer } from '../../scripts/lib/viewers.mjs';

const HLS = { capLevelToPlayerSize: true, startLevel: 0 };
const SRC = '/live/ts/master.m3u8';
const FAULT_S = 12;

export function registerCdnTests({ test, check, waitFor, sleep }) {
  async function outage(env, prefix, mode) {
    const vs = [];
    for (let i = 0; i < 3; i++) {
      const v = await launchViewer({ browser: env.browser, originUrl: env.origin.url, id: `${prefix}${i}`, src: SRC, trackers: [env.tracker.url], hlsConfig: HLS });
      env.opened.push({ id: v.id, log: v.log, close: () => v.close() });
      vs.push(v);
      await sleep(1000);
    }
    const victim = vs[2];
    // Steady state first: playing, buffered ahead, connected to both others.
    await victim.waitFor((m) => m.state === 'playing' && m.currentTime > 6 && m.bufferS > 2 && (m.shoal?.peers ?? 0) >= 2, 60_000);
    const before = await victim.metrics();
    const t0 = Date.now();
    env.origin.addFault({ mode, status: 503, durationMs: FAULT_S * 1000, clients: [victim.id] });
    const until = t0 + FAULT_S * 1000;
    // During the fault: playback goes on, bytes come from peers.
    await waitFor(`${victim.id} plays through the ${mode} outage`, async () => {
      const m = await victim.metrics();
      return Date.now() >= until ? { ok: true } : { ok: false, why: `t=${m.currentTime.toFixed(1)} state=${m.state}` };
    }, FAULT_S * 1000 + 5000, 500);
    const during = await victim.metrics();
    const origin = env.origin.stats().clients[victim.id] || {};
    // After: HTTP bytes resume (the engine returns to the CDN) and playback goes on.
    const after = await victim.waitFor((m) => (m.shoal?.httpDown ?? 0) > (during.shoal?.httpDown ?? 0) && m.currentTime > during.currentTime + 6, 40_000)
      .catch((e) => { throw new Error(`${victim.id}: no HTTP bytes after the outage ended (${e.message})`); });
    const evs = await victim.coreEvents();
    const cdn = evs.filter((e) => /cdn/i.test(String(e.kind)));
    const p2pGain = (during.shoal?.p2pDown ?? 0) - (before.shoal?.p2pDown ?? 0);
    const summary = `fault ${mode} ${FAULT_S} s: origin faulted ${origin.faulted ?? 0} request(s); p2p +${p2pGain} B during, ` +
      `stalls ${before.stalls}->${during.stalls}->${after.stalls} (${Math.round(after.stalledMs - before.stalledMs)} ms), ` +
      `http +${(after.shoal?.httpDown ?? 0) - (during.shoal?.httpDown ?? 0)} B after; cdn events: ${cdn.map((e) => `${e.kind}@${e.t}`).join(',') || 'none'}`;
    check(during.corrupted === 0 && after.corrupted === 0, `${victim.id}: corrupted fragments: ${after.errors.join('; ')}`);
    check((origin.faulted ?? 0) > 0, `${victim.id}: the fault never hit a request (${summary})`);
    check(p2pGain > 0, `${victim.id}: no bytes from peers during the outage (${summary})`);
    check(after.stalls === before.stalls, `${victim.id}: stalled (${summary})`);
    return summary;
  }

  test('cdn detection: a viewer whose CDN fails (503) goes on from peers with no stall, back to HTTP after', { engine: 'real' }, (env) => outage(env, 'cdnf', 'fail'));
  test('cdn detection: a viewer whose CDN stalls (no byte) goes on from peers with no stall, back to HTTP after', { engine: 'real' }, (env) => outage(env, 'cdns', 'stall'));
}
