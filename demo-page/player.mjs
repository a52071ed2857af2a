// Plays a stream with hls.js, with Shoal (P2P on or off) or plain hls.js, and records the
// viewer's experience. Shared by the demo page (index.html) and the headless viewer page
// (viewer.html) used by the benchmark and the browser tests, so every run measures the same way.
//
// QoE definitions (all times from performance.now(), i.e. since navigation start):
//   startupMs     navigation start -> first `playing` (includes loading the shim and its wasm)
//   stalls        `waiting` events after the first `playing`, not caused by a seek
//   stalledMs     time spent in those stalls (an open stall counts up to now)
//   watchedMs     first `playing` -> now
//   latencyS      hls.latency (live only): distance behind the live edge
//   playbackRatio media seconds played per wall-clock second outside stalls (1 = real time)
//   fragBytes     bytes of media fragments hls.js loaded (any source)
//   corrupted     fragments whose bytes differ from the origin's (SHA-256 via /_shoal/hash)
import Hls from '/node_modules/hls.js/dist/hls.mjs';
import { createShoal, keepShoalEvents, mark, newMetrics, verifySegment, watchPlayback } from './player-common.mjs';

/**
 * @param {{video: HTMLVideoElement, src: string, p2p?: boolean, trackers?: string[],
 *   shim?: 'auto'|'none', verify?: boolean, hlsConfig?: object, shoalConfig?: object}} opts
 */
export async function startPlayer(opts) {
  const { video, src, p2p = true, verify = true } = opts;
  const m = newMetrics(src, p2p);
  let config = { ...(opts.hlsConfig || {}) };
  const shoal = await createShoal(m, opts, 'ShoalHls', (sh) => { config = sh.hlsConfig(config); });
  const hls = new Hls(config);
  if (shoal) {
    shoal.attach(hls);
    keepShoalEvents(m, shoal);
  }

  hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
  hls.on(Hls.Events.LEVEL_LOADED, (_, d) => { m.live = !!d.details.live; });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => {
    if (m.level !== -1 && d.level !== m.level) m.levelSwitches++;
    m.level = d.level;
  });
  hls.on(Hls.Events.FRAG_CHANGED, (_, d) => {
    const lvl = hls.levels[d.frag.level];
    if (lvl && d.frag.duration > 0) {
      m.bitrateTimeWeighted += lvl.bitrate * d.frag.duration;
      m.playedFragS += d.frag.duration;
    }
  });
  // Per fragment: when it was requested and loaded (ms since navigation start) and the bytes
  // Shoal took over HTTP and from peers meanwhile (the bench JSON's `fragLog`).
  let last = { http: 0, p2p: 0 };
  const srcBytes = () => {
    try { const s = shoal?.stats(); return { http: s?.httpDown ?? 0, p2p: s?.p2pDown ?? 0 }; } catch { return last; }
  };
  hls.on(Hls.Events.MANIFEST_LOADED, () => mark(m, 'manifest'));
  hls.on(Hls.Events.FRAG_LOADING, (_, d) => {
    if (d.frag.type !== 'main') return;
    d.frag.shoalAt = Math.round(performance.now());
    mark(m, 'fragRequest');
  });
  hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
    if (d.frag.type === 'main') mark(m, 'fragLoaded');
    if (d.frag.type === 'main' && m.fragLog.length < 200) {
      const now = srcBytes();
      m.fragLog.push({ sn: d.frag.sn, level: d.frag.level, at: d.frag.shoalAt ?? null, t: Math.round(performance.now()),
        http: now.http - last.http, p2p: now.p2p - last.p2p });
      last = now;
    }
    const br = d.frag.byteRange;
    verifySegment(m, verify, d.payload, d.frag.url, br && br.length === 2 && br[1] > 0 ? br : null, `sn=${d.frag.sn}`);
  });
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (m.errors.length < 50) m.errors.push(`${d.fatal ? 'FATAL ' : ''}${d.type}/${d.details}`);
    if (d.fatal) {
      m.fatal = d.details;
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else if (d.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
    }
  });

  const playback = watchPlayback(m, video, shoal);
  hls.loadSource(src);
  hls.attachMedia(video);

  const timer = setInterval(() => {
    if (m.live && playback.started()) {
      const l = hls.latency;
      if (Number.isFinite(l) && l > 0) { m.latencyS = l; m.latencySamples.push(Math.round(l * 100) / 100); }
    }
  }, 1000);

  return {
    hls, shoal, video, metrics: m,
    /** A JSON-safe snapshot of the metrics. */
    snapshot() {
      const s = playback.snapshot();
      s.bandwidthEstimate = hls.bandwidthEstimate;
      return s;
    },
    destroy() {
      clearInterval(timer);
      try { shoal?.destroy(); } catch { /* fail open */ }
      hls.destroy();
    },
  };
}
