#!/usr/bin/env bash
# The main job (README's first command): install what is missing, build, then start a
# local mesh (a bootstrap and 3 nodes on loopback), show that every node registered
# (`blyan status`), and stop it again. Later issues make the mesh answer a prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

BLYAN="$PWD/build/blyan"
DIR="$(mktemp -d /tmp/blyan-demo.XXXXXX)"
cleanup() {
  "$BLYAN" testnet stop --dir "$DIR" || true
  if pgrep -f "$DIR" >/dev/null; then echo "demo: processes left behind!"; exit 1; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

# A free block of 4 loopback ports for the bootstrap and the nodes.
BASE=$(python3 tools/free_ports.py 4)

echo "== blyan testnet init --dir $DIR --nodes 3"
"$BLYAN" testnet init --dir "$DIR" --nodes 3 --base-port "$BASE"
echo "== blyan testnet start (each node registers, signed, over CurveZMQ)"
"$BLYAN" testnet start --dir "$DIR"
echo "== blyan status (the bootstrap's view of the mesh)"
"$BLYAN" status --dir "$DIR"
echo "== blyan testnet status"
"$BLYAN" testnet status --dir "$DIR"
echo "== blyan testnet stop"
