// The demo page: plays the origin's stream with Shoal and charts, every second, where this
// page's bytes came from, the whole swarm's bytes (viewers report to the origin, the origin
// counts CDN bytes itself), offload, peers and buffer. Query: ?src=…&p2p=0&tracker=ws://…
import uPlot from '/node_modules/uplot/dist/uPlot.esm.js';

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
const cfg = await fetch('/_shoal/config').then((r) => r.json()).catch(() => ({}));
// The tracker listens next to the origin; use the host the page was opened with, so the demo
// also works through a port forward.
const trackers = q.get('tracker')
  ? q.get('tracker').split(',')
  : cfg.trackerPort ? [`ws://${location.hostname}:${cfg.trackerPort}`] : [];
// ?player=dashjs|hlsjs switches the player (dash.js + ShoalDash plays an MPD); default: the
// origin's choice, or dash.js for an .mpd source.
const playerKind = q.get('player') || (q.get('src') ? (/\.mpd(\?|$)/.test(q.get('src')) ? 'dashjs' : 'hlsjs') : cfg.player) || 'hlsjs';
const defaultSrc = playerKind === 'dashjs' ? `/${cfg.live === false ? 'media' : 'live'}/dash/number/manifest.mpd` : '/live/ts/master.m3u8';
const src = q.get('src') || (cfg.src && (cfg.player || 'hlsjs') === playerKind ? cfg.src : defaultSrc);
const { startPlayer } = await import(playerKind === 'dashjs' ? './dash-player.mjs' : './player.mjs');
const p2p = q.get('p2p') !== '0';
const viewer = q.get('viewer') || 'page-' + Math.random().toString(36).slice(2, 6);
document.cookie = `shoal_viewer=${encodeURIComponent(viewer)}; path=/; SameSite=Lax`;
$('p2p').checked = p2p;
// The consent switch: live through shoal.setP2P when the page started with P2P on (peers and
// tracker close at once, playback goes on over HTTP); otherwise reload with the new setting.
$('p2p').onchange = () => {
  q.set('p2p', $('p2p').checked ? '1' : '0');
  const sh = window.shoalDemo?.shoal;
  if (p2p && sh && typeof sh.setP2P === 'function') {
    sh.setP2P($('p2p').checked);
    history.replaceState(null, '', `?${q}`);
    $('mode').textContent = `Shoal loaded, P2P ${$('p2p').checked ? 'on' : 'off'} (setP2P)`;
  } else {
    location.search = q;
  }
};
$('info').textContent = `${playerKind === 'dashjs' ? 'dash.js' : 'hls.js'} · ${src} · tracker ${trackers.join(', ') || 'none'} · you are ${viewer} · `;
const other = playerKind === 'dashjs' ? 'hlsjs' : 'dashjs';
const sw = Object.assign(document.createElement('a'), { href: `?player=${other}${p2p ? '' : '&p2p=0'}`, textContent: `switch to ${other === 'dashjs' ? 'dash.js' : 'hls.js'}` });
$('info').append(sw);

for (const b of document.querySelectorAll('button[data-fault]')) {
  b.onclick = () => fetch('/_shoal/fault', {
    method: 'POST',
    body: JSON.stringify({ mode: b.dataset.fault, durationMs: 10_000, status: 503, rateBps: 200_000 }),
  });
}
$('clear').onclick = () => fetch('/_shoal/fault', { method: 'DELETE' });

// `npm run demo -- --protect`: the origin names a signed manifest and its public key.
const integ = cfg.integrity && playerKind === 'hlsjs' && (!q.get('src') || q.get('src') === cfg.src) ? cfg.integrity : null;
const shoalConfig = integ ? { integrityManifestUrl: new URL(integ.manifestPath, location.href).href, integrityPublicKey: integ.publicKey } : {};
const player = await startPlayer({ video: $('video'), src, p2p, trackers, shoalConfig });
window.shoalDemo = player;
$('mode').textContent = player.shoal
  ? `Shoal loaded, P2P ${p2p ? 'on' : 'off'}`
  : 'Shoal shim not available (js-shim/dist not built?): plain hls.js, CDN only';
showIntegrity(player.shoal, integ);

/** The integrity line: what checks peers' bytes, and what they caught so far. */
function showIntegrity(sh, integ) {
  const el = $('integrity');
  if (!sh) return;
  const n = { manifestRejected: 0, verificationFailed: 0, peerBanned: 0, spotCheckFailed: 0 };
  let manifestError = '';
  try {
    sh.on('event', (ev) => { if (ev && ev.kind in n) n[ev.kind]++; });
    sh.on('error', (e) => { if (e && e.code === 'manifest') manifestError = e.message; });
  } catch { return; }
  const render = () => {
    const st = sh.stats();
    const caught = `bad chunks ${n.verificationFailed}, failed spot checks ${n.spotCheckFailed}, peers banned ${n.peerBanned}`;
    if (integ) {
      const ok = n.manifestRejected === 0 && !manifestError;
      el.className = `row ${ok ? 'ok' : 'err'}`;
      el.textContent = `🔒 integrity ON: every chunk from a peer is checked against the signed manifest ${integ.manifestPath} ` +
        `(key ${integ.publicKey.slice(0, 20)}…) before the player sees it; ${(st.p2pDown / 1e6).toFixed(1)} MB from peers verified; ${caught}` +
        (ok ? '' : `; manifest problem: ${manifestError || `${n.manifestRejected} rejected`} (peers unused until it is fixed)`);
    } else {
      el.className = 'row mut';
      el.textContent = `integrity: structural checks + spot checks (no signed manifest; run the demo with --protect); ${caught}`;
    }
  };
  render();
  setInterval(render, 1000);
}

const MAXPTS = 300;
const series = { t: [], p2pRate: [], cdnRate: [], swarmP2p: [], swarmCdn: [], offPage: [], offSwarm: [], peers: [], buf: [] };
const push = (k, v) => { series[k].push(v); if (series[k].length > MAXPTS) series[k].shift(); };
const css = getComputedStyle(document.documentElement);
const P2P = css.getPropertyValue('--p2p').trim();
const CDN = css.getPropertyValue('--cdn').trim();
const axes = [{ stroke: '#9aa0a6', grid: { stroke: '#2c3036' } }, { stroke: '#9aa0a6', grid: { stroke: '#2c3036' }, size: 64 }];
const mk = (el, labels, colors, extra = {}) => {
  const width = () => Math.max(300, $(el).clientWidth);
  const u = new uPlot({
    width: width(), height: 200, axes, scales: { x: { time: true } },
    series: [{}, ...labels.map((l, i) => ({ label: l, stroke: colors[i], width: 2, fill: extra.fill ? colors[i] + '33' : undefined }))],
    ...extra.opts,
  }, [[], ...labels.map(() => [])], $(el));
  addEventListener('resize', () => u.setSize({ width: width(), height: 200 }));
  return u;
};
const cRate = mk('c-rate', ['P2P', 'CDN'], [P2P, CDN], { fill: true });
const cSwarm = mk('c-swarm', ['P2P', 'CDN'], [P2P, CDN], { fill: true });
const cOff = mk('c-off', ['this page', 'swarm'], [P2P, '#8ab4f8'], { opts: { scales: { x: { time: true }, y: { range: [0, 100] } } } });
const cPeers = mk('c-peers', ['peers', 'buffer (s)'], ['#8ab4f8', '#fdd663']);

let last = null;
const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '–');
const mb = (b) => (b / 1e6).toFixed(1);

const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : '–');
const kbps = (x) => (Number.isFinite(x) ? `${(x / 1000).toFixed(0)} kbit/s` : '–');
function renderQoe() {
  const tbody = $('qoe').querySelector('tbody');
  const sh = player.shoal;
  if (!sh || typeof sh.qoe !== 'function') {
    tbody.innerHTML = '<tr><td class="mut">QoE API not available with this player</td></tr>';
    return;
  }
  let m;
  try { m = sh.qoe(); } catch { return; }
  const rows = [
    ['startup', ms(m.startupMs)],
    ['time to first byte: CDN / P2P', `${ms(m.ttfb.http)} / ${ms(m.ttfb.p2p)} (${m.ttfbSamples.http} / ${m.ttfbSamples.p2p} transfers)`],
    ['rebuffering', `${m.rebufferCount} stall(s), ${ms(m.rebufferMs)}, ratio ${(m.rebufferRatio * 100).toFixed(2)}%`],
    ['bitrate: effective / level', `${kbps(m.effectiveBitrate)} / ${kbps(m.levelBitrate)}`],
    ['bytes: CDN / P2P / uploaded', `${mb(m.bytes.http)} / ${mb(m.bytes.p2p)} / ${mb(m.bytes.upload)} MB`],
    ['offload, peers', `${pct(m.offload)}, ${m.peers}`],
  ];
  tbody.innerHTML = '';
  for (const [k, v] of rows) {
    const tr = document.createElement('tr');
    for (const text of [k, v]) tr.appendChild(Object.assign(document.createElement('td'), { textContent: text }));
    tbody.appendChild(tr);
  }
}

setInterval(async () => {
  renderQoe();
  const s = player.snapshot();
  const now = Date.now() / 1000;
  const sh = s.shoal && !s.shoal.error ? s.shoal : null;
  const p2pB = sh ? sh.p2pDown || 0 : 0;
  const cdnB = sh ? sh.httpDown || 0 : s.fragBytes;
  const dt = last ? now - last.t : 1;
  push('t', now);
  push('p2pRate', last ? ((p2pB - last.p2p) * 8) / 1000 / dt : 0);
  push('cdnRate', last ? ((cdnB - last.cdn) * 8) / 1000 / dt : 0);
  last = { t: now, p2p: p2pB, cdn: cdnB };
  const offPage = p2pB + cdnB ? p2pB / (p2pB + cdnB) : 0;

  // Report ourselves, then read everyone's reports and the origin's own CDN count.
  fetch('/_shoal/report', { method: 'POST', body: JSON.stringify({ viewer, ...s, latencySamples: undefined, errors: s.errors.slice(-3) }) }).catch(() => {});
  const [rep, st] = await Promise.all([
    fetch('/_shoal/report').then((r) => r.json()).catch(() => ({ reports: [] })),
    fetch('/_shoal/stats').then((r) => r.json()).catch(() => null),
  ]);
  const reports = rep.reports.sort((a, b) => String(a.viewer).localeCompare(String(b.viewer)));
  const swarmP2p = reports.reduce((a, r) => a + (r.shoal?.p2pDown || 0), 0);
  const swarmCdn = st ? st.total.segmentBytes : 0;
  const offSwarm = swarmP2p + swarmCdn ? swarmP2p / (swarmP2p + swarmCdn) : 0;
  push('swarmP2p', swarmP2p / 1e6);
  push('swarmCdn', swarmCdn / 1e6);
  push('offPage', offPage * 100);
  push('offSwarm', offSwarm * 100);
  push('peers', sh ? sh.peers ?? 0 : 0);
  push('buf', s.bufferS);

  cRate.setData([series.t, series.p2pRate, series.cdnRate]);
  cSwarm.setData([series.t, series.swarmP2p, series.swarmCdn]);
  cOff.setData([series.t, series.offPage, series.offSwarm]);
  cPeers.setData([series.t, series.peers, series.buf]);

  $('k-off').textContent = pct(offPage);
  $('k-swarm').textContent = pct(offSwarm);
  $('k-peers').textContent = sh ? String(sh.peers ?? 0) : '–';
  $('k-buf').textContent = `${s.bufferS.toFixed(1)} s`;
  $('err').textContent = s.errors.slice(-3).join('\n');

  const tbody = $('swarm').querySelector('tbody');
  tbody.innerHTML = '';
  for (const r of reports) {
    const o = st?.clients?.[r.viewer]?.segmentBytes || 0;
    const p = r.shoal?.p2pDown || 0;
    const tr = document.createElement('tr');
    const cells = [r.viewer + (r.viewer === viewer ? ' (you)' : ''), r.mode, r.state, `${(r.bufferS || 0).toFixed(1)} s`,
      pct(p + o ? p / (p + o) : 0), mb(p), mb(o), r.shoal?.peers ?? '–', r.startupMs ? `${r.startupMs} ms` : '–', r.stalls];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = String(c); tr.appendChild(td); }
    tbody.appendChild(tr);
  }
}, 1000);
