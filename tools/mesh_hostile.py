#!/usr/bin/python3
"""mesh_hostile - hostile input on a router's and a shard's sockets (tools/test.d/mesh.sh).

    /usr/bin/python3 tools/mesh_hostile.py --router E --router-key HEX --shard E HEX
        [--codec-dir build/schemas]

Router: garbage bytes, a truncated request, a message type it does not take, requests
over the limits (max_tokens past the context, a prompt id outside the vocabulary, an
empty prompt), a duplicate request id, a cancel; each must get a clean error reply.
Shard: garbage, a forward whose hop_index is past its path (error reply), and, with
reply_to pointing at a socket of this script, forwards for an unknown session, for
stages the shard does not serve, and with activations of the wrong size: each must
answer `fail` with the right code. Exit 0 when every answer is as expected.
"""
import argparse
import ctypes
import ctypes.util
import importlib
import os
import sys

import zmq
from zmq.utils import z85

sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
assert sodium.sodium_init() >= 0


def curve_public(ed_public):
    out = ctypes.create_string_buffer(32)
    assert sodium.crypto_sign_ed25519_pk_to_curve25519(out, ed_public) == 0
    return out.raw


def identity():
    """A fresh Ed25519 key pair and its Curve keys (as a shard derives them)."""
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    sodium.crypto_sign_keypair(pk, sk)
    csk = ctypes.create_string_buffer(32)
    assert sodium.crypto_sign_ed25519_sk_to_curve25519(csk, sk) == 0
    return pk.raw, z85.encode(curve_public(pk.raw)), z85.encode(csk.raw)


def dealer(endpoint, server_id_hex):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
    s.curve_serverkey = z85.encode(curve_public(bytes.fromhex(server_id_hex)))
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.MAXMSGSIZE, 64 * 1024 * 1024)
    s.connect(endpoint)
    return s


def answer(sock, codec, timeout_ms=5000):
    if not sock.poll(timeout_ms, zmq.POLLIN):
        raise SystemExit("mesh_hostile: no answer within %d ms" % timeout_ms)
    frames = sock.recv_multipart()
    return codec.decode(frames[-1])


def expect(what, got, name, code=None):
    ok = got[0] == name and (code is None or got[1].get("code") == code)
    print("mesh_hostile: %-44s -> %s %s %s" % (what, got[0], got[1].get("code", ""),
                                              "ok" if ok else "UNEXPECTED"))
    if not ok:
        raise SystemExit(1)


def hostile_router(c, endpoint, key_hex):
    s = dealer(endpoint, key_hex)
    s.send(b"\xc1garbage")
    expect("router: garbage", answer(s, c), "error", c.ERROR_BAD_MESSAGE)
    good = c.encode("request", {"request_id": "h1", "prompt": "hi", "max_tokens": 4})
    s.send(good[: len(good) // 2])
    expect("router: truncated request", answer(s, c), "error", c.ERROR_BAD_MESSAGE)
    s.send(c.encode("ping", {"nonce": 1}))
    expect("router: a ping (not a router message)", answer(s, c), "error", c.ERROR_BAD_MESSAGE)
    s.send(c.encode("request", {"request_id": "h2", "prompt": "hi", "max_tokens": 100000}))
    expect("router: max_tokens past the context", answer(s, c), "error", c.ERROR_LIMIT)
    s.send(c.encode("request", {"request_id": "h3", "prompt_ids": [2 ** 31], "max_tokens": 4}))
    expect("router: prompt id outside the vocabulary", answer(s, c), "error", c.ERROR_LIMIT)
    s.send(c.encode("request", {"request_id": "h4", "prompt": "", "max_tokens": 4}))
    expect("router: empty prompt", answer(s, c), "error", c.ERROR_LIMIT)
    slow = {"request_id": "dup", "prompt": "hi", "max_tokens": 200, "stream": False,
            "ignore_eos": True, "repeat_penalty_bits": 0x3F800000, "top_p_bits": 0x3F800000}
    s.send(c.encode("request", slow))
    s.send(c.encode("request", slow))
    expect("router: duplicate request id", answer(s, c), "error", c.ERROR_DUPLICATE)
    s.send(c.encode("cancel", {"request_id": "dup"}))
    expect("router: cancel", answer(s, c), "error", c.ERROR_CANCELLED)
    # Forged results and fails (not from a hop of the path) are ignored: the router
    # answers nothing and the victim session of mesh.sh goes on unchanged.
    for session in range(1, 64):
        s.send(c.encode("result", {"session": session, "epoch": 1, "step": 2,
                                   "logits_data": b"\0" * 16}))
        s.send(c.encode("fail", {"session": session, "epoch": 1, "step": 2, "code": 9}))
    s.send(b"")
    expect("router: forged results ignored, still serving", answer(s, c), "error",
           c.ERROR_BAD_MESSAGE)
    s.close()


def hostile_shard(c, endpoint, key_hex):
    s = dealer(endpoint, key_hex)
    s.send(b"\x93\x01\x0a")
    expect("shard: truncated forward", answer(s, c), "error", c.ERROR_BAD_MESSAGE)
    me_pk, me_public, me_secret = identity()
    back = zmq.Context.instance().socket(zmq.ROUTER)
    back.curve_server = True
    back.curve_publickey, back.curve_secretkey = me_public, me_secret
    back.setsockopt(zmq.LINGER, 0)
    port = back.bind_to_random_port("tcp://127.0.0.1")
    hop = {"endpoint": endpoint, "node_id": bytes.fromhex(key_hex), "stage_first": 1,
           "stage_last": 2}
    base = {"session": 424242, "epoch": 1, "step": 1, "pos": 0, "n_tokens": 1, "logits": True,
            "hops": [hop], "hop_index": 0, "reply_to": "tcp://127.0.0.1:%d" % port,
            "reply_id": me_pk}
    s.send(c.encode("forward", dict(base, hop_index=5)))
    expect("shard: hop_index past the path", answer(s, c), "error", c.ERROR_SHAPE)
    s.send(c.encode("forward", dict(base, pos=7)))
    expect("shard: unknown session at position 7", answer(back, c), "fail",
           c.ERROR_UNKNOWN_SESSION)
    s.send(c.encode("forward", dict(base, hops=[dict(hop, stage_first=0)])))
    expect("shard: stages it does not serve", answer(back, c), "fail", c.ERROR_SHAPE)
    s.send(c.encode("forward", dict(base, step=2, acts=b"\0" * 12)))
    expect("shard: activations of the wrong size", answer(back, c), "fail", c.ERROR_SHAPE)
    s.send(c.encode("forward", dict(base, step=3, n_tokens=100000)))
    expect("shard: n_tokens over the batch", answer(back, c), "fail", c.ERROR_SHAPE)
    s.send(c.encode("ping", {"nonce": 7}))
    expect("shard: still answers pings", answer(s, c), "pong")
    s.close()
    back.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", required=True)
    ap.add_argument("--router-key", required=True)
    ap.add_argument("--shard", nargs=2, required=True, metavar=("ENDPOINT", "HEX"))
    ap.add_argument("--codec-dir", default=os.path.join(os.path.dirname(__file__), "..",
                                                        "build", "schemas"))
    args = ap.parse_args()
    sys.path.insert(0, args.codec_dir)
    codec = importlib.import_module("bly_inference_msg")
    hostile_router(codec, args.router, args.router_key)
    hostile_shard(codec, args.shard[0], args.shard[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
