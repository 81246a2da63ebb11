node
    name = n
    key_file = k
