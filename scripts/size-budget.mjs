#!/usr/bin/env node
// The size budget: what one page with one player downloads from this package, gzip -9.
// Run by `npm run build` after the bundles are built (so by CI's build step); exits 1 when the
// total is over BUDGET_BYTES. Components:
//   wasm   js-shim/dist/wasm/shoal_bg.wasm
//   glue   js-shim/dist/wasm/shoal.js (wasm-bindgen's JS, loaded with the wasm)
//   shim   the larger of the one-player ESM entries (dist/hls.js, dist/dash.js) with the chunks
//          they import, each file compressed on its own (as a server sends them)
// The <script> builds (dist/*.iife.js, glue inlined) are printed for information.
// Usage: node scripts/size-budget.mjs [--json]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** The budget: bytes (gzip -9) of wasm + glue + shim for one player, all of them together. The
 * measured total plus ~1% (BENCHMARKS.md, "Shipped size"); lower it when a cut lands. Raised
 * from 172,000 on 2026-12-08 for the live-edge propagation of issue 17 (`Incoming`, fetches
 * ahead of the playlist: 173,179 bytes measured). */
export const BUDGET_BYTES = 175_000;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(ROOT, 'js-shim/dist');

// GNU gzip -9 (the figure issue 19 and BENCHMARKS.md quote); zlib level 9 where gzip is absent,
// which comes out up to ~1% larger.
const haveGzip = spawnSync('gzip', ['--version']).status === 0;
const gz = (file) => (haveGzip
  ? execFileSync('gzip', ['-9', '-n', '-c', file], { maxBuffer: 64 << 20 }).length
  : gzipSync(fs.readFileSync(file), { level: 9 }).length);
const raw = (file) => fs.statSync(file).size;

/** An ESM file and the files it statically imports (relative specifiers only), recursively. */
function closure(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  const src = fs.readFileSync(file, 'utf8');
  for (const m of src.matchAll(/(?:^|[;\s}])(?:import|export)\s*(?:[^'"]*?from\s*)?["'](\.\.?\/[^"']+)["']/g)) {
    closure(path.resolve(path.dirname(file), m[1]), seen);
  }
  return seen;
}

function measureFiles(files) {
  return { raw: files.reduce((n, f) => n + raw(f), 0), gzip: files.reduce((n, f) => n + gz(f), 0), files };
}

const need = ['wasm/shoal_bg.wasm', 'wasm/shoal.js', 'hls.js', 'dash.js'].map((f) => path.join(dist, f));
const absent = need.filter((f) => !fs.existsSync(f));
if (absent.length > 0) {
  console.error(`size-budget: missing ${absent.map((f) => path.relative(ROOT, f)).join(', ')}: run \`npm run build\``);
  process.exit(1);
}

const wasm = measureFiles([path.join(dist, 'wasm/shoal_bg.wasm')]);
const glue = measureFiles([path.join(dist, 'wasm/shoal.js')]);
const shims = Object.fromEntries(['hls', 'dash'].map((p) => [p, measureFiles([...closure(path.join(dist, `${p}.js`))])]));
const [player, shim] = Object.entries(shims).sort((a, b) => b[1].gzip - a[1].gzip)[0];
const total = wasm.gzip + glue.gzip + shim.gzip;
const iife = Object.fromEntries(['shoal.iife.js', 'shoal-hls.iife.js', 'shoal-dash.iife.js']
  .filter((f) => fs.existsSync(path.join(dist, f))).map((f) => [f, measureFiles([path.join(dist, f)])]));

if (process.argv.includes('--json')) {
  const strip = ({ raw: r, gzip: g }) => ({ raw: r, gzip: g });
  console.log(JSON.stringify({
    budget: BUDGET_BYTES, total, player,
    wasm: strip(wasm), glue: strip(glue),
    shim: Object.fromEntries(Object.entries(shims).map(([k, v]) => [k, strip(v)])),
    iife: Object.fromEntries(Object.entries(iife).map(([k, v]) => [k, strip(v)])),
  }, null, 2));
} else {
  const kb = (n) => `${(n / 1000).toFixed(1).padStart(6)} KB`; // KB = 1000 bytes, as in issue 19
  const row = (name, m) => console.log(`  ${name.padEnd(34)} ${kb(m.raw)} raw ${kb(m.gzip)} gzip -9`);
  console.log(`size-budget: shipped to a page with one player (${haveGzip ? 'gzip -9 -n' : 'zlib level 9: no gzip on PATH'})`);
  row('wasm   wasm/shoal_bg.wasm', wasm);
  row('glue   wasm/shoal.js', glue);
  for (const [p, m] of Object.entries(shims)) {
    row(`shim   ${p}.js + ${m.files.length - 1} chunk(s)${p === player ? ' *' : ''}`, m);
  }
  for (const [f, m] of Object.entries(iife)) row(`(info) ${f}`, m);
  console.log(`  total (wasm + glue + shim *)${' '.repeat(21)}${kb(total)} gzip -9 (${total} bytes), budget ${kb(BUDGET_BYTES)} (${BUDGET_BYTES})`);
}
if (total > BUDGET_BYTES) {
  console.error(`size-budget: FAIL — ${total} bytes gzip is over the budget of ${BUDGET_BYTES} (scripts/size-budget.mjs BUDGET_BYTES)`);
  process.exit(1);
}
