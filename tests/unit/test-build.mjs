#!/usr/bin/env node
// The shim's test build (js-shim/src/testing/faults.ts -> js-shim/dist-test/faults.js):
// - its wire rewrites, checked on the test vectors of docs/PROTOCOL.md (the offsets come from
//   the generated WIRE constants, so a codec change that moves a field shows here);
// - its engine wrapper ('core-throws' on the third segment request; tampering of every
//   `sendToPeer`, whichever entry point produced it);
// - no production bundle in js-shim/dist (from `npm run build`) holds any of it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { build } from 'esbuild';

const root = new URL('../../', import.meta.url).pathname;
const out = await build({
  entryPoints: [`${root}js-shim/src/testing/faults.ts`],
  bundle: true, format: 'esm', platform: 'neutral', write: false, logLevel: 'error',
});
const { tamperOutgoing, withFaults, parseFaults } = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);

/** `hex:` of the named `vector` block in docs/PROTOCOL.md, as bytes. */
function vector(name) {
  const doc = fs.readFileSync(`${root}docs/PROTOCOL.md`, 'utf8');
  const m = doc.match(new RegExp(`name: ${name}\\nhex: ([0-9a-f ]+)\\n`));
  assert.ok(m, `vector ${name} not in docs/PROTOCOL.md`);
  return Uint8Array.from(Buffer.from(m[1].replace(/ /g, ''), 'hex'));
}

test('corrupt-upload inverts the payload of a Data message, not its header', () => {
  const data = vector('data-last-chunk'); // 12 00000009 00000001 00003c03 010203
  const [m, ...rest] = tamperOutgoing(['corrupt-upload'], data);
  assert.equal(rest.length, 0);
  assert.deepEqual([...m.subarray(0, 13)], [...data.subarray(0, 13)]);
  assert.deepEqual([...m.subarray(13)], [0xfe, 0xfd, 0xfc]);
  // Anything else passes unchanged.
  const have = vector('have');
  assert.deepEqual(tamperOutgoing(['corrupt-upload'], have), [have]);
});

test('corrupt-upload-subtle flips one byte mid TS packet, keeping sync bytes', () => {
  const head = vector('data').subarray(0, 13); // chunk 0
  const data = new Uint8Array(13 + 376);
  data.set(head);
  for (let i = 0; i < 376; i += 188) data[13 + i] = 0x47;
  const [m] = tamperOutgoing(['corrupt-upload-subtle'], data);
  const diff = [...m].flatMap((b, i) => (b !== data[i] ? [i] : []));
  assert.deepEqual(diff, [13 + 94]);
  assert.equal(m[13 + 94] ^ data[13 + 94], 0x01);
});

test('lie-have follows each Have with Haves for the next three segments', () => {
  const have = vector('have'); // Have { seq: 42, size: 4096 }
  const msgs = tamperOutgoing(['lie-have'], have);
  const view = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.deepEqual(msgs.map((b) => view(b).getBigUint64(1)), [42n, 43n, 44n, 45n]);
  for (const b of msgs) assert.deepEqual([b[0], ...b.subarray(9)], [have[0], ...have.subarray(9)]);
});

test('the engine wrapper: core-throws on the third request; every sendToPeer tampered', () => {
  const data = vector('data-last-chunk');
  const send = [{ type: 'sendToPeer', conn: 1, data }];
  class Engine {
    handleInput() { return send; }
    peerMessage() { return send; }
    httpProgress() { return send; }
    handleTimeout() { return send; }
    pollTimeout() { return 5; }
    peerId() { return 'ab'.repeat(20); }
    stats() { return { peers: 0 }; }
    free() {}
  }
  const base = { WasmEngine: Engine, deriveSwarmId: () => 'cd'.repeat(20) };
  assert.equal(withFaults(base, []), base, 'no faults: the module itself');
  const mod = withFaults(base, parseFaults(['core-throws', 'corrupt-upload', 'no-such-fault']));
  const e = new mod.WasmEngine({}, 0, 1);
  const req = { type: 'segmentRequested', req: 1, swarm: 'cd'.repeat(20), seq: 1, url: 'u' };
  const tampered = (outs) => outs.length === 1 && outs[0].data[13] === 0xfe;
  assert.ok(tampered(e.handleInput(0, req)));
  assert.ok(tampered(e.peerMessage(0, 1, new Uint8Array(1))));
  assert.ok(tampered(e.httpProgress(0, 1, new Uint8Array(1), null)));
  assert.ok(tampered(e.handleTimeout(0)));
  e.handleInput(0, req);
  assert.throws(() => e.handleInput(0, req), /test fault: core-throws/);
  assert.equal(e.pollTimeout(), 5);
  assert.equal(mod.deriveSwarmId('a', 'b'), 'cd'.repeat(20));
});

test('the production bundles have no fault injection', () => {
  const dist = `${root}js-shim/dist`;
  assert.ok(fs.existsSync(`${dist}/index.js`), 'js-shim/dist/index.js missing: run `npm run build` first');
  const files = fs
    .readdirSync(dist, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.js'));
  // The ESM entries, their shared chunks and the script-tag builds: every file a page loads.
  assert.ok(files.length >= 2, `expected the ESM and IIFE bundles in dist/, found ${files.join(', ')}`);
  for (const f of files) {
    const text = fs.readFileSync(`${dist}/${f}`, 'utf8');
    for (const s of ['testFault', '__shoalTestFault', 'core-throws', 'corrupt-upload', 'lie-have', 'tamper', 'test fault']) {
      assert.ok(!text.includes(s), `dist/${f} contains ${JSON.stringify(s)}`);
    }
  }
});
