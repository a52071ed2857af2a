/**
 * shoal-p2p for hls.js (`ShoalHls`): a fragment loader for hls.js backed by the engine.
 * Kept apart from `index.ts` so that the one-player entry (`shoal-p2p/hls`) does not carry the
 * dash.js adapter.
 */
import type Hls from 'hls.js';
import type { FragmentLoaderConstructor, HlsConfig } from 'hls.js';
import { ShoalError } from './errors.js';
import { HlsAdapter, type AbrTiming, type HlsAdapterCounters } from './adapters/hlsjs.js';
import { watchHls } from './qoe.js';
import { ShoalPlayerBase, type PlayerDiagnostics, type ShoalPlayerOptions } from './player-base.js';

export interface ShoalHlsOptions extends ShoalPlayerOptions {
  /** How delivered segments' timing is reported to hls.js's ABR. Default `'capacity'`. */
  abrTiming?: AbrTiming;
}

export interface ShoalDiagnostics extends PlayerDiagnostics<HlsAdapterCounters> {}

export class ShoalHls extends ShoalPlayerBase<HlsAdapterCounters> {
  protected readonly adapter: HlsAdapter;

  constructor(config: ShoalHlsOptions = {}) {
    super(config);
    this.adapter = new HlsAdapter(this.driver, this.cfg.swarmId, config.abrTiming ?? 'capacity');
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
