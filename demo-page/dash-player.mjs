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

const dashjs = dashNs.default ?? dashNs;
const SHIM_URL = '/js-shim/dist/index.js';

async function loadShim() {
  try {
    const head = await fetch(SHIM_URL, { method: 'HEAD', cache: 'no-store' });
    if (!head.ok) return null;
    return await import(SHIM_URL);
  } catch (e) {
    console.warn('shim not loadable', e);
    return null;
  }
}

function bufferAhead(video) {
  const t = video.currentTime;
  const b = video.buffered;
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= t + 0.1 && b.end(i) >= t) return Math.max(0, b.end(i) - t);
  }
  return 0;
}

const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');

/**
 * @param {{video: HTMLVideoElement, src: string, p2p?: boolean, trackers?: string[],
 *   shim?: 'auto'|'none', verify?: boolean, dashConfig?: object, shoalConfig?: object}} opts
 *   dashConfig: passed to player.updateSettings()
 */
export async function startPlayer(opts) {
  const { video, src, p2p = true, trackers = [], shim = 'auto', verify = true } = opts;
  const m = {
    player: 'dashjs', mode: 'plain', p2pRequested: p2p, shimLoaded: false, src,
    state: 'loading', startupMs: null, stalls: 0, stalledMs: 0, watchedMs: 0,
    currentTime: 0, bufferS: 0, latencyS: null, latencySamples: [], live: null,
    level: -1, levelSwitches: 0, bitrateTimeWeighted: 0, playedFragS: 0, abrSamples: 0,
    fragments: 0, fragBytes: 0, verified: 0, corrupted: 0, verifyErrors: 0,
    shoal: null, errors: [], events: [], fatal: null,
  };
  let firstPlaying = null;
  let firstPlayingCt = 0;
  let stallStart = null;
  let curBandwidth = null;
  let lastCt = null;

  const mod = shim === 'none' ? null : await loadShim();
  let shoal = null;
  if (mod && mod.ShoalDash) {
    try {
      shoal = new mod.ShoalDash({ trackers, p2p, iceServers: [], ...(opts.shoalConfig || {}) });
      m.mode = p2p ? 'shoal' : 'shoal-p2p-off';
      m.shimLoaded = true;
    } catch (e) {
      m.errors.push(`shim init: ${e.message}`);
      shoal = null;
    }
  } else if (p2p && shim !== 'none') {
    m.errors.push('P2P requested but the shim (js-shim/dist with ShoalDash) is not built');
  }
  const player = dashjs.MediaPlayer().create();
  player.updateSettings({ debug: { logLevel: 1 }, ...(opts.dashConfig || {}) });
  if (shoal) {
    shoal.attach(player);
    const keep = (kind) => (ev) => {
      m.events.push({ t: Math.round(performance.now()), kind, ev: JSON.parse(JSON.stringify(ev ?? null)) });
      if (m.events.length > 40) m.events.shift();
      if (kind === 'error' && m.errors.length < 50) m.errors.push(`shoal error: ${ev?.message ?? ev}`);
    };
    for (const kind of ['peer', 'ban', 'error']) shoal.on(kind, keep(kind));
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
    const payload = e.response;
    if (!req || req.type !== 'MediaSegment' || !payload) return;
    const n = payload.byteLength;
    m.fragments++;
    m.fragBytes += n;
    if (!verify || n === 0) return;
    const digest = crypto.subtle.digest('SHA-256', payload);
    const u = new URL(req.url);
    const q = new URLSearchParams({ path: u.pathname });
    const r = /^(\d+)-(\d+)$/.exec(req.range || '');
    if (r) { q.set('start', r[1]); q.set('end', String(Number(r[2]) + 1)); }
    Promise.all([digest, fetch(`/_shoal/hash?${q}`, { cache: 'no-store' }).then((x) => (x.ok ? x.json() : null))])
      .then(([h, ref]) => {
        if (!ref) { m.verifyErrors++; return; }
        if (hex(h) === ref.sha256) m.verified++;
        else { m.corrupted++; m.errors.push(`corrupted: ${u.pathname} index=${req.index}`); }
      })
      .catch(() => { m.verifyErrors++; });
  });
  player.on(E.ERROR, (e) => {
    if (m.errors.length < 50) m.errors.push(`dash error ${e.error?.code ?? ''}: ${e.error?.message ?? ''}`);
  });

  video.addEventListener('playing', () => {
    const now = performance.now();
    if (firstPlaying === null) { firstPlaying = now; firstPlayingCt = video.currentTime; m.startupMs = Math.round(now); }
    if (stallStart !== null) { m.stalledMs += now - stallStart; stallStart = null; }
    m.state = 'playing';
  });
  video.addEventListener('waiting', () => {
    if (firstPlaying === null || video.seeking || stallStart !== null) return;
    stallStart = performance.now();
    m.stalls++;
    m.state = 'stalled';
  });
  video.addEventListener('ended', () => { m.state = 'ended'; });

  player.initialize(video, src, true);

  const timer = setInterval(() => {
    m.currentTime = video.currentTime;
    m.bufferS = bufferAhead(video);
    // Bitrate weighted by media time played at the rendered video representation.
    if (lastCt !== null && curBandwidth && !video.seeking) {
      const dt = video.currentTime - lastCt;
      if (dt > 0 && dt < 5) { m.bitrateTimeWeighted += curBandwidth * dt; m.playedFragS += dt; }
    }
    lastCt = video.currentTime;
    if (m.live && firstPlaying !== null) {
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
      const now = performance.now();
      const s = { ...m, latencySamples: [...m.latencySamples], errors: [...m.errors], events: [...m.events] };
      s.currentTime = video.currentTime;
      s.bufferS = bufferAhead(video);
      s.watchedMs = firstPlaying === null ? 0 : now - firstPlaying;
      s.stalledMs = m.stalledMs + (stallStart !== null ? now - stallStart : 0);
      s.avgBitrate = m.playedFragS > 0 ? m.bitrateTimeWeighted / m.playedFragS : null;
      const running = s.watchedMs - s.stalledMs;
      s.playbackRatio = running > 5000 ? Math.round(((video.currentTime - firstPlayingCt) / (running / 1000)) * 1000) / 1000 : null;
      try { s.bandwidthEstimate = player.getAverageThroughput('video') * 1000; } catch { s.bandwidthEstimate = null; }
      if (shoal) {
        try { s.shoal = { ...shoal.stats() }; } catch (e) { s.shoal = { error: String(e) }; }
        try { s.diag = JSON.parse(JSON.stringify(shoal.diagnostics())); } catch { s.diag = null; }
      }
      return s;
    },
    destroy() {
      clearInterval(timer);
      try { shoal?.destroy(); } catch { /* fail open */ }
      try { player.reset(); } catch { /* already gone */ }
    },
  };
}
