# validator.zpl - the "validator" role: checks the model and the chains.
#
# A validator runs a consensus replica of the transaction chain (docs/CONSENSUS.md): it
# decides blocks with the other replicas and answers ledger queries and transactions on
# its `endpoint` (`blyan tx transfer --node tcp://127.0.0.1:7301 --server-key NODE_ID`).
# Its node key must be a staked account of the genesis; `peers`/`peer_ids` list the other
# replicas (`blyan testnet init --validators 4` writes a working set of four). The
# validator actor (Proof-of-Learning) comes with a later issue. Syntax: docs/MANIFEST.md.

node
    name = validator1
    key_file = validator1.key
    pid_file = validator1.pid
    data_dir = data/validator1
    log_level = info
    endpoints = tcp://127.0.0.1:7201
    device = cpu
    bootstrap = tcp://127.0.0.1:7000
    bootstrap_key = 028777c98ee83a2cc8bb47fd38233a3f1ea8c0b7fdca5c9861736d942472455a

actor
    role = consensus
    endpoint = tcp://127.0.0.1:7301
    listen = tcp://127.0.0.1:7302
    genesis = genesis.conf
    peers = tcp://127.0.0.1:7312,tcp://127.0.0.1:7322,tcp://127.0.0.1:7332
    peer_ids = 40d0d2469b7f5a6db969fa3a74c23e0fa57bd581b7e8400cec4f7f927bb7aff8,7e99f9105f7837e731db0778ef2ea6e45e37bf08904f3884f6738747ca083c9c,3b1e5807a7fa70ac9da44e8ba90059f24dec3e9eb683940ceb0776aef10b46ff

# Added by a later issue:
# actor
#     role = validator
