/**
 * What both player adapters (hls.js, dash.js) need besides their player's own API: the
 * playhead feed from the media element, the counters they share, and byte/URL helpers.
 *
 * Invariants of `PlayheadReporter`:
 * - While attached it sends the engine a playhead on `timeupdate`, `seeking` and `ratechange`,
 *   and every `PLAYHEAD_INTERVAL_MS` while playing; never twice within 80% of that interval
 *   unless forced.
 * - `bufferedAheadMs` is the buffered range that contains the playhead (0.1 s of slack behind),
 *   measured from the playhead.
 * - Nothing is sent while the adapter cannot name the swarm (`swarm()` returns null).
 */
import type { Hex40 } from '../core-types.js';
import type { Driver } from '../driver.js';

export const PLAYHEAD_INTERVAL_MS = 250;

/** Counters every adapter keeps (`diagnostics().adapter`); adapters add their own. */
export interface AdapterCounters {
  /** Bytes of media the player loaded with its own loader (fallback, init segments, other types). */
  fallbackHttp: number;
  /** Bytes delivered by the engine, by source. */
  deliveredHttp: number;
  deliveredP2p: number;
  /** Segments delivered by the engine / loaded by the fallback. */
  fragmentsEngine: number;
  fragmentsFallback: number;
  /** Requests the player aborted while the engine was loading them. */
  aborted: number;
}

export function newAdapterCounters(): AdapterCounters {
  return { fallbackHttp: 0, deliveredHttp: 0, deliveredP2p: 0, fragmentsEngine: 0, fragmentsFallback: 0, aborted: 0 };
}

export function stripQuery(url: string): string {
  const q = url.search(/[?#]/);
  return q < 0 ? url : url.slice(0, q);
}

/** The bytes as an ArrayBuffer the player may keep (no copy when the view covers its whole buffer). */
export function toArrayBuffer(data: Uint8Array): ArrayBuffer {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer) {
    return data.buffer;
  }
  return data.slice().buffer as ArrayBuffer;
}

/** Size of a loader response body (ArrayBuffer, typed array or text); 0 for anything else. */
export function byteLength(data: unknown): number {
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (typeof data === 'string') return data.length;
  return 0;
}

export interface PlayheadOptions {
  /** The swarm the playhead belongs to now (the rendition being loaded), or null if unknown. */
  swarm: () => Hex40 | null;
  /** Report rate 0 while the element is paused (dash.js); otherwise its playback rate. */
  pausedIsStopped: boolean;
}

/** Feeds the engine the media element's playhead. */
export class PlayheadReporter {
  private media: HTMLMediaElement | null = null;
  private unlisten: (() => void) | null = null;
  private interval: ReturnType<typeof setInterval> | null = null;
  private lastAt = 0;

  constructor(
    private readonly driver: Driver,
    private readonly opts: PlayheadOptions,
  ) {}

  get attached(): HTMLMediaElement | null {
    return this.media;
  }

  attach(media: HTMLMediaElement): void {
    if (this.media === media) return;
    this.detach();
    this.media = media;
    const tick = () => this.send(true);
    const play = () => {
      this.driver.playerStarted();
      this.startInterval();
    };
    const pause = () => this.stopInterval();
    const listeners: Array<[string, () => void]> = [
      ['timeupdate', tick],
      ['seeking', tick],
      ['ratechange', tick],
      ['playing', play],
      ['pause', pause],
      ['ended', pause],
    ];
    for (const [event, fn] of listeners) media.addEventListener(event, fn);
    this.unlisten = () => {
      for (const [event, fn] of listeners) media.removeEventListener(event, fn);
    };
    if (!media.paused && media.readyState >= 3) this.driver.playerStarted();
    if (!media.paused) this.startInterval();
  }

  detach(): void {
    this.stopInterval();
    this.unlisten?.();
    this.unlisten = null;
    this.media = null;
  }

  /** Sends the playhead now (`force`) or if the last one is older than the interval allows. */
  send(force: boolean): void {
    const media = this.media;
    if (!media) return;
    const t = performance.now();
    if (!force && t - this.lastAt < PLAYHEAD_INTERVAL_MS * 0.8) return;
    const swarm = this.opts.swarm();
    if (!swarm) return;
    const pos = media.currentTime;
    let ahead = 0;
    const b = media.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= pos + 0.1 && b.end(i) > pos) ahead = Math.max(ahead, b.end(i) - pos);
    }
    this.lastAt = t;
    this.driver.playhead({
      type: 'playhead',
      swarm,
      positionMs: Math.max(0, Math.round(pos * 1000)),
      bufferedAheadMs: Math.round(ahead * 1000),
      rate: this.opts.pausedIsStopped && media.paused ? 0 : media.playbackRate || 1,
    });
  }

  private startInterval(): void {
    if (this.interval) return;
    this.interval = setInterval(() => this.send(false), PLAYHEAD_INTERVAL_MS);
  }

  private stopInterval(): void {
    if (this.interval) clearInterval(this.interval);
    this.interval = null;
  }
}
