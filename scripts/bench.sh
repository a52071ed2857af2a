#!/usr/bin/env bash
# npm run bench -- --player hlsjs --scenario live|vod --viewers N --duration S --json FILE [--media DIR]
# Generates the test media if needed (outside the namespace: ffmpeg needs no network), then runs
# scripts/bench.mjs inside a private network namespace (scripts/netns-run.sh): origin, tracker
# and every headless viewer live there, so peer traffic never touches a real interface.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" --media "* ]]; then node scripts/gen-media.mjs; fi
if [ ! -f js-shim/dist/index.js ]; then
  echo "bench: js-shim/dist/index.js not built; only the baseline will run (npm run build)" >&2
fi
exec bash scripts/netns-run.sh node scripts/bench.mjs "$@"
