#!/usr/bin/env bash
# Installs what the build, the tests and the demo need and is missing, and nothing else.
# Idempotent: every step checks first. Expects rustup, cargo and node/npm to be present.
# Debian packages are installed only when running as root; otherwise the exact command is
# printed and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

WASM_BINDGEN_VERSION=0.2.130 # must equal the `wasm-bindgen` pin in Cargo.toml

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
command -v rustup >/dev/null || die "rustup not found: the wasm32 target is installed through rustup"
command -v node >/dev/null || die "node not found: install Node.js >= 20"
command -v npm >/dev/null || die "npm not found: install Node.js >= 20 with npm"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js >= 20 required, found $(node --version)"
export PATH="$HOME/.cargo/bin:$PATH"

# --- Rust targets and tools ---------------------------------------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "ok: rust target wasm32-unknown-unknown"
else
  say "installing rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

for comp in rustfmt clippy; do
  if rustup component list --installed | grep -q "^$comp"; then
    say "ok: rustup component $comp"
  else
    say "installing rustup component $comp"
    rustup component add "$comp"
  fi
done

have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
have_runner="$(command -v wasm-bindgen-test-runner || true)"
if [ "$have_wb" = "$WASM_BINDGEN_VERSION" ] && [ -n "$have_runner" ]; then
  say "ok: wasm-bindgen-cli $WASM_BINDGEN_VERSION"
else
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (found: '${have_wb:-none}'; takes a few minutes)"
  # Not --locked: the published lockfile of this version does not resolve.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# --- cargo-fuzz (crate/fuzz/smoke.sh runs it on stable with `-s none`: no nightly needed) ---
# FUZZ STEP: adjust the install command here if the fuzz setup changes.
if [ -d crate/fuzz ]; then
  if cargo fuzz --version >/dev/null 2>&1; then
    say "ok: cargo-fuzz"
  else
    say "installing cargo-fuzz (takes a few minutes)"
    cargo install cargo-fuzz --locked
  fi
else
  say "skip: cargo-fuzz (no crate/fuzz)"
fi

# --- System packages: Chromium + chromedriver (wasm and e2e tests), ffmpeg (test media),
# --- iproute2 (network namespaces of the browser e2e run) ---------------------------------
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v ip >/dev/null || missing+=(iproute2)
if [ "${#missing[@]}" -eq 0 ]; then
  say "ok: chromium, chromedriver, ffmpeg, ip"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  say "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  die "missing system packages: ${missing[*]}. Install them, e.g.:
    sudo apt-get install -y --no-install-recommends ${missing[*]}
then run this script again."
fi

# --- npm dev dependencies, install scripts off ---------------------------------------------
# No dev dependency needs one, and node-datachannel's (pulled in by bittorrent-tracker, unused
# by its server) downloads a binary from outside the registries. Scripts stay on for the
# repository's own lifecycle: a plain `npm pack` runs `prepack`.
# npm writes node_modules/.package-lock.json on every install: it is the freshness stamp.
stamp=node_modules/.package-lock.json
if [ -L node_modules ]; then
  # A shared install linked in (e.g. a git worktree): npm ci would empty the link's target.
  [ -f "$stamp" ] || die "node_modules is a symlink to an empty or broken install; fix or remove it"
  [ package-lock.json -nt "$stamp" ] && say "WARNING: linked node_modules is older than package-lock.json"
  say "ok: node_modules (symlink, left alone)"
elif [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "npm ci"
  npm ci --ignore-scripts --no-audit --no-fund
else
  say "ok: node_modules up to date with package-lock.json"
fi

say "done"
