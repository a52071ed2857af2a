#!/usr/bin/env bash
# Runs simulator scenarios one after another and prints a Markdown table of their reports
# (BENCHMARKS.md "Scenario library"). Each run writes OUT/NAME.json.
#
#   bash scripts/sim-table.sh OUT [scenarios/NAME.toml ...]
#
# Without scenario arguments: every scenario in scenarios/ except the 10,000-viewer ones
# (minutes each; name them explicitly to include them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: sim-table.sh OUT [scenario.toml ...]}
shift
mkdir -p "$out"
if [ $# -eq 0 ]; then
  set -- $(ls scenarios/*.toml | grep -v -- '-10000\.toml$')
fi
cargo build --release --features sim --bin shoal-sim >&2
echo "| scenario | viewers | offload | CDN ÷ | 10 s peak ÷ | rebuffer Shoal / base | stalls Shoal / base | corrupted | bans (honest); adversaries banned | max cache / budget | CPU s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for sc in "$@"; do
  name=$(basename "$sc" .toml)
  /usr/bin/time -f "%U %S" -o "$out/$name.time" \
    target/release/shoal-sim --scenario "$sc" --json "$out/$name.json" > "$out/$name.txt"
  node -e '
    const [file, timeFile, name] = process.argv.slice(1);
    const fs = require("fs");
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    const [user, sys] = fs.readFileSync(timeFile, "utf8").trim().split(/\s+/).map(Number);
    const s = r.shoal, b = r.baseline;
    const pct = (x) => (100 * x).toFixed(3) + "%";
    const adv = s.adversaries ? `${s.adversariesBanned}/${s.adversaries}` : "-";
    const mb = (x) => (x / 1e6).toFixed(1);
    console.log(`| ${name} | ${s.viewers} | ${(100 * s.offload).toFixed(1)}% | ${r.cdnRatio.toFixed(2)} | ${r.peakRatio.toFixed(2)} | ${pct(s.rebufferRatio)} / ${pct(b.rebufferRatio)} | ${s.stalls} / ${b.stalls} | ${s.corruptedDelivered} | ${s.bannedPeers} (${s.bannedHonest}); ${adv} | ${mb(s.maxCacheBytes)} of ${mb(s.cacheBudgetBytes)} MB | ${(user + sys).toFixed(1)} |`);
  ' "$out/$name.json" "$out/$name.time" "$name"
done
