// Builds the npm package into js-shim/dist:
//   dist/index.js        ESM bundle of src/ (hls.js stays a peer dependency: type-only imports)
//   dist/*.d.ts          declarations (tsc --emitDeclarationOnly, strict)
//   dist/wasm/           shoal.js, shoal_bg.wasm, shoal.d.ts from `npm run build:wasm`
// The bundle loads the engine with `import('./wasm/shoal.js')`, whose glue resolves the .wasm
// with `new URL('shoal_bg.wasm', import.meta.url)`: bundlers (Vite) follow both and emit the
// .wasm as an asset; a plain <script type="module"> resolves them relative to dist/.
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
for (const f of wasmFiles) {
  if (existsSync(join(here, 'wasm', f))) copyFileSync(join(here, 'wasm', f), join(dist, 'wasm', f));
}

// Keep the engine glue a separate module, addressed relative to the bundle.
const wasmGlue = {
  name: 'wasm-glue-external',
  setup(b) {
    b.onResolve({ filter: /(^|\/)wasm\/shoal\.js$/ }, () => ({ path: './wasm/shoal.js', external: true }));
  },
};

await build({
  entryPoints: [join(here, 'src', 'index.ts')],
  outfile: join(dist, 'index.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  external: ['hls.js'],
  plugins: [wasmGlue],
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

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

console.log(`built ${dist}${missing.length ? ` (without wasm: ${missing.join(', ')})` : ''}`);
