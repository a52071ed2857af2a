/**
 * Public configuration and the mapping to the engine's configuration. Policy knobs go to the
 * Rust engine unchanged; the shim only interprets the switches that decide which I/O exists.
 */
import { DEFAULT_CONFIG, type EngineConfig, type WasmModuleApi } from './core-types.js';

export interface ShoalConfig {
  /** WebTorrent WebSocket tracker URLs (`wss://…`). No trackers means no P2P. */
  trackers?: string[];
  /** ICE servers for RTCPeerConnection (STUN/TURN). Default: none (host candidates only). */
  iceServers?: RTCIceServer[];
  /**
   * `'relay'` hides this viewer's IP addresses from peers: only candidates of the TURN servers
   * in `iceServers` are used. Default `'all'`.
   */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /**
   * Consent switch (bind it to the viewer's consent). When false no RTCPeerConnection is
   * created and no tracker is contacted: every segment is fetched over HTTP. Change it at run
   * time with `setP2P()`. Default true.
   */
  p2p?: boolean;
  /**
   * Fewest other viewers the tracker must report in a swarm (its `complete + incomplete`,
   * minus this viewer) before any peer connection is made. Until then announces carry no
   * offers and offers from others are not answered. Default 0 (no minimum).
   */
  minSwarmSize?: number;
  /** Upload while `document.hidden` (tab in the background). Default true. */
  uploadWhenHidden?: boolean;
  /**
   * `ed25519:<base64>` public key that must have signed the integrity manifest
   * (docs/MANIFEST.md "Signatures"). Without it a manifest is used unsigned.
   */
  integrityPublicKey?: string;
  /** Stream key shared by all viewers of the same stream; default: master playlist URL without query. */
  swarmId?: string;
  /** Byte budget of the segment cache. */
  cacheBytes?: number;
  /**
   * Upload budget in bytes/s (0 = never upload). Forced to 0 while
   * `navigator.connection.saveData` is true, after `setMetered(true)`, and while the page is
   * hidden if `uploadWhenHidden` is false.
   */
  uploadBytesPerSec?: number;
  /** Segments closer than this to the playhead come over HTTP unless a peer is fast enough. */
  urgentWindowMs?: number;
  /** How far ahead of the playhead the engine fetches from peers. */
  prefetchWindowMs?: number;
  /** Live: upper bound of the random wait before fetching a new live-edge segment over HTTP. */
  liveEdgeDelayMaxMs?: number;
  /** Connected peers per swarm. */
  maxPeers?: number;
  /**
   * URL of the integrity manifest (hashes/signatures of the segments). Fetched once for VOD;
   * for live it is fetched again on each refresh of a live media playlist.
   */
  integrityManifestUrl?: string;
  /**
   * Spot checks without a manifest: this fraction (0..1) of the segments peers delivered is
   * fetched again from the CDN after delivery and compared chunk by chunk; the peers that sent
   * chunks that differ are banned (`spotCheckFailed` event). Default 0.02; 0 disables.
   */
  spotCheckRatio?: number;
  /** Where to fetch `shoal_bg.wasm` from (default: next to the package's `wasm/shoal.js`). */
  wasmUrl?: string | URL;
  /** From accepting a peer to an open data channel. Default 10000. */
  peerConnectTimeoutMs?: number;
  /** Raw engine configuration; fields here override the ones above. */
  core?: EngineConfig;
  /**
   * Advanced: an already initialised engine module (a custom build, or a test double).
   * When absent the bundled wasm is loaded.
   */
  engineModule?: WasmModuleApi | (() => Promise<WasmModuleApi>);
}

export interface ResolvedConfig {
  trackers: string[];
  iceServers: RTCIceServer[];
  iceTransportPolicy: RTCIceTransportPolicy;
  /** Initial consent (the app may change it with `setP2P`). */
  p2p: boolean;
  /** P2P is possible at all: trackers configured and not disabled in `core`. */
  p2pCapable: boolean;
  /** The app's upload budget; the engine's default when absent. */
  uploadBytesPerSec: number;
  uploadWhenHidden: boolean;
  swarmId: string | undefined;
  integrityManifestUrl: string | undefined;
  wasmUrl: string | URL | undefined;
  peerConnectTimeoutMs: number;
  engine: EngineConfig;
  engineModule: ShoalConfig['engineModule'];
}

function nonNegative(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite number >= 0`);
  return Math.round(v);
}

export function resolveConfig(cfg: ShoalConfig = {}): ResolvedConfig {
  const trackers = (cfg.trackers ?? []).filter((t) => typeof t === 'string' && t.length > 0);
  const p2pCapable = trackers.length > 0 && cfg.core?.p2pEnabled !== false;
  const p2p = cfg.p2p !== false && p2pCapable;
  const engine: EngineConfig = {};
  const set = <K extends keyof EngineConfig>(k: K, v: EngineConfig[K] | undefined) => {
    if (v !== undefined) engine[k] = v;
  };
  set('maxPeers', nonNegative('maxPeers', cfg.maxPeers));
  set('cacheBytes', nonNegative('cacheBytes', cfg.cacheBytes));
  set('uploadBytesPerSec', nonNegative('uploadBytesPerSec', cfg.uploadBytesPerSec));
  set('urgentWindowMs', nonNegative('urgentWindowMs', cfg.urgentWindowMs));
  set('prefetchWindowMs', nonNegative('prefetchWindowMs', cfg.prefetchWindowMs));
  set('liveEdgeDelayMaxMs', nonNegative('liveEdgeDelayMaxMs', cfg.liveEdgeDelayMaxMs));
  set('minSwarmSize', nonNegative('minSwarmSize', cfg.minSwarmSize));
  if (cfg.spotCheckRatio !== undefined) {
    if (!Number.isFinite(cfg.spotCheckRatio) || cfg.spotCheckRatio < 0 || cfg.spotCheckRatio > 1) {
      throw new RangeError('spotCheckRatio must be a number in [0, 1]');
    }
    engine.spotCheckRatio = cfg.spotCheckRatio;
  }
  if (cfg.integrityPublicKey !== undefined) {
    if (typeof cfg.integrityPublicKey !== 'string' || !cfg.integrityPublicKey.startsWith('ed25519:')) {
      throw new RangeError('integrityPublicKey must be "ed25519:<base64>"');
    }
    engine.integrityPublicKey = cfg.integrityPublicKey;
  }
  Object.assign(engine, cfg.core ?? {});
  // The consent switch wins over any engine override. An engine built with P2P off can only be
  // switched on at run time through `setPolicy`; one built with it on is gated by the driver too.
  engine.p2pEnabled = p2p;
  const uploadBytesPerSec = engine.uploadBytesPerSec ?? DEFAULT_CONFIG.uploadBytesPerSec;
  return {
    trackers,
    iceServers: cfg.iceServers ?? [],
    iceTransportPolicy: cfg.iceTransportPolicy === 'relay' ? 'relay' : 'all',
    p2p,
    p2pCapable,
    uploadBytesPerSec,
    uploadWhenHidden: cfg.uploadWhenHidden !== false,
    swarmId: cfg.swarmId,
    integrityManifestUrl: cfg.integrityManifestUrl,
    wasmUrl: cfg.wasmUrl,
    peerConnectTimeoutMs: nonNegative('peerConnectTimeoutMs', cfg.peerConnectTimeoutMs) ?? 10_000,
    engine,
    engineModule: cfg.engineModule,
  };
}
