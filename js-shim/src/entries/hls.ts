/**
 * `shoal-p2p/hls`: the hls.js entry alone (no dash.js adapter), for pages that ship one player.
 * Same classes as the package root, so `instanceof` holds across both imports.
 */
export { ShoalHls } from '../hlsjs.js';
export { ShoalError } from '../errors.js';
export type {
  ShoalHlsOptions,
  ShoalDiagnostics,
  ShoalConfig,
  QoeMetrics,
  AbrTiming,
  AdapterCounters,
  HlsAdapterCounters,
  EngineConfig,
  CoreEvent,
  CoreStats,
  PeerStats,
  Hex40,
  BanReason,
  ShoalErrorCode,
  ShoalStats,
  PeerEvent,
  BanEvent,
  ShoalEvents,
  ShoalEventName,
  ShoalPlayerOptions,
  PlayerDiagnostics,
} from '../index.js';
