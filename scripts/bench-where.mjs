#!/usr/bin/env node
// Where a benchmark run's CDN bytes went, from the JSON `npm run bench -- ... --json FILE` wrote
// (the origin's per-request segment log of every viewer, `perViewer[].cdnLog`):
//   first copies   the first fetch of each distinct segment URL/range (the swarm needs it once)
//   join extra     further copies a viewer fetched within 3 s of its own first segment request
//                  (its startup: due at once, so over HTTP by design)
//   steady extra   every other further copy (live-edge collisions, ABR re-downloads, and the
//                  engine's spot checks, reported apart as well)
//   spot checks    HTTP bytes the engine fetched but did not deliver (httpDown - deliveredHttp)
//   wasted P2P     peer bytes received but never delivered to the player (p2pDown - deliveredP2p)
// Usage: node scripts/bench-where.mjs FILE [--mode shoal] [--segments]
import fs from 'node:fs';

const argv = process.argv.slice(2);
const file = argv.find((a) => !a.startsWith('--'));
if (!file) { console.error('usage: node scripts/bench-where.mjs FILE [--mode shoal] [--segments]'); process.exit(2); }
const mode = argv.includes('--mode') ? argv[argv.indexOf('--mode') + 1] : 'shoal';
const report = JSON.parse(fs.readFileSync(file, 'utf8'));
const run = report.runs?.[mode];
if (!run) { console.error(`no run '${mode}' in ${file}`); process.exit(2); }
const viewers = run.perViewer.filter((v) => Array.isArray(v.cdnLog));
if (!viewers.length) { console.error('no cdnLog in this report (older bench)'); process.exit(2); }

const MB = (b) => (b / 1e6).toFixed(2);
const joinEnd = Object.fromEntries(viewers.map((v) => [v.id, Math.min(...v.cdnLog.map((e) => e.t)) + 3000]));
const all = viewers.flatMap((v) => v.cdnLog.map((e) => ({ ...e, v: v.id }))).sort((a, b) => a.t - b.t);
const t0 = all.length ? all[0].t : 0;
const copies = new Map();
const sums = { first: 0, joinExtra: 0, steadyExtra: 0, aborted: 0 };
for (const e of all) {
  const k = e.path + (e.range ? ` ${e.range}` : '');
  if (e.aborted) sums.aborted += e.bytes;
  if (!copies.has(k)) { copies.set(k, [e]); sums.first += e.bytes; continue; }
  copies.get(k).push(e);
  if (e.t < joinEnd[e.v]) sums.joinExtra += e.bytes;
  else sums.steadyExtra += e.bytes;
}
const sh = (v, f) => (v.shoal && v.diag?.adapter ? f(v.shoal, v.diag.adapter) : 0);
const spot = viewers.reduce((a, v) => a + sh(v, (s, ad) => Math.max(0, (s.httpDown || 0) - (ad.deliveredHttp || 0))), 0);
const wasted = viewers.reduce((a, v) => a + sh(v, (s, ad) => Math.max(0, (s.p2pDown || 0) - (ad.deliveredP2p || 0))), 0);
const cdn = viewers.reduce((a, v) => a + v.cdnBytes, 0);
console.log(`${file} (${mode}): offload ${run.offload}, CDN ${MB(cdn)} MB, level switches ${run.levelSwitches}`);
console.log(`  first copies ${MB(sums.first)} MB, join extra ${MB(sums.joinExtra)} MB, steady extra ${MB(sums.steadyExtra)} MB` +
  ` (of which spot checks ${MB(spot)} MB), aborted ${MB(sums.aborted)} MB; wasted P2P ${MB(wasted)} MB`);
for (const v of viewers) {
  console.log(`  ${v.id}: CDN ${MB(v.cdnBytes)} MB in ${v.cdnLog.length} requests, P2P ${MB(v.p2pBytes)} MB, switches ${v.levelSwitches}, stalls ${v.stalls}`);
}
if (argv.includes('--segments')) {
  for (const [k, l] of copies) {
    if (l.length < 2) continue;
    console.log(`  ${k.replace(/^.*\//, '').padEnd(24)} ${l.map((e) => `${e.v.replace(/^.*-/, '')}@${((e.t - t0) / 1000).toFixed(1)}s${e.aborted ? '(aborted)' : ''}`).join(' ')}`);
  }
}
