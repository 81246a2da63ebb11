#!/usr/bin/env python3
"""free_ports.py N - print the first of N consecutive free TCP ports on 127.0.0.1.

Used by the testnet scripts so parallel test runs do not collide. Standard library only.
"""
import random
import socket
import sys


def free_block(count):
    for _ in range(500):
        base = random.randint(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    sys.exit("free_ports.py: no block of %d free ports found" % count)


if __name__ == "__main__":
    print(free_block(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
