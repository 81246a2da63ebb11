#!/usr/bin/env bash
# Consensus benchmark on real processes (docs/BENCHMARKS.md, "Consensus on real processes"):
# a fresh `blyan testnet init --validators 4` folder with 1,000 funded clients, then
# `cons_bench run` at each offered RATE for SECONDS, (KILL_DURING=RATE) one run where
# validator2 is killed with SIGKILL KILL_AFTER (default 3) seconds in (the clients talk to
# the other three; the transfers in flight then see the crash), and (DEAD="RATE...") the
# same with validator2 dead (the proposer of every 4th height). After each run: the CPU
# time the replicas used (utime + stime from /proc) per committed transfer (a replica
# killed during a run is not counted).
# A benchmark, not a test.
#   tests/consensus/cons_bench.sh BUILD_DIR TAG "RATE..." [SECONDS]
#   env: DEAD="RATE...", KILL_DURING=RATE, KILL_AFTER=S, IDLE=S (idle CPU first),
#        BENCH_TMP=DIR (where the testnet lives, default /tmp), INFLIGHT=N (transfers in flight
#        per client, default 1), TIMEOUT_COMMIT_MS=N (written into the four manifests),
#        CLIENTS=N funded clients (default 1000; the offered rate is capped near
#        CLIENTS x INFLIGHT / finality)
set -u
B=$1; TAG=$2; RATES=$3; SECS=${4:-8}
D=$(mktemp -d "${BENCH_TMP:-/tmp}/cons-bench-$TAG.XXXXXX")
trap '"$B/blyan" testnet stop --dir "$D" >/dev/null 2>&1; rm -rf "$D"' EXIT
cd "$(dirname "$0")/../.."
BASE=$(python3 tools/free_ports.py 30)
"$B/blyan" testnet init --dir "$D" --validators 4 --base-port "$BASE" >/dev/null || exit 1
"$B/tests/consensus/cons_bench" prepare "$D" "${CLIENTS:-1000}" || exit 1
if [ -n "${TIMEOUT_COMMIT_MS:-}" ]; then
  for v in 1 2 3 4; do
    sed -i "/^    genesis = /a\\    timeout_commit_ms = $TIMEOUT_COMMIT_MS" "$D/validator$v/manifest.zpl"
  done
fi
"$B/blyan" testnet start --dir "$D" >/dev/null || exit 1
sleep 2
declare -a PIDS
for v in 1 2 3 4; do PIDS[$v]=$(cat "$D/validator$v/node.pid"); done
cpu_ticks() {
  local t=0 v
  for v in 1 2 3 4; do
    [ -r "/proc/${PIDS[$v]}/stat" ] && t=$(( t + $(awk '{print $14 + $15}' "/proc/${PIDS[$v]}/stat") ))
  done
  echo "$t"
}
run() {
  local c0 c1 load out n hz
  hz=$(getconf CLK_TCK)
  local cal
  cal=$("$B/tests/consensus/cons_bench" calibrate)
  c0=$(cpu_ticks); load=$(cut -d' ' -f1 /proc/loadavg)
  out=$("$B/tests/consensus/cons_bench" run "$D" "${CLIENTS:-1000}" "$@")
  c1=$(cpu_ticks)
  n=$(echo "$out" | sed -n 's/.*committed \([0-9]*\) in.*/\1/p')
  echo "[$TAG $(date -u +%T) load $load verify $cal us] $out | replica CPU $(( (c1 - c0) * 1000 / hz )) ms" \
       "= $(( (c1 - c0) * 1000000 / hz / (${n:-0} > 0 ? n : 1) )) us/tx"
}
# IDLE=S: before the runs, the replicas' CPU and the blocks they make in S idle seconds.
if [ -n "${IDLE:-}" ]; then
  head_of() { python3 -c 'import json,sys
n=[n for n in json.load(open(sys.argv[1]))["nodes"] if n["name"]=="validator1"][0]
print(n["ledger_endpoint"], n["public_key"])' "$D/nodes.json"; }
  read -r EP1 ID1 <<< "$(head_of)"
  height() { "$B/blyan" chain head --node "$EP1" --server-key "$ID1" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])'; }
  sleep 2
  c0=$(cpu_ticks); h0=$(height); sleep "$IDLE"; c1=$(cpu_ticks); h1=$(height)
  hz=$(getconf CLK_TCK)
  echo "[$TAG $(date -u +%T) idle ${IDLE} s] blocks $(( h1 - h0 )); replica CPU" \
       "$(( (c1 - c0) * 1000 / hz )) ms = $(( (c1 - c0) * 1000 / hz / 4 / IDLE )) ms/s per replica"
fi
for r in $RATES; do run "$r" "$SECS"; done
KILLED=
if [ -n "${KILL_DURING:-}" ]; then
  VICTIM=${PIDS[2]}
  PIDS[2]=0   #  Its CPU is not counted in this run (it vanishes with the process).
  ( sleep "${KILL_AFTER:-3}"; kill -9 "$VICTIM" ) &
  run "$KILL_DURING" "$SECS" 2
  wait
  KILLED=1
fi
if [ -n "${DEAD:-}" ]; then
  [ -n "$KILLED" ] || "$B/blyan" testnet kill --dir "$D" validator2 >/dev/null
  PIDS[2]=0   #  Gone: not counted (its /proc entry may linger until reaped).
  for r in $DEAD; do run "$r" "$SECS" 2; done
fi
