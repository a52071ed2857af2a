#!/usr/bin/env node
// The shim's half of the binary boundary (js-shim/src/boundary.ts) against the real engine
// (js-shim/wasm/, from `npm run build:wasm`): every input type the shim encodes is accepted
// by the Rust decoder (a layout that drifted would be refused as truncated or trailing bytes),
// the outputs and stats it decodes carry what the engine did, and malformed inputs or configs
// throw, naming what is wrong, without harming the engine. crate/src/boundary/tests.rs has the
// Rust round trips; crate/tests/wasm_engine.rs the raw binding.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { build } from 'esbuild';

const root = new URL('../../', import.meta.url).pathname;
const out = await build({
  entryPoints: [`${root}js-shim/src/boundary.ts`],
  bundle: true, format: 'esm', platform: 'neutral', write: false, logLevel: 'error',
});
const { fromGlue, encodeInput } = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
const glue = await import(`${root}js-shim/wasm/shoal.js`);
await glue.default({ module_or_path: fs.readFileSync(`${root}js-shim/wasm/shoal_bg.wasm`) });
const mod = fromGlue(glue);

const SWARM = mod.deriveSwarmId('boundary-test', 'r0');
const PEER = 'ab'.repeat(20);
const URL0 = 'http://127.0.0.1:9/vod/r0/seg0.ts';

function tsBody(packets) {
  const b = new Uint8Array(packets * 188);
  for (let p = 0; p < packets; p++) {
    b[p * 188] = 0x47;
    for (let i = 1; i < 188; i++) b[p * 188 + i] = (p * 31 + i) % 251;
  }
  return b;
}

function playlist(swarm = SWARM) {
  return {
    type: 'playlist', swarm, live: false, container: 'ts', bitrate: 800000,
    segments: [
      { seq: 0, startMs: 0, durationMs: 4000, url: URL0 },
      { seq: 1, startMs: 4000, durationMs: 4000, url: 'http://127.0.0.1:9/vod/r0/seg1.ts', range: { start: 0, end: 9 } },
    ],
  };
}

/** Runs timeouts until `done(outs)` or `limit` ms of engine time. */
function runUntil(engine, clock, outs, limit, done) {
  const deadline = clock.now + limit;
  while (!done(outs)) {
    const t = engine.pollTimeout();
    if (t === undefined || t > deadline) return;
    clock.now = Math.max(clock.now, t);
    outs.push(...engine.handleTimeout(clock.now));
  }
}

test('a segment goes out as startHttp and comes back as the same bytes, through both progress paths', () => {
  const engine = new mod.WasmEngine({ p2pEnabled: false }, 1000, 7);
  const clock = { now: 1000 };
  const outs = [...engine.handleInput(clock.now, playlist())];
  outs.push(...engine.handleInput(clock.now, { type: 'playhead', swarm: SWARM, positionMs: 0, bufferedAheadMs: 0 }));
  outs.push(...engine.handleInput(clock.now, { type: 'segmentRequested', req: 1, swarm: SWARM, seq: 0, url: URL0 }));
  const startOf = (o) => o.find((x) => x.type === 'startHttp' && x.url === URL0);
  runUntil(engine, clock, outs, 10000, startOf);
  const start = startOf(outs);
  assert.ok(start, `no startHttp: ${JSON.stringify(outs)}`);
  assert.equal(start.range, null);
  const body = tsBody(40);
  const progress = engine.handleInput((clock.now += 50), { type: 'httpProgress', id: start.id, data: body.subarray(0, 188 * 15), total: body.length });
  const loaded = progress.filter((o) => o.type === 'segmentProgress');
  assert.deepEqual(loaded.map((o) => [o.req, o.total]), [[1, body.length]]);
  assert.ok(loaded.every((o) => Number.isInteger(o.loaded) && o.loaded <= body.length));
  const later = [...engine.httpProgress((clock.now += 50), start.id, body.subarray(188 * 15), null)];
  later.push(...engine.handleInput((clock.now += 1), { type: 'httpDone', id: start.id }));
  runUntil(engine, clock, later, 5000, (o) => o.some((x) => x.type === 'deliverSegment'));
  const deliveries = later.filter((o) => o.type === 'deliverSegment');
  assert.equal(deliveries.length, 1);
  const [d] = deliveries;
  assert.equal(d.req, 1);
  assert.ok(d.data instanceof Uint8Array);
  assert.deepEqual(Buffer.from(d.data), Buffer.from(body));
  assert.equal(d.timing.httpBytes, body.length);
  assert.equal(d.timing.p2pBytes, 0);
  assert.equal(d.timing.fromCache, false);
  assert.ok(d.timing.transferEnd >= d.timing.firstByte && d.timing.firstByte >= d.timing.transferStart);
  const loadedEvent = later.find((o) => o.type === 'event' && o.kind === 'segmentLoaded');
  assert.deepEqual(loadedEvent, { type: 'event', kind: 'segmentLoaded', swarm: SWARM, seq: 0, httpBytes: body.length, p2pBytes: 0 });
  const stats = engine.stats();
  assert.equal(stats.httpDown, body.length);
  assert.equal(stats.segmentsHttp, 1);
  assert.deepEqual(stats.perPeer, []);
  assert.equal(stats.cdnDegraded, false);
  engine.free();
});

test('a P2P engine announces and answers a peer candidate; stats list the connected peer', () => {
  const engine = new mod.WasmEngine({ startHoldMs: 0 }, 1000, 3);
  const clock = { now: 1000 };
  const outs = [...engine.handleInput(clock.now, playlist())];
  runUntil(engine, clock, outs, 5000, (o) => o.some((x) => x.type === 'announce'));
  const a = outs.find((o) => o.type === 'announce');
  assert.deepEqual([a.swarm, a.event, a.inbound], [SWARM, 'started', 'answer']);
  assert.equal(typeof a.numwant, 'number');
  const r = engine.handleInput(clock.now, { type: 'peerCandidate', conn: 5, swarm: SWARM, peer: PEER, inbound: true });
  assert.deepEqual(r.filter((o) => o.type === 'connectPeer'), [{ type: 'connectPeer', conn: 5 }]);
  const hello = engine.handleInput(clock.now, { type: 'peerConnected', conn: 5 });
  const sent = hello.filter((o) => o.type === 'sendToPeer');
  assert.ok(sent.length >= 1 && sent.every((o) => o.conn === 5 && o.data instanceof Uint8Array && o.data.length > 0), JSON.stringify(hello));
  const closed = engine.handleInput(clock.now, { type: 'peerClosed', conn: 5 });
  assert.ok(Array.isArray(closed));
  engine.free();
});

test('every input type the shim sends is accepted by the engine', () => {
  const engine = new mod.WasmEngine({}, 1000, 9);
  const inputs = [
    playlist(),
    { type: 'playhead', swarm: SWARM, positionMs: 10, bufferedAheadMs: 2000, rate: 1.5 },
    { type: 'segmentRequested', req: 2, swarm: SWARM, seq: 1, url: 'http://127.0.0.1:9/x.ts', range: { start: 5, end: 10 }, timeoutMs: 8000 },
    { type: 'segmentAborted', req: 2 },
    { type: 'peerCandidate', conn: 1, swarm: SWARM, peer: PEER, inbound: false },
    { type: 'peerConnected', conn: 1 },
    { type: 'peerMessage', conn: 1, data: new Uint8Array([1, 2, 3]) },
    { type: 'peerClosed', conn: 1 },
    { type: 'httpProgress', id: 77, data: new Uint8Array([1]), total: null },
    { type: 'httpDone', id: 77 },
    { type: 'httpFailed', id: 78, status: 404, reason: 'not found ü' },
    { type: 'integrityManifest', data: new TextEncoder().encode('not a manifest') },
    { type: 'setPolicy', p2pEnabled: true, uploadBytesPerSec: 1000 },
    { type: 'swarmPeers', swarm: SWARM, peers: 3 },
    { type: 'httpSample', bytes: 100000, ms: 120 },
    { type: 'playerStarted' },
    { type: 'leaveSwarm', swarm: SWARM },
  ];
  // One of each: the generated `Input` union has 17 types (PeerData never crosses).
  assert.equal(new Set(inputs.map((i) => i.type)).size, 17);
  let t = 1000;
  for (const input of inputs) {
    assert.doesNotThrow(() => engine.handleInput((t += 10), input), `${input.type}`);
  }
  engine.free();
});

test('a manifest the engine rejects comes back as a manifestRejected event', () => {
  const engine = new mod.WasmEngine({}, 1000, 9);
  const outs = engine.handleInput(1000, { type: 'integrityManifest', data: new TextEncoder().encode('garbage') });
  const ev = outs.find((o) => o.type === 'event' && o.kind === 'manifestRejected');
  assert.ok(ev && typeof ev.detail === 'string' && ev.detail.length > 0, JSON.stringify(outs));
  engine.free();
});

test('malformed inputs throw and leave the engine usable', () => {
  const engine = new mod.WasmEngine({ p2pEnabled: false }, 1000, 1);
  engine.handleInput(1000, playlist());
  assert.throws(() => engine.handleInput(2000, { type: 'noSuchInput' }), /noSuchInput/);
  assert.throws(() => engine.handleInput(2000, { type: 'httpDone' }), /number/);
  assert.throws(() => engine.handleInput(2000, { type: 'peerMessage', conn: 1, data: 5 }), /Uint8Array/);
  assert.throws(() => engine.handleInput(2000, { type: 'segmentAborted', req: -1 }), /invalid Shoal input/);
  assert.throws(() => engine.handleInput(2000, { type: 'segmentAborted', req: 1.5 }), /invalid Shoal input/);
  assert.throws(() => engine.handleInput(2000, { type: 'playhead', swarm: 'xyz', positionMs: 0, bufferedAheadMs: 0 }), /swarm id/);
  assert.throws(() => engine.handleInput(2000, { type: 'playlist', swarm: SWARM, live: 'yes', segments: [] }), /boolean/);
  assert.throws(() => engine.handleInput(2000, 42), /object/);
  assert.throws(() => engine.handleInput(2000, undefined), /object/);
  assert.throws(() => engine.handleInput(Number.NaN, { type: 'httpDone', id: 1 }), /finite/);
  assert.throws(() => engine.handleTimeout(-5), /finite/);
  assert.ok(Array.isArray(engine.handleInput(2001, { type: 'segmentAborted', req: 99 })));
  assert.equal(engine.stats().httpDown, 0);
  engine.free();
});

test('configs: partial, null and undefined are accepted; a wrong type or an unknown field throws naming it', () => {
  new mod.WasmEngine({ maxPeers: 3, p2pEnabled: false, integrityPublicKey: null, spotCheckRatio: undefined }, 0, 1).free();
  new mod.WasmEngine(null, 0, 1).free();
  new mod.WasmEngine(undefined, 0, 1).free();
  assert.throws(() => new mod.WasmEngine({ maxPeers: 'many' }, 0, 1), /maxPeers/);
  assert.throws(() => new mod.WasmEngine({ maxPeer: 3 }, 0, 1), /unknown field `maxPeer`.*maxPeers/);
  assert.throws(() => new mod.WasmEngine({ cacheBytes: -1 }, 0, 1), /cacheBytes/);
  assert.throws(() => new mod.WasmEngine({ p2pEnabled: 1 }, 0, 1), /p2pEnabled/);
  assert.throws(() => new mod.WasmEngine({ maxPeers: [3] }, 0, 1), /maxPeers/);
  assert.throws(() => new mod.WasmEngine([1, 2], 0, 1), /object/);
  assert.throws(() => new mod.WasmEngine({}, Number.NaN, 1), /finite/);
});

test('encodeInput is deterministic and length-exact (a segmentAborted is a tag and one f64)', () => {
  const b = encodeInput({ type: 'segmentAborted', req: 7 });
  assert.equal(b.length, 9);
  assert.equal(b[0], 3);
  assert.equal(new DataView(b.buffer, b.byteOffset).getFloat64(1, true), 7);
});
