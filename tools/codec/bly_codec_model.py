"""bly_codec_model - parse and validate a schema; encode test values canonically.

The model is plain objects: Protocol (constants, structs, messages), Struct and Message
(each a list of Field). Field.test holds the field's example value as a Python value.
"""

import re
import struct as pystruct
import xml.etree.ElementTree as ET

SCALARS = {"u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFFFFFF, "u64": 0xFFFFFFFFFFFFFFFF}
TYPES = set(SCALARS) | {"i64", "bool", "string", "bytes", "strings", "u32s", "u64s", "list"}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# A single field limit above this is refused (must stay below BLY_FRAME_SIZE_MAX).
LIMIT_MAX = 64 * 1024 * 1024 - 1024
C_KEYWORDS = {"auto", "break", "case", "char", "const", "continue", "default", "do", "double",
              "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
              "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
              "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "bool"}
RESERVED = {"id", "new", "destroy", "encode", "decode", "send", "recv", "print", "command",
            "routing_id", "set_routing_id", "peer_key", "set_peer_key", "sign", "verify",
            "signing_bytes", "dup", "set_id", "recv_from", "eq", "id_name"}


class SchemaError(Exception):
    pass


class Field:
    def __init__(self, owner, name, type_, doc):
        self.owner = owner      # "register" or "peer"
        self.name = name
        self.type = type_
        self.doc = doc
        self.max = None         # string/strings item bytes, bytes max
        self.size = None        # fixed bytes size
        self.max_count = None   # arrays and lists
        self.of = None          # list element Struct
        self.test = None        # Python value

    @property
    def is_array(self):
        return self.type in ("strings", "u32s", "u64s", "list")

    def signature_key(self):
        return (self.type, self.max, self.size, self.max_count, self.of.name if self.of else None)


class Record:
    def __init__(self, name, doc):
        self.name = name
        self.doc = doc
        self.fields = []


class Message(Record):
    def __init__(self, name, doc, id_, signed_by):
        super().__init__(name, doc)
        self.id = id_
        self.signed_by = signed_by


class Protocol:
    def __init__(self, name, version, doc):
        self.name = name
        self.version = version
        self.doc = doc
        self.constants = []     # (name, value, doc)
        self.structs = []
        self.messages = []
        self.fields = []        # every message field once, in first-seen order (flattened)

    def struct(self, name):
        for s in self.structs:
            if s.name == name:
                return s
        return None


def _text(el):
    """Element text without child <test> elements, whitespace collapsed."""
    parts = [el.text or ""]
    for child in el:
        parts.append(child.tail or "")
    return " ".join(" ".join(parts).split())


def _doc(el):
    d = el.find("doc")
    return " ".join((d.text or "").split()) if d is not None else ""


def _int_attr(el, name, where, required=False):
    v = el.get(name)
    if v is None:
        if required:
            raise SchemaError("%s: missing attribute %s" % (where, name))
        return None
    if not re.match(r"^[0-9]+$", v):
        raise SchemaError("%s: %s=%r is not a decimal number" % (where, name, v))
    return int(v)


def _check_name(name, where, keywords_ok=False):
    """Field names become C members, so they may not be C keywords; message, struct and
    constant names only ever appear inside longer identifiers."""
    if not name or not NAME.match(name) or (name in C_KEYWORDS and not keywords_ok):
        raise SchemaError("%s: bad name %r (lower-case identifier, at most 32)" % (where, name))


def _parse_scalar_test(f, text, where):
    if f.type == "bool":
        if text not in ("true", "false"):
            raise SchemaError("%s: bool test value must be true or false" % where)
        return text == "true"
    try:
        v = int(text, 0)
    except ValueError:
        raise SchemaError("%s: test value %r is not an integer" % (where, text)) from None
    if f.type == "i64":
        lo, hi = -(1 << 63), (1 << 63) - 1
    else:
        lo, hi = 0, SCALARS.get(f.type, SCALARS["u64"] if f.type == "u64s" else SCALARS["u32"])
    if not lo <= v <= hi:
        raise SchemaError("%s: test value %d out of range" % (where, v))
    return v


def _check_string(value, limit, where):
    raw = value.encode("utf-8")
    if len(raw) > limit:
        raise SchemaError("%s: test string longer than max %d" % (where, limit))
    if "\0" in value:
        raise SchemaError("%s: test string holds NUL" % where)
    return value


def _parse_test(f, el, where, structs):
    attr = el.get("test")
    children = [c.text or "" for c in el.findall("test")]
    if attr is not None and children:
        raise SchemaError("%s: give the test value as attribute or children, not both" % where)
    if f.type == "list":
        n = _int_attr(el, "test_count", where)
        return [dict((sf.name, sf.test) for sf in f.of.fields) for _ in range(n or 1)]
    if f.is_array:
        items = children if children else (attr.split() if attr else [])
        if len(items) > f.max_count:
            raise SchemaError("%s: more test items than max_count" % where)
        if f.type == "strings":
            return [_check_string(t, f.max, where) for t in items]
        return [_parse_scalar_test(f, t.strip(), where) for t in items]
    text = attr if attr is not None else (children[0] if children else None)
    if len(children) > 1:
        raise SchemaError("%s: one test value only" % where)
    if text is None:
        raise SchemaError("%s: missing test value" % where)
    if f.type == "string":
        return _check_string(text, f.max, where)
    if f.type == "bytes":
        try:
            b = bytes.fromhex(text.strip())
        except ValueError:
            raise SchemaError("%s: bytes test value must be hex" % where) from None
        if (f.size is not None and len(b) != f.size) or (f.max is not None and len(b) > f.max):
            raise SchemaError("%s: bytes test value has the wrong size" % where)
        return b
    return _parse_scalar_test(f, text.strip(), where)


def _parse_field(el, owner, structs, in_struct):
    name = el.get("name")
    where = "%s.%s" % (owner, name)
    _check_name(name, where)
    if name in RESERVED:
        raise SchemaError("%s: name is reserved for the generated API" % where)
    type_ = el.get("type")
    if type_ not in TYPES:
        raise SchemaError("%s: unknown type %r" % (where, type_))
    f = Field(owner, name, type_, _text(el))
    f.max = _int_attr(el, "max", where)
    f.size = _int_attr(el, "size", where)
    f.max_count = _int_attr(el, "max_count", where)
    for a in ("max", "size", "max_count"):
        v = getattr(f, a)
        if v is not None and not 1 <= v <= LIMIT_MAX:
            raise SchemaError("%s: %s=%d out of range 1..%d" % (where, a, v, LIMIT_MAX))
    needs = {"string": ("max",), "strings": ("max", "max_count"), "u32s": ("max_count",),
             "u64s": ("max_count",), "list": ("max_count",)}.get(type_, ())
    for a in needs:
        if getattr(f, a) is None:
            raise SchemaError("%s: type %s needs %s" % (where, type_, a))
    allowed = set(needs) | ({"max", "size"} if type_ == "bytes" else set())
    for a in ("max", "size", "max_count"):
        if getattr(f, a) is not None and a not in allowed:
            raise SchemaError("%s: %s does not apply to type %s" % (where, a, type_))
    if type_ == "bytes" and (f.max is None) == (f.size is None):
        raise SchemaError("%s: bytes needs exactly one of max and size" % where)
    if type_ == "list":
        if in_struct:
            raise SchemaError("%s: a struct may not hold a list (nesting limit)" % where)
        f.of = structs.get(el.get("of"))
        if f.of is None:
            raise SchemaError("%s: list of unknown struct %r" % (where, el.get("of")))
    elif el.get("of") is not None:
        raise SchemaError("%s: of= applies to lists only" % where)
    f.test = _parse_test(f, el, where, structs)
    return f


def _parse_record(rec, el, structs, in_struct):
    seen = set()
    for fe in el.findall("field"):
        f = _parse_field(fe, rec.name, structs, in_struct)
        if f.name in seen:
            raise SchemaError("%s.%s: duplicate field" % (rec.name, f.name))
        seen.add(f.name)
        rec.fields.append(f)


def _parse_message(p, el, structs):
    name = el.get("name")
    _check_name(name, "message", keywords_ok=True)
    id_ = _int_attr(el, "id", "message " + name, required=True)
    if not 1 <= id_ <= 127:
        raise SchemaError("message %s: id must be 1..127" % name)
    m = Message(name, _doc(el), id_, el.get("signed-by"))
    _parse_record(m, el, structs, False)
    if m.signed_by is not None:
        key = [f for f in m.fields if f.name == m.signed_by]
        if not key or key[0].type != "bytes" or key[0].size != 32:
            raise SchemaError("message %s: signed-by must name a bytes size=32 field" % name)
        last = m.fields[-1] if m.fields else None
        if last is None or last.name != "signature" or last.type != "bytes" or last.size != 64:
            raise SchemaError("message %s: signed message must end with signature bytes size=64"
                              % name)
    return m


def load(path):
    root = ET.parse(path).getroot()
    if root.tag != "protocol":
        raise SchemaError("root element must be <protocol>")
    name = root.get("name")
    _check_name(name, "protocol")
    version = _int_attr(root, "version", "protocol", required=True)
    if not 1 <= version <= 127:
        raise SchemaError("protocol version must be 1..127")
    p = Protocol(name, version, _doc(root))
    structs = {}
    for el in root:
        if el.tag == "constant":
            cname = el.get("name")
            _check_name(cname, "constant")
            p.constants.append((cname, _int_attr(el, "value", cname, True), _text(el)))
        elif el.tag == "struct":
            sname = el.get("name")
            _check_name(sname, "struct")
            if sname in structs:
                raise SchemaError("struct %s: duplicate" % sname)
            s = Record(sname, _doc(el))
            _parse_record(s, el, structs, True)
            structs[sname] = s
            p.structs.append(s)
        elif el.tag == "message":
            p.messages.append(_parse_message(p, el, structs))
        elif el.tag != "doc":
            raise SchemaError("unknown element <%s>" % el.tag)
    _check_protocol(p)
    return p


def _check_protocol(p):
    if not p.messages:
        raise SchemaError("protocol has no messages")
    ids, names, consts = set(), set(), set()
    for m in p.messages:
        if m.id in ids or m.name in names:
            raise SchemaError("message %s: duplicate id or name" % m.name)
        ids.add(m.id)
        names.add(m.name)
    for c in p.constants:
        if c[0] in consts:
            raise SchemaError("constant %s: duplicate" % c[0])
        consts.add(c[0])
    flat = {}
    for m in p.messages:
        for f in m.fields:
            prev = flat.get(f.name)
            if prev is None:
                flat[f.name] = f
                p.fields.append(f)
            elif prev.signature_key() != f.signature_key():
                raise SchemaError("field %s: %s and %s declare it differently (fields with one "
                                  "name share one type)" % (f.name, prev.owner, f.owner))


def max_fields(p):
    return max(len(m.fields) for m in p.messages)


# ---- Canonical MessagePack of test values (must match schemas/bly_codec_rt.c) ----

def pack_uint(v):
    if v < 0x80:
        return bytes([v])
    for marker, fmt, limit in ((0xcc, ">B", 0xFF), (0xcd, ">H", 0xFFFF),
                               (0xce, ">I", 0xFFFFFFFF)):
        if v <= limit:
            return bytes([marker]) + pystruct.pack(fmt, v)
    return b"\xcf" + pystruct.pack(">Q", v)


def pack_int(v):
    if v >= 0:
        return pack_uint(v)
    if v >= -32:
        return pystruct.pack(">b", v)
    for marker, fmt, limit in ((0xd0, ">b", -0x80), (0xd1, ">h", -0x8000),
                               (0xd2, ">i", -0x80000000)):
        if v >= limit:
            return bytes([marker]) + pystruct.pack(fmt, v)
    return b"\xd3" + pystruct.pack(">q", v)


def _pack_length(n, fix_base, fix_max, markers):
    if fix_max and n <= fix_max:
        return bytes([fix_base | n])
    for marker, fmt, limit in zip(markers, (">B", ">H", ">I"), (0xFF, 0xFFFF, 0xFFFFFFFF)):
        if marker is not None and n <= limit:
            return bytes([marker]) + pystruct.pack(fmt, n)
    raise ValueError("length %d too large" % n)


def pack_array(n):
    return _pack_length(n, 0x90, 15, (None, 0xdc, 0xdd))


def pack_str(s):
    raw = s.encode("utf-8")
    return _pack_length(len(raw), 0xa0, 31, (0xd9, 0xda, 0xdb)) + raw


def pack_bin(b):
    return _pack_length(len(b), 0, 0, (0xc4, 0xc5, 0xc6)) + bytes(b)


def pack_value(f, v):
    t = f.type
    if t in SCALARS:
        return pack_uint(v)
    if t == "i64":
        return pack_int(v)
    if t == "bool":
        return b"\xc3" if v else b"\xc2"
    if t == "string":
        return pack_str(v)
    if t == "bytes":
        return pack_bin(v)
    if t == "strings":
        return pack_array(len(v)) + b"".join(pack_str(x) for x in v)
    if t in ("u32s", "u64s"):
        return pack_array(len(v)) + b"".join(pack_uint(x) for x in v)
    if t == "list":
        return pack_array(len(v)) + b"".join(pack_record(f.of, item) for item in v)
    raise AssertionError(t)


def pack_record(rec, values):
    return pack_array(len(rec.fields)) + b"".join(pack_value(f, values[f.name])
                                                  for f in rec.fields)


def encode_test_message(p, m):
    out = pack_array(len(m.fields) + 2) + pack_uint(p.version) + pack_uint(m.id)
    return out + b"".join(pack_value(f, f.test) for f in m.fields)


def signing_domain(p, m):
    return "blyan/%s/v%d/%s" % (p.name, p.version, m.name)


def signing_test_message(p, m):
    """The signing bytes of a signed message's test values: the domain string, then the
    message without its signature field (which is last)."""
    assert m.signed_by
    fields = m.fields[:-1]
    out = pack_str(signing_domain(p, m)) + pack_array(len(fields) + 2)
    out += pack_uint(p.version) + pack_uint(m.id)
    return out + b"".join(pack_value(f, f.test) for f in fields)
