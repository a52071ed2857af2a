#!/usr/bin/env bash
# Builds the core for the browser: js-shim/wasm/shoal.js + shoal_bg.wasm (wasm-bindgen,
# --target web), shrunk with wasm-opt from the npm `binaryen` package when installed.
# Prints raw and gzipped sizes of the .wasm.
set -euo pipefail
cd "$(dirname "$0")/.."

out=js-shim/wasm
wasm="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm/shoal.wasm"

command -v wasm-bindgen >/dev/null || { echo "build-wasm: wasm-bindgen not found; run scripts/setup.sh" >&2; exit 1; }
want="0.2.130"
have="$(wasm-bindgen --version | awk '{print $2}')"
[ "$have" = "$want" ] || { echo "build-wasm: wasm-bindgen $have found, the crate pins $want; run scripts/setup.sh" >&2; exit 1; }

echo "build-wasm: cargo build (profile wasm: size-tuned release, wasm32, feature wasm)"
cargo build --profile wasm --target wasm32-unknown-unknown --features wasm --lib

echo "build-wasm: wasm-bindgen --target web -> $out/"
rm -rf "$out"
wasm-bindgen "$wasm" --target web --out-dir "$out" --out-name shoal

size() { wc -c <"$1" | tr -d ' '; }
gz() { gzip -9 -c "$1" | wc -c | tr -d ' '; }
bg="$out/shoal_bg.wasm"
echo "build-wasm: after wasm-bindgen: $(size "$bg") bytes, gzip -9 $(gz "$bg") bytes"

opt=node_modules/.bin/wasm-opt
if [ -x "$opt" ]; then
  # The npm build (binaryen.js), not a system binaryen whose version may lag the features rustc emits.
  "$opt" -Oz --strip-debug --strip-producers --strip-target-features --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$bg" -o "$bg.opt"
  mv "$bg.opt" "$bg"
  echo "build-wasm: after wasm-opt -Oz: $(size "$bg") bytes, gzip -9 $(gz "$bg") bytes"
else
  echo "build-wasm: SKIPPED wasm-opt ($opt missing: run npm ci)"
fi
echo "build-wasm: shoal.js $(size "$out/shoal.js") bytes, gzip -9 $(gz "$out/shoal.js") bytes"
