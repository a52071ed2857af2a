#!/usr/bin/env node
// Runs inside the private namespace for `npm run demo -- --viewers N`: recreates the host's
// origin and tracker ports on the namespace's loopback (bridged over Unix sockets, see
// bridge.mjs), so viewers use exactly the URLs the human's page uses, then launches N headless
// viewers that report their metrics to the origin every second. Stops on SIGINT/SIGTERM or when
// its parent goes away.
import { tcpToUnix } from './bridge.mjs';
import { launchBrowser, launchViewer } from './viewers.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : d);
const originPort = Number(opt('--origin-port'));
const trackerPort = Number(opt('--tracker-port'));
const n = Number(opt('--viewers', 3));
const p2p = opt('--p2p', '1') !== '0';
const src = opt('--src');
const player = opt('--player', 'hlsjs');

const servers = [await tcpToUnix(originPort, opt('--origin-sock')), await tcpToUnix(trackerPort, opt('--tracker-sock'))];
const browser = await launchBrowser();
const viewers = [];
let stopping = false;
const stop = async (code = 0) => {
  if (stopping) return;
  stopping = true;
  await Promise.all(viewers.map((v) => v.close()));
  await browser.close().catch(() => {});
  servers.forEach((s) => s.close());
  process.exit(code);
};
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
const ppid = process.ppid;
setInterval(() => { if (process.ppid !== ppid) stop(0); }, 2000).unref();

for (let i = 0; i < n && !stopping; i++) {
  try {
    viewers.push(await launchViewer({
      browser, originUrl: `http://127.0.0.1:${originPort}`, id: `headless-${i + 1}`, src, p2p,
      trackers: [`ws://127.0.0.1:${trackerPort}`], report: true, player,
    }));
  } catch (e) {
    console.error(`ns-swarm: viewer ${i + 1}: ${e.message}`);
  }
  await new Promise((r) => setTimeout(r, 1000)); // staggered joins
}
