/**
 * Viewer experience metrics (QoE) of one player, from what the player and the engine already
 * report: no extra requests, no timers of its own. `QoeTracker` knows only the media element
 * and plain facts; `watchHls` and `watchDash` feed it from each player's events.
 *
 * Definitions (the ones the README documents):
 * - Time to first byte, per source: `firstByte - transferStart` of each segment the engine
 *   delivered (its real transfer, also for a segment prefetched into the cache), attributed to
 *   the source that carried most of its bytes; segments the player loaded itself (P2P off, fail
 *   open, other tracks) count as HTTP with the player's own request timing. Mean of the last 20.
 * - Startup: from loading the source (hls.js `MANIFEST_LOADING`, dash.js
 *   `manifestLoadingStarted`; `attach()` if that was missed) to the media element's first
 *   `playing`.
 * - Rebuffering: a `waiting` after the first `playing`, not caused by a seek, until the next
 *   `playing`. Ratio = stalled time / (stalled time + playing time); paused and seeking time
 *   count in neither.
 * - Effective bitrate: bytes of the main-rendition media segments loaded (hls.js main
 *   fragments, dash.js video) / their media duration (bit/s); `levelBitrate` is the declared
 *   bitrate of the rendition playing now.
 */
import type Hls from 'hls.js';
import type { Fragment } from 'hls.js';
import type { DeliveryTiming } from './core-types.js';

const TTFB_WINDOW = 20;

export interface QoeMetrics {
  /** Mean time to first byte (ms) of the last 20 segment transfers from each source; null before any. */
  ttfb: { http: number | null; p2p: number | null };
  /** Transfers measured from each source since the start. */
  ttfbSamples: { http: number; p2p: number };
  /** From loading the source (`loadSource`, `initialize`) to the first `playing` (ms); null until playback starts. */
  startupMs: number | null;
  /** Stalls after playback started (seeks excluded). */
  rebufferCount: number;
  /** Total stalled time (ms), including a stall in progress. */
  rebufferMs: number;
  /** rebufferMs / (rebufferMs + playingMs); 0 before playback. */
  rebufferRatio: number;
  /** Time spent playing (ms). */
  playingMs: number;
  /** Loaded main-rendition (video) bytes × 8 / their media duration (bit/s); null before any. */
  effectiveBitrate: number | null;
  /** Declared bitrate (bit/s) of the rendition playing now; null if unknown. */
  levelBitrate: number | null;
  /** Media bytes by source: HTTP (engine and the player's own loader), peers, and uploaded to peers. */
  bytes: { http: number; p2p: number; upload: number };
  /** p2p / (http + p2p); 0 before any byte. */
  offload: number;
  /** Connected peers now. */
  peers: number;
}

/** Byte and peer counters the owner already keeps (`stats()`). */
export interface QoeCounters {
  httpDown: number;
  fallbackHttp: number;
  p2pDown: number;
  p2pUp: number;
  peers: number;
}

type Phase = 'before' | 'playing' | 'stalled' | 'idle';

class Window {
  private readonly values: number[] = [];
  count = 0;
  add(v: number): void {
    this.values.push(v);
    if (this.values.length > TTFB_WINDOW) this.values.shift();
    this.count++;
  }
  mean(): number | null {
    if (this.values.length === 0) return null;
    return this.values.reduce((a, b) => a + b, 0) / this.values.length;
  }
}

/** A player binding's handle: stops listening to the player. */
export type Unwatch = () => void;

export class QoeTracker {
  private media: HTMLMediaElement | null = null;
  private readonly mediaDetachers: Array<() => void> = [];
  private readonly ttfbHttp = new Window();
  private readonly ttfbP2p = new Window();
  /** Segments (the player's request objects) the engine delivered: TTFB came from the delivery. */
  private readonly engineSegments = new WeakSet<object>();
  private loadAt: number | null = null;
  private startupMs: number | null = null;
  private phase: Phase = 'before';
  private phaseSince = 0;
  private playingMs = 0;
  private rebufferMs = 0;
  private rebufferCount = 0;
  private mainBytes = 0;
  private mainDurationS = 0;
  private unwatch: Unwatch | null = null;
  /** Declared bitrate of the rendition playing now, set by the player binding. */
  levelBitrate: () => number | null = () => null;

  constructor(private readonly counters: () => QoeCounters) {}

  /** Binds to a player (`watchHls`/`watchDash` return the unbinding); the clock of startup starts now. */
  watch(bind: (tracker: QoeTracker) => Unwatch): void {
    this.detach();
    this.loadAt = performance.now();
    this.unwatch = bind(this);
  }

  detach(): void {
    this.detachMedia();
    const u = this.unwatch;
    this.unwatch = null;
    this.levelBitrate = () => null;
    u?.();
  }

  /** The player starts loading a source: startup is measured from here (until playback began). */
  sourceLoading(): void {
    if (this.startupMs === null) this.loadAt = performance.now();
  }

  /** A segment the engine delivered, with the timing of the transfer that produced it. */
  onDelivery(timing: DeliveryTiming, segment: object): void {
    this.engineSegments.add(segment);
    const ttfb = timing.firstByte - timing.transferStart;
    if (!Number.isFinite(ttfb) || ttfb < 0 || timing.transferEnd <= timing.transferStart) return;
    (timing.p2pBytes > timing.httpBytes ? this.ttfbP2p : this.ttfbHttp).add(ttfb);
  }

  /**
   * A media segment the player finished loading, from any source. `playerTtfbMs`: the player's
   * own request timing, used when the engine did not deliver it. `main`: main-rendition bytes
   * and media duration (for the effective bitrate), null for other tracks.
   */
  onSegmentLoaded(segment: object, playerTtfbMs: number | null, main: { bytes: number; durationS: number } | null): void {
    if (!this.engineSegments.has(segment) && playerTtfbMs !== null && Number.isFinite(playerTtfbMs) && playerTtfbMs >= 0) {
      this.ttfbHttp.add(playerTtfbMs);
    }
    if (main && main.bytes > 0 && main.durationS > 0) {
      this.mainBytes += main.bytes;
      this.mainDurationS += main.durationS;
    }
  }

  attachMedia(media: HTMLMediaElement): void {
    if (this.media === media) return;
    this.detachMedia();
    this.media = media;
    const on = (event: string, fn: () => void) => {
      media.addEventListener(event, fn);
      this.mediaDetachers.push(() => media.removeEventListener(event, fn));
    };
    on('playing', () => this.onPlaying());
    on('waiting', () => {
      if (this.phase === 'playing' && !media.seeking) {
        this.enter('stalled');
        this.rebufferCount++;
      }
    });
    on('pause', () => this.enter('idle'));
    on('seeking', () => this.enter('idle'));
    on('ended', () => this.enter('idle'));
    // Bound after playback began (dash.js exposes its element only once it loads).
    if (!media.paused && media.readyState > 2) this.onPlaying();
  }

  detachMedia(): void {
    for (const d of this.mediaDetachers.splice(0)) d();
    if (this.phase !== 'before') this.enter('idle');
    this.media = null;
  }

  private onPlaying(): void {
    const t = performance.now();
    if (this.startupMs === null) this.startupMs = Math.max(0, t - (this.loadAt ?? t));
    this.enter('playing');
  }

  /** Closes the current phase's time into its bucket and starts `next`. */
  private enter(next: Phase): void {
    this.account();
    this.phase = next;
  }

  private account(): void {
    const t = performance.now();
    const spent = Math.max(0, t - this.phaseSince);
    if (this.phase === 'playing') this.playingMs += spent;
    else if (this.phase === 'stalled') this.rebufferMs += spent;
    this.phaseSince = t;
  }

  snapshot(): QoeMetrics {
    this.account();
    const c = this.counters();
    const http = c.httpDown + c.fallbackHttp;
    let levelBitrate: number | null = null;
    try {
      const b = this.levelBitrate();
      if (typeof b === 'number' && Number.isFinite(b) && b > 0) levelBitrate = b;
    } catch {
      /* the player is being torn down */
    }
    const watched = this.rebufferMs + this.playingMs;
    return {
      ttfb: { http: this.ttfbHttp.mean(), p2p: this.ttfbP2p.mean() },
      ttfbSamples: { http: this.ttfbHttp.count, p2p: this.ttfbP2p.count },
      startupMs: this.startupMs,
      rebufferCount: this.rebufferCount,
      rebufferMs: this.rebufferMs,
      rebufferRatio: watched > 0 ? this.rebufferMs / watched : 0,
      playingMs: this.playingMs,
      effectiveBitrate: this.mainDurationS > 0 ? (this.mainBytes * 8) / this.mainDurationS : null,
      levelBitrate,
      bytes: { http, p2p: c.p2pDown, upload: c.p2pUp },
      offload: http + c.p2pDown > 0 ? c.p2pDown / (http + c.p2pDown) : 0,
      peers: c.peers,
    };
  }
}

/** Feeds `tracker` from an hls.js player's events (engine-delivered fragments are keyed by `Fragment`). */
export function watchHls(hls: Hls): (tracker: QoeTracker) => Unwatch {
  return (tracker) => {
    const detachers: Array<() => void> = [];
    const on = (event: string, fn: (...args: never[]) => void) => {
      hls.on(event as never, fn as never);
      detachers.push(() => hls.off(event as never, fn as never));
    };
    on('hlsManifestLoading', () => tracker.sourceLoading());
    on('hlsMediaAttached', ((_e: string, data: { media: HTMLMediaElement }) => tracker.attachMedia(data.media)) as never);
    on('hlsMediaDetaching', () => tracker.detachMedia());
    on('hlsFragLoaded', ((_e: string, data: { frag: Fragment; payload: ArrayBuffer }) => {
      const frag = data.frag;
      const l = frag.stats.loading;
      const ttfb = l.start > 0 && l.first >= l.start ? l.first - l.start : null;
      const main = frag.type === 'main' && typeof frag.sn === 'number' && frag.duration > 0
        ? { bytes: data.payload?.byteLength || frag.stats.loaded, durationS: frag.duration }
        : null;
      tracker.onSegmentLoaded(frag, ttfb, main);
    }) as never);
    on('hlsDestroying', () => tracker.detach());
    tracker.levelBitrate = () => {
      if (hls.currentLevel < 0) return null;
      const level = hls.levels[hls.currentLevel] as { bitrate?: number } | undefined;
      return level?.bitrate ?? null;
    };
    if (hls.media) tracker.attachMedia(hls.media);
    return () => {
      for (const d of detachers.splice(0)) d();
    };
  };
}

/** The dash.js `MediaPlayer` members the QoE binding uses (all optional: missing ones are skipped). */
export interface DashQoePlayer {
  on?(type: string, listener: (e: never) => void, scope?: object): void;
  off?(type: string, listener: (e: never) => void, scope?: object): void;
  getVideoElement?(): HTMLVideoElement;
  getCurrentRepresentationForType?(type: string): { bandwidth?: number } | null;
}

/** dash.js's `FragmentRequest` fields read here. */
interface DashLoadedRequest {
  type?: string;
  mediaType?: string;
  duration?: number;
  startDate?: Date | null;
  firstByteDate?: Date | null;
}

/**
 * Feeds `tracker` from a dash.js player's events; engine-delivered segments are keyed by dash.js's
 * `FragmentRequest` (the object its loader hands the adapter as `customData.request`).
 */
export function watchDash(player: DashQoePlayer): (tracker: QoeTracker) => Unwatch {
  return (tracker) => {
    const detachers: Array<() => void> = [];
    const on = <E>(event: string, fn: (e: E) => void) => {
      if (!player.on || !player.off) return;
      player.on(event, fn as (e: never) => void);
      detachers.push(() => player.off?.(event, fn as (e: never) => void));
    };
    const findMedia = () => {
      try {
        const media = player.getVideoElement?.();
        if (media) tracker.attachMedia(media);
      } catch {
        /* no element attached yet */
      }
    };
    on('manifestLoadingStarted', () => {
      tracker.sourceLoading();
      findMedia();
    });
    on('streamInitialized', findMedia);
    on('fragmentLoadingCompleted', (e: { request?: DashLoadedRequest; response?: ArrayBuffer; error?: unknown }) => {
      const r = e.request;
      if (!r || r.type !== 'MediaSegment' || !e.response || e.error) return;
      const start = r.startDate?.getTime();
      const first = r.firstByteDate?.getTime();
      const ttfb = start !== undefined && first !== undefined && first >= start ? first - start : null;
      const duration = typeof r.duration === 'number' ? r.duration : NaN;
      const main = r.mediaType === 'video' && duration > 0 ? { bytes: e.response.byteLength, durationS: duration } : null;
      tracker.onSegmentLoaded(r, ttfb, main);
    });
    tracker.levelBitrate = () => player.getCurrentRepresentationForType?.('video')?.bandwidth ?? null;
    findMedia();
    return () => {
      for (const d of detachers.splice(0)) d();
    };
  };
}
