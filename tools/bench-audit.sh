#!/usr/bin/env bash
# Audit overhead (docs/BENCHMARKS.md, "Audits"): one mesh of the tiny Q8_0 model
# (3 shards + 3 spares, so every hop has a second node), the router restarted
# with audit_milli 0, 100 and 1000 in turn, ROUNDS interleaved rounds of a
# 128-token greedy chat each. Prints decode tokens/s per run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BLY_BUILD_DIR:-$PWD/build}"
BLYAN="$BUILD/blyan"
PY=/usr/bin/python3
Q8="${BLY_SHARED_DIR:-$PWD/../shared}/testdata/models/qwen3-tiny-q8.gguf"
ROUNDS="${ROUNDS:-5}"
D=$(mktemp -d /tmp/bly-bench-audit.XXXXXX)
NET=$D/net
trap '"$BLYAN" testnet stop --dir "$NET" >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
base=$($PY tools/free_ports.py 8)
"$BLYAN" testnet init --dir "$NET" --shards 3 --spares 3 --model "$Q8" --base-port "$base" \
  --heartbeat-ms 200 --expiry-ms 1500 >/dev/null
cp "$NET/router/manifest.zpl" "$D/router.zpl"
"$BLYAN" testnet start --dir "$NET" >/dev/null
KEY=$($PY -c 'import json,sys; print([n["public_key"] for n in json.load(open(sys.argv[1]))["nodes"] if n["name"] == "router"][0])' "$NET/nodes.json")
R="tcp://127.0.0.1:$((base + 1))"
CHAT=("$BLYAN" chat --router "$R" --router-key "$KEY" --temp 0 --ignore-eos --json)
set_rate() {
  cp "$D/router.zpl" "$NET/router/manifest.zpl"
  printf '    audit_milli = %s\n' "$1" >> "$NET/router/manifest.zpl"
  "$BLYAN" testnet restart --dir "$NET" router >/dev/null
  sleep 1.5                                            # the peer list (every 500 ms)
  "${CHAT[@]}" --prompt hi --n-predict 2 >/dev/null    # warm the links
}
for round in $(seq 1 "$ROUNDS"); do
  for rate in 0 100 1000; do
    set_rate "$rate"
    "${CHAT[@]}" --prompt "The quick brown fox" --n-predict 128 > "$D/out.json"
    $PY -c 'import json,sys; t=json.load(open(sys.argv[1]))["timings"]; print("round", sys.argv[2], "audit_milli", sys.argv[3], "decode_tok_s", t["predicted_per_second"])' \
      "$D/out.json" "$round" "$rate"
  done
done
