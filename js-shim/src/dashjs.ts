/**
 * shoal-p2p for dash.js: peer-assisted DASH with the same engine, transports and guarantees as
 * `ShoalHls` (fail open, verified bytes, honest ABR timing) and the same API (events, stats,
 * `qoe()`, `setP2P`, `setMetered`, `diagnostics()`, `destroy()`).
 *
 * ```ts
 * const shoal = new ShoalDash({ trackers: ['wss://tracker.example'] });
 * const player = dashjs.MediaPlayer().create();
 * shoal.attach(player);                 // before initialize()
 * player.initialize(video, mpdUrl, true);
 * ```
 */
import { ShoalError } from './errors.js';
import { DashAdapter, type DashAdapterCounters, type DashPlayer } from './adapters/dashjs.js';
import { watchDash } from './qoe.js';
import { ShoalPlayerBase, type PlayerDiagnostics, type ShoalPlayerOptions } from './player-base.js';

export type { DashAdapterCounters, DashPlayer } from './adapters/dashjs.js';

export interface ShoalDashOptions extends ShoalPlayerOptions {}

export interface ShoalDashDiagnostics extends PlayerDiagnostics<DashAdapterCounters> {}

export class ShoalDash extends ShoalPlayerBase<DashAdapterCounters> {
  protected readonly adapter: DashAdapter;

  constructor(config: ShoalDashOptions = {}) {
    super(config);
    this.adapter = new DashAdapter(this.driver, this.cfg.swarmId);
    this.adapter.onDelivery = (timing, request) => this.qoeTracker.onDelivery(timing, request);
  }

  /**
   * Hooks Shoal into a dash.js `MediaPlayer` (`player.extend('XHRLoader', …, true)`, and
   * `'BufferController'` so a period ends only once its last segment is appended). Call it
   * before `player.initialize()`: dash.js builds its loaders then. One player per instance.
   */
  attach(player: DashPlayer): void {
    if (this.destroyed) throw new ShoalError('config', 'ShoalDash was destroyed');
    this.adapter.attach(player);
    this.watchPlayer(watchDash(player));
  }

  /** Counters for debugging, demos and tests. */
  override diagnostics(): ShoalDashDiagnostics {
    return super.diagnostics();
  }

  /**
   * Stops P2P and releases the engine. dash.js keeps the loader override (it cannot be
   * removed), which from then on hands every request to dash.js's own XHR.
   */
  override destroy(): void {
    super.destroy();
  }
}
