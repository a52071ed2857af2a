// Headless Chromium viewers (playwright-core driving Debian's /usr/bin/chromium).
// One browser process hosts many viewers, each in its own context (separate cookies, cache,
// storage and renderer), which is much lighter on 2 cores than a browser per viewer and keeps
// WebRTC between contexts working. Pass {separate: true} to launchViewer to get a browser of
// its own (fresh user-data dir) instead.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.SHOAL_CHROMIUM || '/usr/bin/chromium';

export const viewerFlags = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // Host candidates must carry the namespace address, not an mDNS name peers cannot resolve.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // Viewers are never in the foreground; don't let Chromium slow their timers.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** @param {{headless?: boolean, args?: string[]}} [opts] */
export async function launchBrowser({ headless = true, args = [] } = {}) {
  return chromium.launch({ executablePath: CHROMIUM, headless, args: [...viewerFlags, ...args] });
}

/**
 * Open one viewer.
 * @param {{browser?: import('playwright-core').Browser, separate?: boolean, originUrl: string,
 *   id: string, src: string, p2p?: boolean, trackers?: string[], shim?: 'auto'|'none',
 *   verify?: boolean, report?: boolean, hlsConfig?: object, shoalConfig?: object,
 *   readyTimeoutMs?: number}} o  src: playlist path on the origin (e.g. '/live/ts/master.m3u8')
 */
export async function launchViewer(o) {
  const own = !o.browser || o.separate;
  const browser = own ? await launchBrowser() : o.browser;
  const context = await browser.newContext({ viewport: { width: 400, height: 260 } });
  // The origin attributes bytes by this cookie, whoever (hls.js or the shim) makes the request.
  await context.addCookies([{ name: 'shoal_viewer', value: o.id, url: o.originUrl }]);
  const page = await context.newPage();
  const log = [];
  page.on('console', (msg) => {
    if ((msg.type() === 'error' || msg.type() === 'warning') && log.length < 200) log.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (e) => { if (log.length < 200) log.push(`pageerror: ${e.message}`); });
  const q = new URLSearchParams({
    src: o.src, viewer: o.id, p2p: o.p2p === false ? '0' : '1', tracker: (o.trackers || []).join(','),
    shim: o.shim || 'auto', verify: o.verify === false ? '0' : '1', report: o.report ? '1' : '0',
  });
  if (o.hlsConfig) q.set('hls', JSON.stringify(o.hlsConfig));
  if (o.player) q.set('player', o.player);
  if (o.dashConfig) q.set('dash', JSON.stringify(o.dashConfig));
  if (o.shoalConfig) q.set('shoal', JSON.stringify(o.shoalConfig));
  await page.goto(`${o.originUrl}/demo/viewer.html?${q}`);
  await page.waitForFunction(() => window.shoalViewer || window.shoalViewerError, null, { timeout: o.readyTimeoutMs ?? 30_000 });
  const err = await page.evaluate(() => window.shoalViewerError);
  if (err) throw new Error(`viewer ${o.id}: ${err}`);
  // Keep the engine events the attack and outage figures need (bans, failed verifications,
  // CDN path health), with their page time, beyond the player's short event ring.
  await page.evaluate(() => {
    const keep = [];
    window.__shoalCoreEvents = keep;
    const sh = window.shoalViewer && window.shoalViewer.shoal;
    if (!sh || typeof sh.on !== 'function') return;
    sh.on('event', (ev) => {
      const k = ev && ev.kind;
      if (k === 'peerBanned' || k === 'verificationFailed' || /cdn/i.test(String(k)) || k === 'manifestRejected' || k === 'segmentLoaded') {
        if (keep.length < 2000) keep.push({ t: Math.round(performance.now()), ...JSON.parse(JSON.stringify(ev, (_, v) => (typeof v === 'bigint' ? String(v) : v))) });
      }
    });
  });
  const viewer = {
    id: o.id, page, context, browser, log,
    /** QoE snapshot (see demo-page/player.mjs). */
    metrics: () => page.evaluate(() => window.shoalViewer.snapshot()),
    /** Engine events kept since the page opened: peerBanned, verificationFailed, cdn*, manifestRejected, segmentLoaded. */
    coreEvents: () => page.evaluate(() => window.__shoalCoreEvents || []),
    /** Our engine's peer id (tracker peer_id), once it announced; null without the shim. */
    peerId: () => page.evaluate(() => window.shoalViewer.shoal?.diagnostics?.().peerId ?? null),
    /** Wait until pred(metrics) is true; rejects after timeoutMs. */
    async waitFor(pred, timeoutMs = 30_000, pollMs = 250) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = await viewer.metrics();
        if (pred(m)) return m;
        if (Date.now() > end) throw new Error(`viewer ${o.id}: condition not met in ${timeoutMs} ms (state ${m.state}, t=${m.currentTime})`);
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
    async close() {
      await page.evaluate(() => window.shoalViewer?.destroy()).catch(() => {});
      await context.close().catch(() => {});
      if (own) await browser.close().catch(() => {});
    },
  };
  return viewer;
}
