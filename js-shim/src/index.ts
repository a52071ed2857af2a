/**
 * shoal-p2p: peer-assisted HLS for hls.js.
 *
 * ```ts
 * const shoal = new ShoalHls({ trackers: ['wss://tracker.example'] });
 * const hls = new Hls(shoal.hlsConfig({ maxBufferLength: 30 }));
 * shoal.attach(hls);
 * hls.loadSource(url); hls.attachMedia(video);
 * ```
 */
import type Hls from 'hls.js';
import type { FragmentLoaderConstructor, HlsConfig } from 'hls.js';
import { ShoalError } from './errors.js';
import { HlsAdapter, type AbrTiming, type HlsAdapterCounters } from './adapters/hlsjs.js';
import { watchHls } from './qoe.js';
import { ShoalPlayerBase, type PlayerDiagnostics, type ShoalPlayerOptions } from './player-base.js';

export type { ShoalConfig } from './config.js';
export type { QoeMetrics } from './qoe.js';
export type { AbrTiming, AdapterCounters, HlsAdapterCounters } from './adapters/hlsjs.js';
export type {
  EngineConfig,
  CoreEvent,
  CoreStats,
  PeerStats,
  Hex40,
  BanReason,
  WasmModuleApi,
  WasmEngineApi,
} from './core-types.js';
export { ShoalError, type ShoalErrorCode } from './errors.js';
export type {
  ShoalStats,
  PeerEvent,
  BanEvent,
  ShoalEvents,
  ShoalEventName,
  ShoalPlayerOptions,
  PlayerDiagnostics,
} from './player-base.js';

export interface ShoalHlsOptions extends ShoalPlayerOptions {
  /** How delivered segments' timing is reported to hls.js's ABR. Default `'transfer'`. */
  abrTiming?: AbrTiming;
}

export interface ShoalDiagnostics extends PlayerDiagnostics<HlsAdapterCounters> {}

export class ShoalHls extends ShoalPlayerBase<HlsAdapterCounters> {
  protected readonly adapter: HlsAdapter;

  constructor(config: ShoalHlsOptions = {}) {
    super(config);
    this.adapter = new HlsAdapter(this.driver, this.cfg.swarmId, config.abrTiming ?? 'transfer');
    this.adapter.onDelivery = (timing, context) => this.qoeTracker.onDelivery(timing, context.frag);
  }

  /** hls.js configuration with Shoal's fragment loader; pass your own options through `extra`. */
  hlsConfig<T extends Partial<HlsConfig>>(extra?: T): T & { fLoader: FragmentLoaderConstructor } {
    return { ...(extra ?? ({} as T)), fLoader: this.adapter.fragmentLoaderClass() };
  }

  /** Listens to the player's events (playlists, playhead). Call before `loadSource`. */
  attach(hls: Hls): void {
    if (this.destroyed) throw new ShoalError('config', 'ShoalHls was destroyed');
    this.adapter.attach(hls);
    this.watchPlayer(watchHls(hls));
  }

  /** Counters for debugging, demos and tests. */
  override diagnostics(): ShoalDiagnostics {
    return super.diagnostics();
  }
}
export { ShoalDash, type ShoalDashOptions, type ShoalDashDiagnostics, type DashPlayer, type DashAdapterCounters } from './dashjs.js';
