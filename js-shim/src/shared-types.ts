/** The public types every entry exports (the package root, `shoal-p2p/hls`, `shoal-p2p/dash`). */
export type { ShoalConfig } from './config.js';
export type { QoeMetrics } from './qoe.js';
export type { AdapterCounters } from './adapters/hlsjs.js';
export type { EngineConfig, CoreEvent, CoreStats, PeerStats, Hex40, BanReason } from './core-types.js';
export type { ShoalErrorCode } from './errors.js';
export type {
  ShoalStats,
  PeerEvent,
  BanEvent,
  ShoalEvents,
  ShoalEventName,
  ShoalPlayerOptions,
  PlayerDiagnostics,
} from './player-base.js';
