#!/usr/bin/env node
// The driver (js-shim/src/driver.ts) never runs with less than the app asked for: an engine
// that refuses its configuration (here `integrityPublicKey`, as a custom build that predates
// it would) or an input (`setPolicy`, `httpSample`) turns P2P off for the player (fail open to
// plain HTTP, one fatal `core` error) instead of running on without the refused part.
// The driver is compiled from its TypeScript with esbuild, as the shim is, and given engine
// doubles through `engineModule`; it runs in Node (no tracker: no WebRTC, no sockets).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { build } from 'esbuild';

const src = new URL('../../js-shim/src/', import.meta.url).pathname;
const out = await build({
  stdin: {
    contents: "export { Driver } from './driver.ts'; export { resolveConfig } from './config.ts';",
    resolveDir: src,
    loader: 'ts',
  },
  bundle: true, format: 'esm', platform: 'neutral', write: false, logLevel: 'error',
  // The bundled wasm glue is never loaded here (every driver gets an `engineModule`).
  plugins: [{ name: 'no-wasm', setup(b) { b.onResolve({ filter: /wasm\/shoal\.js$/ }, (a) => ({ path: a.path, external: true })); } }],
});
const { Driver, resolveConfig } = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);

const KEY = `ed25519:${Buffer.alloc(32, 7).toString('base64')}`;
const SWARM = 'cd'.repeat(20);

/**
 * An engine double: records every config it is constructed with and every input; throws on the
 * config fields in `refuseFields` and on the input types in `refuseInputs`.
 */
function engineModule({ refuseFields = [], refuseInputs = [] } = {}) {
  const seen = { configs: [], inputs: [] };
  class WasmEngine {
    constructor(config) {
      seen.configs.push({ ...config });
      for (const f of refuseFields) if (f in config) throw new Error(`unknown field \`${f}\``);
    }
    handleInput(_t, input) {
      seen.inputs.push(input.type);
      if (refuseInputs.includes(input.type)) throw new Error(`unknown variant \`${input.type}\``);
      if (input.type === 'segmentRequested') return [{ type: 'startHttp', id: input.req, url: input.url, range: null }];
      return [];
    }
    handleTimeout() { return []; }
    pollTimeout() { return undefined; }
    peerId() { return 'ab'.repeat(20); }
    stats() { return { httpDown: 0, p2pDown: 0, p2pUp: 0, p2pDiscarded: 0, segmentsHttp: 0, segmentsP2p: 0, peers: 0, peersBanned: 0, cacheBytes: 0, perPeer: [], cdnDegraded: false, httpTtfbMs: 0, p2pTtfbMs: 0 }; }
    free() {}
  }
  return { module: { WasmEngine, deriveSwarmId: () => SWARM }, seen };
}

function driver(mod, cfg = {}) {
  const errors = [];
  const d = new Driver(resolveConfig({ ...cfg, engineModule: mod.module }), { coreEvent() {}, error: (e) => errors.push(e) });
  return { d, errors };
}

const sink = () => {
  const s = { failed: [], delivered: 0 };
  return { s, sink: { progress() {}, deliver() { s.delivered++; }, fail(r) { s.failed.push(r); } } };
};

test('control: an engine that takes the key runs with it', async () => {
  const mod = engineModule();
  const { d, errors } = driver(mod, { integrityPublicKey: KEY });
  assert.equal(await d.ready, true);
  assert.equal(d.active, true);
  assert.deepEqual(mod.seen.configs.map((c) => c.integrityPublicKey), [KEY]);
  assert.equal(errors.length, 0);
  d.destroy();
});

test('an engine that refuses integrityPublicKey: P2P off, never an engine without the key', async () => {
  const mod = engineModule({ refuseFields: ['integrityPublicKey'] });
  const { d, errors } = driver(mod, { integrityPublicKey: KEY });
  assert.equal(await d.ready, false, 'the driver must not come up with an engine that refused the key');
  assert.equal(d.active, false);
  assert.ok(mod.seen.configs.length >= 1);
  for (const c of mod.seen.configs) assert.equal(c.integrityPublicKey, KEY, 'an engine was built without the integrity key');
  assert.equal(errors.length, 1, `errors: ${errors.map((e) => e.message).join('; ')}`);
  assert.equal(errors[0].fatal, true);
  assert.equal(errors[0].code, 'core');
  assert.match(errors[0].message, /P2P disabled.*refused the configuration.*integrityPublicKey/);
  // Requests are refused: the adapter loads them over plain HTTP.
  const { sink: k } = sink();
  assert.equal(d.request({ swarm: SWARM, seq: 1, url: 'https://cdn.example/1.ts' }, k), null);
  d.destroy();
});

test('an engine that refuses setPolicy (metered link): P2P off, pending request back to HTTP', async () => {
  const mod = engineModule({ refuseInputs: ['setPolicy'] });
  // A tracker makes P2P possible (no socket opens: this engine never announces).
  const { d, errors } = driver(mod, { trackers: ['ws://127.0.0.1:9'] });
  assert.equal(await d.ready, true);
  const { s, sink: k } = sink();
  assert.notEqual(d.request({ swarm: SWARM, seq: 1, url: 'https://cdn.example/1.ts' }, k), null);
  d.setMetered(true); // upload must stop: the engine refuses to hear it
  assert.ok(mod.seen.inputs.includes('setPolicy'));
  assert.equal(d.active, false, 'the driver kept running an engine that refused setPolicy');
  assert.deepEqual(s.failed, ['p2p disabled']);
  assert.equal(errors.filter((e) => e.fatal).length, 1);
  assert.match(errors[0].message, /engine threw on setPolicy/);
  d.destroy();
});

test('an engine that refuses httpSample: P2P off', async () => {
  const mod = engineModule({ refuseInputs: ['httpSample'] });
  const { d, errors } = driver(mod);
  assert.equal(await d.ready, true);
  d.httpSample(100_000, 250);
  assert.equal(d.active, false);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].fatal, true);
  d.destroy();
});
