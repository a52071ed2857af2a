#!/usr/bin/env node
// Measures how the timing Shoal reports to hls.js (ShoalHls `abrTiming`) steers hls.js's ABR:
// N viewers play the VOD with the real engine, once per mode, behind an origin that paces every
// response at --rate bytes/s (a CDN path slower than the peers' LAN). Prints per-mode medians of
// the played bitrate, level switches, final bandwidth estimate, offload and stalls.
// Usage (inside the namespace): scripts/netns-run.sh node tests/e2e/abr.mjs [--viewers 4]
//   [--seconds 40] [--rate 400000] [--modes transfer,request] [--json FILE]
import fs from 'node:fs';
import { ensureMedia, startOrigin, startTracker, launchBrowser } from '../../scripts/lib/index.mjs';
import { openHarness, sleep } from './lib.mjs';

const args = process.argv.slice(2);
const arg = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const viewers = Number(arg('--viewers', 4));
const seconds = Number(arg('--seconds', 40));
const rate = Number(arg('--rate', 400_000));
const modes = arg('--modes', 'transfer,request').split(',');
const jsonOut = arg('--json', null);
if (process.env.SHOAL_NETNS !== '1') {
  console.error('run inside the private network namespace (scripts/netns-run.sh)');
  process.exit(2);
}

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : null;
};

const origin = await startOrigin({ mediaDir: ensureMedia(), quiet: true });
const tracker = await startTracker({ quiet: true });
const browser = await launchBrowser({ args: ['--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks'] });
const env = { origin, tracker, browser, engine: 'real', opened: [] };
const report = { date: new Date().toISOString(), viewers, seconds, rateBytesPerSec: rate, runs: {} };
for (const mode of modes) {
  await fetch(`${origin.url}/_shoal/fault`, { method: 'DELETE' });
  await fetch(`${origin.url}/_shoal/fault`, {
    method: 'POST',
    body: JSON.stringify({ mode: 'throttle', rateBps: rate, durationMs: (seconds + 60) * 1000, pathPrefix: '/media/' }),
  });
  const vs = [];
  for (let i = 0; i < viewers; i++) {
    // A swarm per mode, so runs do not share peers.
    vs.push(await openHarness(env, `abr-${mode}-${i}`, { shoal: { abrTiming: mode, swarmId: `abr-${mode}` } }));
    await sleep(2000);
  }
  await sleep(seconds * 1000);
  const snaps = await Promise.all(vs.map((v) => v.snap()));
  for (const v of vs) await v.close();
  env.opened.length = 0;
  const per = snaps.map((s) => ({
    avgBitrate: s.avgBitrate, levelSwitches: s.levelSwitches, bandwidthEstimate: s.bandwidthEstimate,
    offload: s.stats.offload, stalls: s.stalls, maxStallMs: Math.round(s.maxStallMs), t: s.currentTime,
    peers: s.stats.peers, p2pDown: s.stats.p2pDown, httpDown: s.stats.httpDown, trackers: s.diag.trackersConnected, conns: s.diag.peerConns, adapter: s.diag.adapter, engineReady: s.diag.engineReady, errors: s.errors.slice(-8), events: s.events.slice(-10), inputs: s.diag.inputs, outputs: s.diag.outputs,
  }));
  const run = {
    avgBitrateMedian: median(per.map((p) => p.avgBitrate)),
    levelSwitchesMedian: median(per.map((p) => p.levelSwitches)),
    bandwidthEstimateMedian: median(per.map((p) => p.bandwidthEstimate)),
    offloadMedian: median(per.map((p) => p.offload)),
    stalls: per.reduce((a, p) => a + p.stalls, 0),
    perViewer: per,
  };
  report.runs[mode] = run;
  console.log(`${mode.padEnd(8)} avgBitrate ${Math.round(run.avgBitrateMedian / 1000)} kbit/s, switches ${run.levelSwitchesMedian}, ` +
    `estimate ${Math.round(run.bandwidthEstimateMedian / 1000)} kbit/s, offload ${run.offloadMedian?.toFixed(2)}, stalls ${run.stalls}`);
}
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(report, null, 2));
await browser.close();
await tracker.close();
await origin.close();
