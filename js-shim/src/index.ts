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
import { resolveConfig, type ResolvedConfig, type ShoalConfig } from './config.js';
import type { BanReason, CoreEvent, Hex40 } from './core-types.js';
import { Driver } from './driver.js';
import { collectStats } from './stats.js';
import { ShoalError } from './errors.js';
import { HlsAdapter, type AbrTiming, type HlsAdapterCounters } from './adapters/hlsjs.js';
import { QoeTracker, type QoeMetrics } from './qoe.js';

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

export interface ShoalStats {
  /** Media bytes the engine downloaded over HTTP. */
  httpDown: number;
  /** Media bytes received from peers and accepted. */
  p2pDown: number;
  /** Media bytes sent to peers. */
  p2pUp: number;
  /** Bytes hls.js loaded with its own loader (fail-open fallback, init segments, other tracks). */
  fallbackHttp: number;
  /** Connected peers over all swarms. */
  peers: number;
  peersBanned: number;
  /** p2pDown / (p2pDown + httpDown + fallbackHttp), 0 when nothing was loaded. */
  offload: number;
  /** False while P2P is off (config, `setP2P(false)`, no trackers) or after a failure. */
  p2pActive: boolean;
}

export interface PeerEvent {
  kind: 'joined' | 'left';
  swarm: Hex40;
  peer: Hex40;
}

export interface BanEvent {
  swarm: Hex40;
  peer: Hex40;
  reason: BanReason;
}

export interface ShoalEvents {
  stats: ShoalStats;
  peer: PeerEvent;
  ban: BanEvent;
  error: ShoalError;
  /** Viewer experience metrics, every `statsIntervalMs` (see `qoe()`). */
  qoe: QoeMetrics;
  /** Every engine event, raw (segment loaded, verification failed, warnings…). */
  event: CoreEvent;
}

export type ShoalEventName = keyof ShoalEvents;
type Listener<K extends ShoalEventName> = (payload: ShoalEvents[K]) => void;

export interface ShoalHlsOptions extends ShoalConfig {
  /** How delivered segments' timing is reported to hls.js's ABR. Default `'transfer'`. */
  abrTiming?: AbrTiming;
  /** Interval of the `'stats'` and `'qoe'` events in ms. Default 1000. */
  statsIntervalMs?: number;
}

export interface ShoalDiagnostics {
  /** Our tracker peer id (the engine's), known after the first announce. */
  peerId: Hex40 | null;
  engineReady: boolean;
  trackersConnected: number;
  peerConns: number;
  pendingRequests: number;
  httpActive: number;
  inputs: Record<string, number>;
  outputs: Record<string, number>;
  adapter: HlsAdapterCounters;
}

export class ShoalHls {
  private readonly cfg: ResolvedConfig;
  private readonly driver: Driver;
  private readonly adapter: HlsAdapter;
  private readonly qoeTracker: QoeTracker;
  private readonly listeners = new Map<ShoalEventName, Set<Listener<ShoalEventName>>>();
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private destroyed = false;
  /** Resolves when the engine is loaded (true) or failed to load (false). */
  readonly ready: Promise<boolean>;

  constructor(config: ShoalHlsOptions = {}) {
    this.cfg = resolveConfig(config);
    this.driver = new Driver(this.cfg, {
      coreEvent: (ev) => this.onCoreEvent(ev),
      error: (err) => this.emit('error', err),
    });
    this.adapter = new HlsAdapter(this.driver, this.cfg.swarmId, config.abrTiming ?? 'transfer');
    this.qoeTracker = new QoeTracker(() => this.stats());
    this.adapter.onDelivery = (timing, context) => this.qoeTracker.onDelivery(timing, context);
    this.ready = this.driver.ready;
    const every = config.statsIntervalMs ?? 1000;
    if (every > 0) {
      this.statsTimer = setInterval(() => {
        if (this.listeners.get('stats')?.size) this.emit('stats', this.stats());
        if (this.listeners.get('qoe')?.size) this.emit('qoe', this.qoe());
      }, every);
    }
  }

  /** hls.js configuration with Shoal's fragment loader; pass your own options through `extra`. */
  hlsConfig<T extends Partial<HlsConfig>>(extra?: T): T & { fLoader: FragmentLoaderConstructor } {
    return { ...(extra ?? ({} as T)), fLoader: this.adapter.fragmentLoaderClass() };
  }

  /** Listens to the player's events (playlists, playhead). Call before `loadSource`. */
  attach(hls: Hls): void {
    if (this.destroyed) throw new ShoalError('config', 'ShoalHls was destroyed');
    this.adapter.attach(hls);
    this.qoeTracker.attach(hls);
  }

  /**
   * The viewer's consent to P2P. Off: every peer connection and tracker socket is closed and
   * none is made until it is switched on again; loading goes on over HTTP without a stall.
   */
  setP2P(enabled: boolean): void {
    this.driver.setP2P(enabled);
  }

  /** The app says the viewer's link is metered (or no longer is): no upload while true. */
  setMetered(metered: boolean): void {
    this.driver.setMetered(metered);
  }

  /** Viewer experience metrics: TTFB by source, startup, rebuffering, bitrate, bytes, peers. */
  qoe(): QoeMetrics {
    return this.qoeTracker.snapshot();
  }

  stats(): ShoalStats {
    return collectStats(this.driver, this.adapter.counters.fallbackHttp);
  }

  /** Counters for debugging, demos and tests. */
  diagnostics(): ShoalDiagnostics {
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

  /** Stops P2P and releases the engine; hls.js keeps working with its own loader. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.adapter.detach();
    this.qoeTracker.detach();
    this.driver.destroy();
    this.listeners.clear();
  }
}
export { ShoalDash, type ShoalDashOptions, type ShoalDashDiagnostics, type DashPlayer, type DashAdapterCounters } from './dashjs.js';
