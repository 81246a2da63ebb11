#!/usr/bin/env bash
# The main job (README's first command): install what is missing, build, build the bundled
# default model, then start a local inference mesh on loopback — a bootstrap, a router and
# 3 layer-shards, each its own blyan-node process — stream an answer to a prompt through
# it, and stop everything again.
#   PROMPT="..." tools/demo.sh      ask something else
#   BLY_MODEL=path.gguf tools/demo.sh   serve another GGUF (see docs/MODELS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

BLYAN="$PWD/build/blyan"
MODEL=$(bash tools/default-model.sh)
PROMPT="${PROMPT:-Write one sentence about decentralized inference.}"
DIR="$(mktemp -d /tmp/blyan-demo.XXXXXX)"
cleanup() {
  "$BLYAN" testnet stop --dir "$DIR" || true
  if pgrep -f "$DIR" >/dev/null; then echo "demo: processes left behind!"; exit 1; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

# A free block of loopback ports: bootstrap, router, 3 shards.
BASE=$(python3 tools/free_ports.py 5)

echo "== blyan testnet init --dir $DIR --shards 3 --model $MODEL"
"$BLYAN" testnet init --dir "$DIR" --shards 3 --model "$MODEL" --base-port "$BASE"
echo "== blyan testnet start (bootstrap, router and shards register over CurveZMQ)"
"$BLYAN" testnet start --dir "$DIR"
echo "== blyan status (the bootstrap's view: each shard's stages)"
"$BLYAN" status --dir "$DIR"
KEY=$(python3 -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == "router"][0])' "$DIR/nodes.json")
# The router fetches the shard list every 500 ms; wait until it can plan a path.
for _ in $(seq 1 50); do
  "$BLYAN" chat --router "tcp://127.0.0.1:$((BASE + 1))" --router-key "$KEY" --prompt hi \
    --n-predict 1 --timeout-ms 2000 >/dev/null 2>&1 && break
  sleep 0.2
done
echo "== blyan chat --prompt \"$PROMPT\" (tokens stream router -> shard1 -> shard2 -> shard3 -> router -> you)"
"$BLYAN" chat --router "tcp://127.0.0.1:$((BASE + 1))" --router-key "$KEY" --chat \
  --prompt "$PROMPT" --n-predict 64 --temp 0.7 --seed 42
echo "== blyan testnet stop"
