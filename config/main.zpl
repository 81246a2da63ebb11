# main.zpl - the "main" role: the node users and operators talk to.
#
# In the full design (docs/ARCHITECTURE.md) main runs gateway, router, ledger,
# consensus and bootstrap. Today the bootstrap, ledger and router actors exist; gateway
# and consensus are added to the role table by later issues. This manifest runs the registry that
# every other node joins (the ledger below is optional). Syntax and keys: docs/MANIFEST.md.

node
    name = main
    key_file = main.key
    pid_file = main.pid
    data_dir = data/main
    log_level = info
    endpoints = tcp://127.0.0.1:7000

# The mesh registry (register, heartbeat, peer list).
actor
    role = bootstrap
    endpoint = tcp://0.0.0.0:7000
    heartbeat_ms = 1000
    expiry_ms = 5000

# The ledger (docs/LEDGER.md, keys in docs/MANIFEST.md). Uncomment to run a solo ledger:
# with block_ms > 0 it produces blocks itself until the consensus actor exists.
# actor
#     role = ledger
#     endpoint = tcp://127.0.0.1:7010
#     genesis = ../config/genesis.conf
#     block_ms = 1000

# The router (docs/INFERENCE.md): uncomment with the model file it tokenizes with.
# actor
#     role = router
#     endpoint = tcp://0.0.0.0:7001
#     model = "models/qwen3-0.6b-q8_0.gguf"
# Added by later issues (not valid yet: blyan-node --check refuses unknown roles):
# actor
#     role = gateway
# actor
#     role = consensus
