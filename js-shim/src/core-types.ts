// Plain-data shapes that cross the wasm boundary. The data types are generated from
// crate/src/types.rs (generated/core.ts, `cargo run --features ts --bin shoal-ts`) and only
// renamed here; the engine's JS surface below is wasm-bindgen's (crate/src/wasm.rs). Ids are
// numbers, swarm and peer ids are 40 lowercase hex digits, bytes are Uint8Array, times are ms
// on the host's clock (performance.now()-based, integers).
import type { Config, Event, Input, Output, Stats } from './generated/core.js';

export type {
  AnnounceEvent,
  BanReason,
  ByteRange,
  CloseReason,
  Container,
  DeliveryTiming,
  InboundOffers,
  PeerStats,
  SegmentInfo,
} from './generated/core.js';
export { DEFAULT_CONFIG } from './generated/core.js';

/** A swarm or peer id: 40 lowercase hex digits. */
export type Hex40 = string;
/** Engine configuration as the shim passes it: every field optional (`DEFAULT_CONFIG` applies). */
export type EngineConfig = Partial<Config>;
export type CoreInput = Input;
export type CoreOutput = Output;
export type CoreEvent = Event;
export type CoreStats = Stats;

/**
 * The object-level surface of the engine: crate/src/wasm.rs (`WasmEngine`, wasm-bindgen
 * `--target web`, module `js-shim/wasm/shoal.js`) seen through js-shim/src/boundary.ts, which
 * encodes inputs and config and decodes outputs and stats. Every method throws a JS `Error` on a
 * malformed argument (bad input object, non-finite or negative time) and leaves the engine
 * unchanged; the constructor throws on a config field of the wrong type or an unknown field.
 */
export interface WasmEngineApi {
  /** Returns the outputs drained after the input. */
  handleInput(nowMs: number, input: CoreInput): CoreOutput[];
  /** Fast path for `handleInput(nowMs, {type: 'peerMessage', conn, data})`. */
  peerMessage(nowMs: number, conn: number, data: Uint8Array): CoreOutput[];
  /** Fast path for `handleInput(nowMs, {type: 'httpProgress', id, data, total})`. */
  httpProgress(nowMs: number, id: number, data: Uint8Array, total?: number | null): CoreOutput[];
  /** Call at pollTimeout(); returns drained outputs. */
  handleTimeout(nowMs: number): CoreOutput[];
  /** Next time (host ms) the engine wants handleTimeout, or undefined. */
  pollTimeout(): number | undefined;
  /** This engine's peer id (40 hex); the tracker `peer_id` must be this. */
  peerId(): Hex40;
  stats(): CoreStats;
  free(): void;
}

/**
 * An engine module as the driver takes it (`engineModule`; the bundled wasm through
 * `fromGlue` of js-shim/src/boundary.ts):
 * - `class WasmEngine { constructor(config: EngineConfig, nowMs: number, seed: number) }`
 *   implementing `WasmEngineApi`;
 * - `deriveSwarmId(streamKey: string, renditionKey: string): Hex40`.
 */
export interface WasmModuleApi {
  WasmEngine: new (config: EngineConfig, nowMs: number, seed: number) => WasmEngineApi;
  deriveSwarmId(streamKey: string, renditionKey: string): Hex40;
}
