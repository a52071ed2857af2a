#!/usr/bin/env node
// What hls.js's ABR is told about a segment the engine delivered (ShoalHls `abrTiming`):
// - 'transfer': the transfer's own duration, whatever the source;
// - 'capacity': an HTTP-only delivery reports its own duration and teaches the adapter the
//   viewer's HTTP throughput; a delivery from peers reports at most the time that HTTP
//   throughput would have taken for its bytes (a slow peer does not read as a slow network),
//   and its own duration when that is shorter, or when no HTTP transfer was seen yet.
// The adapter is compiled from its TypeScript with esbuild, as the shim is, and driven with a
// driver double (no engine, no browser).
import assert from 'node:assert/strict';
import { build } from 'esbuild';

const src = new URL('../../js-shim/src/', import.meta.url).pathname;
const out = await build({
  stdin: { contents: "export { HlsAdapter } from './adapters/hlsjs.ts';", resolveDir: src, loader: 'ts' },
  bundle: true, format: 'esm', platform: 'neutral', write: false, logLevel: 'error',
  plugins: [{ name: 'no-wasm', setup(b) { b.onResolve({ filter: /wasm\/shoal\.js$/ }, (a) => ({ path: a.path, external: true })); } }],
});
const { HlsAdapter } = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);

const SWARM = 'ab'.repeat(20);
/** A driver double: every request is kept with its sink, for the test to answer. */
function fakeDriver() {
  const sinks = [];
  return {
    sinks, active: true,
    swarmFor: () => SWARM,
    request: (_target, sink) => { sinks.push(sink); return sinks.length; },
    abort() {}, httpSample() {}, playhead() {}, playerStarted() {},
  };
}
const fakeHls = { levels: [{ uri: 'http://o/live/high.m3u8' }], url: 'http://o/live/master.m3u8', media: null, on() {}, off() {} };
const policy = { maxTimeToFirstByteMs: 0, maxLoadTimeMs: 0 };

/** Loads one main fragment through the adapter's fLoader; the engine delivers `bytes` with `timing`. */
function load(adapter, driver, bytes, timing) {
  const Loader = adapter.fragmentLoaderClass();
  const loader = new Loader({ loader: class {} });
  let stats = null;
  loader.load(
    { frag: { sn: 7, level: 0, type: 'main' }, url: 'http://o/live/high@7.ts' },
    { loadPolicy: policy },
    { onSuccess: (_r, s) => { stats = s; }, onError() {}, onTimeout() {} },
  );
  const t0 = 1000;
  driver.sinks.at(-1).deliver(new Uint8Array(bytes), {
    httpBytes: timing.p2p ? 0 : bytes, p2pBytes: timing.p2p ? bytes : 0,
    transferStart: t0, firstByte: t0 + 10, transferEnd: t0 + timing.ms, fromCache: false,
  });
  assert.ok(stats, 'delivered');
  return Math.round(stats.loading.end - stats.loading.start);
}

function adapter(mode) {
  const driver = fakeDriver();
  const a = new HlsAdapter(driver, undefined, mode);
  a.attach(fakeHls);
  return { a, driver };
}

const MB = 1_000_000;
{
  const { a, driver } = adapter('transfer');
  assert.equal(load(a, driver, MB, { p2p: false, ms: 400 }), 400);
  assert.equal(load(a, driver, MB, { p2p: true, ms: 2000 }), 2000, 'transfer: a slow peer reads as slow');
}
{
  const { a, driver } = adapter('capacity');
  assert.equal(load(a, driver, MB, { p2p: true, ms: 2000 }), 2000, 'no HTTP seen yet: the transfer itself');
  assert.equal(load(a, driver, MB, { p2p: false, ms: 400 }), 400, 'HTTP reports itself');
  assert.equal(load(a, driver, 2 * MB, { p2p: true, ms: 3000 }), 800, 'a slow peer is capped at the HTTP path (2 MB at 1 MB / 400 ms)');
  assert.equal(load(a, driver, MB, { p2p: true, ms: 100 }), 100, 'a peer faster than HTTP reports itself');
}
{
  const { a, driver } = adapter(undefined);
  load(a, driver, MB, { p2p: false, ms: 400 });
  assert.equal(load(a, driver, MB, { p2p: true, ms: 3000 }), 400, "the default is 'capacity'");
}
console.log('hls-abr-timing: ok');
