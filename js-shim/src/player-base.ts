/**
 * What every player entry (`ShoalHls`, `ShoalDash`) shares: the engine driver, events, stats,
 * QoE, consent switches, diagnostics and teardown. A subclass adds only its player's wiring
 * (an adapter and a QoE binding) and must call `watchPlayer` when it attaches.
 *
 * Invariants:
 * - A listener that throws never reaches the player or the engine (logged, then ignored).
 * - After `destroy()` no timer of ours runs and no event is emitted; the player keeps working
 *   with its own loader.
 */
import { resolveConfig, type ResolvedConfig, type ShoalConfig } from './config.js';
import type { BanReason, CoreEvent, Hex40 } from './core-types.js';
import { Driver } from './driver.js';
import type { ShoalError } from './errors.js';
import type { AdapterCounters } from './adapters/common.js';
import { QoeTracker, type QoeMetrics, type Unwatch } from './qoe.js';

export interface ShoalStats {
  /** Media bytes the engine downloaded over HTTP. */
  httpDown: number;
  /** Media bytes received from peers and accepted. */
  p2pDown: number;
  /** Media bytes sent to peers. */
  p2pUp: number;
  /** Bytes the player loaded with its own loader (fail-open fallback, init segments, other tracks). */
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

/** Options every player entry takes. */
export interface ShoalPlayerOptions extends ShoalConfig {
  /** Interval of the `'stats'` and `'qoe'` events in ms. Default 1000. */
  statsIntervalMs?: number;
}

/** `diagnostics()`: driver and engine counters plus the adapter's own (`C`). */
export interface PlayerDiagnostics<C extends AdapterCounters> {
  /** Our tracker peer id (the engine's), known after the first announce. */
  peerId: Hex40 | null;
  engineReady: boolean;
  trackersConnected: number;
  peerConns: number;
  pendingRequests: number;
  httpActive: number;
  inputs: Record<string, number>;
  outputs: Record<string, number>;
  adapter: C;
}

/** The player-side half a subclass provides. */
interface PlayerAdapter<C extends AdapterCounters> {
  readonly counters: C;
  detach(): void;
}

export abstract class ShoalPlayerBase<C extends AdapterCounters> {
  protected readonly cfg: ResolvedConfig;
  protected readonly driver: Driver;
  protected readonly qoeTracker: QoeTracker;
  protected abstract readonly adapter: PlayerAdapter<C>;
  private readonly listeners = new Map<ShoalEventName, Set<Listener<ShoalEventName>>>();
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  protected destroyed = false;
  /** Resolves when the engine is loaded (true) or failed to load (false). */
  readonly ready: Promise<boolean>;

  protected constructor(config: ShoalPlayerOptions) {
    this.cfg = resolveConfig(config);
    this.driver = new Driver(this.cfg, {
      coreEvent: (ev) => this.onCoreEvent(ev),
      error: (err) => this.emit('error', err),
    });
    this.qoeTracker = new QoeTracker(() => this.stats());
    this.ready = this.driver.ready;
    const every = config.statsIntervalMs ?? 1000;
    if (every > 0) {
      this.statsTimer = setInterval(() => {
        if (this.listeners.get('stats')?.size) this.emit('stats', this.stats());
        if (this.listeners.get('qoe')?.size) this.emit('qoe', this.qoe());
      }, every);
    }
  }

  /** Starts the QoE clock and binds the QoE tracker to the player (`watchHls`/`watchDash`). */
  protected watchPlayer(bind: (tracker: QoeTracker) => Unwatch): void {
    this.qoeTracker.watch(bind);
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
    const core = this.driver.coreStats();
    const fallbackHttp = this.adapter.counters.fallbackHttp;
    const httpDown = core?.httpDown ?? 0;
    const p2pDown = core?.p2pDown ?? 0;
    const all = httpDown + p2pDown + fallbackHttp;
    const p2pActive = this.driver.p2pActive;
    return {
      httpDown,
      p2pDown,
      p2pUp: core?.p2pUp ?? 0,
      fallbackHttp,
      peers: p2pActive ? (core?.peers ?? 0) : 0,
      peersBanned: core?.peersBanned ?? 0,
      offload: all > 0 ? p2pDown / all : 0,
      p2pActive,
    };
  }

  /** Counters for debugging, demos and tests. */
  diagnostics(): PlayerDiagnostics<C> {
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

  protected emit<K extends ShoalEventName>(event: K, payload: ShoalEvents[K]): void {
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

  /** Stops P2P and releases the engine; the player keeps working with its own loader. */
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
