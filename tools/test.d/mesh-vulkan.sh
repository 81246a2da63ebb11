#!/usr/bin/env bash
# Distributed inference on the Vulkan backend (lavapipe in CI), real processes on loopback:
#  1. a bootstrap, a router and 3 layer-shards with `--backend vulkan` on the tiny Q8_0
#     model: greedy output through the mesh equals `blyan generate --backend vulkan`, and
#     the golden file's safe steps (the CPU's answer) through the router;
#  2. testnet kill and restart of a Vulkan shard: the next answer is the same again;
#  3. 3 concurrent sessions (each shard holds one KV cache per session on one weight set);
#  4. the shards ran with the Khronos validation layer: no validation error in their logs.
# Prints the mesh's and the single process's decode rates of the same run (information,
# not a check). Skipped (exit 0 with a note) only where no Vulkan device exists at all.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BLY_BUILD_DIR:-$PWD/build}"
BLYAN="$BUILD/blyan"
SHARED="${BLY_SHARED_DIR:-$PWD/../shared}"
MODELS="$SHARED/testdata/models"
PY=/usr/bin/python3
if ! "$BLYAN" devices >/dev/null 2>&1; then
  echo "mesh-vulkan: no Vulkan device, skipped"
  exit 0
fi
export LP_NUM_THREADS="${LP_NUM_THREADS:-2}"
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$BUILD/mesa-shader-cache}"
export BLY_VK_VALIDATION=1
DIR="$(mktemp -d /tmp/bly-meshvk.XXXXXX)"
NET="$DIR/net"
cleanup() {
  [ -d "$NET" ] && "$BLYAN" testnet stop --dir "$NET" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
  echo "mesh-vulkan.sh: FAIL: $*"
  for f in "$NET"/*/node.log; do echo "== $f"; tail -n 8 "$f"; done
  exit 1
}
same_ids() {  # same_ids REF.json OUT.json
  $PY - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a["ids"] == b["ids"] and a["prompt_ids"] == b["prompt_ids"] else 1)
PY
}
rate() {  # rate OUT.json: decode tokens/s
  $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["timings"]["predicted_per_second"])' "$1"
}
Q8="$MODELS/qwen3-tiny-q8.gguf"
base=$($PY tools/free_ports.py 5)
"$BLYAN" testnet init --dir "$NET" --shards 3 --model "$Q8" --backend vulkan \
  --base-port "$base" --heartbeat-ms 200 --expiry-ms 1500 >/dev/null || fail "testnet init"
grep -q "^    backend = vulkan$" "$NET/shard1/manifest.zpl" || fail "no backend in the manifest"
"$BLYAN" testnet start --dir "$NET" >/dev/null || fail "testnet start"
ROUTER="tcp://127.0.0.1:$((base + 1))"
KEY=$($PY -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == "router"][0])' "$NET/nodes.json")
CHAT=("$BLYAN" chat --router "$ROUTER" --router-key "$KEY" --temp 0 --ignore-eos --json)
wait_router() {
  for _ in $(seq 1 100); do
    "${CHAT[@]}" --prompt hi --n-predict 1 --timeout-ms 5000 >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "the router never answered ($1)"
}
wait_router start
for s in shard1 shard2 shard3; do
  grep -q "sessions on vulkan" "$NET/$s/node.log" || fail "$s does not serve on Vulkan"
done

# 1. Equal to the single process on the same backend, and to the golden (CPU) safe steps.
"$BLYAN" generate --model "$Q8" --backend vulkan --prompt "The quick brown fox" \
  --n-predict 16 --temp 0 --ignore-eos --json > "$DIR/ref.json"
"${CHAT[@]}" --prompt "The quick brown fox" --n-predict 16 > "$DIR/mesh.json" \
  || fail "chat through 3 Vulkan shards"
same_ids "$DIR/ref.json" "$DIR/mesh.json" || fail "mesh output differs from generate --backend vulkan"
echo "mesh-vulkan.sh: 3 Vulkan shards equal blyan generate --backend vulkan"
BLY_ROUTER_KEY="$KEY" $PY "$SHARED/tools/check-golden.py" "[\"$BLYAN\",\"chat\",\"--router\",\"$ROUTER\"]" \
  "$MODELS/qwen3-tiny-q8.golden.json" || fail "check-golden through the Vulkan mesh"
echo "mesh-vulkan.sh: lavapipe decode, same run: single process $(rate "$DIR/ref.json") tokens/s," \
  "3-shard mesh $(rate "$DIR/mesh.json") tokens/s"

# 2. kill -9 and restart of a shard (no spare: the router waits for it to come back).
"$BLYAN" testnet kill --dir "$NET" shard2 >/dev/null || fail "testnet kill shard2"
"$BLYAN" testnet restart --dir "$NET" shard2 >/dev/null || fail "testnet restart shard2"
wait_router restart
"${CHAT[@]}" --prompt "The quick brown fox" --n-predict 16 > "$DIR/again.json" \
  || fail "chat after the restart"
same_ids "$DIR/ref.json" "$DIR/again.json" || fail "output after the restart differs"
echo "mesh-vulkan.sh: a killed and restarted Vulkan shard serves the same answer"

# 3. Concurrent sessions: one KV cache each on the shards' shared weights.
pids=()
for i in 1 2 3; do
  "${CHAT[@]}" --prompt "The quick brown fox" --n-predict 16 --request-id "c$i" \
    > "$DIR/conc$i.json" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent session failed"; done
for i in 1 2 3; do
  same_ids "$DIR/ref.json" "$DIR/conc$i.json" || fail "concurrent session $i differs"
done
echo "mesh-vulkan.sh: 3 concurrent sessions equal the reference"

# 4. No validation errors in any shard.
"$BLYAN" testnet stop --dir "$NET" >/dev/null
if grep -h "vulkan validation error" "$NET"/shard*/node.log; then fail "validation errors"; fi
echo "mesh-vulkan.sh: all passed"
