// The local origin ("CDN") the demo, the benchmark and the browser tests fetch from.
//
// Routes (all GET unless noted; CORS open; byte ranges answered with 206):
//   /media/<path>            the media folder as is (VOD)
//   /live/<path>             the same folder as a live stream: any media playlist becomes a
//                            sliding window advancing on a wall clock, looping the VOD
//                            segments; segment URIs are `<playlist>@<seq>.<ext>` (unique per
//                            sequence number, so caches stay correct), mapped to VOD segment
//                            seq % count; EXT-X-DISCONTINUITY where the loop restarts.
//                            An .mpd becomes a dynamic MPD looping the VOD one (lib/dash-live.mjs);
//                            `?t0=<epoch ms>` sets that MPD's availabilityStartTime (tests)
//   /demo/…                  demo-page/ ; /node_modules/{hls.js,uplot}/dist/… ; /js-shim/dist/… ;
//                            /js-shim/dist-test/… (test build: fault injection) ;
//                            /e2e/… tests/e2e/pages (browser-test harness pages)
//   /_shoal/stats            JSON: bytes served per client (POST /_shoal/stats/reset clears)
//   /_shoal/fault            GET: active faults; POST JSON {mode:'fail'|'stall'|'throttle',
//                            status?, rateBps?, durationMs, clients?: string[], clientPrefix?,
//                            pathPrefix?} adds one; DELETE clears all
//   /_shoal/hash?path=P[&start=S&end=E]   SHA-256 (hex) of the bytes the origin serves at P
//                            (E exclusive), so pages can check delivered bytes are genuine
//   /_shoal/report           POST JSON {viewer, …}: a viewer's latest stats; GET: all of them
//   /_shoal/info             JSON: live clock, window, playlists
//   /_shoal/config           JSON: {live, ...opts.config} (tracker port, default source for pages)
//
// Clients are told apart by, in order: `?viewer=` query param, `x-shoal-viewer` header,
// `shoal_viewer` cookie. Headless viewers get the cookie from their browser context, so the
// same attribution applies whether bytes are fetched by hls.js's loader or by the shim's
// fetch (a query param would change segment URLs and thus swarm ids).
// Only media segments count as CDN bytes (`segmentBytes`); playlists and page assets are
// reported separately. Bytes are counted as they are written to the socket.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { liveDashMpd } from './dash-live.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const TYPES = {
  '.m3u8': 'application/vnd.apple.mpegurl', '.ts': 'video/mp2t', '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4', '.m4a': 'audio/mp4', '.m4v': 'video/mp4', '.aac': 'audio/aac',
  '.mpd': 'application/dash+xml', '.html': 'text/html; charset=utf-8', '.js': 'text/javascript',
  '.mjs': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.wasm': 'application/wasm', '.map': 'application/json', '.svg': 'image/svg+xml',
};
const SEGMENT_EXT = new Set(['.ts', '.m4s', '.mp4', '.m4a', '.m4v', '.aac', '.cmfv', '.cmfa', '.webm']);

/**
 * Cache-Control of a response. Live segments are never cached: live DASH loops the VOD
 * presentation under the same segment URLs, so a browser cache would answer every loop after
 * the first without a byte reaching the origin and the viewer's CDN bytes would be undercounted
 * (a real live stream never repeats a segment URL). VOD segments stay cacheable.
 */
export function segmentCacheControl(kind, urlPath) {
  if (kind === 'segment') return urlPath.startsWith('/live/') ? 'no-store' : 'public, max-age=86400';
  return urlPath.startsWith('/media/') ? 'max-age=1' : 'no-cache';
}
const STATIC_MOUNTS = [
  ['/demo/', 'demo-page'],
  ['/node_modules/hls.js/dist/', 'node_modules/hls.js/dist'],
  ['/node_modules/uplot/dist/', 'node_modules/uplot/dist'],
  ['/node_modules/dashjs/dist/', 'node_modules/dashjs/dist'],
  ['/js-shim/dist/', 'js-shim/dist'],
  ['/js-shim/dist-test/', 'js-shim/dist-test'],
  ['/e2e/', 'tests/e2e/pages'],
];

/** Parse a media playlist into segments with absolute file paths and optional byte ranges. */
export function parseMediaPlaylist(text, file) {
  const dir = path.dirname(file);
  const segs = [];
  const header = [];
  let dur = null;
  let range = null;
  let lastEnd = 0;
  let map = null;
  let target = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#EXTINF:')) dur = parseFloat(line.slice(8));
    else if (line.startsWith('#EXT-X-BYTERANGE:')) {
      const [len, off] = line.slice(17).split('@');
      const start = off !== undefined ? Number(off) : lastEnd;
      range = [start, start + Number(len)];
    } else if (line.startsWith('#EXT-X-TARGETDURATION:')) target = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-MAP:')) { map = line; header.push(line); }
    else if (line.startsWith('#EXT-X-VERSION') || line.startsWith('#EXT-X-INDEPENDENT')) header.push(line);
    else if (!line.startsWith('#')) {
      if (dur === null) continue;
      const f = path.resolve(dir, decodeURIComponent(line.split('?')[0]));
      segs.push({ file: f, duration: dur, range, ext: path.extname(f) || '.ts' });
      if (range) lastEnd = range[1];
      dur = null;
      range = null;
    }
  }
  return { segs, header, map, target: target || Math.ceil(Math.max(...segs.map((s) => s.duration), 1)) };
}

function isInside(base, p) {
  const rel = path.relative(base, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function parseCookies(h) {
  const out = {};
  for (const part of (h || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

async function readBody(req, limit = 1 << 20) {
  const chunks = [];
  let n = 0;
  for await (const c of req) {
    n += c.length;
    if (n > limit) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Start the origin.
 * @param {{mediaDir?: string, hosts?: string[], port?: number, live?: boolean,
 *   windowSegments?: number, quiet?: boolean, config?: object}} [opts]  hosts: addresses to listen
 *   on (same port); config: extra JSON served at /_shoal/config (the demo page reads it)
 * @returns {Promise<Origin>}  {url, urls, port, mediaDir, masters, masterUrl(flavour?), stats(),
 *   resetStats(), addFault(f), clearFaults(), reports(), close()}
 */
export async function startOrigin({
  mediaDir = path.join(ROOT, 'media'), hosts = ['127.0.0.1'], port = 0, live = false,
  windowSegments = 6, quiet = false, config = {},
} = {}) {
  mediaDir = path.resolve(mediaDir);
  // The live clock starts "window + 1" segments in the past so the first playlist is full.
  const playlists = new Map(); // absolute playlist path -> parsed
  const loadPlaylist = async (file) => {
    let p = playlists.get(file);
    if (!p) {
      p = parseMediaPlaylist(await fsp.readFile(file, 'utf8'), file);
      if (!p.segs.length) throw new Error(`no segments in ${file}`);
      let acc = 0;
      p.cumEnd = p.segs.map((s) => (acc += s.duration));
      p.loopDur = acc;
      playlists.set(file, p);
    }
    return p;
  };
  const liveT0 = Date.now() - (windowSegments + 1) * 2000;

  const clients = new Map();
  const client = (id) => {
    let c = clients.get(id);
    if (!c) {
      c = { segmentBytes: 0, segmentRequests: 0, playlistBytes: 0, playlistRequests: 0, otherBytes: 0,
        faulted: 0, aborted: 0, status: {}, segmentLog: [] };
      clients.set(id, c);
    }
    return c;
  };
  let faults = [];
  const reports = new Map();
  const hashCache = new Map();

  const activeFault = (id, urlPath) => {
    const now = Date.now();
    faults = faults.filter((f) => f.until > now);
    return faults.find((f) =>
      (!f.clients || f.clients.includes(id)) &&
      (!f.clientPrefix || id.startsWith(f.clientPrefix)) &&
      (!f.pathPrefix || urlPath.startsWith(f.pathPrefix)));
  };

  /** Map a request path to {file, range?, kind, body?} or null. */
  const resolve = async (urlPath, query = null) => {
    if (urlPath.startsWith('/media/')) {
      const f = path.resolve(mediaDir, '.' + urlPath.slice(6));
      if (!isInside(mediaDir, f)) return null;
      const ext = path.extname(f);
      return { file: f, kind: ext === '.m3u8' || ext === '.mpd' ? 'playlist' : SEGMENT_EXT.has(ext) ? 'segment' : 'other' };
    }
    if (urlPath.startsWith('/live/')) {
      const f = path.resolve(mediaDir, '.' + urlPath.slice(5));
      if (!isInside(mediaDir, f)) return null;
      const base = path.basename(f);
      const m = /^(.+)@(\d+)(\.[A-Za-z0-9]+)$/.exec(base);
      if (m) {
        const p = await loadPlaylist(path.join(path.dirname(f), m[1] + '.m3u8'));
        const seq = Number(m[2]);
        const s = p.segs[seq % p.segs.length];
        return { file: s.file, range: s.range, kind: 'segment' };
      }
      if (path.extname(f) === '.mpd') {
        // `?t0=<epoch ms>` moves this MPD's live clock (a test puts a period boundary where it
        // wants it); dash.js keeps the query when it refreshes the MPD.
        const t0q = Number(query?.get('t0'));
        const t0Ms = Number.isSafeInteger(t0q) && t0q > 0 && t0q <= Date.now() ? t0q : liveT0;
        const mpd = liveDashMpd(await fsp.readFile(f, 'utf8'), { t0Ms, windowS: windowSegments * 2 });
        return { body: Buffer.from(mpd), kind: 'playlist', type: TYPES['.mpd'], live: true };
      }
      if (path.extname(f) === '.m3u8') {
        const text = await fsp.readFile(f, 'utf8');
        if (!text.includes('#EXTINF')) return { body: Buffer.from(text), kind: 'playlist', type: TYPES['.m3u8'] };
        return { body: Buffer.from(livePlaylist(await loadPlaylist(f), path.basename(f, '.m3u8'))), kind: 'playlist', type: TYPES['.m3u8'], live: true };
      }
      const ext = path.extname(f);
      return { file: f, kind: SEGMENT_EXT.has(ext) ? 'segment' : 'other' };
    }
    for (const [prefix, dir] of STATIC_MOUNTS) {
      if (urlPath.startsWith(prefix)) {
        const base = path.join(ROOT, dir);
        let f = path.resolve(base, '.' + urlPath.slice(prefix.length - 1));
        if (!isInside(base, f)) return null;
        if (urlPath.endsWith('/')) f = path.join(f, 'index.html');
        return { file: f, kind: 'other' };
      }
    }
    return null;
  };

  const liveEdge = (p, nowMs = Date.now()) => {
    const elapsed = (nowMs - liveT0) / 1000;
    const loops = Math.floor(elapsed / p.loopDur);
    const rem = elapsed - loops * p.loopDur;
    let k = 0;
    while (k < p.cumEnd.length && p.cumEnd[k] <= rem) k++;
    return loops * p.segs.length + k - 1; // last complete sequence number
  };
  const segStartMs = (p, seq) => {
    const n = p.segs.length;
    const idx = seq % n;
    return liveT0 + (Math.floor(seq / n) * p.loopDur + (p.cumEnd[idx] - p.segs[idx].duration)) * 1000;
  };

  function livePlaylist(p, name) {
    const n = p.segs.length;
    const last = liveEdge(p);
    const first = Math.max(0, last - windowSegments + 1);
    const out = ['#EXTM3U', ...p.header.filter((h) => !h.startsWith('#EXT-X-MAP')),
      `#EXT-X-TARGETDURATION:${p.target}`, `#EXT-X-MEDIA-SEQUENCE:${first}`,
      // Segment s has discontinuity number floor(s / n): one per completed loop.
      `#EXT-X-DISCONTINUITY-SEQUENCE:${Math.floor(first / n)}`];
    if (p.map) out.push(p.map);
    for (let s = first; s <= last; s++) {
      const seg = p.segs[s % n];
      if (s % n === 0 && s !== first) out.push('#EXT-X-DISCONTINUITY');
      out.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(segStartMs(p, s)).toISOString()}`);
      out.push(`#EXTINF:${seg.duration.toFixed(6)},`, `${name}@${s}${seg.ext}`);
    }
    return out.join('\n') + '\n';
  }

  const sha256 = async (file, range) => {
    const key = `${file}|${range ? range.join('-') : ''}`;
    let h = hashCache.get(key);
    if (!h) {
      h = new Promise((res, rej) => {
        const hash = crypto.createHash('sha256');
        fs.createReadStream(file, range ? { start: range[0], end: range[1] - 1 } : {})
          .on('data', (d) => hash.update(d)).on('end', () => res(hash.digest('hex'))).on('error', rej);
      });
      hashCache.set(key, h);
      h.catch(() => hashCache.delete(key));
    }
    return h;
  };

  const json = (res, code, obj) => {
    const b = Buffer.from(JSON.stringify(obj));
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': b.length, 'cache-control': 'no-store' });
    res.end(b);
  };

  const statsObj = () => {
    const out = { clients: {}, total: { segmentBytes: 0, segmentRequests: 0, playlistBytes: 0, otherBytes: 0 } };
    for (const [id, c] of clients) {
      out.clients[id] = { ...c, status: { ...c.status }, segmentLog: c.segmentLog.map((e) => ({ ...e })) };
      out.total.segmentBytes += c.segmentBytes;
      out.total.segmentRequests += c.segmentRequests;
      out.total.playlistBytes += c.playlistBytes;
      out.total.otherBytes += c.otherBytes;
    }
    return out;
  };

  const addFault = (f) => {
    const mode = f.mode;
    if (!['fail', 'stall', 'throttle'].includes(mode)) throw new Error('mode must be fail|stall|throttle');
    const fault = {
      mode, status: Number(f.status || 503), rateBps: Number(f.rateBps || 100_000),
      until: Date.now() + Number(f.durationMs || 10_000),
      clients: f.clients ? [].concat(f.clients) : undefined, clientPrefix: f.clientPrefix, pathPrefix: f.pathPrefix,
    };
    // Requests a 'stall' fault holds; released when it ends early (endFault / clearFaults).
    Object.defineProperty(fault, 'held', { value: new Set(), enumerable: false });
    faults.push(fault);
    if (!quiet) console.log(`origin: fault ${JSON.stringify(fault)}`);
    return fault;
  };

  /** Ends a fault now: stalled requests it holds are served at once. */
  const endFault = (f) => {
    f.until = Math.min(f.until, Date.now());
    faults = faults.filter((x) => x !== f);
    for (const release of f.held || []) release();
  };
  const clearFaults = () => { for (const f of [...faults]) endFault(f); faults = []; };

  async function control(req, res, u) {
    const route = u.pathname;
    if (route === '/_shoal/stats') return json(res, 200, statsObj());
    if (route === '/_shoal/stats/reset' && req.method === 'POST') { clients.clear(); return json(res, 200, { ok: true }); }
    if (route === '/_shoal/fault') {
      if (req.method === 'DELETE') { clearFaults(); return json(res, 200, { ok: true }); }
      if (req.method === 'POST') {
        try { return json(res, 200, addFault(JSON.parse(await readBody(req)))); } catch (e) { return json(res, 400, { error: e.message }); }
      }
      faults = faults.filter((f) => f.until > Date.now());
      return json(res, 200, { faults });
    }
    if (route === '/_shoal/hash') {
      const p = u.searchParams.get('path') || '';
      let r;
      try { r = await resolve(new URL(p, 'http://x').pathname); } catch { r = null; }
      if (!r || !r.file || r.kind === 'playlist') return json(res, 404, { error: 'not a servable file' });
      let range = r.range;
      const s = u.searchParams.get('start');
      const e = u.searchParams.get('end');
      if (s !== null && e !== null && Number(e) > 0) {
        const off = range ? range[0] : 0;
        range = [off + Number(s), off + Number(e)];
      }
      try { return json(res, 200, { path: p, range: range || null, sha256: await sha256(r.file, range) }); } catch { return json(res, 404, { error: 'missing' }); }
    }
    if (route === '/_shoal/report') {
      if (req.method === 'POST') {
        try {
          const r = JSON.parse(await readBody(req));
          reports.set(String(r.viewer), { ...r, at: Date.now() });
          return json(res, 200, { ok: true });
        } catch (e) { return json(res, 400, { error: e.message }); }
      }
      const now = Date.now();
      return json(res, 200, { reports: [...reports.values()].filter((r) => now - r.at < 15_000) });
    }
    if (route === '/_shoal/config') return json(res, 200, { live, ...config });
    if (route === '/_shoal/info') {
      const info = { live, windowSegments, liveStartedAt: new Date(liveT0).toISOString(), playlists: {} };
      for (const [f, p] of playlists) info.playlists[path.relative(mediaDir, f)] = { segments: p.segs.length, loopSeconds: p.loopDur, liveEdge: liveEdge(p) };
      return json(res, 200, info);
    }
    return json(res, 404, { error: 'unknown control route' });
  }

  async function handle(req, res) {
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-headers', 'range, x-shoal-viewer, content-type');
    res.setHeader('access-control-allow-methods', 'GET, HEAD, POST, DELETE, OPTIONS');
    res.setHeader('access-control-expose-headers', 'content-length, content-range, x-shoal-client');
    if (req.method === 'OPTIONS') { res.writeHead(204); return res.end(); }
    const u = new URL(req.url, 'http://origin');
    if (u.pathname.startsWith('/_shoal/')) return control(req, res, u);
    if (u.pathname === '/' || u.pathname === '/demo') { res.writeHead(302, { location: '/demo/' }); return res.end(); }
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405); return res.end(); }

    const id = u.searchParams.get('viewer') || req.headers['x-shoal-viewer'] ||
      parseCookies(req.headers.cookie).shoal_viewer || `anon-${req.socket.remoteAddress}`;
    let r;
    try { r = await resolve(decodeURIComponent(u.pathname), u.searchParams); } catch { r = null; }
    if (!r) { res.writeHead(404); return res.end(); }
    const c = client(String(id));
    const bump = (code) => { c.status[code] = (c.status[code] || 0) + 1; };
    // Per-request segment log (path, range, bytes sent, aborted): where a viewer's CDN bytes went.
    const logEntry = r.kind === 'segment' && c.segmentLog.length < 2000
      ? { t: Date.now(), path: u.pathname, range: req.headers.range || null, bytes: 0, aborted: false } : null;
    if (logEntry) c.segmentLog.push(logEntry);
    const count = (n) => {
      if (logEntry) logEntry.bytes += n;
      if (r.kind === 'segment') c.segmentBytes += n;
      else if (r.kind === 'playlist') c.playlistBytes += n;
      else c.otherBytes += n;
    };
    if (r.kind === 'segment') c.segmentRequests++;
    if (r.kind === 'playlist') c.playlistRequests++;

    if (r.kind === 'segment') {
      const f = activeFault(String(id), u.pathname);
      if (f && f.mode === 'fail') { c.faulted++; bump(f.status); res.writeHead(f.status, { 'content-length': 0 }); return res.end(); }
      if (f && f.mode === 'stall') {
        c.faulted++;
        // Hold the request without a byte until the fault window closes, then serve it.
        await new Promise((ok) => {
          const done = () => { clearTimeout(t); f.held.delete(done); ok(); };
          const t = setTimeout(done, Math.max(0, f.until - Date.now()));
          f.held.add(done);
          res.on('close', done);
        });
        if (res.destroyed || res.writableEnded) { c.aborted++; return; }
      }
      r.throttle = f && f.mode === 'throttle' ? f : null;
      if (r.throttle) c.faulted++;
    }

    if (r.body) {
      bump(200);
      res.writeHead(200, { 'content-type': r.type, 'content-length': r.body.length, 'cache-control': 'no-cache' });
      if (req.method === 'HEAD') return res.end();
      count(r.body.length);
      return res.end(r.body);
    }
    let st;
    try { st = await fsp.stat(r.file); } catch { st = null; }
    if (!st || !st.isFile()) { bump(404); res.writeHead(404); return res.end(); }
    let [start, end] = r.range || [0, st.size]; // end exclusive
    let code = 200;
    const headers = {
      'content-type': TYPES[path.extname(r.file)] || 'application/octet-stream',
      'accept-ranges': 'bytes', 'x-shoal-client': String(id),
      'cache-control': segmentCacheControl(r.kind, u.pathname),
    };
    const rh = req.headers.range;
    if (rh) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(rh.trim());
      const len = end - start;
      let a; let b;
      if (m && m[1] !== '') { a = Number(m[1]); b = m[2] !== '' ? Math.min(Number(m[2]) + 1, len) : len; }
      else if (m && m[2] !== '') { a = Math.max(0, len - Number(m[2])); b = len; }
      if (a === undefined || a >= b || a >= len) {
        bump(416);
        res.writeHead(416, { 'content-range': `bytes */${len}` });
        return res.end();
      }
      headers['content-range'] = `bytes ${a}-${b - 1}/${len}`;
      start += a; end = start + (b - a);
      code = 206;
    }
    headers['content-length'] = end - start;
    bump(code);
    res.writeHead(code, headers);
    if (req.method === 'HEAD' || end === start) return res.end();
    const stream = fs.createReadStream(r.file, { start, end: end - 1, highWaterMark: 64 * 1024 });
    res.on('close', () => { if (!res.writableFinished) { c.aborted++; if (logEntry) logEntry.aborted = true; stream.destroy(); } });
    stream.on('error', () => res.destroy());
    if (!r.throttle) {
      stream.on('data', (d) => {
        count(d.length);
        if (!res.write(d)) { stream.pause(); res.once('drain', () => stream.resume()); }
      });
      stream.on('end', () => res.end());
      return;
    }
    // Throttled: pace 16 KiB slices at the fault's byte rate while the fault lasts.
    const f = r.throttle;
    for await (const d of stream) {
      for (let o = 0; o < d.length; o += 16384) {
        if (res.destroyed) return;
        const part = d.subarray(o, o + 16384);
        if (Date.now() < f.until) await new Promise((ok) => setTimeout(ok, (part.length / f.rateBps) * 1000));
        count(part.length);
        if (!res.write(part)) await new Promise((ok) => res.once('drain', ok));
      }
    }
    res.end();
  }

  const servers = [];
  let actualPort = port;
  for (const host of hosts) {
    const s = http.createServer((req, res) => {
      handle(req, res).catch((e) => {
        if (!quiet) console.error(`origin: ${req.url}: ${e.message}`);
        if (!res.headersSent) { res.writeHead(500); res.end(); } else res.destroy();
      });
    });
    s.keepAliveTimeout = 30_000;
    await new Promise((ok, fail) => { s.once('error', fail); s.listen(actualPort, host, ok); });
    actualPort = s.address().port;
    servers.push(s);
  }
  const fmtHost = (h) => (h.includes(':') ? `[${h}]` : h);
  const urls = hosts.map((h) => `http://${fmtHost(h)}:${actualPort}`);
  const masters = readMasters(mediaDir);
  const origin = {
    url: urls[0], urls, port: actualPort, mediaDir, live, masters,
    /** URL path (no host) of a flavour's master playlist in the origin's mode. */
    masterPath: (flavour = 'ts', asLive = live) => `/${asLive ? 'live' : 'media'}/${masters[flavour] || Object.values(masters)[0]}`,
    stats: statsObj,
    resetStats: () => clients.clear(),
    addFault,
    endFault,
    clearFaults,
    reports: () => [...reports.values()],
    close: () => Promise.all(servers.map((s) => new Promise((ok) => { s.close(() => ok()); s.closeAllConnections?.(); }))),
  };
  if (!quiet) console.log(`origin: serving ${path.relative(process.cwd(), mediaDir) || mediaDir} at ${urls.join(' ')} (${live ? 'live' : 'vod'}; master ${origin.masterPath()})`);
  return origin;
}

/** Master playlists of a media folder, by flavour: gen-media's manifest, else found by walking. */
export function readMasters(mediaDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(mediaDir, 'manifest.json'), 'utf8')).masters || {};
  } catch {
    return findPlaylists(mediaDir);
  }
}

/** For a folder not made by gen-media: pick master playlists (or a lone media playlist). */
export function findPlaylists(dir) {
  const found = [];
  const walk = (d, depth) => {
    if (depth > 4) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.name.endsWith('.m3u8')) found.push(p);
    }
  };
  walk(dir, 0);
  const masters = found.filter((f) => fs.readFileSync(f, 'utf8').includes('#EXT-X-STREAM-INF'));
  const pick = masters.length ? masters : found;
  const out = {};
  pick.sort().forEach((f, i) => { out[i === 0 ? 'default' : `p${i}`] = path.relative(dir, f).split(path.sep).join('/'); });
  return out;
}
