#!/usr/bin/env bash
# npm run demo [-- --vod] [-- --viewers N] [--port 8080] [--tracker-port 8000]
# Prepares what is missing (toolchain via scripts/setup.sh, the shim build, test media), then
# starts the origin + tracker on 127.0.0.1 and prints the page URL. With --viewers N, N headless
# Chromium viewers join from a private network namespace (see the header of scripts/demo.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then npm install; fi
if [ ! -f js-shim/dist/index.js ]; then
  if [ -f scripts/setup.sh ]; then bash scripts/setup.sh || echo "demo: setup.sh failed; continuing" >&2; fi
  npm run build || echo "demo: shim build failed: the page will play plain hls.js (no P2P)" >&2
fi
node scripts/gen-media.mjs
exec node scripts/demo.mjs "$@"
