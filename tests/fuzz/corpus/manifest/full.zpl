node
    name = node1
    key_file = "keys/node1.key"
    log_level = info
    endpoints = tcp://127.0.0.1:7101, tcp://127.0.0.1:7102
    stages = 0-27
    bootstrap = tcp://127.0.0.1:7000
    bootstrap_key = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

actor
    role = bootstrap
    endpoint = tcp://127.0.0.1:7000
    expiry_ms = 1000
