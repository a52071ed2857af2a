#!/usr/bin/env node
// Bundler check: a tiny Vite app that imports 'shoal-p2p' the way an integrator would must
// come out of `vite build` with the engine's .wasm emitted as an asset (byte-identical to
// js-shim/dist/wasm/shoal_bg.wasm) and referenced from the emitted JavaScript.
// The built app is then opened in headless Chromium (served on 127.0.0.1) to check that the
// bundled wasm really instantiates (`shoal.ready` resolves true).
// Needs js-shim/dist with the wasm (npm run build). Usage: node tests/bundle/run.mjs [--no-browser]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { build } from 'vite';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = path.join(ROOT, 'js-shim/dist');
const wasm = path.join(dist, 'wasm/shoal_bg.wasm');
for (const f of [path.join(dist, 'index.js'), path.join(dist, 'wasm/shoal.js'), wasm]) {
  if (!fs.existsSync(f)) {
    console.error(`bundle: ${path.relative(ROOT, f)} missing: run \`npm run build\` first`);
    process.exit(1);
  }
}

const app = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bundle-'));
try {
  fs.writeFileSync(path.join(app, 'index.html'),
    '<!doctype html><html><body><video id="v"></video><script type="module" src="./main.js"></script></body></html>\n');
  fs.writeFileSync(path.join(app, 'main.js'), [
    "import { ShoalHls, ShoalError } from 'shoal-p2p';",
    "const shoal = new ShoalHls({ trackers: [], p2p: false });",
    "shoal.ready.then((ok) => { document.title = ok ? 'ready' : 'failed'; });",
    "window.shoal = shoal; window.ShoalError = ShoalError;",
    '',
  ].join('\n'));
  const outDir = path.join(app, 'out');
  await build({
    root: app,
    configFile: false,
    logLevel: 'warn',
    // Resolve the package from this checkout, as `npm i shoal-p2p` would from node_modules.
    resolve: { alias: { 'shoal-p2p': path.join(dist, 'index.js') } },
    build: { outDir, emptyOutDir: true },
  });
  const files = fs.readdirSync(outDir, { recursive: true }).map(String);
  const wasmOut = files.filter((f) => f.endsWith('.wasm'));
  const want = fs.readFileSync(wasm);
  const same = wasmOut.filter((f) => Buffer.compare(fs.readFileSync(path.join(outDir, f)), want) === 0);
  if (same.length !== 1) throw new Error(`expected the engine .wasm emitted once, found: ${wasmOut.join(', ') || 'none'}`);
  const asset = path.basename(same[0]);
  const js = files.filter((f) => f.endsWith('.js'));
  const referencing = js.filter((f) => fs.readFileSync(path.join(outDir, f), 'utf8').includes(asset));
  if (referencing.length === 0) throw new Error(`no emitted JS references ${asset} (JS: ${js.join(', ')})`);
  const glueSplit = js.length >= 2; // the engine glue is a lazily loaded chunk
  let loaded = 'not loaded in a browser (--no-browser)';
  if (!process.argv.includes('--no-browser')) loaded = await loadInBrowser(outDir);
  console.log(`bundle: PASS — vite emitted ${same[0]} (${want.length} bytes), referenced by ${referencing.join(', ')}; ${js.length} JS chunk(s)${glueSplit ? ' (engine glue loaded lazily)' : ''}; ${loaded}`);
} catch (e) {
  console.error(`bundle: FAIL — ${e.message}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(app, { recursive: true, force: true });
}

async function loadInBrowser(outDir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.join(outDir, rel);
    if (!file.startsWith(outDir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({
    executablePath: process.env.SHOAL_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const wasmRequests = [];
    page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmRequests.push(new URL(r.url()).pathname); });
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const ok = await page.evaluate(() => window.shoal.ready);
    if (ok !== true) throw new Error(`the bundled engine did not load (ready=${ok}; wasm requests: ${wasmRequests.join(', ') || 'none'})`);
    return `loaded in Chromium (${wasmRequests.join(', ')})`;
  } finally {
    await browser.close();
    server.close();
  }
}
