# gpu.zpl - the "gpu" role: a volunteer machine serving a slice of the model.
#
# Today it joins the mesh and advertises what it will serve: the member actor starts
# automatically because `bootstrap` is set, registers (signed with the node key) and
# heartbeats. The layer-shard actor that actually runs layers arrives with the
# inference issue; the validator actor (optional on gpu nodes) with the PoL issue.
# Syntax and keys: docs/MANIFEST.md.

node
    name = gpu1
    key_file = gpu1.key
    pid_file = gpu1.pid
    data_dir = data/gpu1
    log_level = info
    # Advertised to the mesh: where this node's actors listen, which model and stages
    # (0 = embedding, 1..L = layers, L+1 = head) it serves, its device and speed.
    endpoints = tcp://127.0.0.1:7101
    model = qwen3-0.6b-q8_0
    stages = 1-14
    device = "Vulkan: any GPU (lavapipe in CI)"
    speed_milli = 1000
    # The bootstrap to join, and its node id. Replace this example id with your
    # bootstrap's (main or bootstrap prints it in its log when it starts).
    bootstrap = tcp://127.0.0.1:7000
    bootstrap_key = 028777c98ee83a2cc8bb47fd38233a3f1ea8c0b7fdca5c9861736d942472455a

# The layer-shard (docs/INFERENCE.md, keys in docs/MANIFEST.md). Uncomment and point
# `model` at the GGUF file (the same model and stages as above); `blyan model hashes
# --model M > hashes` writes the hash file a shard can require.
# actor
#     role = layer-shard
#     endpoint = tcp://0.0.0.0:7101
#     model = "models/qwen3-0.6b-q8_0.gguf"
#     stages = 1-14
#     backend = cpu
#     sessions = 16
#     kv_budget_mb = 2048
#     n_ctx = 2048
#     hashes = hashes
