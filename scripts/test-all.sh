#!/usr/bin/env bash
# The project's test command (`npm test`, run by CI through .ci/run): every check, in order,
# stopping at the first failure. Prints a header and the elapsed time of each step, and a
# summary at the end. Optional steps whose files do not exist yet print SKIPPED.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A clean CI clone compiles everything once: incremental state would only cost time and disk.
[ "${CI:-}" = "true" ] && export CARGO_INCREMENTAL=0

summary=()
current=""
started=0
total_start=$(date +%s)

finish_step() {
  if [ -n "$current" ]; then
    summary+=("$(printf '%-34s %-8s %5ss' "$current" "$1" "$(($(date +%s) - started))")")
    current=""
  fi
}

print_summary() {
  local rc=$?
  finish_step "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)"
  echo
  echo "==================== test-all summary ===================="
  for line in "${summary[@]}"; do echo "$line"; done
  echo "total $(($(date +%s) - total_start))s, $([ "$rc" -eq 0 ] && echo PASSED || echo "FAILED (exit $rc)")"
}
trap print_summary EXIT

step() {
  finish_step ok
  current="$1"
  started=$(date +%s)
  echo
  echo "==================== $1 ===================="
}

skipped() {
  echo "!!!!!!!! SKIPPED: $current: $1 !!!!!!!!"
  finish_step SKIPPED
}

step "1 setup"
bash scripts/setup.sh

step "2a cargo fmt --check"
cargo fmt --all --check

step "2b clippy (native, with the simulator)"
cargo clippy --all-targets --features sim -- -D warnings

step "2c clippy (wasm32 binding + tests)"
cargo clippy --target wasm32-unknown-unknown --features wasm --lib --test 'wasm_*' -- -D warnings

step "2d cargo test (native, with the simulator; integration tests in crate/tests)"
# Cargo.toml lists the integration tests (autotests = false): a file it does not list
# would never run.
for t in crate/tests/*.rs; do
  grep -q "^path = \"$t\"" Cargo.toml || { echo "$t is not a [[test]] in Cargo.toml"; exit 1; }
done
for t in tests/*.rs; do
  [ -e "$t" ] && { echo "$t: Rust integration tests go in crate/tests/ (tests/ is JS only)"; exit 1; }
done
cargo test --features sim

step "2e generated TS types up to date"
# js-shim/src/generated/core.ts is written from crate/src/types.rs and crate/src/wire by
# bin shoal-ts (feature ts, native only); a stale copy fails here.
cargo clippy --features ts --bin shoal-ts -- -D warnings
cargo run --quiet --features ts --bin shoal-ts -- --check

step "3 fuzz smoke"
if [ -f crate/fuzz/smoke.sh ]; then
  bash crate/fuzz/smoke.sh
elif [ -d crate/fuzz ]; then
  skipped "crate/fuzz/smoke.sh missing"
else
  skipped "no crate/fuzz"
fi

step "4 wasm tests (headless Chromium)"
bash scripts/test-wasm.sh

step "5 npm run build"
if [ -f js-shim/build.mjs ]; then
  npm run build
else
  bash scripts/build-wasm.sh
  skipped "js-shim/build.mjs missing: built the wasm only, no shim bundle"
fi

step "6 npm run test:unit (JS: tests/unit, tests/bundle)"
if node -e 'process.exit(require("./package.json").scripts?.["test:unit"] ? 0 : 1)'; then
  npm run test:unit
else
  skipped "no test:unit script in package.json"
fi

step "7 browser e2e (JS: tests/e2e)"
if [ -f tests/e2e/run.mjs ] && [ -f scripts/netns-run.sh ]; then
  npm run test:e2e
else
  skipped "tests/e2e/run.mjs or scripts/netns-run.sh missing"
fi
finish_step ok
