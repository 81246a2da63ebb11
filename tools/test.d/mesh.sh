#!/usr/bin/env bash
# Acceptance for distributed inference (issue 5), real processes on loopback:
#  1. a bootstrap, a router and 3 layer-shards (+1 spare) on the tiny Q8_0 model:
#     greedy output through the mesh equals `blyan generate` (CPU);
#  2. check-golden.py through the router on both shared test models;
#  3. kill -9 of a shard mid-generation with a spare present: identical output,
#     and the session that used the dead shard reports a failover;
#  4. 16 concurrent sessions, all equal to the reference;
#  5. hostile input on router and shard sockets (tools/mesh_hostile.py): clean
#     errors, and a generation running meanwhile is unaffected.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BLY_BUILD_DIR:-$PWD/build}"
BLYAN="$BUILD/blyan"
SHARED="${BLY_SHARED_DIR:-$PWD/../shared}"
MODELS="$SHARED/testdata/models"
DIR="$(mktemp -d /tmp/bly-mesh.XXXXXX)"
PY=/usr/bin/python3

cleanup() {
  for d in "$DIR"/net-*; do
    [ -d "$d" ] && "$BLYAN" testnet stop --dir "$d" >/dev/null 2>&1 || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT

fail() {
  echo "mesh.sh: FAIL: $*"
  for f in "$DIR"/net-*/*/node.log; do echo "== $f"; tail -n 8 "$f"; done
  exit 1
}

# Start a mesh of model $1 with $2 shards and $3 spares in $DIR/net-$4; sets ROUTER, KEY.
start_mesh() {
  local net="$DIR/net-$4"
  local base
  base=$($PY tools/free_ports.py $((2 + $2 + $3)))
  "$BLYAN" testnet init --dir "$net" --shards "$2" --spares "$3" --model "$1" \
    --base-port "$base" --heartbeat-ms 200 --expiry-ms 1500 >/dev/null
  "$BLYAN" testnet start --dir "$net" >/dev/null || fail "testnet start ($4)"
  ROUTER="tcp://127.0.0.1:$((base + 1))"
  KEY=$($PY -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == "router"][0])' "$net/nodes.json")
  # The router learns the shards from the bootstrap (every 500 ms).
  for _ in $(seq 1 50); do
    "$BLYAN" chat --router "$ROUTER" --router-key "$KEY" --prompt hi --n-predict 1 --temp 0 \
      --timeout-ms 2000 >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "the router of $4 never answered"
}

same_ids() {  # same_ids REF.json OUT.json
  $PY - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a["ids"] == b["ids"] and a["prompt_ids"] == b["prompt_ids"] else 1)
PY
}

Q8="$MODELS/qwen3-tiny-q8.gguf"
F32="$MODELS/qwen3-tiny-f32.gguf"

# 0. testnet init refuses bad mesh options.
for bad in "--shards 3" "--shards 0 --model $Q8" "--shards 9 --model $Q8" \
           "--shards 3 --model $Q8 --backend opencl" "--shards 3 --model $Q8 --backend vulkan:99" \
           "--shards 3 --model /nonexistent" \
           "--spares 1 --model $Q8"; do
  # shellcheck disable=SC2086
  if "$BLYAN" testnet init --dir "$DIR/bad" $bad >/dev/null 2>&1; then fail "init accepted: $bad"; fi
  rm -rf "$DIR/bad"
done

# 1. Three shards and a spare on the Q8_0 model: equal to generate.
start_mesh "$Q8" 3 1 q8
CHAT=("$BLYAN" chat --router "$ROUTER" --router-key "$KEY" --temp 0 --ignore-eos --json)
"$BLYAN" generate --model "$Q8" --prompt "The quick brown fox" --n-predict 48 --temp 0 \
  --ignore-eos --json > "$DIR/ref48.json"
"${CHAT[@]}" --prompt "The quick brown fox" --n-predict 48 > "$DIR/mesh48.json" \
  || fail "chat through 3 shards"
same_ids "$DIR/ref48.json" "$DIR/mesh48.json" || fail "mesh output differs from generate"
echo "mesh.sh: 3 shards equal blyan generate"
$PY tools/blyan_client.py chat --router "$ROUTER" --router-key "$KEY" --codec-dir "$BUILD/schemas" \
  --prompt "The quick brown fox" --n-predict 48 --ignore-eos --json > "$DIR/py48.json" \
  || fail "the Python client"
same_ids "$DIR/ref48.json" "$DIR/py48.json" || fail "the Python client's output differs"
echo "mesh.sh: the Python client streams the same answer"

# 2. Golden parity through the router (the key from the environment: the prefix is
#    exactly `blyan chat --router E`).
BLY_ROUTER_KEY="$KEY" $PY "$SHARED/tools/check-golden.py" "[\"$BLYAN\",\"chat\",\"--router\",\"$ROUTER\"]" \
  "$MODELS/qwen3-tiny-q8.golden.json" || fail "check-golden through the router (q8)"

# 3. kill -9 mid-generation: two sessions spread over shard1 and spare1 (same
#    stages); shard1 dies; both answers stay equal to the reference.
"$BLYAN" generate --model "$Q8" --prompt "Hello world" --n-predict 300 --temp 0 --ignore-eos \
  --json > "$DIR/ref300.json"
for i in 1 2; do
  "${CHAT[@]}" --prompt "Hello world" --n-predict 300 --request-id "k$i" > "$DIR/kill$i.json" &
done
sleep 1
kill -9 "$(cat "$DIR/net-q8/shard1/node.pid")"
wait || fail "a chat failed across the kill"
failovers=0
for i in 1 2; do
  same_ids "$DIR/ref300.json" "$DIR/kill$i.json" || fail "output after kill -9 differs ($i)"
  f=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["timings"]["failovers"])' "$DIR/kill$i.json")
  failovers=$((failovers + f))
done
[ "$failovers" -ge 1 ] || echo "mesh.sh: note: the generation finished before the kill landed"
echo "mesh.sh: kill -9 of a shard mid-generation: identical output ($failovers failovers)"
"$BLYAN" testnet restart --dir "$DIR/net-q8" shard1 >/dev/null || fail "restart shard1"

# 4. 16 concurrent sessions.
pids=()
for i in $(seq 1 16); do
  "${CHAT[@]}" --prompt "The quick brown fox" --n-predict 48 --request-id "c$i" \
    > "$DIR/conc$i.json" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent session failed"; done
for i in $(seq 1 16); do
  same_ids "$DIR/ref48.json" "$DIR/conc$i.json" || fail "concurrent session $i differs"
done
echo "mesh.sh: 16 concurrent sessions equal the reference"
# Their decode steps queued at the shards and ran as batches (one pass for several sessions).
grep -h "decode steps in one pass" "$DIR"/net-*/shard*/node.log | head -3 | grep -q . \
  || fail "no shard batched the concurrent sessions' decode steps"
echo "mesh.sh: shards batched concurrent decode steps: $(grep -h "decode steps in one pass" "$DIR"/net-*/shard*/node.log | head -1 | sed 's/.*shard: //')"

# 5. Hostile input while a generation runs.
"${CHAT[@]}" --prompt "Hello world" --n-predict 300 --request-id victim > "$DIR/victim.json" &
victim=$!
SHARD2=$($PY -c 'import json,sys; n=[n for n in json.load(open(sys.argv[1]))["nodes"] if n["name"]=="shard2"][0]; print(n["endpoints"][0], n["public_key"])' "$DIR/net-q8/nodes.json")
$PY tools/mesh_hostile.py --router "$ROUTER" --router-key "$KEY" --shard $SHARD2 \
  --codec-dir "$BUILD/schemas" || fail "hostile input"
wait "$victim" || fail "the victim session failed"
same_ids "$DIR/ref300.json" "$DIR/victim.json" || fail "hostile input changed another session"
echo "mesh.sh: hostile input refused cleanly; other sessions unaffected"
"$BLYAN" testnet stop --dir "$DIR/net-q8" >/dev/null

# 2b. The F32 model's goldens through a 2-shard mesh.
start_mesh "$F32" 2 0 f32
$PY "$SHARED/tools/check-golden.py" "[\"$BLYAN\",\"chat\",\"--router\",\"$ROUTER\",\"--router-key\",\"$KEY\"]" \
  "$MODELS/qwen3-tiny-f32.golden.json" || fail "check-golden through the router (f32)"
"$BLYAN" testnet stop --dir "$DIR/net-f32" >/dev/null
echo "mesh.sh: all passed"
