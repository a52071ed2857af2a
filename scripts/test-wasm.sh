#!/usr/bin/env bash
# Runs the wasm-bindgen-test suites (crate/tests/wasm_*.rs) in headless Chromium through
# wasm-bindgen-test-runner and the system chromedriver. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

runner="$(command -v wasm-bindgen-test-runner || true)"
[ -n "$runner" ] || { echo "test-wasm: wasm-bindgen-test-runner not found; run scripts/setup.sh" >&2; exit 1; }
driver="${CHROMEDRIVER:-$(command -v chromedriver || true)}"
[ -n "$driver" ] || { echo "test-wasm: chromedriver not found; run scripts/setup.sh" >&2; exit 1; }

# The runner adds --headless --no-sandbox --disable-dev-shm-usage itself (needed as root);
# webdriver.json adds the flags that keep Chromium from phoning home during tests.
export CHROMEDRIVER="$driver"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/scripts/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$runner"
exec cargo test --target wasm32-unknown-unknown --features wasm --test 'wasm_*' "$@"
