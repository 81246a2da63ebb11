"""bly_codec_emit_py - the Python codec: bly_<proto>_msg.py.

The module holds the schema as data and a small codec over the `msgpack` package
(python3-msgpack): dict-based encode/decode with the same checks as the C codec.
"""


def _spec(f):
    d = {"type": f.type}
    for a in ("max", "size", "max_count"):
        if getattr(f, a) is not None:
            d[a] = getattr(f, a)
    if f.of is not None:
        d["of"] = f.of.name
    return "(%r, %r)" % (f.name, d)


def _limit_max(p):
    biggest = {"str": 1, "bin": 1, "array": 2}
    for rec in list(p.structs) + list(p.messages):
        for f in rec.fields:
            if f.type in ("string", "strings"):
                biggest["str"] = max(biggest["str"], f.max)
            if f.type == "bytes":
                biggest["bin"] = max(biggest["bin"], f.size or f.max)
            if f.max_count:
                biggest["array"] = max(biggest["array"], f.max_count)
        biggest["array"] = max(biggest["array"], len(rec.fields) + 2)
    return biggest


RUNTIME = r'''

class DecodeError(ValueError):
    """Raised by decode() with the reason the input was refused."""


def _check_uint(v, hi, where):
    if type(v) is not int or not 0 <= v <= hi:
        raise ValueError("%s: expected an integer in 0..%d" % (where, hi))


def _check_str(v, f, where):
    if type(v) is not str:
        raise ValueError("%s: expected str" % where)
    size = len(v.encode("utf-8", "strict"))
    if size > f["max"] or "\0" in v:
        raise ValueError("%s: string of %d bytes, limit %d (no NUL)" % (where, size, f["max"]))


def _check_value(f, v, where):
    t = f["type"]
    if t in _UMAX:
        _check_uint(v, _UMAX[t], where)
    elif t == "i64":
        if type(v) is not int or not -(1 << 63) <= v < (1 << 63):
            raise ValueError("%s: expected a signed 64-bit integer" % where)
    elif t == "bool":
        if type(v) is not bool:
            raise ValueError("%s: expected bool" % where)
    elif t == "string":
        _check_str(v, f, where)
    elif t == "bytes":
        if type(v) is not bytes:
            raise ValueError("%s: expected bytes" % where)
        if ("size" in f and len(v) != f["size"]) or ("max" in f and len(v) > f["max"]):
            raise ValueError("%s: %d bytes, limit %s" % (where, len(v), f.get("size", f.get("max"))))
    else:
        if type(v) is not list or len(v) > f["max_count"]:
            raise ValueError("%s: expected a list of at most %d items" % (where, f["max_count"]))
        for i, x in enumerate(v):
            w = "%s[%d]" % (where, i)
            if t == "strings":
                _check_str(x, f, w)
            elif t == "list":
                _check_record(STRUCTS[f["of"]], x, w)
            else:
                _check_uint(x, _UMAX[t[:-1]], w)


def _check_record(fields, values, where):
    if type(values) is not dict:
        raise ValueError("%s: expected a dict" % where)
    names = [name for name, _ in fields]
    extra = set(values) - set(names)
    if extra:
        raise ValueError("%s: unknown fields %s" % (where, sorted(extra)))
    for name, f in fields:
        if name not in values:
            raise ValueError("%s: missing field %s" % (where, name))
        _check_value(f, values[name], "%s.%s" % (where, name))


def _default(f):
    t = f["type"]
    if t == "bool":
        return False
    if t == "string":
        return ""
    if t == "bytes":
        return bytes(f.get("size", 0))
    if t in ("strings", "u32s", "u64s", "list"):
        return []
    return 0


def _to_wire(fields, values):
    out = []
    for name, f in fields:
        v = values[name]
        if f["type"] == "list":
            v = [_to_wire(STRUCTS[f["of"]], x) for x in v]
        out.append(v)
    return out


def _from_wire(fields, items, where):
    if type(items) is not list or len(items) != len(fields):
        raise DecodeError("%s: expected an array of %d fields" % (where, len(fields)))
    values = {}
    for (name, f), v in zip(fields, items):
        if f["type"] == "list" and type(v) is list:
            v = [_from_wire(STRUCTS[f["of"]], x, "%s.%s" % (where, name)) for x in v]
        values[name] = v
    return values


def new(name):
    """A dict with every field of message `name` at its empty value."""
    return dict((n, _default(f)) for n, f in MESSAGES[IDS[name]][2])


def encode(name, values):
    """Canonical MessagePack bytes of message `name`; missing fields take empty values.
    Raises ValueError (or KeyError for an unknown name) when a value breaks the schema."""
    full = new(name)
    full.update(values)
    mid = IDS[name]
    fields = MESSAGES[mid][2]
    _check_record(fields, full, name)
    data = msgpack.packb([VERSION, mid] + _to_wire(fields, full), use_bin_type=True)
    if len(data) > FRAME_SIZE_MAX:
        raise ValueError("%s: %d bytes, frame limit %d" % (name, len(data), FRAME_SIZE_MAX))
    return data


def decode(data):
    """(name, values) of one encoded message. Raises DecodeError for anything the C codec
    refuses: wrong types, limits, unknown ids, wrong version, trailing bytes, non-canonical
    encodings."""
    data = bytes(data)
    if len(data) > FRAME_SIZE_MAX:
        raise DecodeError("message of %d bytes, limit %d" % (len(data), FRAME_SIZE_MAX))
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                              max_str_len=_STR_MAX, max_bin_len=_BIN_MAX,
                              max_array_len=_ARRAY_MAX, max_map_len=0, max_ext_len=0)
    except Exception as e:  # msgpack raises several types for bad input
        raise DecodeError("not a valid message: %s" % e) from None
    if type(obj) is not list or len(obj) < 2:
        raise DecodeError("message: expected an array [version, id, ...]")
    if type(obj[0]) is not int or obj[0] != VERSION:
        raise DecodeError("version %r, expected %d" % (obj[0], VERSION))
    if type(obj[1]) is not int or obj[1] not in MESSAGES:
        raise DecodeError("unknown message id %r" % (obj[1],))
    name, _, fields = MESSAGES[obj[1]]
    values = _from_wire(fields, obj[2:], name)
    try:
        _check_record(fields, values, name)
    except ValueError as e:
        raise DecodeError(str(e)) from None
    if msgpack.packb(obj, use_bin_type=True) != data:
        raise DecodeError("%s: non-canonical encoding" % name)
    return name, values


def signing_bytes(name, values):
    """The bytes a signed message's signature covers: the MessagePack string
    "blyan/<proto>/v<version>/<name>" then the message without its signature field."""
    mid = IDS[name]
    if MESSAGES[mid][1] is None:
        raise ValueError("%s is not a signed message" % name)
    full = new(name)
    full.update(values)
    fields = MESSAGES[mid][2]
    _check_record(fields, full, name)
    domain = "blyan/%s/v%d/%s" % (PROTOCOL, VERSION, name)
    body = [VERSION, mid] + _to_wire(fields, full)[:-1]
    return msgpack.packb(domain, use_bin_type=True) + msgpack.packb(body, use_bin_type=True)
'''


def module(p):
    lim = _limit_max(p)
    o = ['"""bly_%s_msg - Python codec for the %s protocol.' % (p.name, p.name), "",
         "GENERATED by tools/codec/bly_codec_gen.py from schemas/%s.xml." % p.name,
         "GENERATED, do not edit: change the schema and rebuild.", "",
         "%s" % (p.doc or ""), "", "Use: encode(name, dict) -> bytes; decode(bytes) -> (name, dict);",
         "new(name) -> dict of empty fields; signing_bytes(name, dict) -> bytes.", '"""', "",
         "import msgpack", "", "PROTOCOL = %r" % p.name, "VERSION = %d" % p.version,
         "FRAME_SIZE_MAX = 64 * 1024 * 1024  # BLY_FRAME_SIZE_MAX", ""]
    for m in p.messages:
        o.append("MSG_%s = %d" % (m.name.upper(), m.id))
    o.append("")
    for cname, value, doc in p.constants:
        o.append("%s = %d  # %s" % (cname.upper(), value, doc))
    o += ["", "STRUCTS = {"]
    for s in p.structs:
        o.append("    %r: [" % s.name)
        o += ["        %s," % _spec(f) for f in s.fields]
        o.append("    ],")
    o += ["}", "", "# id: (name, signed-by field or None, fields)", "MESSAGES = {"]
    for m in p.messages:
        o.append("    %d: (%r, %r, [" % (m.id, m.name, m.signed_by))
        o += ["        %s," % _spec(f) for f in m.fields]
        o.append("    ]),")
    o += ["}", "IDS = dict((v[0], k) for k, v in MESSAGES.items())", "",
          "_UMAX = {'u8': 0xFF, 'u16': 0xFFFF, 'u32': 0xFFFFFFFF, 'u64': 0xFFFFFFFFFFFFFFFF}",
          "_STR_MAX = %d" % lim["str"], "_BIN_MAX = %d" % lim["bin"],
          "_ARRAY_MAX = %d" % lim["array"]]
    return "\n".join(o) + RUNTIME
