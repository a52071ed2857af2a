/**
 * Viewer experience metrics (QoE) of one hls.js player, from what the player and the engine
 * already report: no extra requests, no timers of its own.
 *
 * Definitions (the ones the README documents):
 * - Time to first byte, per source: `firstByte - transferStart` of each fragment the engine
 *   delivered (its real transfer, also for a segment prefetched into the cache), attributed to
 *   the source that carried most of its bytes; fragments hls.js loaded itself (P2P off, fail
 *   open, other tracks) count as HTTP with hls.js's own loader stats. Mean of the last 20.
 * - Startup: from `loadSource` (hls.js `MANIFEST_LOADING`; `attach()` if that was missed) to
 *   the media element's first `playing`.
 * - Rebuffering: a `waiting` after the first `playing`, not caused by a seek, until the next
 *   `playing`. Ratio = stalled time / (stalled time + playing time); paused and seeking time
 *   count in neither.
 * - Effective bitrate: bytes of the main-rendition media fragments loaded / their media
 *   duration (bit/s); `levelBitrate` is the declared bitrate of the level playing now.
 */
import type Hls from 'hls.js';
import type { Fragment, FragmentLoaderContext } from 'hls.js';
import type { DeliveryTiming } from './core-types.js';

const TTFB_WINDOW = 20;

export interface QoeMetrics {
  /** Mean time to first byte (ms) of the last 20 fragment transfers from each source; null before any. */
  ttfb: { http: number | null; p2p: number | null };
  /** Transfers measured from each source since the start. */
  ttfbSamples: { http: number; p2p: number };
  /** From `loadSource` to the first `playing` (ms); null until playback starts. */
  startupMs: number | null;
  /** Stalls after playback started (seeks excluded). */
  rebufferCount: number;
  /** Total stalled time (ms), including a stall in progress. */
  rebufferMs: number;
  /** rebufferMs / (rebufferMs + playingMs); 0 before playback. */
  rebufferRatio: number;
  /** Time spent playing (ms). */
  playingMs: number;
  /** Loaded main-rendition bytes × 8 / their media duration (bit/s); null before any. */
  effectiveBitrate: number | null;
  /** Declared bitrate (bit/s) of the level playing now; null if unknown. */
  levelBitrate: number | null;
  /** Media bytes by source: HTTP (engine and hls.js's own loader), peers, and uploaded to peers. */
  bytes: { http: number; p2p: number; upload: number };
  /** p2p / (http + p2p); 0 before any byte. */
  offload: number;
  /** Connected peers now. */
  peers: number;
}

/** Byte and peer counters the owner already keeps (`ShoalHls.stats()`). */
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

export class QoeTracker {
  private hls: Hls | null = null;
  private media: HTMLMediaElement | null = null;
  private readonly detachers: Array<() => void> = [];
  private readonly mediaDetachers: Array<() => void> = [];
  private readonly ttfbHttp = new Window();
  private readonly ttfbP2p = new Window();
  /** Fragments the engine delivered: their TTFB comes from the delivery timing instead. */
  private readonly engineFrags = new WeakSet<Fragment>();
  private loadAt: number | null = null;
  private startupMs: number | null = null;
  private phase: Phase = 'before';
  private phaseSince = 0;
  private playingMs = 0;
  private rebufferMs = 0;
  private rebufferCount = 0;
  private mainBytes = 0;
  private mainDurationS = 0;

  constructor(private readonly counters: () => QoeCounters) {}

  attach(hls: Hls): void {
    this.detach();
    this.hls = hls;
    this.loadAt = performance.now();
    const on = (event: string, fn: (...args: never[]) => void) => {
      hls.on(event as never, fn as never);
      this.detachers.push(() => hls.off(event as never, fn as never));
    };
    on('hlsManifestLoading', () => {
      if (this.startupMs === null) this.loadAt = performance.now();
    });
    on('hlsMediaAttached', ((_e: string, data: { media: HTMLMediaElement }) => this.attachMedia(data.media)) as never);
    on('hlsMediaDetaching', () => this.detachMedia());
    on('hlsFragLoaded', ((_e: string, data: { frag: Fragment; payload: ArrayBuffer }) => this.onFragLoaded(data.frag, data.payload)) as never);
    on('hlsDestroying', () => this.detach());
    if (hls.media) this.attachMedia(hls.media);
  }

  detach(): void {
    this.detachMedia();
    for (const d of this.detachers.splice(0)) d();
    this.hls = null;
  }

  /** A fragment the engine delivered, with the timing of the transfer that produced it. */
  onDelivery(timing: DeliveryTiming, context: FragmentLoaderContext): void {
    this.engineFrags.add(context.frag);
    const ttfb = timing.firstByte - timing.transferStart;
    if (!Number.isFinite(ttfb) || ttfb < 0 || timing.transferEnd <= timing.transferStart) return;
    (timing.p2pBytes > timing.httpBytes ? this.ttfbP2p : this.ttfbHttp).add(ttfb);
  }

  private onFragLoaded(frag: Fragment, payload: ArrayBuffer | undefined): void {
    if (!this.engineFrags.has(frag)) {
      const l = frag.stats.loading;
      const ttfb = l.first - l.start;
      if (l.start > 0 && l.first >= l.start && Number.isFinite(ttfb)) this.ttfbHttp.add(ttfb);
    }
    if (frag.type === 'main' && typeof frag.sn === 'number' && frag.duration > 0) {
      const bytes = payload?.byteLength || frag.stats.loaded;
      if (bytes > 0) {
        this.mainBytes += bytes;
        this.mainDurationS += frag.duration;
      }
    }
  }

  private attachMedia(media: HTMLMediaElement): void {
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
  }

  private detachMedia(): void {
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
    const hls = this.hls;
    let levelBitrate: number | null = null;
    if (hls && hls.currentLevel >= 0) {
      const level = hls.levels[hls.currentLevel] as { bitrate?: number } | undefined;
      if (level && typeof level.bitrate === 'number' && level.bitrate > 0) levelBitrate = level.bitrate;
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
