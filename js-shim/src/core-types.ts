// Plain-data shapes that cross the wasm boundary. They mirror crate/src/types.rs exactly
// (serde: camelCase, `type` tag on inputs/outputs, `kind` tag on events). Ids are numbers,
// swarm and peer ids are 40 lowercase hex digits, bytes are Uint8Array, times are ms on the
// host's clock (performance.now()-based, integers).

export type Hex40 = string;

export interface ByteRange {
  start: number;
  end: number; // exclusive
}

export type Container = 'ts' | 'fmp4' | 'unknown';

export interface SegmentInfo {
  seq: number;
  startMs: number;
  durationMs: number;
  url: string;
  range?: ByteRange | null;
}

/** Engine configuration; every field optional (Rust defaults apply). */
export interface EngineConfig {
  p2pEnabled?: boolean;
  maxPeers?: number;
  urgentWindowMs?: number;
  prefetchWindowMs?: number;
  maxHttp?: number;
  maxP2p?: number;
  peerStallTimeoutMs?: number;
  liveEdgeDelayMaxMs?: number;
  cacheBytes?: number;
  uploadSlots?: number;
  uploadBytesPerSec?: number;
  strikesToBan?: number;
  announceIntervalMs?: number;
  announceNumwant?: number;
  /** `ed25519:<base64>` key that must sign the integrity manifest (docs/MANIFEST.md). */
  integrityPublicKey?: string;
  /** Fraction of peer-delivered segments no manifest vouched for that is re-fetched from the CDN and compared (0 = off). */
  spotCheckRatio?: number;
}

export type CoreInput =
  | {
      type: 'playlist';
      swarm: Hex40;
      live: boolean;
      container?: Container;
      bitrate?: number;
      segments: SegmentInfo[];
    }
  | { type: 'playhead'; swarm: Hex40; positionMs: number; bufferedAheadMs: number; rate?: number }
  | {
      type: 'segmentRequested';
      req: number;
      swarm: Hex40;
      seq: number;
      url: string;
      range?: ByteRange | null;
    }
  | { type: 'segmentAborted'; req: number }
  | { type: 'peerCandidate'; conn: number; swarm: Hex40; peer: Hex40; inbound: boolean }
  | { type: 'peerConnected'; conn: number }
  | { type: 'peerMessage'; conn: number; data: Uint8Array }
  | { type: 'peerClosed'; conn: number }
  | { type: 'httpProgress'; id: number; data: Uint8Array; total?: number | null }
  | { type: 'httpDone'; id: number }
  | { type: 'httpFailed'; id: number; status: number; reason: string }
  | { type: 'integrityManifest'; data: Uint8Array }
  /** Runtime consent / upload policy (the app's `setP2P`, metered link, hidden page). */
  | { type: 'setPolicy'; p2pEnabled: boolean; uploadBytesPerSec: number }
  /** The tracker's count of other viewers in the swarm (announce answer). */
  | { type: 'swarmPeers'; swarm: Hex40; peers: number }
  | { type: 'httpSample'; bytes: number; ms: number }
  /** The host no longer needs the swarm (a DASH period that left the live window). */
  | { type: 'leaveSwarm'; swarm: Hex40 };

export type AnnounceEvent = 'started' | 'update' | 'stopped';
export type CloseReason = 'rejected' | 'banned' | 'tooManyPeers' | 'duplicate' | 'idle' | 'p2pDisabled' | 'swarmLeft';
export type BanReason = 'corruptData' | 'protocolViolation' | 'tooManyStrikes' | 'limitExceeded';

export interface DeliveryTiming {
  httpBytes: number;
  p2pBytes: number;
  transferStart: number;
  firstByte: number;
  transferEnd: number;
  fromCache: boolean;
}

export type CoreEvent =
  | { kind: 'peerJoined'; swarm: Hex40; peer: Hex40 }
  | { kind: 'peerLeft'; swarm: Hex40; peer: Hex40 }
  | { kind: 'peerBanned'; swarm: Hex40; peer: Hex40; reason: BanReason }
  | { kind: 'segmentLoaded'; swarm: Hex40; seq: number; httpBytes: number; p2pBytes: number }
  | { kind: 'verificationFailed'; swarm: Hex40; seq: number; peer: Hex40; detail: string }
  | { kind: 'manifestRejected'; detail: string }
  | { kind: 'warning'; detail: string }
  | { kind: 'cdnDegraded'; reason: string }
  | { kind: 'cdnRecovered' }
  | { kind: 'spotCheckFailed'; swarm: Hex40; seq: number; peers: Hex40[] };

export type CoreOutput =
  | { type: 'startHttp'; id: number; url: string; range: ByteRange | null }
  | { type: 'cancelHttp'; id: number }
  | { type: 'announce'; swarm: Hex40; event: AnnounceEvent; numwant: number }
  | { type: 'connectPeer'; conn: number }
  | { type: 'closePeer'; conn: number; reason: CloseReason }
  | { type: 'sendToPeer'; conn: number; data: Uint8Array }
  | { type: 'segmentProgress'; req: number; loaded: number; total: number | null }
  | { type: 'deliverSegment'; req: number; data: Uint8Array; timing: DeliveryTiming }
  | { type: 'failSegment'; req: number; reason: string }
  | ({ type: 'event' } & CoreEvent);

export interface PeerStats {
  peer: Hex40;
  swarm: Hex40;
  downBytes: number;
  upBytes: number;
  throughput: number;
  rttMs: number;
  strikes: number;
  score: number;
  /** Times a request to this peer was given up because it sent nothing. */
  stalls: number;
}

export interface CoreStats {
  httpDown: number;
  p2pDown: number;
  p2pUp: number;
  p2pDiscarded: number;
  segmentsHttp: number;
  segmentsP2p: number;
  peers: number;
  peersBanned: number;
  cacheBytes: number;
  perPeer: PeerStats[];
  /** The CDN path is failing or too slow (between cdnDegraded and cdnRecovered). */
  cdnDegraded: boolean;
  /** EWMA of HTTP time to first byte, ms (0 before the first). */
  httpTtfbMs: number;
  /** EWMA of peer-request time to first byte, ms (0 before the first). */
  p2pTtfbMs: number;
}

/**
 * The JS surface of crate/src/wasm.rs (`WasmEngine`), as generated by wasm-bindgen
 * (`--target web`, module `js-shim/wasm/shoal.js`). Every method throws a JS `Error` on a
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
 * Module exports of the wasm-bindgen output besides the default `init`:
 * - `class WasmEngine { constructor(config: EngineConfig, nowMs: number, seed: number) }`
 *   implementing `WasmEngineApi`;
 * - `deriveSwarmId(streamKey: string, renditionKey: string): Hex40`.
 */
export interface WasmModuleApi {
  WasmEngine: new (config: EngineConfig, nowMs: number, seed: number) => WasmEngineApi;
  deriveSwarmId(streamKey: string, renditionKey: string): Hex40;
}
