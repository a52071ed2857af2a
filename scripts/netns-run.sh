#!/usr/bin/env bash
# Run a command inside a private network namespace, so browser swarms never touch the
# machine's real interfaces:
#   - a new namespace (unshare -n): it disappears with the command, nothing to clean up on the
#     host even after kill -9;
#   - lo up (origin and tracker listen on 127.0.0.1 inside);
#   - a veth pair shn0 (198.18.0.2/24, default route) <-> shn1 (198.18.0.1/24), both inside, so
#     Chromium's WebRTC, which gathers host candidates on the default-route interface, gets
#     198.18.0.2 (RFC 2544 benchmarking space) and peers reach each other on it.
# Usage: scripts/netns-run.sh <command> [args...]      (root required; iproute2 + util-linux)
# Inside, SHOAL_NETNS=1 and SHOAL_NETNS_ADDR=198.18.0.2 are set.
set -euo pipefail
if [ $# -eq 0 ]; then echo "usage: $0 <command> [args...]" >&2; exit 2; fi
if [ "$(id -u)" != 0 ]; then
  echo "netns-run: must run as root (creating a network namespace needs CAP_SYS_ADMIN/CAP_NET_ADMIN)" >&2; exit 1
fi
for t in ip unshare; do
  command -v "$t" >/dev/null || { echo "netns-run: '$t' not found (apt-get install iproute2 util-linux)" >&2; exit 1; }
done
if [ "${SHOAL_NETNS:-}" = 1 ]; then exec "$@"; fi   # already inside: don't nest
if ! unshare --net true 2>/dev/null; then
  echo "netns-run: cannot create a network namespace here (a container without CAP_SYS_ADMIN?);" >&2
  echo "           run on a VM/host as root, or give the container --cap-add SYS_ADMIN --cap-add NET_ADMIN" >&2
  exit 1
fi

exec unshare --net -- bash -euc '
  ip link set lo up
  ip link add shn0 type veth peer name shn1
  ip addr add 198.18.0.2/24 dev shn0
  ip addr add 198.18.0.1/24 dev shn1
  ip link set shn0 up
  ip link set shn1 up
  ip route add default via 198.18.0.1 dev shn0
  export SHOAL_NETNS=1 SHOAL_NETNS_ADDR=198.18.0.2
  exec "$@"
' netns-run "$@"
