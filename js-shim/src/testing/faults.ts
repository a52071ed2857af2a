/**
 * Test build only (bundled by build.mjs to `js-shim/dist-test/faults.js`, never into
 * `dist/index.js`): fault injection for the fail-open tests, the attack tests and the bench's
 * poisoners. It wraps an engine module, and a page that wants a fault passes the result as
 * `engineModule`; the shim itself knows nothing of faults.
 *
 * - `'core-throws'`: the engine throws on the third segment request (fail-open tests).
 * - `'corrupt-upload'`: every `Data` message this viewer sends has its payload inverted
 *   (structurally broken).
 * - `'corrupt-upload-subtle'`: one byte inside a TS packet per chunk is flipped (passes the
 *   structural checks; only a manifest or a spot check catches it).
 * - `'lie-have'`: each `Have` it sends is followed by `Have`s for the next three segments,
 *   which it does not have.
 * A list combines them (e.g. a corrupter that also lies). Wire offsets come from `WIRE`,
 * generated from crate/src/wire.
 */
import type { CoreInput, CoreOutput, EngineConfig, WasmEngineApi, WasmModuleApi } from '../core-types.js';
import { WIRE } from '../generated/core.js';
import { fromGlue, type RawModule } from '../boundary.js';

export type TestFault = 'core-throws' | 'corrupt-upload' | 'corrupt-upload-subtle' | 'lie-have';
export const TEST_FAULTS: readonly TestFault[] = ['core-throws', 'corrupt-upload', 'corrupt-upload-subtle', 'lie-have'];

const TS_PACKET = 188;

/** The known faults in `faults` (a name or a list; anything else is dropped). */
export function parseFaults(faults: unknown): TestFault[] {
  const list: unknown[] = Array.isArray(faults) ? faults : faults === undefined ? [] : [faults];
  return list.filter((f): f is TestFault => TEST_FAULTS.includes(f as TestFault));
}

/** What a malicious peer would send instead of `data` (one message, or several). */
export function tamperOutgoing(faults: readonly TestFault[], data: Uint8Array): Uint8Array[] {
  const corrupt = faults.includes('corrupt-upload') ? 'corrupt-upload' : faults.includes('corrupt-upload-subtle') ? 'corrupt-upload-subtle' : null;
  if (corrupt) {
    if (data.length <= WIRE.DATA_HEADER_LEN || data[0] !== WIRE.DATA) return [data];
    const out = data.slice();
    if (corrupt === 'corrupt-upload') {
      for (let i = WIRE.DATA_HEADER_LEN; i < out.length; i++) out[i] = (out[i] ?? 0) ^ 0xff;
      return [out];
    }
    // One byte in the middle of a TS packet: sync bytes (every 188 bytes of the segment) stay.
    const chunk = new DataView(out.buffer, out.byteOffset, out.byteLength).getUint32(WIRE.DATA_CHUNK_OFFSET);
    const start = (chunk * WIRE.CHUNK_SIZE) % TS_PACKET;
    const i = WIRE.DATA_HEADER_LEN + ((TS_PACKET - start + TS_PACKET / 2) % TS_PACKET);
    if (i < out.length) out[i] = (out[i] ?? 0) ^ 0x01;
    return [out];
  }
  if (faults.includes('lie-have') && data.length === WIRE.HAVE_LEN && data[0] === WIRE.HAVE) {
    const seq = new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(WIRE.HAVE_SEQ_OFFSET);
    const lies = [1n, 2n, 3n].map((k) => {
      const m = data.slice();
      new DataView(m.buffer).setBigUint64(WIRE.HAVE_SEQ_OFFSET, seq + k);
      return m;
    });
    return [data, ...lies];
  }
  return [data];
}

/** `mod` whose engines carry `faults`; `mod` itself when there are none. */
export function withFaults(mod: WasmModuleApi, faults: readonly TestFault[]): WasmModuleApi {
  if (faults.length === 0) return mod;
  const throws = faults.includes('core-throws');
  const tampers = faults.some((f) => f !== 'core-throws');
  const tamper = (outs: CoreOutput[]): CoreOutput[] =>
    !tampers
      ? outs
      : outs.flatMap((o): CoreOutput[] => (o.type === 'sendToPeer' ? tamperOutgoing(faults, o.data).map((data) => ({ ...o, data })) : [o]));
  class FaultyEngine implements WasmEngineApi {
    private readonly inner: WasmEngineApi;
    private requests = 0;
    constructor(config: EngineConfig, nowMs: number, seed: number) {
      this.inner = new mod.WasmEngine(config, nowMs, seed);
    }
    handleInput(nowMs: number, input: CoreInput): CoreOutput[] {
      if (throws && input.type === 'segmentRequested' && ++this.requests >= 3) throw new Error('test fault: core-throws');
      return tamper(this.inner.handleInput(nowMs, input));
    }
    peerMessage(nowMs: number, conn: number, data: Uint8Array): CoreOutput[] {
      const outs =
        typeof this.inner.peerMessage === 'function'
          ? this.inner.peerMessage(nowMs, conn, data)
          : this.inner.handleInput(nowMs, { type: 'peerMessage', conn, data });
      return tamper(outs);
    }
    httpProgress(nowMs: number, id: number, data: Uint8Array, total?: number | null): CoreOutput[] {
      const outs =
        typeof this.inner.httpProgress === 'function'
          ? this.inner.httpProgress(nowMs, id, data, total)
          : this.inner.handleInput(nowMs, { type: 'httpProgress', id, data, total: total ?? null });
      return tamper(outs);
    }
    handleTimeout(nowMs: number): CoreOutput[] {
      return tamper(this.inner.handleTimeout(nowMs));
    }
    pollTimeout(): number | undefined {
      return this.inner.pollTimeout();
    }
    peerId(): string {
      return this.inner.peerId();
    }
    stats(): ReturnType<WasmEngineApi['stats']> {
      return this.inner.stats();
    }
    free(): void {
      this.inner.free();
    }
  }
  return { WasmEngine: FaultyEngine, deriveSwarmId: (a, b) => mod.deriveSwarmId(a, b) };
}

interface WasmGlue extends RawModule {
  default: (opts?: { module_or_path: string | URL }) => Promise<unknown>;
}

/**
 * An `engineModule` for `ShoalConfig`: `base` (an engine double), else the built wasm engine
 * next to the package bundle (`../dist/wasm/shoal.js` from this file), wrapped with `faults`.
 */
export function faultyEngineModule(faults: unknown, base?: WasmModuleApi): () => Promise<WasmModuleApi> {
  const list = parseFaults(faults);
  return async () => {
    if (base) return withFaults(base, list);
    const glue = (await import(/* @vite-ignore */ new URL('../dist/wasm/shoal.js', import.meta.url).href)) as WasmGlue;
    await glue.default();
    return withFaults(fromGlue(glue), list);
  };
}
