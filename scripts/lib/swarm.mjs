// One call to stand up what a browser test needs: media, origin, tracker, one Chromium and N
// viewers (joined staggerMs apart). Everything is torn down by close().
import { ensureMedia } from './media.mjs';
import { startOrigin } from './origin.mjs';
import { startTracker } from './tracker.mjs';
import { launchBrowser, launchViewer } from './viewers.mjs';

/**
 * @param {{viewers?: number, live?: boolean, flavour?: string, p2p?: boolean, mediaDir?: string,
 *   staggerMs?: number, idPrefix?: string, viewerOptions?: object, tracker?: boolean}} [o]
 *   tracker: false starts no tracker (viewers get a closed port: "tracker down")
 */
export async function startSwarm(o = {}) {
  const mediaDir = o.mediaDir || ensureMedia();
  const origin = await startOrigin({ mediaDir, live: !!o.live, quiet: true });
  const tracker = o.tracker === false ? null : await startTracker({ quiet: true });
  const browser = await launchBrowser();
  const src = origin.masterPath(o.flavour || 'ts');
  const trackers = tracker ? [tracker.url] : ['ws://127.0.0.1:9'];
  const viewers = [];
  const swarm = {
    origin, tracker, browser, viewers, src, trackers,
    /** Add one more viewer to the swarm. */
    async addViewer(extra = {}) {
      const v = await launchViewer({
        browser, originUrl: origin.url, id: `${o.idPrefix || 'v'}${viewers.length}`, src, p2p: o.p2p !== false,
        trackers, ...(o.viewerOptions || {}), ...extra,
      });
      viewers.push(v);
      return v;
    },
    async close() {
      await Promise.all(viewers.map((v) => v.close()));
      await browser.close().catch(() => {});
      if (tracker) await tracker.close();
      await origin.close();
    },
  };
  try {
    for (let i = 0; i < (o.viewers ?? 0); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, o.staggerMs ?? 1000));
      await swarm.addViewer();
    }
  } catch (e) {
    await swarm.close();
    throw e;
  }
  return swarm;
}
