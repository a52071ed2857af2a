#!/usr/bin/env node
// Browser tests of the shim (hls.js + ShoalHls in headless Chromium), run inside a private
// network namespace by `npm run test:e2e` (scripts/netns-run.sh): WebRTC between the pages
// goes over the namespace's veth address; origin and tracker listen on 127.0.0.1 inside.
//
// Two engines: the real one (js-shim/wasm, from `npm run build:wasm`) and a JS stand-in
// (pages/fake-engine.mjs) that routes every segment over the shim's HTTP transport and floods
// each peer with numbered messages. Transport/adapter plumbing is tested with the stand-in;
// the swarm tests need the real engine and are skipped (loudly) until it is built.
// Usage: node tests/e2e/run.mjs [--only name,name] [--require-wasm] [--engine fake|real]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerDashTests } from './dash-tests.mjs';
import { registerAttackTests } from './attack-tests.mjs';
import { registerCdnTests } from './cdn-tests.mjs';
import { registerPrivacyTests } from './privacy-tests.mjs';
import { registerTrackerInteropTests } from './tracker-interop-tests.mjs';
import { ensureMedia, startOrigin, startTracker, launchBrowser } from '../../scripts/lib/index.mjs';
import { sleep, Skip, check, waitFor, openHarness, playsOn, assertGenuine, SEG_MS } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
const requireWasm = args.includes('--require-wasm') || process.env.SHOAL_REQUIRE_WASM === '1';
const engineArg = args.includes('--engine') ? args[args.indexOf('--engine') + 1] : null;

if (process.env.SHOAL_NETNS !== '1') {
  console.error('run inside the private network namespace: npm run test:e2e (scripts/netns-run.sh)');
  process.exit(2);
}

// ---- build the shim if needed -------------------------------------------------------------
const wasmBuilt = fs.existsSync(path.join(ROOT, 'js-shim/wasm/shoal_bg.wasm'));
if (!wasmBuilt && requireWasm) {
  console.error('js-shim/wasm is not built (npm run build:wasm) and --require-wasm was given');
  process.exit(1);
}
const newest = (dir) => fs.readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile()).reduce((m, e) => Math.max(m, fs.statSync(path.join(e.parentPath, e.name)).mtimeMs), 0);
const distIndex = path.join(ROOT, 'js-shim/dist/index.js');
const srcTime = Math.max(newest(path.join(ROOT, 'js-shim/src')), wasmBuilt ? newest(path.join(ROOT, 'js-shim/wasm')) : 0);
if (!fs.existsSync(distIndex) || fs.statSync(distIndex).mtimeMs < srcTime ||
    !fs.existsSync(path.join(ROOT, 'js-shim/dist-test/faults.js')) ||
    (wasmBuilt && !fs.existsSync(path.join(ROOT, 'js-shim/dist/wasm/shoal_bg.wasm')))) {
  console.log('building js-shim/dist …');
  execFileSync(process.execPath, [path.join(ROOT, 'js-shim/build.mjs'), ...(wasmBuilt ? [] : ['--allow-missing-wasm'])], { stdio: 'inherit' });
}

// ---- tests --------------------------------------------------------------------------------
const tests = [];
const test = (name, opts, fn) => tests.push({ name, ...opts, fn });

test('transport: tracker signalling + WebRTC data channels (3 pages, stand-in engine)', { engine: 'fake' }, async (env) => {
  const burst = 96; const size = 16 * 1024; // 1.5 MiB per channel: above the 1 MiB high-water mark
  const vs = [];
  for (let i = 0; i < 3; i++) vs.push(await openHarness(env, `tr${i}`, { engine: 'fake', fake: { burst, size } }));
  for (const v of vs) {
    const s = await v.until('2 peers connected and all bursts received in order', (s) => {
      const rec = s.fake.received;
      if (s.fake.connected < 2) return `connected=${s.fake.connected}`;
      if (!rec.every((r) => r.count === burst)) return `received ${rec.map((r) => r.count).join(',')}`;
      return true;
    }, 40_000);
    check(s.fake.received.every((r) => r.inOrder && r.bytes === burst * size), `${v.id}: messages out of order or damaged`);
    check(s.diag.trackersConnected === 1, `${v.id}: tracker not connected`);
    check(s.diag.peerConns >= 2, `${v.id}: ${s.diag.peerConns} open data channels`);
    check(s.diag.inputs.peerCandidate >= 2 && s.diag.inputs.peerConnected >= 2, `${v.id}: candidate/connected inputs missing`);
  }
  const meshMs = Date.now() - env.testStart;
  if (process.env.SHOAL_E2E_DEBUG) for (const v of vs) console.log(v.id, (await v.snap()).fake.timeline.join(' | '));
  // Closing one page closes its channels on the others (peerClosed reaches the engine).
  await vs[0].close();
  await vs[1].until('peerClosed after a peer left', (s) => (s.diag.inputs.peerClosed ?? 0) >= 1 || `peerClosed=${s.diag.inputs.peerClosed ?? 0}`, 20_000);
  return `3 pages meshed in ${(meshMs / 1000).toFixed(1)} s, ${burst}×${size / 1024} KiB per channel in order, peerClosed after ${((Date.now() - env.testStart - meshMs) / 1000).toFixed(1)} s`;
});

test('adapter: main fragments go through the engine, bytes genuine (ts + byte ranges)', { engine: 'fake' }, async (env) => {
  const out = [];
  for (const flavour of ['ts', 'byterange', 'fmp4']) {
    const v = await openHarness(env, `ad-${flavour}`, { engine: 'fake', src: `/media/${flavour}/master.m3u8`, trackers: [] });
    const s = await playsOn(v, 6);
    assertGenuine(s, v.id);
    check(s.diag.adapter.fragmentsEngine >= 3, `${v.id}: only ${s.diag.adapter.fragmentsEngine} fragments via the engine`);
    check(s.stats.httpDown > 0, `${v.id}: engine downloaded nothing`);
    // Only fMP4 init segments may bypass the engine.
    if (flavour !== 'fmp4') check(s.diag.adapter.fragmentsFallback === 0, `${v.id}: ${s.diag.adapter.fragmentsFallback} fragments fell back`);
    else check(s.diag.adapter.fragmentsFallback <= 2, `${v.id}: ${s.diag.adapter.fragmentsFallback} fragments fell back`);
    check(s.stats.p2pActive === false, `${v.id}: p2pActive without trackers`);
    out.push(`${flavour}: ${s.verified} verified`);
    await v.close();
  }
  return out.join(', ');
});

test('abort: a seek or level switch cancels the engine request (segmentAborted)', {}, async (env) => {
  // A short buffer keeps hls.js loading while it plays, so a throttled fragment is in flight.
  const v = await openHarness(env, 'abort', { trackers: [], hls: { maxBufferLength: 4, maxMaxBufferLength: 4 } });
  await playsOn(v, 2);
  const throttle = () => fetch(`${env.origin.url}/_shoal/fault`, { method: 'POST', body: JSON.stringify({ mode: 'throttle', rateBps: 40_000, durationMs: 6000, clients: ['abort'] }) });
  const pending = () => v.until('a request pending in the engine', (s) => s.diag.pendingRequests > 0 || `pending=${s.diag.pendingRequests}`, 15_000);
  const aborted = (before, label) => v.until(label, (s) => (s.diag.inputs.segmentAborted ?? 0) > (before.diag.inputs.segmentAborted ?? 0) || 'no segmentAborted', 10_000);
  await throttle();
  const before = await pending();
  await v.page.evaluate(() => window.harness.seek(40));
  const s = await aborted(before, 'segmentAborted after a seek');
  // Nobody else needs the old fragment (no peers here): its HTTP transfer must stop.
  check((s.diag.outputs.cancelHttp ?? 0) >= 1, 'engine did not cancel the HTTP transfer after the seek');
  check(s.diag.adapter.aborted >= 1, 'adapter did not count the abort');
  const after = await v.until('playing after the seek', (s) => s.currentTime > 42 || `t=${s.currentTime.toFixed(1)}`, 30_000);
  assertGenuine(after, v.id);
  // hls.js aborts the fragment in flight on an immediate level switch too.
  await throttle();
  const mid = await pending();
  await v.page.evaluate((l) => window.harness.setLevel(l), mid.level === 0 ? 1 : 0);
  const s2 = await aborted(mid, 'segmentAborted after a level switch');
  check((s2.diag.outputs.cancelHttp ?? 0) > (mid.diag.outputs.cancelHttp ?? 0), 'engine did not cancel the HTTP transfer after the level switch');
  await v.until('playing after the switch', (s) => s.currentTime > s2.currentTime + 2 || `t=${s.currentTime.toFixed(1)}`, 30_000);
  return `aborts=${s2.diag.adapter.aborted}, cancelHttp=${s2.diag.outputs.cancelHttp ?? 0}`;
});

test('tracker down: plays over HTTP', {}, async (env) => {
  const v = await openHarness(env, 'trdown', { trackers: ['ws://127.0.0.1:9'] });
  const s = await playsOn(v, 8);
  assertGenuine(s, v.id);
  check(s.stats.p2pDown === 0, 'p2p bytes without a tracker?');
  check(s.stats.httpDown + s.stats.fallbackHttp > 0, 'no HTTP bytes');
  check(s.errors.some((e) => e.startsWith('tracker')), 'tracker failure not reported');
  return `t=${s.currentTime.toFixed(1)} s, ${s.errors.filter((e) => e.startsWith('tracker')).length} tracker warnings`;
});

test('core throws: P2P off, pending and later requests over HTTP', {}, async (env) => {
  const v = await openHarness(env, 'throws', { shoal: { testFault: 'core-throws' } });
  const s = await playsOn(v, 8);
  assertGenuine(s, v.id);
  check(s.stats.p2pActive === false, 'p2pActive still true after the core threw');
  check(s.errors.some((e) => e.startsWith('core fatal')), `no fatal core error reported: ${s.errors.join('; ')}`);
  check(s.diag.adapter.fragmentsEngine >= 1, 'the engine never delivered before the fault');
  check(s.diag.adapter.fragmentsFallback >= 3, `only ${s.diag.adapter.fragmentsFallback} fragments over the fallback`);
  check(s.stats.fallbackHttp > 0, 'fallbackHttp not counted');
  return `fallback fragments=${s.diag.adapter.fragmentsFallback}`;
});

test('swarm of 4: continuous playback, P2P bytes, genuine bytes', { engine: 'real' }, async (env) => {
  const vs = [];
  for (let i = 0; i < 4; i++) {
    // One viewer gets its wasm late: playlists loaded before the engine must still reach it.
    vs.push(await openHarness(env, `sw${i}`, { delayWasmMs: i === 1 ? 4000 : 0 }));
    await sleep(1500); // staggered joins, like a real audience
  }
  const results = await Promise.all(vs.map((v) => playsOn(v, 16, 60_000)));
  const p2p = results.map((s) => s.stats.p2pDown);
  check(p2p.filter((b) => b > 0).length >= 2, `P2P bytes per viewer: ${p2p.join(', ')}`);
  results.forEach((s, i) => {
    assertGenuine(s, vs[i].id);
    check((s.diag.inputs.playlist ?? 0) >= 1 && (s.diag.outputs.announce ?? 0) >= 1, `${vs[i].id}: engine got no playlist / never announced`);
  });
  return `p2pDown=${p2p.join(',')} offload=${results.map((s) => s.stats.offload.toFixed(2)).join(',')}`;
});

test('peers leave (live): the last viewer goes on over HTTP without a stall', { engine: 'real' }, async (env) => {
  // Live, so that new segments keep coming after the peers are gone and must come over HTTP.
  // One rendition for everyone (capped to the small player), so the three share one swarm.
  const hls = { capLevelToPlayerSize: true, startLevel: 0 };
  const vs = [];
  for (let i = 0; i < 3; i++) {
    vs.push(await openHarness(env, `lv${i}`, { src: '/live/ts/master.m3u8', hls }));
    await sleep(1000);
  }
  // Keep whichever viewer first got bytes from a peer; the others leave.
  const last = await waitFor('a viewer with P2P bytes', async () => {
    const snaps = await Promise.all(vs.map((v) => v.snap()));
    const i = snaps.findIndex((x) => x.stats.p2pDown > 0);
    return i >= 0 ? { ok: true, value: vs[i] } : { ok: false, why: snaps.map((x) => `peers=${x.stats.peers}`).join(' ') };
  }, 60_000);
  for (const v of vs.filter((x) => x !== last)) await v.close();
  const s0 = await last.until('all peers gone', (s) => s.stats.peers === 0 || `peers=${s.stats.peers}`, 20_000);
  const s = await playsOn(last, 10);
  check(s.stats.httpDown > s0.stats.httpDown, `no HTTP bytes after the peers left (http ${s0.stats.httpDown} -> ${s.stats.httpDown})`);
  check(s.stats.p2pDown === s0.stats.p2pDown, 'P2P bytes without peers?');
  assertGenuine(s, last.id);
  return `p2p ${s0.stats.p2pDown} bytes before, http +${s.stats.httpDown - s0.stats.httpDown} after, maxStall ${Math.round(s.maxStallMs)} ms`;
});

registerDashTests({ test, openHarness, playsOn, assertGenuine, check, waitFor, sleep });
registerAttackTests({ test, check, waitFor, sleep, Skip });
registerCdnTests({ test, check, waitFor, sleep, Skip });
registerPrivacyTests({ test, openHarness, playsOn, assertGenuine, check, waitFor, sleep, Skip });
registerTrackerInteropTests({ test, openHarness, playsOn, assertGenuine, check, waitFor, sleep, Skip });

// ---- runner -------------------------------------------------------------------------------
const t0 = Date.now();
const mediaDir = ensureMedia();
const origin = await startOrigin({ mediaDir, quiet: true });
const tracker = await startTracker({ quiet: true });
// Harness documents are fulfilled by Playwright (no IP address space): let them reach the
// loopback origin and tracker. The last --disable-features wins, so repeat the viewers' one.
const browser = await launchBrowser({ args: ['--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks'] });
const env = { origin, tracker, browser, engine: engineArg ?? (wasmBuilt ? 'real' : 'fake'), opened: [] };
console.log(`e2e: origin ${origin.url}, tracker ${tracker.url}, engine ${env.engine}${env.engine === 'real' ? '' : ' (stand-in engine: swarm tests skipped)'}`);
const results = [];
for (const t of tests) {
  if (only && !only.some((o) => t.name.startsWith(o))) continue;
  const started = Date.now();
  env.testStart = started;
  let status; let detail;
  try {
    if (t.engine === 'real' && env.engine !== 'real') throw new Skip('needs the wasm engine (npm run build:wasm)');
    detail = await t.fn(env);
    status = 'PASS';
  } catch (e) {
    status = e instanceof Skip ? 'SKIP' : 'FAIL';
    detail = e.message;
    if (status === 'FAIL') for (const v of env.opened) if (v.log.length) console.log(`  [${v.id} console] ${v.log.slice(-5).join(' | ')}`);
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${status} ${t.name} (${secs} s)${detail ? ` — ${detail}` : ''}`);
  results.push({ name: t.name, status });
  for (const v of env.opened.splice(0)) await v.close();
}
for (const v of env.opened.splice(0)) await v.close();
await browser.close();
await tracker.close();
await origin.close();
const n = (st) => results.filter((r) => r.status === st).length;
console.log(`e2e: ${n('PASS')} passed, ${n('FAIL')} failed, ${n('SKIP')} skipped in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exit(n('FAIL') > 0 ? 1 : 0);
