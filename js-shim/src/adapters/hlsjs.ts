/**
 * hls.js adapter: a fragment loader (`fLoader`) backed by the engine, and the player events the
 * engine needs (playlists, playhead, level of the fragments being loaded).
 *
 * Invariants:
 * - Playlists, keys, init segments, LL-HLS parts and non-main fragments keep hls.js's own
 *   loader (`config.loader`), sharing this loader's `stats` object (hls.js reads
 *   `frag.stats === loader.stats`).
 * - A main fragment the engine cannot take (not loaded yet, P2P off, unknown level), or one the
 *   engine fails or that exceeds hls.js's own load-policy time limits, is reloaded through
 *   `config.loader`: the player never waits on P2P longer than it would wait on HTTP.
 * - `LoaderStats` are true to the transfer (see `fillStats`). `onProgress` precedes `onSuccess`.
 */
import type Hls from 'hls.js';
import type {
  FragmentLoaderConstructor,
  FragmentLoaderContext,
  HlsConfig,
  LevelLoadedData,
  Loader,
  LoaderCallbacks,
  LoaderConfiguration,
  LoaderContext,
  LoaderStats,
} from 'hls.js';
import type { Container, DeliveryTiming, Hex40, SegmentInfo } from '../core-types.js';
import type { Driver, RequestSink } from '../driver.js';
import { PlayheadReporter, byteLength, newAdapterCounters, stripQuery, toArrayBuffer, type AdapterCounters } from './common.js';

/**
 * How a delivered segment's timing is reported to hls.js's bandwidth estimator.
 * - `'transfer'`: the transfer's own duration and time to first byte, ending at
 *   delivery. A prefetched segment reports how fast it really came, not zero; a segment whose
 *   transfer the engine deliberately delayed does not report the delay as slow bandwidth.
 * - `'request'`: from the player's request to delivery (what a plain HTTP loader would see if
 *   the bytes were fetched on demand); a cache hit looks instant.
 * - `'capacity'` (default): as `'transfer'`, but a segment that came (partly) from peers reports at most
 *   the time the viewer's own HTTP path would have taken for it, at the throughput its recent
 *   HTTP transfers showed: a peer slower than the CDN does not make the ABR pick a rendition
 *   lower than plain HTTP would sustain (the engine still falls back to HTTP for a segment the
 *   peers cannot deliver in time). Before any HTTP transfer it is `'transfer'`.
 */
export type AbrTiming = 'transfer' | 'request' | 'capacity';

/** Weight of the newest sample in the adapter's HTTP throughput average (`'capacity'`). */
const HTTP_BPS_WEIGHT = 0.5;

export type { AdapterCounters } from './common.js';

export interface HlsAdapterCounters extends AdapterCounters {
  /** Level playlists seen, and those held back until the engine loaded. */
  playlists: number;
  playlistsDeferred: number;
}

function containerOf(url: string, hasInit: boolean): Container {
  if (hasInit) return 'fmp4';
  const path = stripQuery(url).toLowerCase();
  if (path.endsWith('.ts')) return 'ts';
  if (/\.(m4s|mp4|m4v|m4a|cmfv|cmfa)$/.test(path)) return 'fmp4';
  return 'unknown';
}

function resetStats(s: LoaderStats): void {
  s.aborted = false;
  s.loaded = 0;
  s.total = 0;
  s.chunkCount = 0;
  s.bwEstimate = 0;
  s.loading = { start: 0, first: 0, end: 0 };
  s.parsing = { start: 0, end: 0 };
  s.buffering = { start: 0, first: 0, end: 0 };
}

function newStats(): LoaderStats {
  const s = {} as LoaderStats;
  resetStats(s);
  s.retry = 0;
  return s;
}

export class HlsAdapter {
  private hls: Hls | null = null;
  private readonly levelSwarms = new Map<number, Hex40>();
  /** Level playlists loaded before the engine was ready, by level index. */
  private readonly waiting = new Map<number, LevelLoadedData>();
  /** The level details last given to the engine, by level index. */
  private readonly fed = new Map<number, LevelLoadedData['details']>();
  private readonly playhead: PlayheadReporter;
  private readonly detachers: Array<() => void> = [];
  readonly counters: HlsAdapterCounters = { ...newAdapterCounters(), playlists: 0, playlistsDeferred: 0 };

  /** Average throughput (bit/s) of recent whole-segment HTTP transfers, for `'capacity'`. */
  private httpBps: number | null = null;

  /** A main fragment came over HTTP alone: `bytes` in `ms`. */
  noteHttp(bytes: number, ms: number): void {
    if (!(bytes > 0 && ms > 0)) return;
    const bps = (bytes * 8 * 1000) / ms;
    this.httpBps = this.httpBps === null ? bps : HTTP_BPS_WEIGHT * bps + (1 - HTTP_BPS_WEIGHT) * this.httpBps;
  }

  /** The ms the HTTP path would take for `bytes` at its recent throughput, or null. */
  httpMsFor(bytes: number): number | null {
    return this.httpBps === null ? null : (bytes * 8 * 1000) / this.httpBps;
  }

  /** Called for every fragment the engine delivered (QoE: time to first byte by source). */
  onDelivery: ((timing: DeliveryTiming, context: FragmentLoaderContext) => void) | null = null;

  constructor(
    private readonly driver: Driver,
    private readonly swarmIdOverride: string | undefined,
    private readonly abrTiming: AbrTiming = 'capacity',
  ) {
    this.playhead = new PlayheadReporter(driver, { swarm: () => this.playheadSwarm(), pausedIsStopped: false });
  }

  /** The swarm of hls.js level `index`, or null if it cannot be derived (yet). */
  swarmForLevel(index: number): Hex40 | null {
    const cached = this.levelSwarms.get(index);
    if (cached) return cached;
    const hls = this.hls;
    if (!hls || index < 0) return null;
    const level = hls.levels[index];
    const streamUrl = hls.url;
    if (!level || (!streamUrl && this.swarmIdOverride === undefined)) return null;
    const streamKey = this.swarmIdOverride ?? stripQuery(streamUrl ?? '');
    const swarm = this.driver.swarmFor(streamKey, stripQuery(level.uri));
    if (swarm) this.levelSwarms.set(index, swarm);
    return swarm;
  }

  attach(hls: Hls): void {
    if (this.hls === hls) return;
    this.detach();
    this.hls = hls;
    const on = <E extends Parameters<Hls['on']>[0]>(event: E, fn: Parameters<Hls['on']>[1]) => {
      hls.on(event, fn as never);
      this.detachers.push(() => hls.off(event, fn as never));
    };
    on('hlsManifestLoading' as never, (() => {
      this.levelSwarms.clear();
      this.waiting.clear();
      this.fed.clear();
    }) as never);
    on('hlsLevelsUpdated' as never, (() => this.levelSwarms.clear()) as never);
    on('hlsLevelLoaded' as never, ((_e: string, data: LevelLoadedData) => this.onLevelLoaded(data)) as never);
    on('hlsMediaAttached' as never, ((_e: string, data: { media: HTMLMediaElement }) => this.playhead.attach(data.media)) as never);
    on('hlsMediaDetaching' as never, (() => this.playhead.detach()) as never);
    on('hlsLevelSwitching' as never, (() => this.playhead.send(true)) as never);
    on('hlsDestroying' as never, (() => this.detach()) as never);
    if (hls.media) this.playhead.attach(hls.media);
  }

  detach(): void {
    this.playhead.detach();
    for (const d of this.detachers.splice(0)) d();
    this.hls = null;
    this.levelSwarms.clear();
    this.waiting.clear();
    this.fed.clear();
  }

  private onLevelLoaded(data: LevelLoadedData): void {
    const details = data.details;
    if (!details || this.fed.get(data.level) === details) return;
    this.counters.playlists++;
    const swarm = this.swarmForLevel(data.level);
    if (!swarm) {
      if (!this.driver.loading) return;
      this.counters.playlistsDeferred++;
      // The engine is not loaded yet (swarm ids come from it): replay once it is. A VOD level
      // playlist is loaded only once, so dropping it would leave the engine without it.
      if (this.waiting.size === 0) {
        void this.driver.ready.then((ok) => {
          const pending = [...this.waiting.values()];
          this.waiting.clear();
          if (ok) for (const d of pending) if (this.hls) this.onLevelLoaded(d);
        });
      }
      this.waiting.set(data.level, data);
      return;
    }
    const segments: SegmentInfo[] = [];
    let hasInit = false;
    for (const f of details.fragments) {
      if (typeof f.sn !== 'number') continue;
      if (f.initSegment) hasInit = true;
      const start = f.byteRangeStartOffset;
      const end = f.byteRangeEndOffset;
      segments.push({
        seq: f.sn,
        startMs: Math.max(0, Math.round(f.start * 1000)),
        durationMs: Math.max(0, Math.round(f.duration * 1000)),
        url: f.url,
        range: start !== undefined && end !== undefined && end > 0 ? { start, end } : null,
      });
    }
    const first = details.fragments[0];
    this.driver.playlist({
      type: 'playlist',
      swarm,
      live: details.live,
      container: first ? containerOf(first.url, hasInit) : 'unknown',
      bitrate: Math.max(0, Math.min(0xffffffff, Math.round(data.levelInfo?.bitrate ?? 0))),
      segments,
    });
    this.fed.set(data.level, details);
    this.playhead.send(true);
  }

  /** The level whose fragments are being loaded is the one prefetch should target. */
  private playheadSwarm(): Hex40 | null {
    const hls = this.hls;
    if (!hls) return null;
    return this.swarmForLevel(hls.loadLevel >= 0 ? hls.loadLevel : hls.currentLevel);
  }

  /** What the engine should load for this context, or null to use hls.js's own loader. */
  route(context: FragmentLoaderContext): { swarm: Hex40; seq: number; url: string; range: { start: number; end: number } | null } | null {
    const frag = context.frag;
    if (context.part || typeof frag.sn !== 'number' || (frag.type as string) !== 'main') return null;
    if (!this.driver.active) return null;
    const swarm = this.swarmForLevel(frag.level);
    if (!swarm) return null;
    // hls.js asks for a fragment of a level it just loaded from inside its own LEVEL_LOADED
    // dispatch, before our listener runs: give the engine that playlist first, or the
    // request would find no swarm and go to HTTP.
    const level = this.hls?.levels[frag.level];
    if (level?.details && this.fed.get(frag.level) !== level.details) {
      this.onLevelLoaded({ level: frag.level, details: level.details, levelInfo: level } as LevelLoadedData);
    }
    const rangeEnd = context.rangeEnd ?? 0;
    const range = rangeEnd > 0 ? { start: context.rangeStart ?? 0, end: rangeEnd } : null;
    // The request's deadline depends on what is buffered now (the previous fragment may have
    // been appended since the last report).
    this.playhead.send(true);
    return { swarm, seq: frag.sn, url: context.url, range };
  }

  /** The `fLoader` class to give hls.js. */
  fragmentLoaderClass(): FragmentLoaderConstructor {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const adapter = this;
    const driver = this.driver;
    const abrTiming = this.abrTiming;

    class ShoalFragmentLoader implements Loader<FragmentLoaderContext> {
      context: FragmentLoaderContext | null = null;
      stats: LoaderStats = newStats();
      private inner: Loader<LoaderContext> | null = null;
      private req: number | null = null;
      private settled = false;
      private callbacks: LoaderCallbacks<FragmentLoaderContext> | null = null;
      private loaderConfig: LoaderConfiguration | null = null;
      private ttfbTimer: ReturnType<typeof setTimeout> | null = null;
      private loadTimer: ReturnType<typeof setTimeout> | null = null;

      constructor(private readonly hlsConfig: HlsConfig) {}

      load(context: FragmentLoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<FragmentLoaderContext>): void {
        if (this.stats.loading.start) throw new Error('Loader can only be used once.');
        this.context = context;
        this.loaderConfig = config;
        this.callbacks = callbacks;
        const target = adapter.route(context);
        if (!target) {
          this.delegate();
          return;
        }
        this.stats.loading.start = performance.now();
        const sink: RequestSink = {
          progress: (loaded, total) => this.onProgressBytes(loaded, total),
          deliver: (data, timing) => this.onDeliver(data, timing),
          fail: () => this.fallback(),
        };
        const policy = config.loadPolicy;
        // The engine plans within the player's limit; the timers below still fail open at it.
        const limits = [policy.maxTimeToFirstByteMs, policy.maxLoadTimeMs].filter((t) => t > 0 && Number.isFinite(t));
        const timeoutMs = limits.length > 0 ? Math.round(Math.min(...limits)) : null;
        const req = driver.request({ ...target, timeoutMs }, sink);
        if (req === null) {
          this.delegate();
          return;
        }
        if (this.settled || this.inner) return; // answered synchronously
        this.req = req;
        if (policy.maxTimeToFirstByteMs > 0 && Number.isFinite(policy.maxTimeToFirstByteMs)) {
          this.ttfbTimer = setTimeout(() => {
            if (!this.stats.loading.first) this.giveUp();
          }, policy.maxTimeToFirstByteMs);
        }
        if (policy.maxLoadTimeMs > 0 && Number.isFinite(policy.maxLoadTimeMs)) {
          this.loadTimer = setTimeout(() => this.giveUp(), policy.maxLoadTimeMs);
        }
      }

      private clearTimers(): void {
        if (this.ttfbTimer) clearTimeout(this.ttfbTimer);
        if (this.loadTimer) clearTimeout(this.loadTimer);
        this.ttfbTimer = this.loadTimer = null;
      }

      /** hls.js's own time limit passed: stop waiting for the engine, load over HTTP. */
      private giveUp(): void {
        if (this.settled || this.inner || this.req === null) return;
        const req = this.req;
        this.req = null;
        driver.abort(req);
        this.fallback();
      }

      private fallback(): void {
        if (this.settled || this.inner || !this.callbacks) return;
        this.clearTimers();
        this.req = null;
        this.delegate();
      }

      private delegate(): void {
        const context = this.context;
        const config = this.loaderConfig;
        const callbacks = this.callbacks;
        if (!context || !config || !callbacks) return;
        const retry = this.stats.retry;
        resetStats(this.stats);
        this.stats.retry = retry;
        const DefaultLoader = this.hlsConfig.loader;
        const inner = new DefaultLoader(this.hlsConfig);
        inner.stats = this.stats;
        this.inner = inner;
        const wrapped: LoaderCallbacks<LoaderContext> = {
          onSuccess: (response, stats, ctx, nd) => {
            const n = byteLength(response.data);
            adapter.counters.fallbackHttp += n;
            adapter.counters.fragmentsFallback++;
            if ((context.frag.type as string) === 'main') {
              driver.httpSample(n, stats.loading.end - stats.loading.start);
              adapter.noteHttp(n, stats.loading.end - stats.loading.start);
            }
            callbacks.onSuccess(response, stats, ctx as FragmentLoaderContext, nd);
          },
          onError: (e, ctx, nd, stats) => callbacks.onError(e, ctx as FragmentLoaderContext, nd, stats),
          onTimeout: (stats, ctx, nd) => callbacks.onTimeout(stats, ctx as FragmentLoaderContext, nd),
        };
        if (callbacks.onAbort) {
          const onAbort = callbacks.onAbort;
          wrapped.onAbort = (stats, ctx, nd) => onAbort(stats, ctx as FragmentLoaderContext, nd);
        }
        if (callbacks.onProgress) {
          const onProgress = callbacks.onProgress;
          wrapped.onProgress = (stats, ctx, data, nd) => onProgress(stats, ctx as FragmentLoaderContext, data, nd);
        }
        inner.load(context, config, wrapped);
      }

      private onProgressBytes(loaded: number, total: number | null): void {
        if (this.settled || this.inner) return;
        const s = this.stats;
        if (loaded > 0 && !s.loading.first) s.loading.first = Math.max(s.loading.start, performance.now());
        s.loaded = loaded;
        if (total !== null && total > 0) s.total = total;
      }

      private onDeliver(data: Uint8Array, timing: DeliveryTiming): void {
        if (this.settled || this.inner || !this.callbacks || !this.context) return;
        this.settled = true;
        this.clearTimers();
        this.req = null;
        const buffer = toArrayBuffer(data);
        this.fillStats(buffer.byteLength, timing);
        adapter.counters.deliveredHttp += timing.httpBytes;
        adapter.counters.deliveredP2p += timing.p2pBytes;
        adapter.counters.fragmentsEngine++;
        const { callbacks, context } = this;
        try {
          adapter.onDelivery?.(timing, context);
        } catch {
          /* metrics must not break loading */
        }
        callbacks.onProgress?.(this.stats, context, buffer, null);
        callbacks.onSuccess({ url: context.url, data: buffer, code: 200 }, this.stats, context, null);
      }

      /**
       * `'transfer'`: report the transfer's own duration and TTFB, ending now. The engine's
       * timestamps share our clock (performance.now()), but only their differences are used.
       * `'capacity'`: the same, with a peer transfer capped at the HTTP path's time for it.
       */
      private fillStats(bytes: number, timing: DeliveryTiming): void {
        const s = this.stats;
        const end = performance.now();
        if (abrTiming === 'transfer' || abrTiming === 'capacity') {
          let duration = Math.max(0, timing.transferEnd - timing.transferStart);
          if (abrTiming === 'capacity') {
            if (timing.p2pBytes > 0) duration = Math.min(duration, adapter.httpMsFor(bytes) ?? duration);
            else if (!timing.fromCache) adapter.noteHttp(bytes, duration);
          }
          const ttfb = Math.min(duration, Math.max(0, timing.firstByte - timing.transferStart));
          s.loading.start = end - duration;
          s.loading.first = s.loading.start + ttfb;
        } else {
          s.loading.first = s.loading.first || end;
        }
        s.loading.end = end;
        s.loaded = bytes;
        s.total = bytes;
        s.chunkCount += 1;
      }

      abort(): void {
        if (this.inner) {
          this.inner.abort();
          return;
        }
        if (this.settled) return;
        this.settled = true;
        this.clearTimers();
        if (this.req !== null) {
          driver.abort(this.req);
          adapter.counters.aborted++;
        }
        this.req = null;
        this.stats.aborted = true;
        const { callbacks, context } = this;
        if (callbacks?.onAbort && context) callbacks.onAbort(this.stats, context, null);
      }

      destroy(): void {
        this.clearTimers();
        if (!this.settled && this.req !== null) {
          driver.abort(this.req);
          adapter.counters.aborted++;
        }
        this.settled = true;
        this.req = null;
        this.inner?.destroy();
        this.inner = null;
        this.callbacks = null;
        this.loaderConfig = null;
        this.context = null;
      }

      getResponseHeader(name: string): string | null {
        return this.inner?.getResponseHeader?.(name) ?? null;
      }

      getCacheAge(): number | null {
        return this.inner?.getCacheAge?.() ?? null;
      }
    }

    return ShoalFragmentLoader;
  }
}
