#!/usr/bin/env bash
# Checks that a change kept the engine's behaviour: runs a fixed set of simulator scenario
# cuts at fixed seeds with two shoal-sim binaries and compares their JSON reports byte for
# byte. Exits 1 on the first report that differs (and names it), 0 when all are identical.
#
#   bash scripts/sim-same.sh BEFORE_BIN AFTER_BIN [OUT_DIR]
#
# Make BEFORE_BIN from the commit to compare against, e.g.
#   git worktree add /tmp/before <rev> && (cd /tmp/before && cargo build --release \
#     --features sim --bin shoal-sim) && cp /tmp/before/target/release/shoal-sim /tmp/sim-before
# The cuts cover live, VOD, churn, flash crowd, free riders, CDN faults, liars, poisoners and
# floods: about 20 s per binary on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: sim-same.sh BEFORE_BIN AFTER_BIN [OUT_DIR]}
after=${2:?usage: sim-same.sh BEFORE_BIN AFTER_BIN [OUT_DIR]}
out=${3:-$(mktemp -d)}

cuts=(
  "live-100|scenarios/live-100.toml"
  "floods-churn-100|scenarios/floods-churn-100.toml"
  "live-1000-cut|scenarios/live-1000.toml --viewers 400 --duration 200"
)
for s in vod-1000 poison-30pct-1000 liars-10pct-1000 flash-crowd-1000 churn-30pct-1000 \
  free-riders-1000 cdn-throttled-1000 cdn-partial-outage-1000 cdn-full-outage-vod-1000 \
  exodus-1000 poison-10pct-1000; do
  cuts+=("$s|scenarios/$s.toml --viewers 120 --duration 150 --seed 7")
done

run_all() {
  local bin=$1 dir=$2
  mkdir -p "$dir"
  for c in "${cuts[@]}"; do
    local name=${c%%|*} args=${c#*|}
    # shellcheck disable=SC2086 # args is a list of options
    "$bin" --scenario $args --json "$dir/$name.json" >"$dir/$name.txt" 2>&1 || {
      echo "sim-same: $bin failed on $name (see $dir/$name.txt)" >&2
      exit 2
    }
  done
}

run_all "$before" "$out/before"
run_all "$after" "$out/after"
for c in "${cuts[@]}"; do
  name=${c%%|*}
  if ! cmp -s "$out/before/$name.json" "$out/after/$name.json"; then
    echo "sim-same: $name differs ($out/before/$name.json vs $out/after/$name.json)"
    exit 1
  fi
done
echo "sim-same: all ${#cuts[@]} reports identical ($out)"
