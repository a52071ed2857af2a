// The compact binary boundary with the wasm engine: the TypeScript half of
// crate/src/boundary.rs (its module comment has the layout). Inputs and the config are encoded
// here, outputs and stats decoded, so the engine carries no generic JS-object conversion.
// `fromGlue` turns the raw wasm-bindgen module into the object-level `WasmModuleApi` the
// driver (and engine doubles) speak.
//
// A field added to an `Input` variant is a type error in `encodeInput` (`none(rest)`) until
// it is encoded; an `Output` field is a type error in `decodeOutput` (object literals are
// checked against the generated types).
import type {
  AnnounceEvent,
  BanReason,
  ByteRange,
  CloseReason,
  Container,
  CoreEvent,
  CoreInput,
  CoreOutput,
  CoreStats,
  EngineConfig,
  InboundOffers,
  PeerStats,
  WasmEngineApi,
  WasmModuleApi,
} from './core-types.js';

/** The surface crate/src/wasm.rs exports (wasm-bindgen `--target web`). */
export interface RawEngine {
  handleInput(nowMs: number, input: Uint8Array): unknown[];
  peerMessage(nowMs: number, conn: number, data: Uint8Array): unknown[];
  httpProgress(nowMs: number, id: number, data: Uint8Array, total?: number | null): unknown[];
  handleTimeout(nowMs: number): unknown[];
  pollTimeout(): number | undefined;
  peerId(): string;
  stats(): Uint8Array;
  free(): void;
}

export interface RawModule {
  WasmEngine: new (config: Uint8Array, nowMs: number, seed: number) => RawEngine;
  deriveSwarmId(streamKey: string, renditionKey: string): string;
}

// Enum variants in declaration order (the tag is the index). `satisfies` plus the `Covers`
// checks make a variant missing here a type error.
const CONTAINERS = ['ts', 'fmp4', 'unknown'] as const satisfies readonly Container[];
const ANNOUNCE_EVENTS = ['started', 'update', 'stopped'] as const satisfies readonly AnnounceEvent[];
const INBOUND = ['answer', 'queue', 'ignore'] as const satisfies readonly InboundOffers[];
const CLOSE_REASONS = [
  'rejected',
  'banned',
  'tooManyPeers',
  'duplicate',
  'idle',
  'p2pDisabled',
  'swarmLeft',
] as const satisfies readonly CloseReason[];
const BAN_REASONS = ['corruptData', 'protocolViolation', 'tooManyStrikes', 'limitExceeded'] as const satisfies readonly BanReason[];
type Covers<T, L extends readonly unknown[]> = [T] extends [L[number]] ? true : never;
const covered: [
  Covers<Container, typeof CONTAINERS>,
  Covers<AnnounceEvent, typeof ANNOUNCE_EVENTS>,
  Covers<InboundOffers, typeof INBOUND>,
  Covers<CloseReason, typeof CLOSE_REASONS>,
  Covers<BanReason, typeof BAN_REASONS>,
] = [true, true, true, true, true];
void covered;

const utf8Out = new TextEncoder();
const utf8In = new TextDecoder();

/** A value that is not of the shape the engine takes (thrown before anything reaches it). */
function bad(what: string): never {
  throw new TypeError(`invalid Shoal input: ${what}`);
}

/** Compile-time only: every field of the variant was taken out before `rest`. */
function none(_rest: Record<string, never>): void {}

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private n = 0;

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.n++] = v;
  }
  /** Every number crosses as an f64; the engine refuses a wrong one (negative, fractional...). */
  num(v: number): void {
    if (typeof v !== 'number') bad(`expected a number, got ${typeof v}`);
    this.room(8);
    this.view.setFloat64(this.n, v, true);
    this.n += 8;
  }
  len(v: number): void {
    this.room(4);
    this.view.setUint32(this.n, v, true);
    this.n += 4;
  }
  bool(v: boolean): void {
    if (typeof v !== 'boolean') bad(`expected a boolean, got ${typeof v}`);
    this.u8(v ? 1 : 0);
  }
  bytes(v: Uint8Array): void {
    if (!(v instanceof Uint8Array)) bad('expected a Uint8Array');
    this.len(v.length);
    this.room(v.length);
    this.buf.set(v, this.n);
    this.n += v.length;
  }
  str(v: string): void {
    if (typeof v !== 'string') bad(`expected a string, got ${typeof v}`);
    this.bytes(utf8Out.encode(v));
  }
  opt<T>(v: T | null | undefined, f: (v: T) => void): void {
    if (v === null || v === undefined) {
      this.u8(0);
    } else {
      this.u8(1);
      f(v);
    }
  }
  range(r: ByteRange | null | undefined): void {
    this.opt(r, (r) => {
      this.num(r.start);
      this.num(r.end);
    });
  }
  tag<T>(all: readonly T[], v: T): void {
    const i = all.indexOf(v);
    if (i < 0) bad(`unknown value ${String(v)}`);
    this.u8(i);
  }
  done(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}

/** Encodes one input (crate/src/boundary.rs `decode_input`). Throws on a malformed one. */
export function encodeInput(input: CoreInput): Uint8Array {
  if (typeof input !== 'object' || input === null) bad('expected an object with a `type` field');
  const w = new Writer();
  switch (input.type) {
    case 'playlist': {
      const { type: _type, swarm, live, container, bitrate, segments, ...rest } = input;
      none(rest);
      w.u8(0);
      w.str(swarm);
      w.bool(live);
      w.tag(CONTAINERS, container ?? 'unknown');
      w.num(bitrate ?? 0);
      if (!Array.isArray(segments)) bad('expected `segments` to be an array');
      w.len(segments.length);
      for (const s of segments) {
        const { seq, startMs, durationMs, url, range, ...more } = s;
        none(more);
        w.num(seq);
        w.num(startMs);
        w.num(durationMs);
        w.str(url);
        w.range(range);
      }
      return w.done();
    }
    case 'playhead': {
      const { type: _type, swarm, positionMs, bufferedAheadMs, rate, ...rest } = input;
      none(rest);
      w.u8(1);
      w.str(swarm);
      w.num(positionMs);
      w.num(bufferedAheadMs);
      w.num(rate ?? 1);
      return w.done();
    }
    case 'segmentRequested': {
      const { type: _type, req, swarm, seq, url, range, timeoutMs, ...rest } = input;
      none(rest);
      w.u8(2);
      w.num(req);
      w.str(swarm);
      w.num(seq);
      w.str(url);
      w.range(range);
      w.opt(timeoutMs, (t) => w.num(t));
      return w.done();
    }
    case 'segmentAborted': {
      const { type: _type, req, ...rest } = input;
      none(rest);
      w.u8(3);
      w.num(req);
      return w.done();
    }
    case 'peerCandidate': {
      const { type: _type, conn, swarm, peer, inbound, ...rest } = input;
      none(rest);
      w.u8(4);
      w.num(conn);
      w.str(swarm);
      w.str(peer);
      w.bool(inbound);
      return w.done();
    }
    case 'peerConnected': {
      const { type: _type, conn, ...rest } = input;
      none(rest);
      w.u8(5);
      w.num(conn);
      return w.done();
    }
    case 'peerMessage': {
      const { type: _type, conn, data, ...rest } = input;
      none(rest);
      w.u8(6);
      w.num(conn);
      w.bytes(data);
      return w.done();
    }
    case 'peerClosed': {
      const { type: _type, conn, ...rest } = input;
      none(rest);
      w.u8(7);
      w.num(conn);
      return w.done();
    }
    case 'httpProgress': {
      const { type: _type, id, data, total, ...rest } = input;
      none(rest);
      w.u8(8);
      w.num(id);
      w.bytes(data);
      w.opt(total, (t) => w.num(t));
      return w.done();
    }
    case 'httpDone': {
      const { type: _type, id, ...rest } = input;
      none(rest);
      w.u8(9);
      w.num(id);
      return w.done();
    }
    case 'httpFailed': {
      const { type: _type, id, status, reason, ...rest } = input;
      none(rest);
      w.u8(10);
      w.num(id);
      w.num(status);
      w.str(reason);
      return w.done();
    }
    case 'integrityManifest': {
      const { type: _type, data, ...rest } = input;
      none(rest);
      w.u8(11);
      w.bytes(data);
      return w.done();
    }
    case 'setPolicy': {
      const { type: _type, p2pEnabled, uploadBytesPerSec, ...rest } = input;
      none(rest);
      w.u8(12);
      w.bool(p2pEnabled);
      w.num(uploadBytesPerSec);
      return w.done();
    }
    case 'swarmPeers': {
      const { type: _type, swarm, peers, ...rest } = input;
      none(rest);
      w.u8(13);
      w.str(swarm);
      w.num(peers);
      return w.done();
    }
    case 'httpSample': {
      const { type: _type, bytes, ms, ...rest } = input;
      none(rest);
      w.u8(14);
      w.num(bytes);
      w.num(ms);
      return w.done();
    }
    case 'leaveSwarm': {
      const { type: _type, swarm, ...rest } = input;
      none(rest);
      w.u8(15);
      w.str(swarm);
      return w.done();
    }
    case 'playerStarted': {
      const { type: _type, ...rest } = input;
      none(rest);
      w.u8(16);
      return w.done();
    }
    default: {
      const unknown: never = input;
      return bad(`unknown input type ${String((unknown as { type?: unknown }).type)}`);
    }
  }
}

/**
 * Encodes a partial config as records (crate/src/boundary.rs `decode_config`): fields left
 * `undefined` are not sent; the engine refuses unknown names and wrong types, naming them.
 */
export function encodeConfig(config: EngineConfig | null | undefined): Uint8Array {
  const w = new Writer();
  if (config === null || config === undefined) return w.done();
  if (typeof config !== 'object' || Array.isArray(config)) throw new TypeError('invalid Shoal config: expected an object');
  for (const [name, v] of Object.entries(config) as [string, unknown][]) {
    if (v === undefined) continue;
    w.str(name);
    if (v === null) {
      w.u8(0);
    } else if (typeof v === 'boolean') {
      w.u8(1);
      w.bool(v);
    } else if (typeof v === 'number') {
      w.u8(2);
      w.num(v);
    } else if (typeof v === 'string') {
      w.u8(3);
      w.str(v);
    } else {
      throw new TypeError(`invalid Shoal config field \`${name}\`: expected a boolean, number, string or null`);
    }
  }
  return w.done();
}

class Reader {
  private readonly view: DataView;
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  more(): boolean {
    return this.pos < this.buf.length;
  }
  u8(): number {
    return this.view.getUint8(this.pos++);
  }
  num(): number {
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  len(): number {
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  bool(): boolean {
    return this.u8() === 1;
  }
  str(): string {
    const n = this.len();
    const s = utf8In.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  opt<T>(f: () => T): T | null {
    return this.bool() ? f() : null;
  }
  range(): ByteRange | null {
    return this.opt(() => ({ start: this.num(), end: this.num() }));
  }
  tag<T>(all: readonly T[]): T {
    const v = all[this.u8()];
    if (v === undefined) throw new Error('Shoal engine output: unknown enum tag');
    return v;
  }
}

function decodeEvent(r: Reader): CoreEvent {
  switch (r.u8()) {
    case 0:
      return { kind: 'peerJoined', swarm: r.str(), peer: r.str() };
    case 1:
      return { kind: 'peerLeft', swarm: r.str(), peer: r.str() };
    case 2:
      return { kind: 'peerBanned', swarm: r.str(), peer: r.str(), reason: r.tag(BAN_REASONS) };
    case 3:
      return { kind: 'segmentLoaded', swarm: r.str(), seq: r.num(), httpBytes: r.num(), p2pBytes: r.num() };
    case 4:
      return { kind: 'verificationFailed', swarm: r.str(), seq: r.num(), peer: r.str(), detail: r.str() };
    case 5:
      return { kind: 'manifestRejected', detail: r.str() };
    case 6:
      return { kind: 'warning', detail: r.str() };
    case 7:
      return { kind: 'cdnDegraded', reason: r.str() };
    case 8:
      return { kind: 'cdnRecovered' };
    case 9: {
      const swarm = r.str();
      const seq = r.num();
      const peers: string[] = [];
      for (let n = r.len(); n > 0; n--) peers.push(r.str());
      return { kind: 'spotCheckFailed', swarm, seq, peers };
    }
    default:
      throw new Error('Shoal engine output: unknown event kind');
  }
}

function payload(raw: unknown[], i: number): Uint8Array {
  const p = raw[i];
  if (!(p instanceof Uint8Array)) throw new Error('Shoal engine output: missing payload');
  return p;
}

/** Decodes what a raw engine call returned: `[stream, ...payloads]` (crate/src/wasm.rs `drain`). */
export function decodeOutputs(raw: unknown[]): CoreOutput[] {
  const stream = raw[0];
  if (!(stream instanceof Uint8Array)) throw new Error('Shoal engine output: expected the output stream');
  const r = new Reader(stream);
  let p = 1;
  const out: CoreOutput[] = [];
  while (r.more()) out.push(decodeOutput(r, () => payload(raw, p++)));
  return out;
}

function decodeOutput(r: Reader, next: () => Uint8Array): CoreOutput {
  switch (r.u8()) {
    case 0:
      return { type: 'startHttp', id: r.num(), url: r.str(), range: r.range() };
    case 1:
      return { type: 'cancelHttp', id: r.num() };
    case 2:
      return {
        type: 'announce',
        swarm: r.str(),
        event: r.tag(ANNOUNCE_EVENTS),
        numwant: r.num(),
        offers: r.num(),
        inbound: r.tag(INBOUND),
        queueMax: r.num(),
        queueMaxAgeMs: r.num(),
      };
    case 3:
      return { type: 'connectPeer', conn: r.num() };
    case 4:
      return { type: 'closePeer', conn: r.num(), reason: r.tag(CLOSE_REASONS) };
    case 5:
      return { type: 'sendToPeer', conn: r.num(), data: next() };
    case 6:
      return { type: 'segmentProgress', req: r.num(), loaded: r.num(), total: r.opt(() => r.num()) };
    case 7:
      return {
        type: 'deliverSegment',
        req: r.num(),
        data: next(),
        timing: {
          httpBytes: r.num(),
          p2pBytes: r.num(),
          transferStart: r.num(),
          firstByte: r.num(),
          transferEnd: r.num(),
          fromCache: r.bool(),
        },
      };
    case 8:
      return { type: 'failSegment', req: r.num(), reason: r.str() };
    case 9:
      return { type: 'event', ...decodeEvent(r) };
    default:
      throw new Error('Shoal engine output: unknown output type');
  }
}

/** Decodes `stats()` (crate/src/boundary.rs `encode_stats`). */
export function decodeStats(buf: Uint8Array): CoreStats {
  const r = new Reader(buf);
  const httpDown = r.num();
  const p2pDown = r.num();
  const p2pUp = r.num();
  const p2pDiscarded = r.num();
  const segmentsHttp = r.num();
  const segmentsP2p = r.num();
  const peers = r.num();
  const peersBanned = r.num();
  const cacheBytes = r.num();
  const perPeer: PeerStats[] = [];
  for (let n = r.len(); n > 0; n--) {
    perPeer.push({
      peer: r.str(),
      swarm: r.str(),
      downBytes: r.num(),
      upBytes: r.num(),
      throughput: r.num(),
      rttMs: r.num(),
      strikes: r.num(),
      score: r.num(),
      stalls: r.num(),
    });
  }
  return {
    httpDown,
    p2pDown,
    p2pUp,
    p2pDiscarded,
    segmentsHttp,
    segmentsP2p,
    peers,
    peersBanned,
    cacheBytes,
    perPeer,
    cdnDegraded: r.bool(),
    httpTtfbMs: r.num(),
    p2pTtfbMs: r.num(),
  };
}

/** The object-level engine over a raw one. */
class BinaryEngine implements WasmEngineApi {
  private readonly raw: RawEngine;
  constructor(mod: RawModule, config: EngineConfig, nowMs: number, seed: number) {
    this.raw = new mod.WasmEngine(encodeConfig(config), nowMs, seed);
  }
  handleInput(nowMs: number, input: CoreInput): CoreOutput[] {
    return decodeOutputs(this.raw.handleInput(nowMs, encodeInput(input)));
  }
  peerMessage(nowMs: number, conn: number, data: Uint8Array): CoreOutput[] {
    return decodeOutputs(this.raw.peerMessage(nowMs, conn, data));
  }
  httpProgress(nowMs: number, id: number, data: Uint8Array, total?: number | null): CoreOutput[] {
    return decodeOutputs(this.raw.httpProgress(nowMs, id, data, total));
  }
  handleTimeout(nowMs: number): CoreOutput[] {
    return decodeOutputs(this.raw.handleTimeout(nowMs));
  }
  pollTimeout(): number | undefined {
    return this.raw.pollTimeout();
  }
  peerId(): string {
    return this.raw.peerId();
  }
  stats(): CoreStats {
    return decodeStats(this.raw.stats());
  }
  free(): void {
    this.raw.free();
  }
}

/** The object-level module (`WasmModuleApi`) over the wasm-bindgen output of crate/src/wasm.rs. */
export function fromGlue(mod: RawModule): WasmModuleApi {
  return {
    WasmEngine: class extends BinaryEngine {
      constructor(config: EngineConfig, nowMs: number, seed: number) {
        super(mod, config, nowMs, seed);
      }
    },
    deriveSwarmId: (a, b) => mod.deriveSwarmId(a, b),
  };
}
