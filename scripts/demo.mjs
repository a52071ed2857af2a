#!/usr/bin/env node
// The demo (run through scripts/demo.sh):
//   node scripts/demo.mjs [--vod] [--viewers N] [--port 8080] [--tracker-port 8000]
//        [--host 127.0.0.1] [--flavour ts|fmp4|byterange] [--media DIR] [--viewers-p2p 0]
//        [--player hlsjs|dashjs]   (dashjs: media/dash/<--flavour number|time|ranges>/manifest.mpd)
//        [--protect]   signed integrity manifests, every viewer checks peers' bytes against them
//                      (hls.js; key in .cache/demo-protect/, see scripts/demo-protect.mjs)
//
// Layout: the origin and the tracker run here, on the host's loopback, where the person's
// browser opens the page. Headless viewers (--viewers N) run inside a private network
// namespace (scripts/netns-run.sh) so their WebRTC traffic stays off real interfaces; they
// reach the same origin and tracker through Unix-socket bridges that recreate the same
// 127.0.0.1 ports inside the namespace, so every viewer uses identical URLs (same swarms).
// Every viewer reports its stats to the origin, which the page charts as "the swarm".
// The person's own page joins the same tracker; whether it can connect to the namespaced
// viewers depends on where that browser runs (it cannot reach into the namespace), so the
// page's own P2P share may stay at 0 while the swarm chart shows the headless peers sharing.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureMedia, startOrigin, startTracker, readMasters, ROOT } from './lib/index.mjs';
import { unixToTcp } from './lib/bridge.mjs';
import { ensureDashMedia } from './gen-dash-media.mjs';
import { setupProtection } from './demo-protect.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : d);
const live = !argv.includes('--vod');
const host = opt('--host', '127.0.0.1');
const nViewers = Number(opt('--viewers', 0));
const flavour = opt('--flavour', 'ts');
const mediaDir = opt('--media', null) ? path.resolve(opt('--media')) : ensureMedia();

const tracker = await startTracker({ host, port: Number(opt('--tracker-port', 8000)), quiet: true });
const masters = readMasters(mediaDir);
const player = opt('--player', 'hlsjs');
if (player === 'dashjs') ensureDashMedia({ outDir: path.join(mediaDir, 'dash') });
const protect = argv.includes('--protect');
if (protect && player !== 'hlsjs') {
  console.error('demo: --protect is implemented for --player hlsjs (the tool also signs DASH VOD: docs/PROTECT.md)');
  process.exit(2);
}
const protection = protect ? setupProtection({ mediaDir, flavour, live }) : null;
const src = protection ? protection.src : player === 'dashjs'
  ? `/${live ? 'live' : 'media'}/dash/${['number', 'time', 'ranges'].includes(flavour) ? flavour : 'number'}/manifest.mpd`
  : `/${live ? 'live' : 'media'}/${masters[flavour] || Object.values(masters)[0]}`;
const origin = await startOrigin({
  mediaDir, live, hosts: [host], port: Number(opt('--port', 8080)), quiet: true,
  config: {
    trackerPort: tracker.port, src, player,
    // Read by the demo page and the headless viewers (demo-page/viewer.html).
    integrity: protection ? { manifestPath: protection.manifestPath, publicKey: protection.publicKey } : undefined,
  },
});
if (protection) await protection.start(origin);
origin.src = src;
const pageUrl = `${origin.url}/demo/`;
console.log(`
  Shoal demo (${live ? 'live' : 'VOD'}, ${origin.src})
  open:     ${pageUrl}
  origin:   ${origin.url}   (stats ${origin.url}/_shoal/stats, faults POST ${origin.url}/_shoal/fault)
  tracker:  ${tracker.url}
  integrity: ${protection ? `signed manifest ${protection.manifestPath}, public key ${protection.publicKey} (secret: ${protection.keyFile})` : 'structural checks + spot checks (add --protect for a signed manifest)'}
  shim:     ${fs.existsSync(path.join(ROOT, 'js-shim/dist/index.js')) ? 'js-shim/dist (P2P)' : 'NOT BUILT: pages play plain hls.js (npm run build)'}
  Remote machine? ssh -L ${origin.port}:127.0.0.1:${origin.port} -L ${tracker.port}:127.0.0.1:${tracker.port} <host>
  Ctrl-C stops everything.
`);

let child = null;
let tmp = null;
const bridges = [];
if (nViewers > 0) {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-demo-'));
  const oSock = path.join(tmp, 'origin.sock');
  const tSock = path.join(tmp, 'tracker.sock');
  bridges.push(await unixToTcp(oSock, origin.port, host), await unixToTcp(tSock, tracker.port, host));
  child = spawn('bash', [path.join(ROOT, 'scripts/netns-run.sh'), process.execPath, path.join(ROOT, 'scripts/lib/ns-swarm.mjs'),
    '--origin-sock', oSock, '--tracker-sock', tSock, '--origin-port', String(origin.port),
    '--tracker-port', String(tracker.port), '--viewers', String(nViewers), '--src', origin.src,
    '--p2p', opt('--viewers-p2p', '1'), '--player', player], { stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', (code) => { if (code) console.error(`demo: headless viewers exited with ${code}`); child = null; });
}

const tty = process.stdout.isTTY;
let drawn = 0;
const mb = (b) => (b / 1e6).toFixed(1).padStart(7);
function table() {
  const st = origin.stats();
  const reps = origin.reports().filter((r) => Date.now() - r.at < 10_000).sort((a, b) => String(a.viewer).localeCompare(String(b.viewer)));
  const lines = [`${new Date().toISOString().slice(11, 19)}  tracker: ${tracker.counts().peers} announce(s)  CDN total ${mb(st.total.segmentBytes)} MB`,
    'viewer          mode            state     buffer  offload  P2P MB  CDN MB  peers  stalls'];
  for (const r of reps) {
    const cdn = st.clients[r.viewer]?.segmentBytes || 0;
    const p = r.shoal?.p2pDown || 0;
    lines.push(`${String(r.viewer).padEnd(15)} ${String(r.mode).padEnd(15)} ${String(r.state).padEnd(8)} ${`${(r.bufferS || 0).toFixed(1)}s`.padStart(7)} ` +
      `${(p + cdn ? `${((100 * p) / (p + cdn)).toFixed(0)}%` : '-').padStart(8)} ${mb(p)} ${mb(cdn)} ${String(r.shoal?.peers ?? '-').padStart(6)} ${String(r.stalls).padStart(7)}`);
  }
  if (!reps.length) lines.push('(no viewer has reported yet: open the page, or pass --viewers N)');
  if (tty) {
    if (drawn) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
    process.stdout.write(lines.join('\n') + '\n');
    drawn = lines.length;
  } else console.log(lines.join('\n'));
}
const timer = setInterval(table, tty ? 1000 : 5000);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  protection?.stop();
  console.log('\ndemo: stopping');
  if (child) {
    const c = child;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    if (child) c.kill('SIGKILL');
  }
  bridges.forEach((b) => b.close());
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await Promise.race([Promise.all([tracker.close(), origin.close()]), new Promise((r) => setTimeout(r, 2000))]);
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
