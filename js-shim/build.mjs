// Builds the npm package into js-shim/dist (minified, with source maps):
//   dist/index.js           ESM, both players (`shoal-p2p`)
//   dist/hls.js, dash.js    ESM, one player each (`shoal-p2p/hls`, `shoal-p2p/dash`); the three
//                           ESM entries share chunks (dist/chunk-*.js), so one page importing
//                           two of them gets one copy of each class
//   dist/shoal.iife.js      classic <script> builds defining globals: ShoalHls + ShoalDash +
//   dist/shoal-hls.iife.js  ShoalError; one player each. The engine glue is inlined and the
//   dist/shoal-dash.iife.js .wasm is looked up next to the script (src/entries/script-url.ts)
//   dist/**/*.d.ts          declarations (tsc --emitDeclarationOnly, strict)
//   dist/wasm/              shoal.js (minified), shoal_bg.wasm, shoal.d.ts from `npm run build:wasm`
// The ESM bundles load the engine with `import('./wasm/shoal.js')`, whose glue resolves the
// .wasm with `new URL('shoal_bg.wasm', import.meta.url)`: bundlers (Vite) follow both and emit
// the .wasm as an asset; a plain <script type="module"> resolves them relative to dist/.
// hls.js and dash.js are never bundled (the shim imports only their types).
// Usage: node js-shim/build.mjs [--allow-missing-wasm]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = join(here, 'dist');
const allowMissingWasm = process.argv.includes('--allow-missing-wasm');

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'wasm'), { recursive: true });

const wasmFiles = ['shoal.js', 'shoal_bg.wasm', 'shoal.d.ts'];
const missing = wasmFiles.filter((f) => !existsSync(join(here, 'wasm', f)));
if (missing.length > 0 && !allowMissingWasm) {
  console.error(`js-shim/wasm is missing ${missing.join(', ')}: run \`npm run build:wasm\` first`);
  process.exit(1);
}
const common = {
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
};

// The wasm-bindgen glue, minified on its own (bundlers still find the .wasm through its
// `new URL('shoal_bg.wasm', import.meta.url)`, which minification keeps as is).
for (const f of wasmFiles) {
  const from = join(here, 'wasm', f);
  if (!existsSync(from)) continue;
  if (f === 'shoal.js') await build({ ...common, entryPoints: [from], outfile: join(dist, 'wasm', f), format: 'esm' });
  else copyFileSync(from, join(dist, 'wasm', f));
}

// ESM: keep the engine glue a separate module, addressed relative to the bundle (chunks stay
// in dist/ itself so that './wasm/shoal.js' holds from every one of them).
const wasmGlueExternal = {
  name: 'wasm-glue-external',
  setup(b) {
    b.onResolve({ filter: /(^|\/)wasm\/shoal\.js$/ }, () => ({ path: './wasm/shoal.js', external: true }));
  },
};
await build({
  ...common,
  bundle: true,
  entryPoints: {
    index: join(here, 'src', 'index.ts'),
    hls: join(here, 'src', 'entries', 'hls.ts'),
    dash: join(here, 'src', 'entries', 'dash.ts'),
  },
  outdir: dist,
  format: 'esm',
  splitting: true,
  chunkNames: 'chunk-[hash]',
  plugins: [wasmGlueExternal],
});

// IIFE: one file per page plus the .wasm. Without the wasm (--allow-missing-wasm) there is
// no glue to inline, so these builds are skipped.
if (missing.length === 0) {
  for (const [out, entry] of [
    ['shoal.iife.js', 'global.ts'],
    ['shoal-hls.iife.js', 'global-hls.ts'],
    ['shoal-dash.iife.js', 'global-dash.ts'],
  ]) {
    await build({
      ...common,
      bundle: true,
      entryPoints: [join(here, 'src', 'entries', entry)],
      outfile: join(dist, out),
      format: 'iife',
      // A classic script has no import.meta: the entries pass the .wasm's URL (next to the
      // script, or the app's `wasmUrl`); if neither is known the glue's `new URL(…, undefined)`
      // throws and the player goes on over HTTP (a 'wasm-load' error).
      define: { 'import.meta.url': 'undefined' },
    });
  }
}

execFileSync(
  process.execPath,
  [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(here, 'tsconfig.json'), '--emitDeclarationOnly'],
  { stdio: 'inherit' },
);

// ---- test build (not part of the package) ---------------------------------------------------
// js-shim/dist-test/faults.js: fault injection for the e2e pages and the bench (src/testing/),
// which load it beside dist/ and pass its engine wrapper as `engineModule`. dist/ keeps none
// of it: drop the declarations tsc emitted for it.
rmSync(join(dist, 'testing'), { recursive: true, force: true });
const distTest = join(here, 'dist-test');
rmSync(distTest, { recursive: true, force: true });
await build({
  entryPoints: [join(here, 'src', 'testing', 'faults.ts')],
  outfile: join(distTest, 'faults.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
});

console.log(`built ${dist}${missing.length ? ` (without wasm: ${missing.join(', ')}; no IIFE builds)` : ''}`);
