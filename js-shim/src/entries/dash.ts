/**
 * `shoal-p2p/dash`: the dash.js entry alone (no hls.js adapter), for pages that ship one player.
 * Same classes as the package root, so `instanceof` holds across both imports.
 */
export { ShoalDash } from '../dashjs.js';
export { ShoalError } from '../errors.js';
export type {
  ShoalDashOptions,
  ShoalDashDiagnostics,
  DashPlayer,
  DashAdapterCounters,
  ShoalConfig,
  QoeMetrics,
  AdapterCounters,
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
