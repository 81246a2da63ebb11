#!/usr/bin/env bash
# Decode tokens/s through a 3-shard mesh on the Vulkan backend versus one process with
# `--backend vulkan`, alternating in one run, on the tiny Q8_0 test model (docs/BENCHMARKS.md).
# On this machine the device is lavapipe (Mesa's CPU driver), LP_NUM_THREADS=2 for every
# process. A benchmark, not a test: prints numbers, checks nothing. Usage:
# tools/bench-mesh-vulkan.sh [RUNS] [TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
BLYAN="$PWD/build/blyan"
M="${BLY_SHARED_DIR:-$PWD/../shared}/testdata/models/qwen3-tiny-q8.gguf"
RUNS="${1:-3}"
TOKENS="${2:-48}"
export LP_NUM_THREADS="${LP_NUM_THREADS:-2}"
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$PWD/build/mesa-shader-cache}"
DIR="$(mktemp -d /tmp/bly-benchvk.XXXXXX)"
trap '"$BLYAN" testnet stop --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
BASE=$(python3 tools/free_ports.py 5)
"$BLYAN" testnet init --dir "$DIR" --shards 3 --model "$M" --backend vulkan \
  --base-port "$BASE" >/dev/null
"$BLYAN" testnet start --dir "$DIR" >/dev/null
KEY=$(python3 -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == "router"][0])' "$DIR/nodes.json")
CHAT=("$BLYAN" chat --router "tcp://127.0.0.1:$((BASE + 1))" --router-key "$KEY" --temp 0 \
  --ignore-eos --json --prompt "The quick brown fox")
for _ in $(seq 1 100); do "${CHAT[@]}" --n-predict 1 >/dev/null 2>&1 && break; sleep 0.2; done
rate() { python3 -c 'import json,sys; print(json.load(sys.stdin)["timings"]["predicted_per_second"])'; }
for run in $(seq 1 "$RUNS"); do
  s=$("$BLYAN" generate --model "$M" --backend vulkan --prompt "The quick brown fox" \
    --n-predict "$TOKENS" --temp 0 --ignore-eos --json | rate)
  m=$("${CHAT[@]}" --n-predict "$TOKENS" | rate)
  echo "run $run: single $s tok/s, mesh $m tok/s, mesh/single $(python3 -c "print(f'{$m/$s:.0%}')")"
done
uptime
