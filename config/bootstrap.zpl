# bootstrap.zpl - a node that only runs the mesh registry.
#
# Syntax: ZPL-style. A section name at column 0, then "key = value" lines indented by
# exactly 4 spaces; '#' starts a comment; paths are relative to this file's folder.
# Every key is described in docs/MANIFEST.md. Check a manifest with
#     blyan-node --manifest config/bootstrap.zpl --check
# and run it with
#     blyan-node --manifest config/bootstrap.zpl
# Other nodes join through it: give them `bootstrap = <endpoint below>` and
# `bootstrap_key = <this node's id>` (the id is printed in the log on start, or by
# `blyan keygen --out bootstrap.key` if you create the key yourself first).

node
    name = bootstrap
    # Ed25519 identity; created with mode 0600 on first start, refused when others
    # can read it. The node id is its public key; the CURVE key is derived from it.
    key_file = bootstrap.key
    pid_file = bootstrap.pid
    data_dir = data/bootstrap
    log_level = notice
    endpoints = tcp://127.0.0.1:7000

actor
    role = bootstrap
    # Where nodes register, heartbeat and ask for peers. CURVE, ZAP domain "open":
    # any key may connect, and every message is checked against its sender's key.
    endpoint = tcp://0.0.0.0:7000
    heartbeat_ms = 1000      # members heartbeat this often
    expiry_ms = 5000         # ... and are dropped after this much silence
    max_peers = 256
