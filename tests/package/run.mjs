#!/usr/bin/env node
// The package as a user gets it: `npm pack`, the tarball installed into a fresh app, and two
// ways in, each playing a stream with P2P in headless Chromium:
//   vite/   `import { ShoalHls } from 'shoal-p2p'` + `import Hls from 'hls.js'`, built by Vite
//   plain/  no build: <script src="node_modules/hls.js/dist/hls.min.js"> and
//           <script src="node_modules/shoal-p2p/js-shim/dist/shoal-hls.iife.js"> (global ShoalHls)
// (and, engine load only: shoal.iife.js with both globals and a `wasmUrl` override,
// shoal-dash.iife.js alone)
// The two viewers join one swarm (origin, tracker: scripts/lib); the test passes when both
// play, both engines loaded their .wasm from where the package put it, and one of them got
// media bytes from the other. Runs inside the private network namespace (WebRTC):
//   npm run test:package   (= scripts/netns-run.sh node tests/package/run.mjs)
// No registry: the tarball is installed with `npm install --offline` (it has no dependencies;
// hls.js and dash.js are optional peers), and hls.js is linked from this checkout.
// The package's types are checked from a strict TypeScript file importing all three entries.
// `npm pack` runs with --ignore-scripts, on the js-shim/dist that `npm run build` made (the
// `prepack` script, which builds it, is what a clean clone's `npm pack` runs); the tarball's
// file list is checked for everything the package needs.
// Usage: node tests/package/run.mjs [--keep]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { ensureMedia, startOrigin, startTracker, launchBrowser } from '../../scripts/lib/index.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const keep = process.argv.includes('--keep');

if (process.env.SHOAL_NETNS !== '1') {
  console.error('package: run inside the private network namespace: npm run test:package (scripts/netns-run.sh)');
  process.exit(2);
}
const check = (cond, msg) => { if (!cond) throw new Error(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(label, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await fn();
    if (r.ok) return r.value;
    if (Date.now() > end) throw new Error(`timeout (${timeoutMs} ms) waiting for ${label}: ${r.why}`);
    await sleep(250); // polling interval, not synchronisation: the condition is re-checked
  }
}
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-package-'));
const cleanup = [];
try {
  // ---- pack -----------------------------------------------------------------------------
  const t0 = Date.now();
  const packed = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT))[0];
  const tarball = path.join(work, packed.filename);
  const inTarball = new Set(packed.files.map((f) => f.path));
  const required = [
    'package.json', 'README.md', 'LICENSE',
    'js-shim/dist/index.js', 'js-shim/dist/index.d.ts', 'js-shim/dist/hls.js', 'js-shim/dist/dash.js',
    'js-shim/dist/entries/hls.d.ts', 'js-shim/dist/entries/dash.d.ts',
    'js-shim/dist/shoal.iife.js', 'js-shim/dist/shoal-hls.iife.js', 'js-shim/dist/shoal-dash.iife.js',
    'js-shim/dist/wasm/shoal.js', 'js-shim/dist/wasm/shoal_bg.wasm',
  ];
  const absent = required.filter((f) => !inTarball.has(f));
  check(absent.length === 0, `the tarball lacks ${absent.join(', ')} (run \`npm run build\` first)`);
  const stray = [...inTarball].filter((f) => !/^(package\.json|(js-shim\/)?README\.md|LICENSE|js-shim\/dist\/)/.test(f));
  check(stray.length === 0, `the tarball carries files outside js-shim/dist: ${stray.join(', ')}`);

  // ---- install into a fresh app ----------------------------------------------------------
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'shoal-package-test', private: true, type: 'module' }, null, 2));
  npm(['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], app);
  const installed = path.join(app, 'node_modules/shoal-p2p');
  check(fs.existsSync(path.join(installed, 'js-shim/dist/wasm/shoal_bg.wasm')), 'npm install did not put the wasm in node_modules/shoal-p2p');
  // The peers a real app would `npm install` itself (linked, so no registry is needed).
  fs.symlinkSync(path.join(ROOT, 'node_modules/hls.js'), path.join(app, 'node_modules/hls.js'), 'dir');

  const pageScript = (shoalExpr) => `
const q = new URLSearchParams(location.search);
const video = document.getElementById('v');
const errors = [];
const shoal = new ${shoalExpr}({ trackers: [q.get('tracker')], iceServers: [] });
shoal.on('error', (e) => errors.push(String(e.message)));
let ready = null;
shoal.ready.then((ok) => { ready = ok; });
const hls = new Hls(shoal.hlsConfig({ startLevel: 0, capLevelToPlayerSize: true }));
shoal.attach(hls);
hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) errors.push('hls: ' + d.details); });
hls.loadSource(q.get('src'));
hls.attachMedia(video);
video.play().catch((e) => errors.push('play: ' + e.message));
window.state = () => ({ ready, t: video.currentTime, stats: shoal.stats(), errors });
`;
  // Vite app: the ESM entry, bundled.
  const viteSrc = path.join(app, 'vite');
  fs.mkdirSync(viteSrc);
  fs.writeFileSync(path.join(viteSrc, 'index.html'),
    '<!doctype html><html><body><video id="v" muted playsinline width="320" height="180"></video>' +
    '<script type="module" src="./main.js"></script></body></html>\n');
  fs.writeFileSync(path.join(viteSrc, 'main.js'),
    `import Hls from 'hls.js';\nimport { ShoalHls } from 'shoal-p2p';\n${pageScript('ShoalHls')}`);
  const viteOut = path.join(app, 'vite-dist');
  await build({
    root: viteSrc, base: './', configFile: false, logLevel: 'warn',
    build: { outDir: viteOut, emptyOutDir: true, chunkSizeWarningLimit: 2048 }, // hls.js alone is ~500 kB
  });
  const viteFiles = fs.readdirSync(viteOut, { recursive: true }).map(String);
  const viteWasm = viteFiles.filter((f) => f.endsWith('.wasm'));
  check(viteWasm.length === 1, `vite emitted ${viteWasm.length} .wasm files`);
  check(Buffer.compare(fs.readFileSync(path.join(viteOut, viteWasm[0])), fs.readFileSync(path.join(installed, 'js-shim/dist/wasm/shoal_bg.wasm'))) === 0,
    'the .wasm vite emitted differs from the package\'s');
  // Importing ShoalHls from the package root must leave the dash.js adapter out of the app.
  const dashMarker = 'XHRLoader'; // the dash.js class the dash adapter extends (not in hls.js)
  check(fs.readFileSync(path.join(installed, 'js-shim/dist/index.js'), 'utf8').includes('chunk-') &&
    fs.readdirSync(path.join(installed, 'js-shim/dist')).some((f) => f.endsWith('.js') && fs.readFileSync(path.join(installed, 'js-shim/dist', f), 'utf8').includes(dashMarker)),
  `no package file carries the marker ${dashMarker}: the check below would prove nothing`);
  const withDash = viteFiles.filter((f) => f.endsWith('.js') && fs.readFileSync(path.join(viteOut, f), 'utf8').includes(dashMarker));
  check(withDash.length === 0, `the hls.js-only Vite app carries the dash.js adapter (${withDash.join(', ')})`);
  // Plain page: script tags straight from node_modules, no build.
  const plain = path.join(app, 'plain');
  fs.mkdirSync(plain);
  fs.writeFileSync(path.join(plain, 'index.html'), [
    '<!doctype html><html><body><video id="v" muted playsinline width="320" height="180"></video>',
    '<script src="../node_modules/hls.js/dist/hls.min.js"></script>',
    '<script src="../node_modules/shoal-p2p/js-shim/dist/shoal-hls.iife.js"></script>',
    `<script>${pageScript('ShoalHls')}</script>`,
    '</body></html>', '',
  ].join('\n'));
  // The types a TypeScript app gets from each export (strict, as a bundler resolves them).
  fs.writeFileSync(path.join(app, 'types.ts'), [
    "import { ShoalHls, ShoalDash, ShoalError, type ShoalStats } from 'shoal-p2p';",
    "import { ShoalHls as Hls1, type ShoalHlsOptions } from 'shoal-p2p/hls';",
    "import { ShoalDash as Dash1, type DashPlayer } from 'shoal-p2p/dash';",
    "const o: ShoalHlsOptions = { trackers: ['wss://t.example'], wasmUrl: '/x.wasm' };",
    'const a: ShoalHls = new Hls1(o);',
    'const b: ShoalDash = new Dash1({});',
    'const s: ShoalStats = a.stats();',
    'export const used: [ShoalDash, number, typeof ShoalError, DashPlayer | null] = [b, s.p2pDown, ShoalError, null];',
    '',
  ].join('\n'));
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], strict: true, noEmit: true, types: [] },
    files: ['types.ts'],
  }));
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { stdio: 'inherit' });
  // The other two <script> builds, engine loaded but no playback: both players from
  // shoal.iife.js (one of them with its .wasm at an overridden URL), and shoal-dash.iife.js alone.
  const dist = '../node_modules/shoal-p2p/js-shim/dist';
  const loadPage = (script, body) => [
    '<!doctype html><html><body>', `<script src="${dist}/${script}"></script>`, `<script>${body}</script>`, '</body></html>', '',
  ].join('\n');
  fs.writeFileSync(path.join(plain, 'both.html'), loadPage('shoal.iife.js', [
    // The page's first engine fetches the module (the glue keeps it for the others).
    `const a = new ShoalHls({ p2p: false, wasmUrl: '${dist}/wasm/shoal_bg.wasm?override=1' });`,
    'const b = new ShoalDash({ p2p: false });',
    'window.loaded = Promise.all([a.ready, b.ready]).then((r) => ({ ready: r, hls: typeof ShoalHls, dash: typeof ShoalDash, err: typeof ShoalError }));',
  ].join('\n')));
  fs.writeFileSync(path.join(plain, 'dash.html'), loadPage('shoal-dash.iife.js', [
    'const b = new ShoalDash({ p2p: false });',
    'window.loaded = b.ready.then((ok) => ({ ready: [ok], hls: typeof ShoalHls, dash: typeof ShoalDash, err: typeof ShoalError }));',
  ].join('\n')));
  const prepMs = Date.now() - t0;

  // ---- play: origin, tracker, two viewers ----------------------------------------------
  const mediaDir = ensureMedia();
  const origin = await startOrigin({ mediaDir, quiet: true });
  cleanup.push(() => origin.close());
  const tracker = await startTracker({ quiet: true });
  cleanup.push(() => tracker.close());
  const server = await serveStatic(app);
  cleanup.push(() => server.close());
  const browser = await launchBrowser({ args: ['--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks'] });
  cleanup.push(() => browser.close());

  const q = new URLSearchParams({ src: `${origin.url}/media/ts/master.m3u8`, tracker: tracker.url });
  const open = async (name, pathname) => {
    const page = await (await browser.newContext()).newPage();
    const wasm = [];
    const log = [];
    page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasm.push(new URL(r.url()).pathname); });
    page.on('pageerror', (e) => log.push(e.message));
    await page.goto(`${server.url}${pathname}?${q}`);
    const v = {
      name, page, wasm, log,
      state: () => page.evaluate(() => window.state()),
      until: (label, pred, ms) => waitFor(`${name}: ${label}`, async () => {
        const s = await v.state();
        const why = pred(s);
        return why === true ? { ok: true, value: s } : { ok: false, why: `${why}; t=${s.t.toFixed(1)} errors=${s.errors.join('; ')} ${log.join('; ')}` };
      }, ms),
    };
    return v;
  };
  for (const [page, want] of [
    ['both', { ready: [true, true], hls: 'function', dash: 'function', err: 'function', wasm: ['shoal_bg.wasm?override=1'] }],
    ['dash', { ready: [true], hls: 'undefined', dash: 'function', err: 'function', wasm: ['shoal_bg.wasm'] }],
  ]) {
    const p = await (await browser.newContext()).newPage();
    const wasm = [];
    p.on('request', (r) => { if (new URL(r.url()).pathname.endsWith('.wasm')) wasm.push(r.url().replace(/^.*\/wasm\//, '')); });
    await p.goto(`${server.url}/plain/${page}.html`);
    const got = { ...(await p.evaluate(() => window.loaded)), wasm: wasm.sort() };
    check(JSON.stringify(got) === JSON.stringify(want), `plain/${page}.html: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    await p.context().close();
  }
  const viewers = [await open('vite', '/vite-dist/index.html')];
  await viewers[0].until('engine ready and playing', (s) => (s.ready === true && s.t > 2) || `ready=${s.ready}`, 45_000);
  viewers.push(await open('plain', '/plain/index.html'));
  await viewers[1].until('engine ready and playing', (s) => (s.ready === true && s.t > 2) || `ready=${s.ready}`, 45_000);
  const end = await waitFor('P2P bytes between the two builds', async () => {
    const s = await Promise.all(viewers.map((v) => v.state()));
    return s.some((x) => x.stats.p2pDown > 0) && s.every((x) => x.t > 8)
      ? { ok: true, value: s }
      : { ok: false, why: s.map((x, i) => `${viewers[i].name}: t=${x.t.toFixed(1)} peers=${x.stats.peers} p2pDown=${x.stats.p2pDown}`).join(', ') };
  }, 60_000);
  for (const [i, s] of end.entries()) {
    check(s.errors.length === 0 && viewers[i].log.length === 0, `${viewers[i].name}: errors ${[...s.errors, ...viewers[i].log].join('; ')}`);
    check(s.stats.p2pActive, `${viewers[i].name}: P2P went off`);
  }
  check(viewers[0].wasm.length === 1 && viewers[0].wasm[0].startsWith('/vite-dist/assets/'), `vite page loaded wasm from ${viewers[0].wasm.join(', ') || 'nowhere'}`);
  check(viewers[1].wasm.length === 1 && viewers[1].wasm[0] === '/node_modules/shoal-p2p/js-shim/dist/wasm/shoal_bg.wasm',
    `plain page loaded wasm from ${viewers[1].wasm.join(', ') || 'nowhere'}`);

  const viteJs = viteFiles.filter((f) => f.endsWith('.js')).map((f) => fs.statSync(path.join(viteOut, f)).size);
  console.log(`package: PASS — ${packed.filename} (${packed.files.length} files, ${(packed.size / 1024).toFixed(0)} KiB) installed offline; ` +
    `vite app (${viteJs.length} JS chunks, ${(viteJs.reduce((a, b) => a + b, 0) / 1024).toFixed(0)} KiB with hls.js) and script-tag page played, shoal.iife.js (wasmUrl override) and shoal-dash.iife.js loaded the engine; ` +
    end.map((s, i) => `${viewers[i].name}: p2pDown=${s.stats.p2pDown} httpDown=${s.stats.httpDown}`).join(', ') +
    `; pack+install+build ${(prepMs / 1000).toFixed(1)} s, total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} catch (e) {
  console.error(`package: FAIL — ${e.message}`);
  process.exitCode = 1;
} finally {
  for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  if (keep) console.log(`package: kept ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
}

/** Serves `dir` (symlinks followed, as in node_modules) on 127.0.0.1. */
async function serveStatic(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(dir, rel);
    if (!file.startsWith(dir + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}
