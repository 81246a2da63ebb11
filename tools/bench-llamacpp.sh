#!/usr/bin/env bash
# blyan bench next to llama.cpp on the same GGUF, same machine, same run (docs/BENCHMARKS.md).
# llama.cpp is the prebuilt CPU build shipped by the npm package node-llama-cpp (pinned below;
# x86-64 Linux only), installed under build/llamacpp-bench, never committed. A benchmark:
# prints numbers, checks nothing. The two alternate (A B, B A, ...) so both see the same load.
# usage: tools/bench-llamacpp.sh [PAIRS=3] [THREADS=2]   (BLY_BENCH_MODEL=path to use a model)
set -euo pipefail
cd "$(dirname "$0")/.."
NLC_VERSION=3.22.1
PAIRS=${1:-3}
THREADS=${2:-2}
BLYAN="$PWD/build/blyan"
DIR="$PWD/build/llamacpp-bench"
M=${BLY_BENCH_MODEL:-$PWD/build/models/qwen3-0.6b-q8-bench.gguf}
if [ ! -f "$M" ]; then
  mkdir -p "$(dirname "$M")"
  "$BLYAN" mkmodel --like qwen3-0.6b --type Q8_0 \
    --tokenizer ../shared/testdata/models/qwen3-tiny-q8.gguf --out "$M" >/dev/null
fi
if [ ! -d "$DIR/node_modules/node-llama-cpp" ]; then
  mkdir -p "$DIR"
  # --ignore-scripts: no postinstall download or source build; --omit=optional and the
  # explicit linux-x64 package: the CPU binaries only, not the CUDA/Vulkan ones (~85 MB).
  (cd "$DIR" && echo '{"private":true}' > package.json &&
   npm install --ignore-scripts --omit=optional --no-audit --no-fund \
     "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/linux-x64@$NLC_VERSION" >/dev/null)
fi
cp tools/bench-llamacpp.mjs "$DIR/"
release=$(sed -n 's/.*"release": *"\([^"]*\)".*/\1/p' \
  "$DIR/node_modules/node-llama-cpp/llama/binariesGithubRelease.json")
echo "llama.cpp: node-llama-cpp $NLC_VERSION, llama.cpp release $release; model $M"
for i in $(seq 1 "$PAIRS"); do
  order="llama blyan"
  [ $((i % 2)) = 0 ] && order="blyan llama"
  for who in $order; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    start=$(date -u +%H:%M:%S)
    if [ "$who" = llama ]; then
      out=$(node "$DIR/bench-llamacpp.mjs" --model="$M" --threads="$THREADS" \
        --prompt-tokens=128 --gen-tokens=32 2>/dev/null | grep '^{')
    else
      out=$("$BLYAN" bench --model "$M" --threads "$THREADS" --prompt-tokens 128 \
        --gen-tokens 32 --json)
    fi
    echo "pair $i $who start $start load $load $out"
  done
done
