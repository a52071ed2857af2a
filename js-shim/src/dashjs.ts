/**
 * shoal-p2p for dash.js: peer-assisted DASH with the same engine, transports and guarantees as
 * `ShoalHls` (fail open, verified bytes, honest ABR timing).
 *
 * ```ts
 * const shoal = new ShoalDash({ trackers: ['wss://tracker.example'] });
 * const player = dashjs.MediaPlayer().create();
 * shoal.attach(player);                 // before initialize()
 * player.initialize(video, mpdUrl, true);
 * ```
 */
import { resolveConfig, type ResolvedConfig, type ShoalConfig } from './config.js';
import type { CoreEvent } from './core-types.js';
import { Driver } from './driver.js';
import { collectStats } from './stats.js';
import { ShoalError } from './errors.js';
import { DashAdapter, type DashAdapterCounters, type DashPlayer } from './adapters/dashjs.js';
import type { ShoalDiagnostics, ShoalEventName, ShoalEvents, ShoalStats } from './index.js';

export type { DashAdapterCounters, DashPlayer } from './adapters/dashjs.js';

export interface ShoalDashOptions extends ShoalConfig {
  /** Interval of the `'stats'` event in ms. Default 1000. */
  statsIntervalMs?: number;
}

export interface ShoalDashDiagnostics extends Omit<ShoalDiagnostics, 'adapter'> {
  adapter: DashAdapterCounters;
}

type Listener<K extends ShoalEventName> = (payload: ShoalEvents[K]) => void;

export class ShoalDash {
  private readonly cfg: ResolvedConfig;
  private readonly driver: Driver;
  private readonly adapter: DashAdapter;
  private readonly listeners = new Map<ShoalEventName, Set<Listener<ShoalEventName>>>();
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private destroyed = false;
  /** Resolves when the engine is loaded (true) or failed to load (false). */
  readonly ready: Promise<boolean>;

  constructor(config: ShoalDashOptions = {}) {
    this.cfg = resolveConfig(config);
    this.driver = new Driver(this.cfg, {
      coreEvent: (ev) => this.onCoreEvent(ev),
      error: (err) => this.emit('error', err),
    });
    this.adapter = new DashAdapter(this.driver, this.cfg.swarmId);
    this.ready = this.driver.ready;
    const every = config.statsIntervalMs ?? 1000;
    if (every > 0) {
      this.statsTimer = setInterval(() => {
        if (this.listeners.get('stats')?.size) this.emit('stats', this.stats());
      }, every);
    }
  }

  /**
   * Hooks Shoal into a dash.js `MediaPlayer` (`player.extend('XHRLoader', …, true)`). Call it
   * before `player.initialize()`: dash.js builds its loaders then. One player per instance.
   */
  attach(player: DashPlayer): void {
    if (this.destroyed) throw new ShoalError('config', 'ShoalDash was destroyed');
    this.adapter.attach(player);
  }

  stats(): ShoalStats {
    return collectStats(this.driver, this.adapter.counters.fallbackHttp);
  }

  /** Counters for debugging, demos and tests. */
  diagnostics(): ShoalDashDiagnostics {
    return {
      peerId: this.driver.peerId,
      engineReady: this.driver.active,
      ...this.driver.diagnostics(),
      inputs: { ...this.driver.counters.inputs },
      outputs: { ...this.driver.counters.outputs },
      adapter: { ...this.adapter.counters },
    };
  }

  on<K extends ShoalEventName>(event: K, cb: Listener<K>): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(cb as Listener<ShoalEventName>);
    return this;
  }

  off<K extends ShoalEventName>(event: K, cb: Listener<K>): this {
    this.listeners.get(event)?.delete(cb as Listener<ShoalEventName>);
    return this;
  }

  private emit<K extends ShoalEventName>(event: K, payload: ShoalEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const cb of [...set]) {
      try {
        (cb as Listener<K>)(payload);
      } catch (err) {
        // An app listener's bug must not break playback.
        console.error('shoal: listener threw', err);
      }
    }
  }

  private onCoreEvent(ev: CoreEvent): void {
    this.emit('event', ev);
    if (ev.kind === 'peerJoined' || ev.kind === 'peerLeft') {
      this.emit('peer', { kind: ev.kind === 'peerJoined' ? 'joined' : 'left', swarm: ev.swarm, peer: ev.peer });
    } else if (ev.kind === 'peerBanned') {
      this.emit('ban', { swarm: ev.swarm, peer: ev.peer, reason: ev.reason });
    }
  }

  /**
   * Stops P2P and releases the engine. dash.js keeps the loader override (it cannot be
   * removed), which from then on hands every request to dash.js's own XHR.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.adapter.detach();
    this.driver.destroy();
    this.listeners.clear();
  }
}
