#!/usr/bin/python3
"""blyan_client - talk to a Blyan node from Python (pyzmq, msgpack, generated codecs).

    /usr/bin/python3 tools/blyan_client.py status --endpoint E --server-key HEX [--json]
        [--role R] [--timeout-ms N] [--codec-dir build/schemas]

    /usr/bin/python3 tools/blyan_client.py chat --router E --router-key HEX --prompt P
        [--n-predict N] [--temp T] [--seed S] [--chat] [--ignore-eos] [--json]

`chat` sends a request to a router (schemas/inference.xml) and prints each token as it
arrives; with --json it prints the done message's ids and text at the end.
`status` asks a bootstrap for its peer list over CurveZMQ, like `blyan status`. The
server's Curve key is derived from its node id (the Ed25519 public key, HEX) with
libsodium's crypto_sign_ed25519_pk_to_curve25519, loaded through ctypes; the client uses
a fresh Curve key pair. Messages go through the codec generated from schemas/bootstrap.xml
(build/schemas/bly_bootstrap_msg.py). Exit 0 on an answer, 1 on no answer or a refusal,
2 on bad usage.
"""

import argparse
import ctypes
import ctypes.util
import importlib
import json
import os
import struct
import sys
import time

import zmq
from zmq.utils import z85

HERE = os.path.dirname(os.path.abspath(__file__))
FRAME_SIZE_MAX = 64 * 1024 * 1024   # BLY_FRAME_SIZE_MAX in runtime/bly_limits.h
HWM = 1000                          # BLY_SOCKET_HWM


def curve_key_from_node_id(node_id_hex):
    """The Z85 Curve public key of the node whose Ed25519 public key is node_id_hex."""
    raw = bytes.fromhex(node_id_hex)
    if len(raw) != 32:
        raise ValueError("a node id is 64 hex characters")
    path = ctypes.util.find_library("sodium") or "libsodium.so.23"
    sodium = ctypes.CDLL(path)
    if sodium.sodium_init() < 0:
        raise RuntimeError("libsodium failed to initialise")
    curve = ctypes.create_string_buffer(32)
    if sodium.crypto_sign_ed25519_pk_to_curve25519(curve, raw) != 0:
        raise ValueError("that node id is not a valid Ed25519 public key")
    return z85.encode(curve.raw)


def load_codec(codec_dir, name="bly_bootstrap_msg"):
    sys.path.insert(0, codec_dir)
    try:
        return importlib.import_module(name)
    except ImportError:
        sys.exit("blyan_client: no generated codec in %s (build first: ninja -C build)"
                 % codec_dir)


def fetch_peers(codec, endpoint, server_key_hex, role, timeout_ms):
    """(name, values) of the bootstrap's reply to a peers_request."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    public, secret = zmq.curve_keypair()
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = curve_key_from_node_id(server_key_hex)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.SNDTIMEO, 100)
    sock.setsockopt(zmq.MAXMSGSIZE, FRAME_SIZE_MAX)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(codec.encode("peers_request", {"role": role or ""}))
        if not sock.poll(timeout_ms, zmq.POLLIN):
            raise TimeoutError("no answer from %s within %d ms" % (endpoint, timeout_ms))
        frames = sock.recv_multipart()
        if len(frames) != 1:
            raise ValueError("expected one frame, got %d" % len(frames))
        return codec.decode(frames[0])
    finally:
        sock.close()


def print_table(peers, endpoint):
    now = int(time.time() * 1000)
    print("%-16s %-16s %-20s %-26s %-9s %-12s %s" % (
        "NAME", "ID", "ROLES", "ENDPOINTS", "STAGES", "DEVICE", "LAST SEEN"))
    for p in peers:
        stages = "-"
        if p["model"] or p["stage_last"] > 0:
            stages = "%d-%d" % (p["stage_first"], p["stage_last"])
        print("%-16s %-16s %-20s %-26s %-9s %-12s %.1f s ago" % (
            p["name"], p["node_id"].hex()[:16], ",".join(p["roles"]) or "-",
            p["endpoints"][0] if p["endpoints"] else "-", stages, p["device"] or "-",
            max(0, now - p["last_seen_ms"]) / 1000.0))
    print("%d nodes registered at %s" % (len(peers), endpoint))


def as_json(peers, endpoint):
    nodes = []
    for p in peers:
        node = dict(p)
        node["node_id"] = p["node_id"].hex()
        nodes.append(node)
    return {"endpoint": endpoint, "count": len(nodes), "nodes": nodes}


def cmd_status(args):
    codec = load_codec(args.codec_dir)
    try:
        name, values = fetch_peers(codec, args.endpoint, args.server_key, args.role,
                                   args.timeout_ms)
    except (TimeoutError, ValueError, zmq.ZMQError) as e:
        print("blyan_client status: %s" % e, file=sys.stderr)
        return 1
    if name != "peers":
        print("blyan_client status: bootstrap answered %s: %s"
              % (name, values.get("reason", "")), file=sys.stderr)
        return 1
    if args.json:
        json.dump(as_json(values["peers"], args.endpoint), sys.stdout, indent=1)
        print()
    else:
        print_table(values["peers"], args.endpoint)
    return 0


def f32_bits(value):
    return struct.unpack("<I", struct.pack("<f", value))[0]


def cmd_chat(args):
    codec = load_codec(args.codec_dir, "bly_inference_msg")
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
    sock.curve_serverkey = curve_key_from_node_id(args.router_key)
    sock.setsockopt(zmq.MAXMSGSIZE, FRAME_SIZE_MAX)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(args.router)
    request = {"request_id": "py-1", "max_tokens": args.n_predict, "stream": True,
               "temp_bits": f32_bits(args.temp), "top_k": 40, "top_p_bits": f32_bits(0.95),
               "min_p_bits": f32_bits(0.05), "repeat_penalty_bits": f32_bits(1.0),
               "repeat_last_n": 64, "seed": args.seed, "ignore_eos": args.ignore_eos}
    if args.chat:
        request.update(roles=["user"], contents=[args.prompt])
    else:
        request["prompt"] = args.prompt
    sock.send(codec.encode("request", request))
    deadline = time.time() + args.timeout_ms / 1000.0
    while time.time() < deadline:
        if not sock.poll(int((deadline - time.time()) * 1000) + 1, zmq.POLLIN):
            break
        name, values = codec.decode(sock.recv_multipart()[-1])
        if name == "token" and not args.json:
            sys.stdout.buffer.write(values["piece"])
            sys.stdout.flush()
        elif name == "done":
            if args.json:
                json.dump({"prompt_ids": values["prompt_ids"], "ids": values["ids"],
                           "text": values["output"].decode("utf-8", "replace"),
                           "finish": values["finish"], "failovers": values["failovers"]},
                          sys.stdout)
            print()
            return 0
        elif name == "error":
            print("blyan_client chat: %s (code %d)" % (values["reason"], values["code"]),
                  file=sys.stderr)
            return 1
    print("blyan_client chat: no answer within %d ms" % args.timeout_ms, file=sys.stderr)
    return 1


def main(argv):
    parser = argparse.ArgumentParser(prog="blyan_client.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="a bootstrap's view of the mesh")
    status.add_argument("--endpoint", required=True, help="bootstrap endpoint, tcp://HOST:PORT")
    status.add_argument("--server-key", required=True, help="the bootstrap's node id (hex)")
    status.add_argument("--role", default="", help="only nodes running this role")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--timeout-ms", type=int, default=3000)
    status.add_argument("--codec-dir", default=os.path.join(HERE, "..", "build", "schemas"),
                        help="folder of the generated bly_bootstrap_msg.py")
    chat = sub.add_parser("chat", help="ask a router; stream the answer")
    chat.add_argument("--router", required=True, help="router endpoint, tcp://HOST:PORT")
    chat.add_argument("--router-key", required=True, help="the router's node id (hex)")
    chat.add_argument("--prompt", required=True)
    chat.add_argument("--n-predict", type=int, default=64)
    chat.add_argument("--temp", type=float, default=0.0)
    chat.add_argument("--seed", type=int, default=42)
    chat.add_argument("--chat", action="store_true", help="send the prompt as a user turn")
    chat.add_argument("--ignore-eos", action="store_true")
    chat.add_argument("--json", action="store_true")
    chat.add_argument("--timeout-ms", type=int, default=300000)
    chat.add_argument("--codec-dir", default=os.path.join(HERE, "..", "build", "schemas"),
                      help="folder of the generated bly_inference_msg.py")
    args = parser.parse_args(argv)
    return cmd_chat(args) if args.command == "chat" else cmd_status(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
