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
import { createShoal, keepShoalEvents, newMetrics, verifySegment, watchPlayback } from './player-common.mjs';

const dashjs = dashNs.default ?? dashNs;

/**
 * @param {{video: HTMLVideoElement, src: string, p2p?: boolean, trackers?: string[],
 *   shim?: 'auto'|'none', verify?: boolean, dashConfig?: object, shoalConfig?: object}} opts
 *   dashConfig: passed to player.updateSettings()
 */
export async function startPlayer(opts) {
  const { video, src, p2p = true, verify = true } = opts;
  const m = newMetrics(src, p2p, { player: 'dashjs', abrSamples: 0 });
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
  player.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
    const req = e.request;
    if (!req || req.type !== 'MediaSegment' || !e.response) return;
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
