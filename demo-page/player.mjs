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
 *   shim?: 'auto'|'none', verify?: boolean, hlsConfig?: object, shoalConfig?: object}} opts
 */
export async function startPlayer(opts) {
  const { video, src, p2p = true, trackers = [], shim = 'auto', verify = true } = opts;
  const m = {
    mode: 'plain', p2pRequested: p2p, shimLoaded: false, src,
    state: 'loading', startupMs: null, stalls: 0, stalledMs: 0, watchedMs: 0,
    currentTime: 0, bufferS: 0, latencyS: null, latencySamples: [], live: null,
    level: -1, levelSwitches: 0, bitrateTimeWeighted: 0, playedFragS: 0,
    fragments: 0, fragBytes: 0, verified: 0, corrupted: 0, verifyErrors: 0,
    shoal: null, errors: [], events: [], fatal: null,
  };
  let firstPlaying = null;
  let firstPlayingCt = 0;
  let stallStart = null;

  const mod = shim === 'none' ? null : await loadShim();
  let shoal = null;
  let config = { ...(opts.hlsConfig || {}) };
  if (mod && mod.ShoalHls) {
    try {
      shoal = new mod.ShoalHls({ trackers, p2p, iceServers: [], ...(opts.shoalConfig || {}) });
      config = shoal.hlsConfig(config);
      m.mode = p2p ? 'shoal' : 'shoal-p2p-off';
      m.shimLoaded = true;
    } catch (e) {
      m.errors.push(`shim init: ${e.message}`);
      shoal = null;
    }
  } else if (p2p && shim !== 'none') {
    m.errors.push('P2P requested but the shim (js-shim/dist) is not built');
  }
  const hls = new Hls(config);
  if (shoal) {
    shoal.attach(hls);
    // Keep the shim's recent events for diagnosis (peer joins/leaves, bans, errors).
    const keep = (kind) => (ev) => {
      m.events.push({ t: Math.round(performance.now()), kind, ev: JSON.parse(JSON.stringify(ev ?? null, (k, v) => (typeof v === 'bigint' ? String(v) : v))) });
      if (m.events.length > 40) m.events.shift();
      if (kind === 'error' && m.errors.length < 50) m.errors.push(`shoal error: ${ev?.message ?? ev}`);
    };
    for (const kind of ['peer', 'ban', 'error']) {
      try { shoal.on(kind, keep(kind)); } catch { /* older shim */ }
    }
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
  hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
    const payload = d.payload;
    const n = payload ? payload.byteLength : 0;
    m.fragments++;
    m.fragBytes += n;
    if (!verify || !payload || n === 0) return;
    // digest() copies the bytes synchronously, before hls.js transfers the buffer to its worker.
    const digest = crypto.subtle.digest('SHA-256', payload);
    const u = new URL(d.frag.url);
    const q = new URLSearchParams({ path: u.pathname });
    const br = d.frag.byteRange;
    if (br && br.length === 2 && br[1] > 0) { q.set('start', String(br[0])); q.set('end', String(br[1])); }
    Promise.all([digest, fetch(`/_shoal/hash?${q}`, { cache: 'no-store' }).then((r) => (r.ok ? r.json() : null))])
      .then(([h, ref]) => {
        if (!ref) { m.verifyErrors++; return; }
        if (hex(h) === ref.sha256) m.verified++;
        else { m.corrupted++; m.errors.push(`corrupted: ${u.pathname} sn=${d.frag.sn}`); }
      })
      .catch(() => { m.verifyErrors++; });
  });
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (m.errors.length < 50) m.errors.push(`${d.fatal ? 'FATAL ' : ''}${d.type}/${d.details}`);
    if (d.fatal) {
      m.fatal = d.details;
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else if (d.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
    }
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

  hls.loadSource(src);
  hls.attachMedia(video);

  const timer = setInterval(() => {
    m.currentTime = video.currentTime;
    m.bufferS = bufferAhead(video);
    if (m.live && firstPlaying !== null) {
      const l = hls.latency;
      if (Number.isFinite(l) && l > 0) { m.latencyS = l; m.latencySamples.push(Math.round(l * 100) / 100); }
    }
  }, 1000);

  return {
    hls, shoal, video, metrics: m,
    /** A JSON-safe snapshot of the metrics. */
    snapshot() {
      const now = performance.now();
      const s = { ...m, latencySamples: [...m.latencySamples], errors: [...m.errors], events: [...m.events] };
      s.currentTime = video.currentTime;
      s.bufferS = bufferAhead(video);
      s.watchedMs = firstPlaying === null ? 0 : now - firstPlaying;
      s.stalledMs = m.stalledMs + (stallStart !== null ? now - stallStart : 0);
      s.avgBitrate = m.playedFragS > 0 ? m.bitrateTimeWeighted / m.playedFragS : null;
      // Media seconds played per wall second outside stalls: below 1 when the machine cannot
      // decode in real time (a starved renderer slows the media clock without firing 'waiting').
      const running = s.watchedMs - s.stalledMs;
      s.playbackRatio = running > 5000 ? Math.round(((video.currentTime - firstPlayingCt) / (running / 1000)) * 1000) / 1000 : null;
      s.bandwidthEstimate = hls.bandwidthEstimate;
      if (shoal) {
        try { s.shoal = { ...shoal.stats() }; } catch (e) { s.shoal = { error: String(e) }; }
        try { s.diag = typeof shoal.diagnostics === 'function' ? JSON.parse(JSON.stringify(shoal.diagnostics())) : null; } catch { s.diag = null; }
      }
      return s;
    },
    destroy() {
      clearInterval(timer);
      try { shoal?.destroy(); } catch { /* fail open */ }
      hls.destroy();
    },
  };
}
