#!/usr/bin/env bash
# Short fuzz run of every target in crate/fuzz/fuzz_targets (CI's share; long runs are recorded
# in BENCHMARKS.md). Stable toolchain without sanitizer, so it needs no nightly.
# FUZZ_SECONDS (default 20) per target. Exits non-zero on a crash (libFuzzer's exit code).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${FUZZ_SECONDS:-20}"
for src in crate/fuzz/fuzz_targets/*.rs; do
  target="$(basename "$src" .rs)"
  mkdir -p "crate/fuzz/corpus/$target"
  seeds=()
  [ -d "crate/fuzz/seeds/$target" ] && seeds=("crate/fuzz/seeds/$target")
  echo "fuzz smoke: $target for ${secs}s"
  log="crate/fuzz/corpus/$target.log"
  rc=0
  cargo fuzz run -s none --fuzz-dir crate/fuzz "$target" "crate/fuzz/corpus/$target" "${seeds[@]}" \
    -- -max_len=16400 -max_total_time="$secs" >"$log" 2>&1 || rc=$?
  grep -E "^(Done [0-9]+ runs|==[0-9]+==|SUMMARY)" "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log"
    echo "fuzz smoke: $target FAILED (exit $rc)"
    exit 1
  fi
done
