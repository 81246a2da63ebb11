"""test_codec_py - the generated Python codecs against the committed golden vectors.

Run by meson with /usr/bin/python3 (Debian's python3-msgpack):
  test_codec_py.py MODULE_DIR VECTOR_DIR PROTO...
For every message: the golden vector decodes, re-encodes to the same bytes and survives a
round trip through encode(); truncation, a trailing byte, a wrong version, an unknown id,
a non-canonical integer, values past each limit and seeded garbage are refused.
"""

import importlib
import os
import random
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect_refused(mod, data, what):
    try:
        mod.decode(data)
    except mod.DecodeError:
        return
    fail("%s was accepted" % what)


def read_hex(path):
    with open(path) as f:
        return bytes.fromhex("".join(f.read().split()))


def vectors(folder, proto):
    for name in sorted(os.listdir(folder)):
        if name.startswith(proto + ".") and name.endswith(".hex") and ".signing." not in name:
            yield name[len(proto) + 1:-4], read_hex(os.path.join(folder, name))


def past_limit(spec):
    """A value one past the limit of a field spec, or None when the type has none."""
    t = spec["type"]
    if t == "string":
        return "x" * (spec["max"] + 1)
    if t == "bytes":
        return b"z" * (spec.get("size", spec.get("max", 0)) + 1)
    if t == "strings":
        return ["a"] * (spec["max_count"] + 1)
    if t in ("u32s", "u64s", "list"):
        return [0] * (spec["max_count"] + 1)
    if t in ("u8", "u16", "u32"):
        return {"u8": 0x100, "u16": 0x10000, "u32": 0x100000000}[t]
    return None


def check_message(mod, name, data, folder):
    got, values = mod.decode(data)
    if got != name:
        fail("%s decoded as %s" % (name, got))
    if mod.encode(name, values) != data:
        fail("%s does not re-encode to its golden vector" % name)
    for cut in range(len(data)):
        expect_refused(mod, data[:cut], "%s cut to %d bytes" % (name, cut))
    expect_refused(mod, data + b"\xc0", "%s with a trailing byte" % name)
    header = 1 if data[0] < 0xa0 else 3
    version, mid = data[header], data[header + 1]
    rest = data[header + 2:]
    expect_refused(mod, data[:header] + bytes([version + 1, mid]) + rest, "wrong version")
    expect_refused(mod, data[:header] + bytes([version, 0]) + rest, "unknown id 0")
    expect_refused(mod, data[:header] + bytes([version, 0x7f]) + rest, "unknown id 127")
    expect_refused(mod, data[:header] + bytes([0xcc, version, mid]) + rest, "uint8 version")
    spec = mod.MESSAGES[mid][2]
    for field, fspec in spec:
        bad = past_limit(fspec)
        if bad is None:
            continue
        try:
            mod.encode(name, dict(values, **{field: bad}))
            fail("%s.%s past its limit was encoded" % (name, field))
        except ValueError:
            pass
    if mod.MESSAGES[mid][1]:
        golden = read_hex(os.path.join(folder, "%s.%s.signing.hex" % (mod.PROTOCOL, name)))
        if mod.signing_bytes(name, values) != golden:
            fail("%s signing bytes differ from the committed vector" % name)


def check_garbage(mod):
    rng = random.Random(1234)
    ids = list(mod.MESSAGES)
    for i in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        if i % 2 and len(data) >= 3:
            data = bytes([0x90 | rng.randrange(16), mod.VERSION, rng.choice(ids)]) + data[3:]
        try:
            name, values = mod.decode(data)
        except mod.DecodeError:
            continue
        if mod.encode(name, values) != data:
            fail("garbage %s decoded but re-encodes differently" % data.hex())
    # A huge announced array is refused without allocating it.
    expect_refused(mod, b"\xdd\xff\xff\xff\xff\x01\x01", "a 4G-element array header")
    expect_refused(mod, b"\x91" * 10000, "deep nesting")


def main(argv):
    build, folder, protos = argv[1], argv[2], argv[3:]
    sys.path.insert(0, build)
    for proto in protos:
        mod = importlib.import_module("bly_%s_msg" % proto)
        seen = set()
        for name, data in vectors(folder, proto):
            check_message(mod, name, data, folder)
            seen.add(name)
        names = set(v[0] for v in mod.MESSAGES.values())
        if seen != names:
            fail("%s: golden vectors missing for %s" % (proto, sorted(names - seen)))
        check_garbage(mod)
        print("%s: %d messages ok" % (proto, len(seen)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
