#!/usr/bin/env node
// Where the bytes of shoal_bg.wasm go, by crate and part, as a Markdown table (BENCHMARKS.md).
// Takes the cargo output of `npm run build:wasm` (target/wasm32-unknown-unknown/wasm/shoal.wasm),
// runs wasm-bindgen and wasm-opt -Oz as scripts/build-wasm.sh does but keeping function names
// (-g), and sums twiggy's per-item sizes (code and data; the name section is left out, so the
// total is within a few hundred bytes of the shipped file).
// Needs twiggy: `cargo install twiggy --version 0.8.0` (or SHOAL_TWIGGY=path).
// Usage: node scripts/wasm-breakdown.mjs [--top N] [--csv FILE (twiggy top -f csv output, skips the build)]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const topN = args.includes('--top') ? Number(args[args.indexOf('--top') + 1]) : 12;
const twiggy = process.env.SHOAL_TWIGGY || 'twiggy';
const csvArg = args.includes('--csv') ? args[args.indexOf('--csv') + 1] : null;
const input = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target', 'wasm32-unknown-unknown/wasm/shoal.wasm');
if (!csvArg && !fs.existsSync(input)) {
  console.error(`wasm-breakdown: ${path.relative(ROOT, input)} missing: run \`npm run build:wasm\` first`);
  process.exit(1);
}

let rows = csvArg ? parseCsv(fs.readFileSync(csvArg, 'utf8')) : null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-wasm-breakdown-'));
try {
  if (rows) throw new Error('skip');
  execFileSync('wasm-bindgen', [input, '--target', 'web', '--out-dir', tmp, '--out-name', 'shoal', '--keep-debug'], { stdio: 'inherit' });
  const named = path.join(tmp, 'named.wasm');
  execFileSync(path.join(ROOT, 'node_modules/.bin/wasm-opt'), [
    '-Oz', '-g', '--strip-dwarf', '--strip-producers', '--strip-target-features', '--enable-bulk-memory',
    '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals', '--enable-reference-types',
    '--enable-multivalue', path.join(tmp, 'shoal_bg.wasm'), '-o', named,
  ], { stdio: 'inherit' });
  const csv = execFileSync(twiggy, ['top', '-n', '1000000', '-f', 'csv', named], { encoding: 'utf8', maxBuffer: 256 << 20 });
  rows = parseCsv(csv);
} catch (e) {
  if (!rows) throw e;
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

// First match wins; a generic's impl (`<X as Trait>::f`) counts for X, else for Trait.
const GROUPS = [
  ['engine: shoal::engine', /^shoal::engine/],
  ['boundary: shoal::wasm', /^shoal::wasm/],
  ['integrity: shoal::integrity', /^shoal::integrity/],
  ['engine: peers, scheduler, store, wire, other shoal', /^shoal::/],
  ['boundary: serde_wasm_bindgen', /^serde_wasm_bindgen/],
  ['boundary: serde (derived impls, content buffering)', /^serde/],
  ['boundary: js_sys, wasm_bindgen runtime', /^(js_sys|wasm_bindgen|web_sys)/],
  ['integrity: sha2', /^(sha2|digest|block_buffer)/],
  ['integrity: ed25519-dalek, curve25519-dalek', /^(ed25519|curve25519|subtle)/],
  ['integrity: base64, hex', /^(base64|hex)/],
  ['rand_chacha, rand_core', /^(rand|ppv_lite86|zerocopy)/],
  ['allocator (dlmalloc)', /^(dlmalloc|__rustc::__rdl|__rdl)/],
  ['panic machinery (core/std panicking, console_error_panic_hook)', /^(core::panicking|std::panicking|std::panic|console_error_panic_hook|core::panic)/],
  ['formatting (core::fmt, Display/Debug of primitives)', /^(core::fmt|core::num::flt2dec|core::num::bignum|core::num::fmt)|::fmt::(Display|Debug|LowerHex|UpperHex)>::fmt$/],
  ['std collections, String, Vec (monomorphized for the engine)', /^(alloc|hashbrown)::/],
  ['core: sort, iterators, memcpy, slices, num', /^core::/],
  ['std (other)', /^std::/],
];

const clean = (s) => s.replace(/\[[0-9a-f]{16}\]/g, '').replace(/::h[0-9a-f]{16}$/, '');
function classify(raw) {
  const name = clean(raw);
  if (/^"function names"|^"local names"|names" subsection$|^"?name"? section/.test(name)) return null;
  if (name.startsWith('data segment')) return 'data segments (.rodata: strings, tables, constants)';
  if (/ (externref|multivalue) shim/.test(name) || /^(wasmengine_|derive)/.test(name)) {
    return 'boundary: wasm-bindgen export shims (serde conversion inlined into them)';
  }
  if (/^(import |export |custom section|type\[|elem\[|table\[|global\[|memory\[|code\[|func\[)/.test(name) || /^__(wbg|wbindgen|externref)/.test(name)) {
    return 'wasm structure, wasm-bindgen imports and runtime';
  }
  if (/^(memcmp|memcpy|memset|memmove|__multi3|__udivti3|__umodti3|__ashlti3|__lshrti3)$/.test(name)) return 'core: sort, iterators, memcpy, slices, num';
  const m = /^<(.+?) as (.+?)>::/.exec(name);
  const candidates = m ? [m[1], m[2]] : [name.replace(/^<+/, '')];
  for (const c of candidates) {
    const c2 = c.replace(/^&(mut )?/, '');
    for (const [g, re] of GROUPS) if (re.test(c2) && !(g.startsWith('formatting') && !/^core::(fmt|num)/.test(c2))) return g;
  }
  if (/::fmt$/.test(name)) return 'formatting (core::fmt, Display/Debug of primitives)';
  for (const c of candidates) {
    if (/^&?(mut )?(\[|\(|f32|f64|[iu](8|16|32|64|128|size)|bool|char|str)\b/.test(c)) return 'core: sort, iterators, memcpy, slices, num';
  }
  if (process.env.SHOAL_BREAKDOWN_OTHER) console.error(raw);
  return 'other';
}

const sums = new Map();
const counts = new Map();
const top = [];
for (const r of rows) {
  const g = classify(r.name);
  if (g === null) continue;
  sums.set(g, (sums.get(g) ?? 0) + r.size);
  counts.set(g, (counts.get(g) ?? 0) + 1);
  top.push(r);
}
const total = [...sums.values()].reduce((a, b) => a + b, 0);
const pct = (n) => `${((100 * n) / total).toFixed(1)}%`;
console.log('| part | items | bytes (raw, after wasm-opt -Oz) | share |');
console.log('| --- | ---: | ---: | ---: |');
for (const [g, n] of [...sums].sort((a, b) => b[1] - a[1])) console.log(`| ${g} | ${counts.get(g)} | ${n.toLocaleString('en-US')} | ${pct(n)} |`);
console.log(`| total | ${top.length} | ${total.toLocaleString('en-US')} | 100% |`);
console.log();
console.log(`Largest items:`);
console.log();
console.log('| item | bytes |');
console.log('| --- | ---: |');
for (const r of top.sort((a, b) => b.size - a.size).slice(0, topN)) console.log(`| \`${clean(r.name).replace(/\|/g, '\\|')}\` | ${r.size.toLocaleString('en-US')} |`);

function parseCsv(text) {
  const out = [];
  for (const line of text.split('\n').slice(1)) {
    if (!line.trim()) continue;
    // Name may be quoted (with "" escapes) and contain commas; the size follows it.
    let name;
    let rest;
    if (line.startsWith('"')) {
      let i = 1;
      let s = '';
      for (; i < line.length; i++) {
        if (line[i] === '"' && line[i + 1] === '"') { s += '"'; i++; } else if (line[i] === '"') break; else s += line[i];
      }
      name = s;
      rest = line.slice(i + 2);
    } else {
      const k = line.indexOf(',');
      name = line.slice(0, k);
      rest = line.slice(k + 1);
    }
    out.push({ name, size: Number(rest.split(',')[0]) });
  }
  return out;
}
