# validator.zpl - the "validator" role: checks the model and the chains.
#
# In the full design a validator runs consensus, ledger and validator actors. They are
# added by later issues (consensus and ledger with the transaction chain, validator
# with Proof-of-Learning). Today the node joins the mesh so it is visible in
# `blyan status`. Syntax and keys: docs/MANIFEST.md.

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

# Added by later issues:
# actor
#     role = consensus
# actor
#     role = ledger
# actor
#     role = validator
