#!/usr/bin/env bash
# Lying-shard detection and reported figures (issue 5), real processes on loopback:
# a bootstrap, a router auditing every logits step (audit_milli = 1000), and two
# stage ranges served by three shards each, one of which lies (fault_lie, the
# test-only fault-injection knob: it shifts every activation it sends by 1).
#  1. sequential and concurrent chats (sessions spread over the three replicas,
#     so the liar serves some of them) all equal `blyan generate`;
#  2. the router names the liar, and only the liar, as a suspect;
#  3. shards announce a measured speed (not the manifest's 1000) and a load.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BLY_BUILD_DIR:-$PWD/build}"
BLYAN="$BUILD/blyan"
SHARED="${BLY_SHARED_DIR:-$PWD/../shared}"
Q8="$SHARED/testdata/models/qwen3-tiny-q8.gguf"
DIR="$(mktemp -d /tmp/bly-audit.XXXXXX)"
NET="$DIR/net"
PY=/usr/bin/python3

cleanup() {
  "$BLYAN" testnet stop --dir "$NET" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

fail() {
  echo "audit.sh: FAIL: $*"
  for f in "$NET"/*/node.log; do echo "== $f"; tail -n 8 "$f"; done
  exit 1
}

key_of() {  # key_of NAME: the node's public key (hex)
  $PY -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == sys.argv[2]][0])' "$NET/nodes.json" "$1"
}

# shard1, spare1, spare3 serve the first half of the stages; shard2, spare2,
# spare4 the second. spare3 lies.
base=$($PY tools/free_ports.py 8)
"$BLYAN" testnet init --dir "$NET" --shards 2 --spares 4 --model "$Q8" --base-port "$base" \
  --heartbeat-ms 200 --expiry-ms 1500 >/dev/null
printf '    audit_milli = 1000\n    audit_seed = 7\n' >> "$NET/router/manifest.zpl"
printf '    fault_lie = true\n' >> "$NET/spare3/manifest.zpl"
"$BLYAN" testnet start --dir "$NET" >/dev/null || fail "testnet start"
ROUTER="tcp://127.0.0.1:$((base + 1))"
KEY=$(key_of router)
LIAR=$(key_of spare3)
CHAT=("$BLYAN" chat --router "$ROUTER" --router-key "$KEY" --temp 0 --ignore-eos --json)
# Wait until the router knows all six shards (a chat that works may still
# plan over fewer).
for _ in $(seq 1 50); do
  grep -q "6 shards known" "$NET/router/node.log" 2>/dev/null && break
  sleep 0.2
done
grep -q "6 shards known" "$NET/router/node.log" || fail "the router never saw the six shards"

"$BLYAN" generate --model "$Q8" --prompt "The quick brown fox" --n-predict 24 --temp 0 \
  --ignore-eos --json > "$DIR/ref.json"
same_ids() {
  $PY - "$DIR/ref.json" "$1" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a["ids"] == b["ids"] and a["prompt_ids"] == b["prompt_ids"] else 1)
PY
}

# 1. Concurrent sessions spread over the replicas (the planner divides a
#    shard's score by the sessions it already runs), then sequential ones.
pids=()
for i in $(seq 1 6); do
  "${CHAT[@]}" --prompt "The quick brown fox" --n-predict 24 --request-id "c$i" \
    > "$DIR/c$i.json" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent chat failed"; done
for i in 1 2; do
  "${CHAT[@]}" --prompt "The quick brown fox" --n-predict 24 --request-id "s$i" > "$DIR/s$i.json" \
    || fail "a sequential chat failed"
done
for f in "$DIR"/c*.json "$DIR"/s*.json; do
  same_ids "$f" || fail "$(basename "$f"): output differs from generate despite the liar"
done
echo "audit.sh: 8 chats with a lying shard equal blyan generate"

# 2. The liar, and only the liar, is a suspect.
suspects=$(grep -o "node [0-9a-f]\{8\}\.\.\. gave outputs" "$NET/router/node.log" | awk '{print $2}' | sort -u)
[ -n "$suspects" ] || fail "the router caught no liar"
[ "$suspects" = "${LIAR:0:8}..." ] || fail "suspects '$suspects', the liar is ${LIAR:0:8}"
echo "audit.sh: the router marked the lying shard (and no other) as a suspect"

# 3. Measured figures in the registry.
"$BLYAN" status --dir "$NET" --role layer-shard --json > "$DIR/status.json" 2>/dev/null \
  || fail "blyan status"
$PY - "$DIR/status.json" <<'PY' || fail "shards do not announce measured speeds"
import json, sys
peers = json.load(open(sys.argv[1]))["nodes"]
assert len(peers) == 6, peers
assert all(p["speed_milli"] != 1000 and p["speed_milli"] > 0 for p in peers), peers
print("audit.sh: measured speeds (tokens/s):", sorted(round(p["speed_milli"] / 1000) for p in peers))
PY
"$BLYAN" testnet stop --dir "$NET" >/dev/null
echo "audit.sh: all passed"
