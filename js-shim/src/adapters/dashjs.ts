/**
 * dash.js adapter: an override of dash.js's `XHRLoader` (`player.extend('XHRLoader', …, true)`)
 * that answers media-segment requests from the engine, plus the inputs the engine needs
 * (per-representation segment lists, playhead from the video element).
 *
 * Invariants:
 * - Only `MediaSegment` requests of video/audio representations go to the engine; the MPD,
 *   init segments, text, thumbnails and anything without `customData.request` keep dash.js's
 *   own XHR (the parent `load`, captured once when dash.js builds the loader).
 * - A request the engine cannot take (not loaded, P2P off, no identity), one it fails, or one
 *   still pending at dash.js's own request timeout is reloaded through the parent `load`:
 *   the player never waits on P2P longer than it would wait on HTTP. Any exception in the
 *   adapter's path also falls back to the parent `load`.
 * - Completion mimics an XHR: progress events, then response fields, then `onloadend`; an abort
 *   from dash.js cancels the engine request and fires `onabort` (dash.js's LOADING_ABANDONED).
 * - Segment identity: one swarm per (stream, period id, representation id); `seq` is the
 *   template index (`$Number$` minus startNumber, SegmentList position) or, for
 *   SegmentTimeline, the segment's start time in timescale units (stable across MPD updates).
 * - Live periods (dynamic MPD): the swarms of the representations being played in the next
 *   period are joined `PREJOIN_S` before the boundary (peers are connected when its first
 *   segments are asked for), and the swarms of a period the MPD no longer lists are left
 *   (its peer connections closed): a long session holds the swarms of about two periods.
 * - ABR timing: dash.js computes throughput from its progress traces (after the first) and
 *   drops samples whose wall-clock duration is under `streaming.cacheLoadThresholds`. The
 *   adapter reports the transfer's own timing through two traces and, only when that transfer
 *   really took longer than the threshold, holds completion until the wall clock passes it.
 * - A period's buffering completes only once its last requested segment is appended (see
 *   `BufferController` override in `attach`): dash.js 5.2 otherwise declares it complete one
 *   segment early, starts the next period and appends a late last segment at the next
 *   period's timestamp offset (a hole at the boundary, then a stall or a jump).
 */
import type { Container, DeliveryTiming, Hex40, SegmentInfo } from '../core-types.js';
import type { Driver, RequestSink } from '../driver.js';
import type { DashQoePlayer } from '../qoe.js';
import { PlayheadReporter, byteLength, newAdapterCounters, stripQuery, toArrayBuffer, type AdapterCounters } from './common.js';

/** The part of `dashjs.MediaPlayerClass` Shoal uses (a dash.js 5 `MediaPlayer` fits it). */
export interface DashPlayer extends DashQoePlayer {
  extend(name: string, child: object, override: boolean): void;
  getVideoElement?(): HTMLVideoElement;
  getSettings?(): unknown;
}

export interface DashAdapterCounters extends AdapterCounters {
  /** Requests handed to dash.js's own XHR untouched (MPD, init, text, other users). */
  passthrough: number;
  /** Deliveries whose completion was held to clear dash.js's cache threshold. */
  held: number;
}

/** dash.js `ProgressEvent`-like object its HTTPLoader reads (`time` overrides the wall clock). */
interface DashProgress {
  lengthComputable: boolean;
  loaded: number;
  total: number;
  time?: number;
  noTrace?: boolean;
}

interface DashPeriod {
  id?: string | null;
  index?: number;
  start?: number;
  duration?: number;
  mpd?: { manifest?: DashManifest };
}

interface DashManifest {
  type?: string;
  url?: string;
  originalUrl?: string;
  Period?: unknown[];
}

interface DashRepresentation {
  id?: string | number;
  bandwidth?: number;
  segmentInfoType?: string;
  media?: string;
  startNumber?: number;
  timescale?: number;
  segmentDuration?: number;
  presentationTimeOffset?: number;
  path?: number[];
  adaptation?: { index?: number; period?: DashPeriod };
}

/** The fields of dash.js's `FragmentRequest` the adapter reads. */
interface DashFragmentRequest {
  type?: string;
  mediaType?: string;
  index?: number;
  startTime?: number;
  duration?: number;
  mediaStartTime?: number;
  timescale?: number;
  range?: string | null;
  representation?: DashRepresentation;
}

interface DashCustomData {
  request?: DashFragmentRequest;
  onloadend?: () => void;
  onprogress?: (e: DashProgress) => void;
  onabort?: () => void;
  ontimeout?: (e: DashProgress) => void;
  abort?: () => void;
}

/** dash.js `CommonMediaRequest` / `CommonMediaResponse` (the fields used here). */
export interface DashMediaRequest {
  url: string;
  method?: string;
  timeout?: number;
  customData?: DashCustomData;
}

export interface DashMediaResponse {
  url?: string;
  status?: number;
  statusText?: string;
  headers?: Record<string, string>;
  data?: unknown;
}

interface XhrLoaderInstance {
  load(req: DashMediaRequest, res: DashMediaResponse): unknown;
  reset?(): void;
}

type ParentLoad = (req: DashMediaRequest, res: DashMediaResponse) => unknown;

/** The dash.js `BufferController` method the adapter wraps. */
interface BufferControllerInstance {
  segmentRequestingCompleted?(segmentIndex: number): void;
}

interface Route {
  swarm: Hex40;
  seq: number;
  url: string;
  range: { start: number; end: number } | null;
  mediaType: 'video' | 'audio';
}

const LIVE_LOOKAHEAD = 6;
/** Seconds of media before a live period's end at which the next period's swarms are joined. */
const PREJOIN_S = 10;
const MAX_SEGMENTS = 20_000;

function queryOf(url: string): string {
  const q = url.search(/[?#]/);
  return q < 0 ? '' : url.slice(q);
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** dash.js range strings are inclusive `"start-end"`; the engine's ranges are end-exclusive. */
function parseRange(r: string | null | undefined): { start: number; end: number } | null {
  if (!r) return null;
  const m = /^(\d+)-(\d+)$/.exec(String(r).trim());
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]) + 1;
  return Number.isSafeInteger(start) && Number.isSafeInteger(end) && end > start ? { start, end } : null;
}

/** SegmentTemplate identifier substitution (ISO/IEC 23009-1 5.3.9.4.4), `%0Nd` widths included. */
export function fillTemplate(t: string, id: string, number: number, bandwidth: number, time: number): string {
  return t.replace(/\$(RepresentationID|Number|Bandwidth|Time|SubNumber)?(%0(\d+)d)?\$/g, (_m, name: string | undefined, _f, width: string | undefined) => {
    if (!name) return '$';
    const v = name === 'RepresentationID' ? id : String(name === 'Number' ? number : name === 'Bandwidth' ? bandwidth : name === 'Time' ? time : 0);
    return width && name !== 'RepresentationID' ? v.padStart(Number(width), '0') : v;
  });
}

function clampBitrate(v: unknown): number {
  return Math.max(0, Math.min(0xffffffff, Math.round(num(v) ?? 0)));
}

function get(obj: unknown, key: string | number): unknown {
  return obj !== null && typeof obj === 'object' ? (obj as Record<string | number, unknown>)[key] : undefined;
}

/** Per-swarm segment list fed to the engine. */
interface SwarmState {
  live: boolean;
  bitrate: number;
  segments: Map<number, SegmentInfo>;
  expanded: boolean;
  lastFedSize: number;
  /** The MPD's Period@id (live: left when the MPD stops listing it); null without one. */
  periodId: string | null;
}

export class DashAdapter {
  private player: DashPlayer | null = null;
  private readonly playhead: PlayheadReporter;
  private mpdUrl: string | null = null;
  private readonly swarms = new Map<Hex40, SwarmState>();
  private playheadSwarm: Hex40 | null = null;
  private playheadSwarmIsVideo = false;
  readonly counters: DashAdapterCounters = { ...newAdapterCounters(), passthrough: 0, held: 0 };

  /** Called for every segment the engine delivered, keyed by dash.js's `FragmentRequest` (QoE). */
  onDelivery: ((timing: DeliveryTiming, request: object) => void) | null = null;

  constructor(
    private readonly driver: Driver,
    private readonly swarmIdOverride: string | undefined,
  ) {
    this.playhead = new PlayheadReporter(driver, { swarm: () => (this.player ? this.playheadSwarm : null), pausedIsStopped: true });
  }

  /** Installs the loader override; must run before `player.initialize()` / `attachSource()`. */
  attach(player: DashPlayer): void {
    if (this.player === player) return;
    this.detach();
    this.player = player;
    // dash.js keeps the first extension registered for a name per player: the override stays
    // installed after detach() and then passes everything through (`this.player` is null).
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const adapter = this;
    const child = function (this: { parent?: XhrLoaderInstance }): Partial<XhrLoaderInstance> {
      const parent = this.parent;
      if (!parent || typeof parent.load !== 'function') return {};
      // dash.js overwrites parent.load with ours after this returns: capture it now.
      const parentLoad: ParentLoad = parent.load.bind(parent);
      const parentReset = typeof parent.reset === 'function' ? parent.reset.bind(parent) : null;
      const jobs = new Set<Job>();
      return {
        load(req: DashMediaRequest, res: DashMediaResponse): boolean {
          adapter.load(req, res, parentLoad, jobs);
          return true;
        },
        reset(): void {
          for (const j of [...jobs]) j.cancel();
          parentReset?.();
        },
      };
    };
    player.extend('XHRLoader', child, true);
    player.extend('BufferController', DashAdapter.lastSegmentFix(() => adapter.player !== null), true);
  }

  /**
   * dash.js 5.2.1 marks a representation's buffering complete when the segment before the last
   * one is appended (`maxAppendedIndex >= maximumIndex - 1`, with `maximumIndex` the index of
   * the last segment requested), as soon as a schedule tick finds nothing left to request, and
   * that tick comes about 0.5 s after the last request whether or not it has been answered. On
   * a multi-period stream a complete period makes dash.js prepare the next one on the same
   * SourceBuffers (timestamp offset and append window of the next period); the last segment,
   * if it arrives after that, is appended a whole period late, leaving a hole before the
   * boundary that the gap controller jumps after a stall (or, seen here, jumps to the misplaced
   * segment a period ahead). Plain dash.js does the same when the CDN is slow; peer deliveries
   * at the live edge often take longer than 0.5 s, so with Shoal it happened at most boundaries.
   * Passing `index + 1` makes completion wait for the last requested segment itself; when it is
   * already appended the result is the same as dash.js's own. `active` false: dash.js unchanged.
   */
  static lastSegmentFix(active: () => boolean): (this: { parent?: BufferControllerInstance }) => BufferControllerInstance {
    return function (this: { parent?: BufferControllerInstance }): BufferControllerInstance {
      const parent = this.parent;
      if (!parent || typeof parent.segmentRequestingCompleted !== 'function') return {};
      // dash.js overwrites the parent's method with ours after this returns: capture it now.
      const original = parent.segmentRequestingCompleted.bind(parent);
      return {
        segmentRequestingCompleted(segmentIndex: number): void {
          let index = segmentIndex;
          try {
            if (active() && typeof index === 'number' && Number.isSafeInteger(index) && index >= 0) index += 1;
          } catch {
            index = segmentIndex;
          }
          original(index);
        },
      };
    };
  }

  detach(): void {
    this.playhead.detach();
    this.player = null;
    this.swarms.clear();
    this.playheadSwarm = null;
  }

  private load(req: DashMediaRequest, res: DashMediaResponse, parentLoad: ParentLoad, jobs: Set<Job>): void {
    let route: Route | null = null;
    const fr = req.customData?.request;
    try {
      if (fr?.type === 'MPD' && req.url) this.mpdUrl = req.url;
      route = this.route(req);
      if (fr?.type === 'InitializationSegment') this.noteInit(fr);
    } catch {
      route = null;
    }
    if (!route) {
      this.passThrough(req, res, parentLoad, fr?.type === 'MediaSegment' || fr?.type === 'InitializationSegment');
      return;
    }
    try {
      this.watchMedia();
      this.playhead.send(true);
      const job = new Job(this, this.driver, req, res, route, parentLoad, jobs);
      job.start();
    } catch {
      // Fail open: whatever went wrong, dash.js gets its own HTTP load.
      this.passThrough(req, res, parentLoad, true);
    }
  }

  /** dash.js's own XHR; counts the bytes of media it loads (segments and init) as fallback HTTP. */
  passThrough(req: DashMediaRequest, res: DashMediaResponse, parentLoad: ParentLoad, media: boolean, fallback = false): void {
    const cd = req.customData;
    if (media && cd && typeof cd.onloadend === 'function') {
      const onloadend = cd.onloadend;
      const fr = cd.request;
      const sample = fr?.type === 'MediaSegment' && fr.mediaType === 'video';
      const startedAt = performance.now();
      cd.onloadend = () => {
        try {
          const st = res.status ?? 0;
          if (st >= 200 && st < 300) {
            const n = byteLength(res.data);
            this.counters.fallbackHttp += n;
            if (fallback) this.counters.fragmentsFallback++;
            // The engine's HTTP reserve for urgent segments learns from the player's own loads too.
            if (sample) this.driver.httpSample(n, performance.now() - startedAt);
          }
        } catch {
          /* counting must never break the load */
        }
        onloadend();
      };
    }
    if (!fallback) this.counters.passthrough++;
    parentLoad(req, res);
  }

  /** dash.js's cache threshold (ms) for a media type; its documented defaults when unreadable. */
  cacheThresholdMs(mediaType: 'video' | 'audio'): number {
    let v: number | undefined;
    try {
      const s = this.player?.getSettings?.();
      v = num(get(get(get(s, 'streaming'), 'cacheLoadThresholds'), mediaType));
    } catch {
      v = undefined;
    }
    return v !== undefined && v >= 0 ? v : mediaType === 'video' ? 10 : 5;
  }

  private streamKey(rep: DashRepresentation): string | null {
    if (this.swarmIdOverride !== undefined) return this.swarmIdOverride;
    const m = rep.adaptation?.period?.mpd?.manifest;
    const url = m?.originalUrl || m?.url || this.mpdUrl;
    return url ? stripQuery(url) : null;
  }

  private swarmOf(streamKey: string, rep: DashRepresentation): Hex40 | null {
    const period = rep.adaptation?.period;
    const periodKey = period?.id ?? (period?.index !== undefined ? `#${period.index}` : '0');
    return this.driver.swarmFor(streamKey, `${periodKey}/${String(rep.id)}`);
  }

  /**
   * dash.js loads the init segment of the video representation it switches to before that
   * representation's first media segment (seconds later at the live edge): the playhead moves
   * to its swarm now, so the engine stops fetching ahead in the one the player left (measured:
   * a live viewer switching down received the old representation's next segment from a peer,
   * 0.5 MB it never used).
   */
  private noteInit(fr: DashFragmentRequest): void {
    const rep = fr.representation;
    if (!this.player || fr.mediaType !== 'video' || !rep || rep.id === undefined || rep.id === null) return;
    const streamKey = this.streamKey(rep);
    const swarm = streamKey === null ? null : this.swarmOf(streamKey, rep);
    if (!swarm || swarm === this.playheadSwarm) return;
    this.playheadSwarm = swarm;
    this.playheadSwarmIsVideo = true;
    this.playhead.send(true);
  }

  /** Engine target for a dash.js request, or null to leave it to dash.js's XHR. */
  private route(req: DashMediaRequest): Route | null {
    const fr = req.customData?.request;
    if (!this.player || !fr || fr.type !== 'MediaSegment') return null;
    if (fr.mediaType !== 'video' && fr.mediaType !== 'audio') return null;
    if (req.method && req.method.toUpperCase() !== 'GET') return null;
    if (!this.driver.active || !req.url) return null;
    const rep = fr.representation;
    if (!rep || rep.id === undefined || rep.id === null) return null;
    const streamKey = this.streamKey(rep);
    if (streamKey === null) return null;
    const swarm = this.swarmOf(streamKey, rep);
    if (!swarm) return null;
    let seq: number | undefined;
    if (rep.segmentInfoType === 'SegmentTimeline') {
      const ts = num(fr.timescale) ?? num(rep.timescale);
      const t = num(fr.mediaStartTime);
      if (ts !== undefined && t !== undefined) seq = Math.round(t * ts);
    } else {
      seq = num(fr.index);
    }
    if (seq === undefined || !Number.isSafeInteger(seq) || seq < 0) return null;
    const route: Route = { swarm, seq, url: req.url, range: parseRange(fr.range), mediaType: fr.mediaType };
    this.noteSegment(route, fr, rep);
    try {
      this.followPeriods(streamKey, fr, rep);
    } catch {
      /* joining and leaving period swarms is an optimisation */
    }
    if (fr.mediaType === 'video' || !this.playheadSwarmIsVideo) {
      this.playheadSwarm = swarm;
      this.playheadSwarmIsVideo = fr.mediaType === 'video';
    }
    return route;
  }

  /** Adds the requested segment (and the ones the MPD predicts) to its swarm's list. */
  private noteSegment(route: Route, fr: DashFragmentRequest, rep: DashRepresentation): void {
    const manifest = rep.adaptation?.period?.mpd?.manifest;
    const live = manifest?.type === 'dynamic';
    let st = this.swarms.get(route.swarm);
    if (!st) {
      const pid = rep.adaptation?.period?.id;
      st = {
        live,
        bitrate: clampBitrate(rep.bandwidth),
        segments: new Map(),
        expanded: false,
        lastFedSize: -1,
        periodId: typeof pid === 'string' && pid !== '' ? pid : null,
      };
      this.swarms.set(route.swarm, st);
    }
    const startS = num(fr.startTime) ?? 0;
    const durS = num(fr.duration) ?? num(rep.segmentDuration) ?? 0;
    st.segments.set(route.seq, {
      seq: route.seq,
      startMs: Math.max(0, Math.round(startS * 1000)),
      durationMs: Math.max(0, Math.round(durS * 1000)),
      url: route.url,
      range: route.range,
    });
    if (!st.expanded || live) {
      try {
        if (this.expand(st, route, fr, rep, live)) st.expanded = true;
      } catch {
        /* prediction is an optimisation: the observed requests still form a list */
      }
    }
    if (live) {
      // Keep a sliding window so the engine's live window follows the playhead.
      const keep = [...st.segments.keys()].sort((a, b) => a - b);
      const maxKeep = 4 * LIVE_LOOKAHEAD + 10;
      for (const k of keep.slice(0, Math.max(0, keep.length - maxKeep))) st.segments.delete(k);
    }
    this.feedPlaylist(route.swarm, st, live);
  }

  /**
   * Predicts the representation's other segments from its addressing (the same rules dash.js
   * applies), with URLs built on the observed request's base. Returns true when the list is
   * complete (static MPD), so it is not recomputed.
   */
  private expand(st: SwarmState, route: Route, fr: DashFragmentRequest, rep: DashRepresentation, live: boolean): boolean {
    const id = String(rep.id);
    const bw = num(rep.bandwidth) ?? 0;
    const ts = num(rep.timescale) ?? 1;
    const period = rep.adaptation?.period;
    const pStart = num(period?.start) ?? 0;
    const pDur = num(period?.duration);
    const pto = num(rep.presentationTimeOffset) ?? 0;
    const startNumber = num(rep.startNumber) ?? 1;
    const base = stripQuery(route.url);
    const query = queryOf(route.url);
    const add = (seq: number, startS: number, durS: number, url: string, range: { start: number; end: number } | null) => {
      if (st.segments.size >= MAX_SEGMENTS || st.segments.has(seq)) return;
      st.segments.set(seq, { seq, startMs: Math.max(0, Math.round(startS * 1000)), durationMs: Math.max(0, Math.round(durS * 1000)), url, range });
    };
    const type = rep.segmentInfoType;
    if (type === 'SegmentTemplate' && rep.media) {
      const index = route.seq;
      const rel = fillTemplate(rep.media, id, startNumber + index, bw, 0);
      if (!base.endsWith(rel)) return false;
      const prefix = base.slice(0, base.length - rel.length);
      const dur = num(rep.segmentDuration);
      if (!dur || dur <= 0) return false;
      let first = 0;
      let last: number;
      if (live || pDur === undefined || !Number.isFinite(pDur)) {
        first = Math.max(0, index - 2);
        last = index + LIVE_LOOKAHEAD;
        // Not past the period's end (those times belong to the next period's swarm).
        if (pDur !== undefined && Number.isFinite(pDur)) last = Math.min(last, Math.max(index, Math.ceil(pDur / dur - 1e-6) - 1));
      } else {
        last = Math.min(Math.ceil(pDur / dur - 1e-6) - 1, MAX_SEGMENTS);
      }
      for (let i = first; i <= last; i++) add(i, pStart + i * dur, dur, prefix + fillTemplate(rep.media, id, startNumber + i, bw, 0) + query, null);
      return !live;
    }
    const tpl = this.manifestElement(rep, 'SegmentTemplate');
    if (type === 'SegmentTimeline' && rep.media && tpl) {
      const t0 = Math.round((num(fr.mediaStartTime) ?? 0) * ts);
      const rel = fillTemplate(rep.media, id, 0, bw, t0);
      if (rel.includes('$') || !base.endsWith(rel) || /\$Number/.test(rep.media)) return false;
      const prefix = base.slice(0, base.length - rel.length);
      const sList = get(get(tpl, 'SegmentTimeline'), 'S');
      if (!Array.isArray(sList)) return false;
      let t = 0;
      for (const s of sList) {
        const d = num(get(s, 'd'));
        if (!d || d <= 0) return false;
        t = num(get(s, 't')) ?? t;
        let r = num(get(s, 'r')) ?? 0;
        if (r < 0) r = pDur !== undefined && Number.isFinite(pDur) ? Math.ceil(((pDur + pto) * ts - t) / d) - 1 : 0;
        for (let k = 0; k <= r && st.segments.size < MAX_SEGMENTS; k++) {
          add(t, pStart + t / ts - pto, d / ts, prefix + fillTemplate(rep.media, id, 0, bw, t) + query, null);
          t += d;
        }
      }
      return !live;
    }
    const list = this.manifestElement(rep, 'SegmentList');
    if (type === 'SegmentList' && list) {
      const urls = get(list, 'SegmentURL');
      const dur = num(rep.segmentDuration);
      if (!Array.isArray(urls) || !dur) return false;
      urls.forEach((u, i) => {
        const media = get(u, 'media');
        if (typeof media === 'string') return; // separate files: URL resolution is dash.js's job
        const range = parseRange(typeof get(u, 'mediaRange') === 'string' ? (get(u, 'mediaRange') as string) : null);
        add(i, pStart + i * dur, dur, route.url, range);
      });
      return !live;
    }
    return false;
  }

  /**
   * Live only. Leaves the swarms of periods the MPD no longer lists (nobody can ask for their
   * segments any more), and, when `fr` starts within `PREJOIN_S` of its period's end, joins the
   * next period's swarm for the same representation id (an empty list: the engine announces
   * and connects peers; the segments follow with the first request).
   */
  private followPeriods(streamKey: string, fr: DashFragmentRequest, rep: DashRepresentation): void {
    const period = rep.adaptation?.period;
    const manifest = period?.mpd?.manifest;
    const periods = manifest?.Period;
    if (manifest?.type !== 'dynamic' || !Array.isArray(periods)) return;
    const ids = periods.map((p) => get(p, 'id')).map((id) => (typeof id === 'string' || typeof id === 'number' ? String(id) : null));
    const listed = new Set(ids.filter((id): id is string => id !== null && id !== ''));
    for (const [swarm, st] of this.swarms) {
      if (!st.live || st.periodId === null || listed.has(st.periodId)) continue;
      this.swarms.delete(swarm);
      if (this.playheadSwarm === swarm) this.playheadSwarm = null;
      this.driver.leaveSwarm(swarm);
    }
    const pStart = num(period?.start);
    const pDur = num(period?.duration);
    const start = num(fr.startTime);
    if (pStart === undefined || pDur === undefined || start === undefined || pStart + pDur - start > PREJOIN_S) return;
    const i = typeof period?.id === 'string' ? ids.indexOf(period.id) : -1;
    const nextId = i >= 0 ? ids[i + 1] : undefined;
    const next = i >= 0 ? periods[i + 1] : undefined;
    if (!nextId || !next) return;
    const sets = get(next, 'AdaptationSet');
    const hasRep = Array.isArray(sets) && sets.some((a) => {
      const reps = get(a, 'Representation');
      return Array.isArray(reps) && reps.some((r) => String(get(r, 'id')) === String(rep.id));
    });
    if (!hasRep) return;
    const swarm = this.driver.swarmFor(streamKey, `${nextId}/${String(rep.id)}`);
    if (!swarm || this.swarms.has(swarm)) return;
    const st: SwarmState = { live: true, bitrate: clampBitrate(rep.bandwidth), segments: new Map(), expanded: false, lastFedSize: -1, periodId: nextId };
    this.swarms.set(swarm, st);
    this.feedPlaylist(swarm, st, true);
  }

  /** The segment addressing element for `rep` in dash.js's parsed MPD (Representation, then set, then period). */
  private manifestElement(rep: DashRepresentation, name: string): unknown {
    const path = rep.path;
    const periods = rep.adaptation?.period?.mpd?.manifest?.Period;
    if (!Array.isArray(path) || path.length < 3 || !Array.isArray(periods)) return undefined;
    const [p, a, r] = path as [number, number, number];
    const period = periods[p];
    const set = get(get(period, 'AdaptationSet'), a);
    const repEl = get(get(set, 'Representation'), r);
    return get(repEl, name) ?? get(set, name) ?? get(period, name);
  }

  private feedPlaylist(swarm: Hex40, st: SwarmState, live: boolean): void {
    if (st.segments.size === st.lastFedSize && !live) return;
    st.lastFedSize = st.segments.size;
    const segments = [...st.segments.values()].sort((a, b) => a.seq - b.seq);
    const container: Container = 'fmp4';
    this.driver.playlist({ type: 'playlist', swarm, live, container, bitrate: st.bitrate, segments });
  }

  // ------------------------------------------------------------------------- playhead

  private watchMedia(): void {
    if (this.playhead.attached || !this.player?.getVideoElement) return;
    let media: HTMLMediaElement | null = null;
    try {
      media = this.player.getVideoElement() ?? null;
    } catch {
      media = null; // not attached yet
    }
    if (media) this.playhead.attach(media);
  }
}

/** One dash.js media request answered by the engine (or, failing that, by dash.js's XHR). */
class Job {
  private req: number | null = null;
  private done = false;
  private settled = false;
  private fellBack = false;
  private holdTimer: ReturnType<typeof setTimeout> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly startedAt = performance.now();

  constructor(
    private readonly adapter: DashAdapter,
    private readonly driver: Driver,
    private readonly request: DashMediaRequest,
    private readonly response: DashMediaResponse,
    private readonly route: Route,
    private readonly parentLoad: ParentLoad,
    private readonly jobs: Set<Job>,
  ) {}

  start(): void {
    const cd = this.request.customData;
    if (!cd) throw new Error('no customData');
    cd.abort = () => this.abortByPlayer();
    this.jobs.add(this);
    const sink: RequestSink = {
      progress: (loaded, total) => this.onProgress(loaded, total),
      deliver: (data, timing) => this.onDeliver(data, timing),
      fail: () => this.fallback(),
    };
    const { swarm, seq, url, range } = this.route;
    const timeout = this.request.timeout ?? 0;
    // The engine plans within the player's limit; the timer below still fails open at it.
    const timeoutMs = timeout > 0 && Number.isFinite(timeout) ? Math.round(timeout) : null;
    const id = this.driver.request({ swarm, seq, url, range, timeoutMs }, sink);
    if (id === null) {
      this.fallback();
      return;
    }
    if (this.settled || this.fellBack) return; // answered synchronously
    this.req = id;
    if (timeout > 0 && Number.isFinite(timeout)) this.timer = setTimeout(() => this.giveUp(), timeout);
  }

  private finish(): void {
    this.done = true;
    this.req = null;
    if (this.timer) clearTimeout(this.timer);
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.timer = this.holdTimer = null;
    this.jobs.delete(this);
  }

  /** dash.js's request timeout passed while the engine still had it: load it over HTTP. */
  private giveUp(): void {
    if (this.done || this.fellBack || this.req === null) return;
    const id = this.req;
    this.req = null;
    this.driver.abort(id);
    this.fallback();
  }

  private fallback(): void {
    if (this.done || this.fellBack) return;
    this.fellBack = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.req = null;
    this.jobs.delete(this);
    this.adapter.passThrough(this.request, this.response, this.parentLoad, true, true);
  }

  private onProgress(loaded: number, total: number | null): void {
    if (this.done || this.fellBack) return;
    // No trace: dash.js's throughput comes from the transfer timing reported at delivery.
    this.request.customData?.onprogress?.({ lengthComputable: total !== null && total > 0, loaded, total: total ?? 0, noTrace: true });
  }

  private onDeliver(data: Uint8Array, timing: DeliveryTiming): void {
    if (this.done || this.settled || this.fellBack) return;
    this.settled = true;
    this.req = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.adapter.counters;
    c.deliveredHttp += timing.httpBytes;
    c.deliveredP2p += timing.p2pBytes;
    c.fragmentsEngine++;
    const transferMs = Math.max(0, timing.transferEnd - timing.transferStart);
    const threshold = this.adapter.cacheThresholdMs(this.route.mediaType);
    // dash.js's Date-based wall clock has 1 ms resolution: clear the threshold by 2 ms.
    const wait = threshold + 2 - (performance.now() - this.startedAt);
    const held = transferMs > threshold && wait > 0;
    if (held) c.held++;
    const fr = this.request.customData?.request;
    try {
      if (fr) this.adapter.onDelivery?.(timing, fr);
    } catch {
      /* metrics must not break loading */
    }
    // Always asynchronous (an XHR never completes inside send()); held, if the transfer took
    // longer than the threshold but the player asked for it less than that ago.
    const complete = () => {
      if (this.done) return;
      this.finish();
      try {
        this.complete(data, timing);
      } catch {
        /* dash.js threw in its own callbacks: nothing left for us to do */
      }
    };
    if (held) this.holdTimer = setTimeout(complete, wait);
    else queueMicrotask(complete);
  }

  private complete(data: Uint8Array, timing: DeliveryTiming): void {
    const cd = this.request.customData;
    if (!cd) return;
    const buffer = toArrayBuffer(data);
    const n = buffer.byteLength;
    const transferMs = Math.max(0, timing.transferEnd - timing.transferStart);
    const ttfb = Math.min(transferMs, Math.max(0, timing.firstByte - timing.transferStart));
    // Two traces with the transfer's own durations (`time` replaces dash.js's wall clock): the
    // first (time to first byte) is discarded by dash.js's XHR throughput rule, the second
    // carries all the bytes over the time they took to arrive.
    cd.onprogress?.({ lengthComputable: true, loaded: 0, total: n, time: Math.max(1, ttfb) });
    cd.onprogress?.({ lengthComputable: true, loaded: n, total: n, time: Math.max(1, transferMs - ttfb) });
    const r = this.response;
    r.url = this.request.url;
    r.status = this.route.range ? 206 : 200;
    r.statusText = this.route.range ? 'Partial Content' : 'OK';
    r.headers = { 'content-type': this.route.mediaType === 'video' ? 'video/mp4' : 'audio/mp4', 'content-length': String(n) };
    r.data = buffer;
    cd.onloadend?.();
  }

  /** dash.js aborted (seek, quality switch, reset): cancel the engine request, tell dash.js. */
  private abortByPlayer(): void {
    if (this.done || this.fellBack) return;
    if (this.req !== null) this.driver.abort(this.req);
    this.adapter.counters.aborted++;
    this.finish();
    this.request.customData?.onabort?.();
  }

  /** The loader is being reset: cancel silently. */
  cancel(): void {
    if (this.done || this.fellBack) return;
    if (this.req !== null) this.driver.abort(this.req);
    this.finish();
  }
}
