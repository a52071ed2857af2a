// The dash.js counterpart of player.mjs: plays an MPD with dash.js, with ShoalDash (P2P on or
// off) or plain dash.js, and records the same QoE snapshot, so the benchmark and the demo
// measure both players the same way. Differences from player.mjs:
//   avgBitrate    time-weighted bandwidth of the *video* representation being rendered
//                 (QUALITY_CHANGE_RENDERED), over media time played
//   levelSwitches video QUALITY_CHANGE_RENDERED events after the first
//   latencyS      player.getCurrentLiveLatency() (dynamic MPDs only)
//   fragBytes     bytes of media segments dash.js loaded (FRAGMENT_LOADING_COMPLETED, any source)
//   abrSamples    throughput samples dash.js's ABR stored (THROUGHPUT_MEASUREMENT_STORED)
import * as dashNs from '/node_modules/dashjs/dist/modern/esm/dash.all.min.js';
import { createShoal, keepShoalEvents, mark, newMetrics, verifySegment, watchPlayback } from './player-common.mjs';

const dashjs = dashNs.default ?? dashNs;

/**
 * @param {{video: HTMLVideoElement, src: string, p2p?: boolean, trackers?: string[],
 *   shim?: 'auto'|'none', verify?: boolean, dashConfig?: object, shoalConfig?: object}} opts
 *   dashConfig: passed to player.updateSettings()
 */
export async function startPlayer(opts) {
  const { video, src, p2p = true, verify = true } = opts;
  const m = newMetrics(src, p2p, { player: 'dashjs', abrSamples: 0, loads: [] });
  let curBandwidth = null;
  let lastCt = null;

  const shoal = await createShoal(m, opts, 'ShoalDash');
  const player = dashjs.MediaPlayer().create();
  player.updateSettings({ debug: { logLevel: 1 }, ...(opts.dashConfig || {}) });
  if (shoal) {
    shoal.attach(player);
    keepShoalEvents(m, shoal);
  }

  const E = dashjs.MediaPlayer.events;
  player.on(E.STREAM_INITIALIZED, () => { try { m.live = player.isDynamic(); } catch { /* not ready */ } });
  player.on(E.QUALITY_CHANGE_RENDERED, (e) => {
    if (e.mediaType !== 'video') return;
    const rep = e.newRepresentation;
    if (m.level !== -1 && rep && rep.index !== m.level) m.levelSwitches++;
    m.level = rep ? rep.index : m.level;
    curBandwidth = rep ? rep.bandwidth : curBandwidth;
  });
  player.on(E.THROUGHPUT_MEASUREMENT_STORED, () => { m.abrSamples++; });
  // Every media segment load dash.js made (where bytes go): page time, type, representation,
  // index, media start, bytes, and how it ended.
  const logLoad = (e, end) => {
    const req = e.request;
    if (!req || m.loads.length >= 1000) return;
    m.loads.push({
      t: Math.round(performance.now()), end, type: req.type === 'MediaSegment' ? 'media' : req.type, mediaType: req.mediaType,
      rep: req.representation?.id ?? null, period: req.representation?.adaptation?.period?.id ?? null, index: req.index,
      start: Number.isFinite(req.startTime) ? Math.round(req.startTime * 100) / 100 : null,
      bytes: e.response && e.response.byteLength !== undefined ? e.response.byteLength : null,
      buffer: Math.round(bufferAhead() * 10) / 10,
    });
  };
  const bufferAhead = () => {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= video.currentTime + 0.1 && b.end(i) > video.currentTime) return b.end(i) - video.currentTime;
    return 0;
  };
  player.on(E.QUALITY_CHANGE_REQUESTED, (e) => {
    if (m.loads.length < 1000) m.loads.push({ t: Math.round(performance.now()), end: 'switch', mediaType: e.mediaType, rep: e.newRepresentation?.id ?? null, from: e.oldRepresentation?.id ?? null, reason: e.reason ? JSON.stringify(e.reason).slice(0, 120) : null, buffer: Math.round(bufferAhead() * 10) / 10 });
  });
  player.on(E.MANIFEST_LOADED, () => mark(m, 'manifest'));
  player.on(E.FRAGMENT_LOADING_STARTED, (e) => {
    if (e.request?.type === 'MediaSegment' && e.request.mediaType === 'video') mark(m, 'fragRequest');
    logLoad(e, 'start');
  });
  player.on(E.FRAGMENT_LOADING_ABANDONED, (e) => logLoad(e, 'abandoned'));
  player.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
    logLoad(e, 'done');
    const req = e.request;
    if (!req || req.type !== 'MediaSegment' || !e.response) return;
    if (req.mediaType === 'video') mark(m, 'fragLoaded');
    const r = /^(\d+)-(\d+)$/.exec(req.range || '');
    verifySegment(m, verify, e.response, req.url, r ? [Number(r[1]), Number(r[2]) + 1] : null, `index=${req.index}`);
  });
  player.on(E.ERROR, (e) => {
    if (m.errors.length < 50) m.errors.push(`dash error ${e.error?.code ?? ''}: ${e.error?.message ?? ''}`);
  });

  const playback = watchPlayback(m, video, shoal);
  player.initialize(video, src, true);

  const timer = setInterval(() => {
    // Bitrate weighted by media time played at the rendered video representation.
    if (lastCt !== null && curBandwidth && !video.seeking) {
      const dt = video.currentTime - lastCt;
      if (dt > 0 && dt < 5) { m.bitrateTimeWeighted += curBandwidth * dt; m.playedFragS += dt; }
    }
    lastCt = video.currentTime;
    if (m.live && playback.started()) {
      try {
        const l = player.getCurrentLiveLatency();
        if (Number.isFinite(l) && l > 0) { m.latencyS = l; m.latencySamples.push(Math.round(l * 100) / 100); }
      } catch { /* not available */ }
    }
  }, 1000);

  return {
    player, shoal, video, metrics: m,
    /** A JSON-safe snapshot of the metrics (same shape as player.mjs's). */
    snapshot() {
      const s = playback.snapshot();
      try { s.bandwidthEstimate = player.getAverageThroughput('video') * 1000; } catch { s.bandwidthEstimate = null; }
      return s;
    },
    destroy() {
      clearInterval(timer);
      try { shoal?.destroy(); } catch { /* fail open */ }
      try { player.reset(); } catch { /* already gone */ }
    },
  };
}
