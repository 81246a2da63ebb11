#!/usr/bin/env bash
# Consensus on real processes (docs/CONSENSUS.md): `blyan testnet init --validators 4`
# writes four Tendermint replicas with a shared genesis; eight funded clients submit
# transfers in rounds to changing replicas while one replica is killed with SIGKILL and
# restarted (it recovers from its commit log and WAL and catches up), another is
# stopped with SIGSTOP and resumed, and a third is wiped and resyncs from the others. Checks: every acknowledged transfer is committed
# exactly once (the sink and every client hold exactly what the acknowledged transfers
# imply: a lost one or a double one would differ), all replicas agree on the block and
# the app hash at common heights, an equivocation by one validator's key is slashed by every
# ledger exactly once and takes its voting power (tombstone), and `testnet stop` leaves
# no process.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BLY_BUILD_DIR:-$PWD/build}"
BLYAN="$BUILD/blyan"
DIR="$(mktemp -d /tmp/bly-consensus.XXXXXX)"
CLIENTS=8
cleanup() {
  "$BLYAN" testnet stop --dir "$DIR" >/dev/null 2>&1 || true
  [ -n "${STOPPED:-}" ] && kill -CONT "$STOPPED" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
  echo "consensus.sh: FAIL: $*"
  for v in 1 2 3 4; do echo "--- validator$v"; tail -n 8 "$DIR/validator$v/node.log" 2>/dev/null; done
  exit 1
}

BASE=$(python3 tools/free_ports.py 80)
"$BLYAN" testnet init --dir "$DIR" --validators 4 --base-port "$BASE" >/dev/null || fail "init"
field() { python3 -c 'import json,sys
n=[n for n in json.load(open(sys.argv[1]))["nodes"] if n["name"]==sys.argv[2]][0]
print(n[sys.argv[3]])' "$DIR/nodes.json" "$1" "$2"; }
declare -a EP ID
for v in 1 2 3 4; do EP[$v]=$(field "validator$v" ledger_endpoint); ID[$v]=$(field "validator$v" public_key); done
args() { echo --node "${EP[$1]}" --server-key "${ID[$1]}" --timeout-ms 3000; }

# Funded clients (appended to the shared genesis before the first start) and a sink.
FUND=1000000
for c in $(seq 1 $CLIENTS); do
  "$BLYAN" keygen --out "$DIR/client$c.key" >/dev/null
  echo "account $("$BLYAN" address --key "$DIR/client$c.key") $FUND 0" >> "$DIR/genesis.conf"
done
"$BLYAN" keygen --out "$DIR/sink.key" >/dev/null
SINK=$("$BLYAN" address --key "$DIR/sink.key")
"$BLYAN" testnet start --dir "$DIR" >/dev/null || fail "start"

height() { "$BLYAN" chain head $(args "$1") --json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])' 2>/dev/null || echo -1; }
declare -a SPENT
for c in $(seq 1 $CLIENTS); do SPENT[$c]=0; done
EXPECT=0; ACKED=0
# One round: each client submits one transfer to a replica from the list given; an
# acknowledged one must commit. Then wait (bounded) until the sink holds everything.
round() {
  local live=("$@") c v amount
  for c in $(seq 1 $CLIENTS); do
    v=${live[$(( (c + ACKED) % ${#live[@]} ))]}
    amount=$(( 100 + RANDOM % 900 ))
    if "$BLYAN" tx transfer $(args "$v") --key "$DIR/client$c.key" --to "$SINK" \
         --amount "$amount" --fee 1 >/dev/null 2>&1; then
      EXPECT=$(( EXPECT + amount )); SPENT[$c]=$(( SPENT[$c] + amount + 1 )); ACKED=$(( ACKED + 1 ))
    fi
  done
  local probe=${live[0]}
  for _ in $(seq 1 100); do
    [ "$("$BLYAN" balance $(args "$probe") "$SINK" 2>/dev/null)" = "$EXPECT" ] && return 0
    sleep 0.2
  done
  fail "the sink holds $("$BLYAN" balance $(args "$probe") "$SINK" 2>/dev/null), expected $EXPECT"
}

round 1 2 3 4
"$BLYAN" testnet kill --dir "$DIR" validator3 >/dev/null || fail "kill"
round 1 2 4
round 4 1 2
"$BLYAN" testnet restart --dir "$DIR" validator3 >/dev/null || fail "restart"
grep -q "recovered [1-9][0-9]* commits" "$DIR/validator3/node.log" || fail "validator3 did not replay its commits"
# Caught up: validator3 reaches the height the others had after the restart.
TARGET=$(height 1)
for _ in $(seq 1 100); do [ "$(height 3)" -ge "$TARGET" ] && break; sleep 0.2; done
[ "$(height 3)" -ge "$TARGET" ] || fail "validator3 did not catch up to $TARGET"
STOPPED=$(cat "$DIR/validator4/node.pid")
kill -STOP "$STOPPED"
round 1 2 3
round 3 2 1
kill -CONT "$STOPPED"; STOPPED=""
round 4 3 2 1
# Wipe and resync: validator2 loses its whole consensus folder (commit log, WAL, LMDB);
# it keeps only the guard file beside it, resyncs every committed block from the others
# (certificates verified) and joins again.
"$BLYAN" testnet kill --dir "$DIR" validator2 >/dev/null || fail "kill validator2"
rm -rf "$DIR/validator2/data/consensus"
[ -s "$DIR/validator2/data/consensus.guard" ] || fail "validator2 kept no guard file"
round 1 3 4
"$BLYAN" testnet restart --dir "$DIR" validator2 >/dev/null || fail "restart validator2"
grep -q "double-sign guard restored" "$DIR/validator2/node.log" || fail "validator2 did not restore its guard"
TARGET=$(height 1)
for _ in $(seq 1 150); do [ "$(height 2)" -ge "$TARGET" ] && break; sleep 0.2; done
[ "$(height 2)" -ge "$TARGET" ] || fail "the wiped validator2 did not resync to $TARGET"
round 2 1 3 4
[ "$ACKED" -ge $(( CLIENTS * 6 )) ] || fail "only $ACKED transfers were acknowledged"

# Exactly once: every client paid exactly its acknowledged amounts plus fees.
for v in 1 2 3 4; do
  for _ in $(seq 1 100); do
    [ "$("$BLYAN" balance $(args "$v") "$SINK" 2>/dev/null)" = "$EXPECT" ] && break; sleep 0.2
  done
  [ "$("$BLYAN" balance $(args "$v") "$SINK")" = "$EXPECT" ] || fail "validator$v: sink balance"
  for c in $(seq 1 $CLIENTS); do
    ADDR=$("$BLYAN" address --key "$DIR/client$c.key")
    [ "$("$BLYAN" balance $(args "$v") "$ADDR")" = "$(( FUND - SPENT[c] ))" ] \
      || fail "validator$v: client$c paid other than its acknowledged transfers"
  done
done
# Agreement: the same block (hash, and the app hash after the block before) at common
# heights on every replica.
LOW=$(height 1)
for v in 2 3 4; do H=$(height "$v"); [ "$H" -lt "$LOW" ] && LOW=$H; done
[ "$LOW" -gt 10 ] || fail "the chain is too short ($LOW)"
for h in $(( LOW - 1 )) $(( LOW / 2 )) 2; do
  REF=$("$BLYAN" chain block $(args 1) "$h") || fail "no block $h on validator1"
  for v in 2 3 4; do
    [ "$("$BLYAN" chain block $(args "$v") "$h")" = "$REF" ] || fail "validator$v differs at $h"
  done
done
# Transfers in flight: client1 signs its next three nonces and submits them back to back
# (the mempool holds the later ones until the earlier ones commit); all three commit.
ADDR1=$("$BLYAN" address --key "$DIR/client1.key")
N1=$("$BLYAN" balance $(args 1) "$ADDR1" --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["nonce"])')
S0=$("$BLYAN" balance $(args 1) "$SINK")
for k in 1 2 3; do
  "$BLYAN" tx transfer $(args 1) --key "$DIR/client1.key" --to "$SINK" --amount 7 \
    --nonce $(( N1 + k )) >/dev/null || fail "transfer $k in flight refused"
done
for _ in $(seq 1 100); do [ "$("$BLYAN" balance $(args 3) "$SINK")" = "$(( S0 + 21 ))" ] && break; sleep 0.2; done
[ "$("$BLYAN" balance $(args 3) "$SINK")" = "$(( S0 + 21 ))" ] || fail "transfers in flight did not all commit"
# Slashing from committed evidence: validator4's own key signs two conflicting prevotes
# for height 2; the replicas commit the evidence and every ledger burns slash_bps (5 %) of
# validator4's stake exactly once, also when the same evidence arrives again.
V4=$("$BLYAN" address --key "$DIR/validator4/node.key")
stake() { "$BLYAN" balance $(args "$1") "$V4" --json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["stake"])' 2>/dev/null || echo -1; }
[ "$(stake 1)" = 1000000 ] || fail "validator4 starts with stake $(stake 1)"
"$BUILD/tests/consensus/cons_equivocate" "$DIR" 4 2 || fail "cons_equivocate"
for v in 1 2 3 4; do
  for _ in $(seq 1 100); do [ "$(stake "$v")" = 950000 ] && break; sleep 0.2; done
  [ "$(stake "$v")" = 950000 ] || fail "validator$v: validator4's stake is $(stake "$v"), not 950000"
done
# ...and tombstoned it: every replica logs validator4's voting power 0 from then on.
P4=${ID[4]:0:8}
for v in 1 2 3 4; do
  for _ in $(seq 1 50); do grep -q "($P4) has voting power 0 of" "$DIR/validator$v/node.log" && break; sleep 0.2; done
  grep -q "($P4) has voting power 0 of" "$DIR/validator$v/node.log" \
    || fail "validator$v: validator4 kept its voting power after the evidence committed"
done
"$BUILD/tests/consensus/cons_equivocate" "$DIR" 4 2 || fail "cons_equivocate (again)"
TARGET=$(( $(height 1) + 2 ))
for _ in $(seq 1 100); do [ "$(height 1)" -ge "$TARGET" ] && break; sleep 0.2; done
for v in 1 2 3 4; do
  [ "$(stake "$v")" = 950000 ] || fail "validator$v: validator4 slashed again ($(stake "$v"))"
done
# Idle: with nothing pending the replicas pause timeout_idle_ms (1 s) between empty
# blocks instead of timeout_commit_ms (50 ms): a few heights in 3 s, not dozens.
H0=$(height 1); sleep 3; H1=$(height 1)
[ $(( H1 - H0 )) -le 8 ] || fail "idle replicas made $(( H1 - H0 )) blocks in 3 s"
"$BLYAN" testnet stop --dir "$DIR" >/dev/null || fail "stop"
for v in 1 2 3 4; do
  pgrep -f "$DIR/validator$v/manifest.zpl" >/dev/null && fail "validator$v still runs after stop"
done
echo "consensus.sh: $ACKED transfers acknowledged and committed exactly once; 4 replicas agree up to height $LOW (kill -9 + restart, SIGSTOP/SIGCONT, wipe + resync); 3 transfers in flight committed; an equivocation slashed validator4 once and took its voting power; idle: $(( H1 - H0 )) blocks in 3 s"
