// What player.mjs (hls.js) and dash-player.mjs (dash.js) share, so both players are measured
// the same way: loading the shim, the metrics object, startup/stall accounting on the video
// element, checking segment bytes against the origin's hashes, keeping the shim's events, and
// the common part of the snapshot. Definitions of the metrics: see player.mjs.

const SHIM_URL = '/js-shim/dist/index.js';
/** The shim's test build (fault injection, js-shim/src/testing/faults.ts); not in the package. */
const FAULTS_URL = '/js-shim/dist-test/faults.js';

/** The shim module, or null when js-shim/dist is not built (the page then plays without it). */
export async function loadShim() {
  try {
    const head = await fetch(SHIM_URL, { method: 'HEAD', cache: 'no-store' });
    if (!head.ok) return null;
    return await import(SHIM_URL);
  } catch (e) {
    console.warn('shim not loadable', e);
    return null;
  }
}

export function bufferAhead(video) {
  const t = video.currentTime;
  const b = video.buffered;
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= t + 0.1 && b.end(i) >= t) return Math.max(0, b.end(i) - t);
  }
  return 0;
}

const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');

/** The metrics both pages report; `extra` adds the player's own fields. */
export function newMetrics(src, p2p, extra = {}) {
  return {
    ...extra, mode: 'plain', p2pRequested: p2p, shimLoaded: false, src,
    state: 'loading', startupMs: null, stalls: 0, stalledMs: 0, watchedMs: 0,
    currentTime: 0, bufferS: 0, latencyS: null, latencySamples: [], live: null,
    level: -1, levelSwitches: 0, bitrateTimeWeighted: 0, playedFragS: 0,
    fragments: 0, fragBytes: 0, verified: 0, corrupted: 0, verifyErrors: 0,
    shoal: null, errors: [], events: [], fragLog: [], fatal: null,
    // Where a viewer's startup goes: ms since navigation start at which the page started the
    // player, the shim was constructed, the engine (wasm) was ready, the first media fragment
    // was requested and loaded (`mark`), and playback began (startupMs).
    trace: { start: Math.round(performance.now()) },
  };
}

/** Records the first time `name` happened (ms since navigation start) in `m.trace`. */
export function mark(m, name) {
  if (m.trace[name] === undefined) m.trace[name] = Math.round(performance.now());
}

/**
 * `new mod[className]({trackers, p2p, iceServers: [], ...shoalConfig})` from the shim, then
 * `setup(shoal)`; null without the shim or if either throws. Records the mode and failures in `m`.
 * Tests and the bench may put `testFault` (a fault name or a list, see
 * js-shim/src/testing/faults.ts) in `shoalConfig`: the engine is then wrapped by the shim's
 * test build and given as `engineModule`.
 */
export async function createShoal(m, { p2p = true, trackers = [], shim = 'auto', shoalConfig }, className, setup = () => {}) {
  const mod = shim === 'none' ? null : await loadShim();
  if (mod && mod[className]) {
    try {
      const { testFault, ...cfg } = shoalConfig || {};
      if (testFault !== undefined) cfg.engineModule = (await import(FAULTS_URL)).faultyEngineModule(testFault);
      const shoal = new mod[className]({ trackers, p2p, iceServers: [], ...cfg });
      mark(m, 'shim');
      Promise.resolve(shoal.ready).then(() => mark(m, 'engineReady'), () => {});
      setup(shoal);
      m.mode = p2p ? 'shoal' : 'shoal-p2p-off';
      m.shimLoaded = true;
      return shoal;
    } catch (e) {
      m.errors.push(`shim init: ${e.message}`);
      return null;
    }
  }
  if (p2p && shim !== 'none') m.errors.push(`P2P requested but the shim (js-shim/dist with ${className}) is not built`);
  return null;
}

/** Keeps the shim's recent peer/ban/error/CDN-health events in `m.events` for diagnosis. */
export function keepShoalEvents(m, shoal) {
  const keep = (kind) => (ev) => {
    m.events.push({ t: Math.round(performance.now()), kind, ev: JSON.parse(JSON.stringify(ev ?? null, (k, v) => (typeof v === 'bigint' ? String(v) : v))) });
    if (m.events.length > 40) m.events.shift();
    if (kind === 'error' && m.errors.length < 50) m.errors.push(`shoal error: ${ev?.message ?? ev}`);
  };
  for (const kind of ['peer', 'ban', 'error']) {
    try { shoal.on(kind, keep(kind)); } catch { /* older shim */ }
  }
  const cdn = keep('cdn');
  try { shoal.on('event', (ev) => { if (ev && (ev.kind === 'cdnDegraded' || ev.kind === 'cdnRecovered')) cdn(ev); }); } catch { /* older shim */ }
}

/**
 * Counts a media segment the player received and checks its SHA-256 against the origin's
 * (/_shoal/hash). `range`: [start, endExclusive] or null; `label` names it in an error.
 */
export function verifySegment(m, verify, payload, url, range, label) {
  const n = payload ? payload.byteLength : 0;
  m.fragments++;
  m.fragBytes += n;
  if (!verify || !payload || n === 0) return;
  // digest() copies the bytes synchronously, before a player transfers the buffer to a worker.
  const digest = crypto.subtle.digest('SHA-256', payload);
  const u = new URL(url);
  const q = new URLSearchParams({ path: u.pathname });
  if (range) { q.set('start', String(range[0])); q.set('end', String(range[1])); }
  Promise.all([digest, fetch(`/_shoal/hash?${q}`, { cache: 'no-store' }).then((r) => (r.ok ? r.json() : null))])
    .then(([h, ref]) => {
      if (!ref) { m.verifyErrors++; return; }
      if (hex(h) === ref.sha256) m.verified++;
      else { m.corrupted++; m.errors.push(`corrupted: ${u.pathname} ${label}`); }
    })
    .catch(() => { m.verifyErrors++; });
}

/**
 * Startup and stall accounting on the video element, and the common part of the snapshot.
 * Returns `snapshot(extra)`: a JSON-safe copy of `m` with the time-dependent fields filled in.
 */
export function watchPlayback(m, video, shoal) {
  let firstPlaying = null;
  let firstPlayingCt = 0;
  let stallStart = null;
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
  return {
    started: () => firstPlaying !== null,
    snapshot() {
      const now = performance.now();
      const s = { ...m, latencySamples: [...m.latencySamples], errors: [...m.errors], events: [...m.events], fragLog: [...m.fragLog], trace: { ...m.trace, playing: m.startupMs ?? undefined } };
      s.currentTime = video.currentTime;
      s.bufferS = bufferAhead(video);
      s.watchedMs = firstPlaying === null ? 0 : now - firstPlaying;
      s.stalledMs = m.stalledMs + (stallStart !== null ? now - stallStart : 0);
      s.avgBitrate = m.playedFragS > 0 ? m.bitrateTimeWeighted / m.playedFragS : null;
      // Media seconds played per wall second outside stalls: below 1 when the machine cannot
      // decode in real time (a starved renderer slows the media clock without firing 'waiting').
      const running = s.watchedMs - s.stalledMs;
      s.playbackRatio = running > 5000 ? Math.round(((video.currentTime - firstPlayingCt) / (running / 1000)) * 1000) / 1000 : null;
      if (shoal) {
        try { s.shoal = { ...shoal.stats() }; } catch (e) { s.shoal = { error: String(e) }; }
        try { s.diag = typeof shoal.diagnostics === 'function' ? JSON.parse(JSON.stringify(shoal.diagnostics())) : null; } catch { s.diag = null; }
      }
      return s;
    },
  };
}
