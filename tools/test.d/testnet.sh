#!/usr/bin/env bash
# Acceptance for the local testnet (issue 2): init 3 nodes, start, `blyan status` shows 3
# registered nodes (and so does the Python client); SIGKILL node2 and the bootstrap drops
# it once the expiry passes; restart brings it back; stop leaves no process behind.
# Short heartbeat/expiry (200 ms / 1 s); free loopback ports picked at run time.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BLY_BUILD_DIR:-$PWD/build}"
BLYAN="$BUILD/blyan"
DIR="$(mktemp -d /tmp/bly-testnet.XXXXXX)"

cleanup() {
  "$BLYAN" testnet stop --dir "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

fail() { echo "testnet.sh: FAIL: $*"; for f in "$DIR"/*/node.log; do echo "== $f"; tail -n 5 "$f"; done; exit 1; }

# Four consecutive free ports (bootstrap + 3 nodes).
BASE=$(python3 tools/free_ports.py 4)

# Registered nodes the bootstrap reports (JSON "count"), or -1 when it does not answer.
count() {
  "$BLYAN" status --dir "$DIR" --json --timeout-ms 1000 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>/dev/null || echo -1
}
# Wait (bounded, 10 s) until the count equals $1.
wait_count() {
  for _ in $(seq 1 50); do
    [ "$(count)" = "$1" ] && return 0
    sleep 0.2
  done
  fail "expected $1 registered nodes, bootstrap reports $(count)"
}

"$BLYAN" testnet init --dir "$DIR" --nodes 3 --base-port "$BASE" --heartbeat-ms 200 --expiry-ms 1000
test -f "$DIR/nodes.json" || fail "no nodes.json"
python3 - "$DIR/nodes.json" <<'PY' || fail "nodes.json is incomplete"
import json, sys
nodes = json.load(open(sys.argv[1]))["nodes"]
assert [n["name"] for n in nodes] == ["bootstrap", "node1", "node2", "node3"], nodes
for n in nodes:
    assert n["role"] and n["endpoints"] and len(n["public_key"]) == 64 and n["pid_file"], n
PY
for m in "$DIR"/*/manifest.zpl; do "$BUILD/blyan-node" --manifest "$m" --check >/dev/null; done

"$BLYAN" testnet start --dir "$DIR" || fail "start"
wait_count 3
"$BLYAN" status --dir "$DIR"
KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["public_key"])' "$DIR/nodes.json")
if /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null; then
  /usr/bin/python3 tools/blyan_client.py status --endpoint "tcp://127.0.0.1:$BASE" \
    --server-key "$KEY" --codec-dir "$BUILD/schemas" --json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["count"] == 3, d' \
    || fail "python client does not see 3 nodes"
fi

"$BLYAN" testnet kill --dir "$DIR" node2 || fail "kill"
wait_count 2
"$BLYAN" status --dir "$DIR" --json | grep -q '"node2"' && fail "node2 still listed"
"$BLYAN" testnet status --dir "$DIR"

"$BLYAN" testnet restart --dir "$DIR" node2 || fail "restart"
wait_count 3

# A restarted bootstrap forgets everyone; the members notice and register again.
"$BLYAN" testnet restart --dir "$DIR" bootstrap || fail "restart bootstrap"
wait_count 3

# keygen: a new 0600 key file and its node id; never overwrites.
ID=$("$BLYAN" keygen --out "$DIR/extra.key") || fail "keygen"
[ "${#ID}" = 64 ] || fail "keygen printed '$ID'"
[ "$(stat -c %a "$DIR/extra.key")" = 600 ] || fail "key file mode"
"$BLYAN" keygen --out "$DIR/extra.key" 2>/dev/null && fail "keygen overwrote a key"

# status error paths: no answer (exit 1), a key that is no node id (1), bad usage (2).
rc=0; "$BLYAN" status --endpoint tcp://127.0.0.1:1 --server-key "$KEY" --timeout-ms 200 \
  2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "status without a bootstrap exited $rc"
rc=0; "$BLYAN" status --endpoint "tcp://127.0.0.1:$BASE" --server-key abcd 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "status with a bad key exited $rc"
rc=0; "$BLYAN" status --json 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "status without an endpoint exited $rc"

"$BLYAN" testnet stop --dir "$DIR" || fail "stop"
if pgrep -f "$DIR" >/dev/null; then pgrep -af "$DIR"; fail "processes left behind"; fi
ls "$DIR"/*/node.pid >/dev/null 2>&1 && fail "pid files left behind"
echo "testnet.sh: ok"
