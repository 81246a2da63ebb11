"""bly_codec_emit_test - a Check suite for one protocol's C codec.

Every message: round trip from the schema's test values, the committed golden vector,
truncation at every length, a trailing byte, a wrong version, unknown ids, non-canonical
headers, single-byte mutations and seeded random garbage (each must fail or re-encode to
the very same bytes), every limit and limit + 1 (through the setters and on the wire),
and for signed messages a real signature that a forgery or a change breaks.
"""

import bly_codec_model as model
from bly_codec_emit_c import CTYPE, Names, banner, cstr


def cbytes(b):
    if not b:
        return "(const uint8_t *) \"\""
    return "(const uint8_t[]){%s}" % ", ".join("0x%02x" % x for x in b)


def cint(f, v):
    if f.type == "bool":
        return "true" if v else "false"
    if f.type == "i64":
        return "INT64_C(%d)" % v if v != -(1 << 63) else "INT64_MIN"
    return "UINT64_C(%d)" % v


# ---- filling and checking messages from test values ----

def fill_struct(n, s):
    o = ["static void", "s_fill_%s(%s *item)" % (s.name, n.struct_t(s)), "{",
         "    memset(item, 0, sizeof(*item));"]
    for f in s.fields:
        v, t = "item->" + f.name, f.type
        if t == "string":
            o.append("    memcpy(%s, %s, %d);" % (v, cstr(f.test), len(f.test.encode()) + 1))
        elif t == "bytes":
            if f.test:
                o.append("    memcpy(%s, %s, %d);" % (v, cbytes(f.test), len(f.test)))
            if f.size is None:
                o.append("    %s_size = %d;" % (v, len(f.test)))
        elif t == "strings":
            for i, x in enumerate(f.test):
                o.append("    memcpy(%s[%d], %s, %d);" % (v, i, cstr(x), len(x.encode()) + 1))
            o.append("    %s_count = %d;" % (v, len(f.test)))
        elif t in ("u32s", "u64s"):
            for i, x in enumerate(f.test):
                o.append("    %s[%d] = %s;" % (v, i, cint(f, x)))
            o.append("    %s_count = %d;" % (v, len(f.test)))
        else:
            o.append("    %s = (%s) %s;" % (v, CTYPE[t], cint(f, f.test)))
    o += ["    ck_assert_int_eq(bly_%s_%s_check(item), 0);" % (n.p.name, s.name), "}", ""]
    return o


def fill_field(n, f):
    M, t = n.msg, f.type
    if t == "string":
        return ["ck_assert_int_eq(%s_set_%s(msg, %s), 0);" % (M, f.name, cstr(f.test))]
    if t == "bytes":
        return ["ck_assert_int_eq(%s_set_%s(msg, %s, %d), 0);" % (M, f.name, cbytes(f.test),
                                                                 len(f.test))]
    if t == "strings":
        return ["ck_assert_int_eq(%s_%s_append(msg, %s), 0);" % (M, f.name, cstr(x))
                for x in f.test]
    if t in ("u32s", "u64s"):
        return ["ck_assert_int_eq(%s_%s_append(msg, %s), 0);" % (M, f.name, cint(f, x))
                for x in f.test]
    if t == "list":
        return ["%s item;" % n.struct_t(f.of), "s_fill_%s(&item);" % f.of.name,
                "for (int i = 0; i < %d; i++)" % len(f.test),
                "    ck_assert_int_eq(%s_%s_append(msg, &item), 0);" % (M, f.name)]
    return ["%s_set_%s(msg, (%s) %s);" % (M, f.name, CTYPE[t], cint(f, f.test))]


def check_field(n, f):
    M, t, get = n.msg, f.type, "%s_%s(msg" % (n.msg, f.name)
    if t == "string":
        return ["ck_assert_str_eq(%s), %s);" % (get, cstr(f.test))]
    if t == "bytes":
        return ["{", "    size_t size = 0;", "    const uint8_t *data = %s, &size);" % get,
                "    ck_assert_uint_eq(size, %d);" % len(f.test),
                "    ck_assert(size == 0 || memcmp(data, %s, size) == 0);" % cbytes(f.test), "}"]
    if t in ("strings", "u32s", "u64s", "list"):
        o = ["ck_assert_uint_eq(%s_%s_count(msg), %d);" % (M, f.name, len(f.test))]
        for i, x in enumerate(f.test):
            if t == "strings":
                o.append("ck_assert_str_eq(%s_%s_at(msg, %d), %s);" % (M, f.name, i, cstr(x)))
            elif t == "list":
                o += ["{", "    %s item;" % n.struct_t(f.of), "    s_fill_%s(&item);" % f.of.name,
                      "    ck_assert(memcmp(%s_%s_at(msg, %d), &item, sizeof(item)) == 0);"
                      % (M, f.name, i), "}"]
            else:
                o.append("ck_assert(%s_%s_at(msg, %d) == %s);" % (M, f.name, i, cint(f, x)))
        return o
    return ["ck_assert(%s) == (%s) %s);" % (get, CTYPE[t], cint(f, f.test))]


def message_fill_check(n, m):
    o = ["static %s *" % n.msg_t, "s_make_%s(void)" % m.name, "{",
         "    %s *msg = %s_new(%s);" % (n.msg_t, n.msg, n.msg_id(m)), "    ck_assert_ptr_nonnull(msg);"]
    for f in m.fields:
        o += ["    " + x for x in fill_field(n, f)]
    o += ["    return msg;", "}", "", "static void",
          "s_check_%s(const %s *msg)" % (m.name, n.msg_t), "{",
          "    ck_assert_int_eq(%s_id(msg), %s);" % (n.msg, n.msg_id(m)),
          "    ck_assert_str_eq(%s_command(msg), \"%s\");" % (n.msg, m.name)]
    for f in m.fields:
        o += ["    " + x for x in check_field(n, f)]
    return o + ["}", ""]


def dispatch(n):
    p = n.p
    o = ["static const int s_ids[] = {%s};" % ", ".join(n.msg_id(m) for m in p.messages),
         "static const char *s_names[] = {%s};" % ", ".join('"%s"' % m.name for m in p.messages),
         "#define S_MESSAGES %d" % len(p.messages), "",
         "static %s *" % n.msg_t, "s_make(int index)", "{", "    switch (index) {"]
    for i, m in enumerate(p.messages):
        o += ["    case %d:" % i, "        return s_make_%s();" % m.name]
    o += ["    default:", "        ck_abort();", "        return NULL;", "    }", "}", "",
          "static void", "s_check(int index, const %s *msg)" % n.msg_t, "{",
          "    switch (index) {"]
    for i, m in enumerate(p.messages):
        o += ["    case %d:" % i, "        s_check_%s(msg);" % m.name, "        break;"]
    o += ["    default:", "        ck_abort();", "    }", "}", ""]
    return o


# ---- wire-level limit cases ----
#
# Each case is a recipe, so that a field limited to 64 MiB does not become 64 MiB of C:
# prefix bytes, one item built at run time at its limit (lo) or one past it (hi), suffix
# bytes. Kinds: 'u' an unsigned integer of that value, 's' a string of that many bytes,
# 'b' a bin of that many bytes, 'a' an array of that many copies of `item`.

def _pack_fields(fields, values):
    return b"".join(model.pack_value(g, values[g.name]) for g in fields)


def _item_recipe(f):
    """(kind, lo, hi, item) for field f at its limit, or None when f has no limit."""
    t = f.type
    if t in ("u8", "u16", "u32"):
        return ("u", model.SCALARS[t], model.SCALARS[t] + 1, b"")
    if t == "string":
        return ("s", f.max, f.max + 1, b"")
    if t == "bytes":
        limit = f.size if f.size is not None else f.max
        return ("b", limit, limit + 1, b"")
    if t in ("strings", "u32s", "u64s"):
        base = f.test[0] if f.test else ("" if t == "strings" else 0)
        item = model.pack_str(base) if t == "strings" else model.pack_uint(base)
        return ("a", f.max_count, f.max_count + 1, item)
    if t == "list":
        item = model.pack_record(f.of, dict((g.name, g.test) for g in f.of.fields))
        return ("a", f.max_count, f.max_count + 1, item)
    return None


def _recipes_for(prefix, suffix, f, name):
    """Cases for field f between prefix and suffix bytes."""
    out = []
    r = _item_recipe(f)
    if r is not None:
        out.append((name, prefix, r[0], r[1], r[2], r[3], suffix))
    if f.type == "bytes" and f.size is not None:
        out.append((name + " (short)", prefix, "b", f.size, f.size - 1, b"", suffix))
    if f.type == "strings":
        # One item at the per-item limit, in an array of one.
        out.append((name + "[]", prefix + model.pack_array(1), "s", f.max, f.max + 1, b"",
                    suffix))
    return out


def limit_cases(p):
    """(name, prefix, kind, lo, hi, item, suffix) for every limit of every message."""
    cases = []
    for m in p.messages:
        values = dict((g.name, g.test) for g in m.fields)
        head = model.pack_array(len(m.fields) + 2) + model.pack_uint(p.version) + \
            model.pack_uint(m.id)
        for k, f in enumerate(m.fields):
            prefix = head + _pack_fields(m.fields[:k], values)
            suffix = _pack_fields(m.fields[k + 1:], values)
            cases += _recipes_for(prefix, suffix, f, "%s.%s" % (m.name, f.name))
            if f.type != "list":
                continue
            # Each field of the struct, in a list of one element.
            item = dict((g.name, g.test) for g in f.of.fields)
            for j, g in enumerate(f.of.fields):
                inner = prefix + model.pack_array(1) + model.pack_array(len(f.of.fields)) + \
                    _pack_fields(f.of.fields[:j], item)
                outer = _pack_fields(f.of.fields[j + 1:], item) + suffix
                cases += _recipes_for(inner, outer, g, "%s.%s.%s" % (m.name, f.name, g.name))
    return cases


def _c_array(name, b):
    """A static byte array, or nothing (NULL in the table) when empty."""
    if not b:
        return []
    o = ["static const uint8_t %s[%d] = {" % (name, len(b))]
    for k in range(0, len(b), 16):
        o.append("    " + ", ".join("0x%02x" % x for x in b[k:k + 16]) + ",")
    return o + ["};"]


def limit_tables(p):
    cases = limit_cases(p)
    o = ["//  Wire encodings with one item at its limit (must decode and re-encode",
         "//  identically) and one past it (must be refused), written by the generator's own",
         "//  encoder: they also pin the C encoder to the Python one."]
    rows = []
    for i, (name, prefix, kind, lo, hi, item, suffix) in enumerate(cases):
        parts = []
        for tag, b in (("prefix", prefix), ("item", item), ("suffix", suffix)):
            o += _c_array("s_limit_%d_%s" % (i, tag), b)
            parts.append(("s_limit_%d_%s, %d" % (i, tag, len(b))) if b else "NULL, 0")
        rows.append("    {\"%s\", '%s', UINT64_C(%d), UINT64_C(%d), %s, %s, %s}," % (
            name, kind, lo, hi, parts[0], parts[1], parts[2]))
    o += ["static const struct {", "    const char *name;", "    char kind;", "    uint64_t lo;",
          "    uint64_t hi;", "    const uint8_t *prefix;", "    size_t prefix_size;",
          "    const uint8_t *item;", "    size_t item_size;", "    const uint8_t *suffix;",
          "    size_t suffix_size;", "} s_limits[] = {"] + rows
    o += ["};", "#define S_LIMITS %d" % len(cases), ""]
    return o, len(cases)


def setter_limits(n):
    """Setters and appends accept the limit and refuse limit + 1 (one function per field)."""
    M = n.msg
    funcs = ["static char s_text[BLY_CODEC_TEST_TEXT_MAX + 2];",
             "static uint8_t s_data[BLY_CODEC_TEST_TEXT_MAX + 2];", ""]
    calls = []
    biggest = 1
    for f in n.p.fields:
        body = []
        if f.type == "string" or f.type == "strings":
            biggest = max(biggest, f.max)
            body += ["    memset(text, 'x', sizeof(text));", "    text[%d] = 0;" % f.max]
            if f.type == "string":
                body += ["    ck_assert_int_eq(%s_set_%s(msg, text), 0);" % (M, f.name),
                      "    text[%d] = 'x';" % f.max, "    text[%d] = 0;" % (f.max + 1),
                      "    ck_assert_int_eq(%s_set_%s(msg, text), -1);" % (M, f.name),
                      "    ck_assert_int_eq(%s_set_%s(msg, \"\\xc3\\x28\"), -1);" % (M, f.name)]
            else:
                body += ["    for (int i = 0; i < %d; i++)" % f.max_count,
                      "        ck_assert_int_eq(%s_%s_append(msg, text), 0);" % (M, f.name),
                      "    ck_assert_int_eq(%s_%s_append(msg, text), -1);" % (M, f.name),
                      "    %s_%s_clear(msg);" % (M, f.name),
                      "    text[%d] = 'x';" % f.max, "    text[%d] = 0;" % (f.max + 1),
                      "    ck_assert_int_eq(%s_%s_append(msg, text), -1);" % (M, f.name),
                      "    ck_assert_int_eq(%s_%s_append(msg, \"\\xed\\xa0\\x80\"), -1);"
                      % (M, f.name)]
        elif f.type == "bytes":
            lim = f.size if f.size is not None else f.max
            biggest = max(biggest, lim)
            body += ["    ck_assert_int_eq(%s_set_%s(msg, data, %d), 0);" % (M, f.name, lim),
                  "    ck_assert_int_eq(%s_set_%s(msg, data, %d), -1);" % (M, f.name, lim + 1)]
            if f.size is not None:
                body.append("    ck_assert_int_eq(%s_set_%s(msg, data, %d), -1);" % (
                    M, f.name, lim - 1))
        elif f.type in ("u32s", "u64s"):
            body += ["    for (int i = 0; i < %d; i++)" % f.max_count,
                  "        ck_assert_int_eq(%s_%s_append(msg, 1), 0);" % (M, f.name),
                  "    ck_assert_int_eq(%s_%s_append(msg, 1), -1);" % (M, f.name)]
        elif f.type == "list":
            body += ["    {", "        %s item;" % n.struct_t(f.of),
                  "        s_fill_%s(&item);" % f.of.name,
                  "        for (int i = 0; i < %d; i++)" % f.max_count,
                  "            ck_assert_int_eq(%s_%s_append(msg, &item), 0);" % (M, f.name),
                  "        ck_assert_int_eq(%s_%s_append(msg, &item), -1);" % (M, f.name),
                  "        %s_%s_clear(msg);" % (M, f.name)]
            for g in f.of.fields:
                if g.type == "string":
                    body += ["        memset(item.%s, 'x', sizeof(item.%s));" % (g.name, g.name),
                          "        ck_assert_int_eq(%s_%s_append(msg, &item), -1);" % (M, f.name),
                          "        s_fill_%s(&item);" % f.of.name]
                elif g.is_array:
                    body += ["        item.%s_count = %d;" % (g.name, g.max_count + 1),
                          "        ck_assert_int_eq(%s_%s_append(msg, &item), -1);" % (M, f.name),
                          "        s_fill_%s(&item);" % f.of.name]
                elif g.type == "bytes" and g.size is None:
                    body += ["        item.%s_size = %d;" % (g.name, g.max + 1),
                          "        ck_assert_int_eq(%s_%s_append(msg, &item), -1);" % (M, f.name),
                          "        s_fill_%s(&item);" % f.of.name]
            body += ["    }"]
        if body:
            funcs += ["static void", "s_limits_%s(%s *msg)" % (f.name, n.msg_t), "{"]
            funcs += [x.replace("text", "s_text").replace("data,", "s_data,") for x in body]
            funcs += ["}", ""]
            calls.append("    s_limits_%s(msg);" % f.name)
    o = funcs + ["START_TEST(test_setter_limits)", "{",
                 "    %s *msg = %s_new(%s);" % (n.msg_t, M, n.msg_id(n.p.messages[0]))]
    o += calls + ["    %s_destroy(&msg);" % M, "    ck_assert_ptr_null(msg);", "}", "END_TEST", ""]
    return o, biggest


def signed_tests(n):
    p, M = n.p, n.msg
    signed = [(i, m) for i, m in enumerate(p.messages) if m.signed_by]
    if not signed:
        return [], False
    o = ["static const int s_signed[] = {%s};" % ", ".join(str(i) for i, _ in signed),
         "#define S_SIGNED %d" % len(signed), "",
         "//  The signer field of a signed message, set through the generic setter.",
         "static int", "s_set_signer(%s *msg, const uint8_t *key)" % n.msg_t, "{",
         "    switch (%s_id(msg)) {" % M]
    for _, m in signed:
        o += ["    case %s:" % n.msg_id(m),
              "        return %s_set_%s(msg, key, 32);" % (M, m.signed_by)]
    o += ["    default:", "        return -1;", "    }", "}", "",
          "START_TEST(test_signature)", "{", "    int index = s_signed[_i];",
          "    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];",
          "    uint8_t seed[crypto_sign_SEEDBYTES];", "    memset(seed, 7, sizeof(seed));",
          "    ck_assert_int_eq(crypto_sign_seed_keypair(pk, sk, seed), 0);",
          "    %s *msg = s_make(index);" % n.msg_t,
          "    ck_assert(!%s_verify(msg));" % M,
          "    //  A secret key whose public half is not the signer field is refused.",
          "    ck_assert_int_eq(%s_sign(msg, sk), -1);" % M,
          "    ck_assert_int_eq(s_set_signer(msg, pk), 0);",
          "    ck_assert_int_eq(%s_sign(msg, sk), 0);" % M,
          "    ck_assert(%s_verify(msg));" % M,
          "    //  The signature survives the wire.",
          "    uint8_t *buf = NULL;", "    size_t size = 0;",
          "    ck_assert_int_eq(%s_encode(msg, &buf, &size), 0);" % M,
          "    %s *copy = NULL;" % n.msg_t,
          "    ck_assert_int_eq(%s_decode(buf, size, &copy, NULL, 0), 0);" % M,
          "    ck_assert(%s_verify(copy));" % M, "    %s_destroy(&copy);" % M,
          "    //  Flipping any bit of the signed part or of the signature breaks it.",
          "    for (size_t i = 0; i < size; i++) {", "        buf[i] ^= 0x01;",
          "        if (%s_decode(buf, size, &copy, NULL, 0) == 0) {" % M,
          "            ck_assert(!%s_verify(copy));" % M, "            %s_destroy(&copy);" % M,
          "        }", "        buf[i] ^= 0x01;", "    }", "    free(buf);",
          "    //  The signing bytes of the test values equal the committed vector.",
          "    %s *plain = s_make(index);" % n.msg_t,
          "    ck_assert_int_eq(%s_signing_bytes(plain, &buf, &size), 0);" % M,
          "    char name[96];",
          "    snprintf(name, sizeof(name), \"%s.signing\", s_names[index]);",
          "    size_t golden_size = 0;",
          "    uint8_t *golden = s_load_vector(name, &golden_size);",
          "    ck_assert_msg(golden_size == size && memcmp(golden, buf, size) == 0,",
          "                  \"signing bytes of %s differ from schemas/vectors\", name);",
          "    free(golden);", "    free(buf);", "    %s_destroy(&plain);" % M,
          "    //  A key of all zeros (small order) never verifies.",
          "    uint8_t zero[32] = {0};", "    ck_assert_int_eq(s_set_signer(msg, zero), 0);",
          "    ck_assert(!%s_verify(msg));" % M, "    %s_destroy(&msg);" % M, "}", "END_TEST", ""]
    return o, True


STATIC_TESTS = r"""
static uint8_t *
s_encode(const MSG_T *msg, size_t *size)
{
    uint8_t *buf = NULL;
    ck_assert_int_eq(MSG_encode(msg, &buf, size), 0);
    ck_assert_ptr_nonnull(buf);
    return buf;
}

//  Decoding must fail with a reason, or succeed and re-encode to the very same bytes.
static bool
s_decodes_canonically(const uint8_t *buf, size_t size)
{
    MSG_T *msg = NULL;
    char err[256] = "";
    if (MSG_decode(buf, size, &msg, err, sizeof(err)) != 0) {
        ck_assert_ptr_null(msg);
        ck_assert_uint_gt(strlen(err), 0);
        return false;
    }
    size_t again_size = 0;
    uint8_t *again = s_encode(msg, &again_size);
    ck_assert_uint_eq(again_size, size);
    ck_assert(memcmp(again, buf, size) == 0);
    free(again);
    MSG_destroy(&msg);
    return true;
}

static void
s_expect_fail(const uint8_t *buf, size_t size, const char *reason)
{
    MSG_T *msg = NULL;
    char err[256] = "";
    ck_assert_int_eq(MSG_decode(buf, size, &msg, err, sizeof(err)), -1);
    ck_assert_ptr_null(msg);
    if (reason && !strstr(err, reason))
        ck_abort_msg("expected \"%s\" in \"%s\"", reason, err);
}

//  The golden vector of a message, read from schemas/vectors/.
static uint8_t *
s_load_vector(const char *name, size_t *size)
{
    const char *root = getenv("BLY_SOURCE_DIR");
    ck_assert_ptr_nonnull(root);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/PROTO.%s.hex", root, BLY_CODEC_VECTOR_DIR, name);
    FILE *file = fopen(path, "r");
    ck_assert_msg(file != NULL, "cannot open %s", path);
    uint8_t *buf = malloc(BLY_CODEC_TEST_VECTOR_MAX);
    ck_assert_ptr_nonnull(buf);
    size_t count = 0;
    int hi = -1;
    int c;
    while ((c = fgetc(file)) != EOF) {
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0)
            continue;
        if (hi < 0) {
            hi = v;
            continue;
        }
        ck_assert_uint_lt(count, BLY_CODEC_TEST_VECTOR_MAX);
        buf[count++] = (uint8_t) (hi << 4 | v);
        hi = -1;
    }
    fclose(file);
    ck_assert_int_eq(hi, -1);
    *size = count;
    return buf;
}

//  The header of an encoding ([count, version, id]) and where the fields start.
static size_t
s_header(const uint8_t *buf, size_t size, size_t *count)
{
    bly_codec_reader_t r;
    bly_codec_reader_init(&r, buf, size, NULL, 0);
    uint64_t version = 0, id = 0;
    ck_assert_int_eq(bly_codec_get_array(&r, "m", 2, 1000, count), 0);
    ck_assert_int_eq(bly_codec_get_uint(&r, "v", UINT64_MAX, &version), 0);
    ck_assert_int_eq(bly_codec_get_uint(&r, "i", UINT64_MAX, &id), 0);
    return r.pos;
}

START_TEST(test_round_trip)
{
    MSG_T *msg = s_make(_i);
    size_t size = 0;
    uint8_t *buf = s_encode(msg, &size);
    MSG_T *copy = NULL;
    char err[256] = "";
    ck_assert_msg(MSG_decode(buf, size, &copy, err, sizeof(err)) == 0, "%s", err);
    s_check(_i, copy);
    ck_assert(s_decodes_canonically(buf, size));
    ck_assert_str_eq(MSG_command(copy), s_names[_i]);
    ck_assert_str_eq(MSG_id_name(s_ids[_i]), s_names[_i]);
    ck_assert_ptr_null(MSG_peer_key(copy));
    MSG_print(copy);
    MSG_set_peer_key(copy, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    MSG_T *dup = MSG_dup(copy);
    ck_assert_ptr_nonnull(dup);
    s_check(_i, dup);
    ck_assert_str_eq(MSG_peer_key(dup), MSG_peer_key(copy));
    MSG_destroy(&dup);
    MSG_destroy(&copy);
    MSG_destroy(&msg);
    ck_assert_ptr_null(msg);
    MSG_destroy(&msg);
    free(buf);
}
END_TEST

START_TEST(test_golden_vector)
{
    size_t size = 0;
    uint8_t *golden = s_load_vector(s_names[_i], &size);
    MSG_T *msg = s_make(_i);
    size_t mine_size = 0;
    uint8_t *mine = s_encode(msg, &mine_size);
    ck_assert_msg(mine_size == size && memcmp(mine, golden, size) == 0,
                  "encoding of %s differs from schemas/vectors (wire change?)", s_names[_i]);
    ck_assert(s_decodes_canonically(golden, size));
    free(mine);
    free(golden);
    MSG_destroy(&msg);
}
END_TEST

START_TEST(test_truncated)
{
    MSG_T *msg = s_make(_i);
    size_t size = 0;
    uint8_t *buf = s_encode(msg, &size);
    for (size_t cut = 0; cut < size; cut++) {
        //  A fresh copy of exactly `cut` bytes, so reading past it is a memory error.
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        s_expect_fail(part, cut, NULL);
        free(part);
    }
    free(buf);
    MSG_destroy(&msg);
}
END_TEST

START_TEST(test_trailing_byte)
{
    MSG_T *msg = s_make(_i);
    size_t size = 0;
    uint8_t *buf = s_encode(msg, &size);
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, buf, size);
    longer[size] = 0xc0;
    s_expect_fail(longer, size + 1, "trailing");
    free(longer);
    free(buf);
    MSG_destroy(&msg);
}
END_TEST

//  An array header for `count` elements: canonical (style 0), one form wider than
//  canonical (1), or a map header instead (2).
static void
s_put_array_header(bly_codec_writer_t *w, size_t count, int style)
{
    ck_assert_uint_le(count, 0xffff);
    if (style == 0) {
        bly_codec_put_array(w, count);
    } else if (style == 1 && count <= 15) {
        uint8_t wide[3] = {0xdc, 0x00, (uint8_t) count};
        bly_codec_put_raw(w, wide, sizeof(wide));
    } else if (style == 1) {
        uint8_t wide[5] = {0xdd, 0, 0, (uint8_t) (count >> 8), (uint8_t) count};
        bly_codec_put_raw(w, wide, sizeof(wide));
    } else {
        uint8_t map = 0x80;
        bly_codec_put_raw(w, &map, 1);
    }
}

START_TEST(test_bad_header)
{
    MSG_T *msg = s_make(_i);
    size_t size = 0;
    uint8_t *buf = s_encode(msg, &size);
    size_t count = 0;
    size_t start = s_header(buf, size, &count);
    uint8_t id = (uint8_t) s_ids[_i];
    static const uint8_t version = VERSION;
    struct {
        int style;           //  Array header style, see s_put_array_header.
        int delta;           //  Added to the element count.
        uint8_t rest[4];     //  Version and id as written.
        size_t rest_size;
        const char *reason;  //  Expected in the error, or NULL.
    } cases[] = {
        {0, 0, {version + 1, id}, 2, "version"},
        {0, 0, {0, id}, 2, "version"},
        {0, 0, {version, 0}, 2, "unknown message id"},
        {0, 0, {version, 0xcc, 0xc8}, 3, "unknown message id"},
        {0, 0, {version, 0xff}, 2, "id"},
        {0, 0, {0xcc, version, id}, 3, "non-canonical"},
        {0, 0, {version, 0xcd, 0x00, id}, 4, "non-canonical"},
        {1, 0, {version, id}, 2, "non-canonical"},
        {0, 1, {version, id}, 2, NULL},
        {0, -1, {version, id}, 2, NULL},
        {2, 0, {version, id}, 2, "expected an array"},
        {0, 0, {0xa1, '1', id}, 3, "unsigned integer"},
        {0, 0, {0xc0, id}, 2, "unsigned integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bly_codec_writer_t w;
        bly_codec_writer_init(&w);
        s_put_array_header(&w, (size_t) ((int) count + cases[i].delta), cases[i].style);
        bly_codec_put_raw(&w, cases[i].rest, cases[i].rest_size);
        bly_codec_put_raw(&w, buf + start, size - start);
        uint8_t *bad = NULL;
        size_t bad_size = 0;
        ck_assert_int_eq(bly_codec_writer_take(&w, &bad, &bad_size), 0);
        s_expect_fail(bad, bad_size, cases[i].reason);
        free(bad);
    }
    //  An id that no message of this protocol has.
    for (int unknown = 0; unknown < 128; unknown++) {
        if (MSG_id_name(unknown))
            continue;
        uint8_t *bad = malloc(size);
        memcpy(bad, buf, size);
        bad[start - 1] = (uint8_t) unknown;
        s_expect_fail(bad, size, "unknown message id");
        free(bad);
    }
    free(buf);
    MSG_destroy(&msg);
}
END_TEST

//  Every single-byte change of a valid message is refused or still canonical.
START_TEST(test_mutations)
{
    MSG_T *msg = s_make(_i);
    size_t size = 0;
    uint8_t *buf = s_encode(msg, &size);
    static const uint8_t flips[] = {0x01, 0x10, 0x80, 0xff, 0x20, 0x0f};
    for (size_t i = 0; i < size; i++) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            buf[i] ^= flips[k];
            s_decodes_canonically(buf, size);
            buf[i] ^= flips[k];
        }
    }
    free(buf);
    MSG_destroy(&msg);
}
END_TEST

static uint64_t
s_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

//  Seeded random input, raw and behind a valid header: refused or canonical, never a crash.
START_TEST(test_garbage)
{
    uint64_t state = 0x9e3779b97f4a7c15ull;
    uint8_t buf[256];
    for (int round = 0; round < 4000; round++) {
        size_t size = s_next(&state) % sizeof(buf);
        for (size_t i = 0; i < size; i++)
            buf[i] = (uint8_t) s_next(&state);
        if (round % 2 && size >= 3) {
            buf[0] = (uint8_t) (0x90 | (s_next(&state) % 16));
            buf[1] = VERSION;
            buf[2] = (uint8_t) s_ids[s_next(&state) % S_MESSAGES];
        }
        s_decodes_canonically(buf, size);
    }
}
END_TEST

START_TEST(test_oversize_frame)
{
    //  Only the size is looked at: the buffer is never read past its first byte.
    static const uint8_t byte = 0x90;
    MSG_T *msg = NULL;
    char err[256] = "";
    ck_assert_int_eq(MSG_decode(&byte, (size_t) BLY_FRAME_SIZE_MAX + 1, &msg, err, sizeof(err)), -1);
    ck_assert_ptr_null(msg);
    ck_assert_ptr_nonnull(strstr(err, "limit"));
    //  A header announcing a huge array in a short buffer is refused before allocating.
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, VERSION, 1};
    s_expect_fail(huge, sizeof(huge), "array");
    //  Deep nesting: the reader follows the schema, never the input, so it stops at once.
    static uint8_t deep[100000];
    memset(deep, 0x91, sizeof(deep));
    s_expect_fail(deep, sizeof(deep), "array of 1 elements");
    //  A string or bin header announcing 4 GiB in a short buffer.
    for (int index = 0; index < S_MESSAGES; index++) {
        uint8_t lying[16] = {(uint8_t) (0x90 | 3), VERSION, (uint8_t) s_ids[index], 0xdb, 0xff,
                             0xff, 0xff, 0xff, 'x'};
        s_expect_fail(lying, 9, NULL);
        lying[3] = 0xc6;
        s_expect_fail(lying, 9, NULL);
    }
}
END_TEST

//  Case i of s_limits at its limit (hi false) or one past it (hi true); caller frees.
static uint8_t *
s_limit_build(int i, bool hi, size_t *size)
{
    uint64_t n = hi ? s_limits[i].hi : s_limits[i].lo;
    bly_codec_writer_t w;
    bly_codec_writer_init(&w);
    bly_codec_put_raw(&w, s_limits[i].prefix, s_limits[i].prefix_size);
    if (s_limits[i].kind == 'u') {
        bly_codec_put_uint(&w, n);
    } else if (s_limits[i].kind == 'a') {
        bly_codec_put_array(&w, (size_t) n);
        for (uint64_t k = 0; k < n; k++)
            bly_codec_put_raw(&w, s_limits[i].item, s_limits[i].item_size);
    } else {
        uint8_t *filler = malloc(n ? (size_t) n : 1);
        ck_assert_ptr_nonnull(filler);
        memset(filler, s_limits[i].kind == 's' ? 'x' : 0x5a, (size_t) n);
        if (s_limits[i].kind == 's')
            bly_codec_put_str(&w, (const char *) filler, (size_t) n);
        else
            bly_codec_put_bin(&w, filler, (size_t) n);
        free(filler);
    }
    bly_codec_put_raw(&w, s_limits[i].suffix, s_limits[i].suffix_size);
    uint8_t *buf = NULL;
    ck_assert_int_eq(bly_codec_writer_take(&w, &buf, size), 0);
    return buf;
}

START_TEST(test_wire_limits)
{
    size_t size = 0;
    uint8_t *buf = s_limit_build(_i, false, &size);
    ck_assert_msg(s_decodes_canonically(buf, size), "%s at its limit must decode",
                  s_limits[_i].name);
    free(buf);
    buf = s_limit_build(_i, true, &size);
    MSG_T *msg = NULL;
    char err[256] = "";
    ck_assert_msg(MSG_decode(buf, size, &msg, err, sizeof(err)) == -1,
                  "%s past its limit must be refused", s_limits[_i].name);
    ck_assert_ptr_null(msg);
    free(buf);
}
END_TEST

START_TEST(test_routing_and_peer_key)
{
    MSG_T *msg = s_make(0);
    ck_assert_ptr_null(MSG_routing_id(msg));
    zframe_t *frame = zframe_new("abc", 3);
    MSG_set_routing_id(msg, frame);
    zframe_destroy(&frame);
    ck_assert(zframe_streq(MSG_routing_id(msg), "abc"));
    MSG_set_routing_id(msg, NULL);
    ck_assert_ptr_null(MSG_routing_id(msg));
    MSG_set_peer_key(msg, "short");
    ck_assert_ptr_null(MSG_peer_key(msg));
    MSG_set_peer_key(msg, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    ck_assert_str_eq(MSG_peer_key(msg), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    MSG_destroy(&msg);
}
END_TEST

//  Answer one ZAP request (RFC 27) on `zap`, admitting the client with its Z85 key as the
//  user id: what a node's ZAP handler must do for _peer_key to be known (czmq's zauth
//  replies with an empty user id).
static void
s_zap_admit(zsock_t *zap)
{
    zmsg_t *request = zmsg_recv(zap);
    ck_assert_ptr_nonnull(request);
    ck_assert_uint_eq(zmsg_size(request), 7);
    char *version = zmsg_popstr(request);
    char *sequence = zmsg_popstr(request);
    zframe_t *key = zmsg_last(request);
    ck_assert_uint_eq(zframe_size(key), 32);
    char z85[41];
    ck_assert_ptr_nonnull(zmq_z85_encode(z85, zframe_data(key), 32));
    zmsg_t *reply = zmsg_new();
    ck_assert_int_eq(zmsg_addstr(reply, version), 0);
    ck_assert_int_eq(zmsg_addstr(reply, sequence), 0);
    ck_assert_int_eq(zmsg_addstr(reply, "200"), 0);
    ck_assert_int_eq(zmsg_addstr(reply, "OK"), 0);
    ck_assert_int_eq(zmsg_addstr(reply, z85), 0);
    ck_assert_int_eq(zmsg_addmem(reply, "", 0), 0);
    ck_assert_int_eq(zmsg_send(&reply, zap), 0);
    free(version);
    free(sequence);
    zmsg_destroy(&request);
}

//  CURVE over tcp: the receiver learns the sender's public key from User-Id.
START_TEST(test_curve_peer_key)
{
    ck_assert(zsys_has_curve());
    zsock_t *zap = zsock_new_rep("inproc://zeromq.zap.01");
    ck_assert_ptr_nonnull(zap);
    zsock_set_rcvtimeo(zap, 5000);
    zcert_t *server_cert = zcert_new();
    zcert_t *client_cert = zcert_new();
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zcert_apply(server_cert, router);
    zsock_set_curve_server(router, 1);
    zsock_set_rcvtimeo(router, 5000);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    ck_assert_int_gt(port, 0);
    zcert_apply(client_cert, dealer);
    zsock_set_curve_serverkey(dealer, zcert_public_txt(server_cert));
    ck_assert_int_eq(zsock_connect(dealer, "tcp://127.0.0.1:%d", port), 0);
    MSG_T *msg = s_make(0);
    ck_assert_int_eq(MSG_send(msg, dealer), 0);
    s_zap_admit(zap);
    char err[256] = "";
    MSG_T *got = MSG_recv(router, err, sizeof(err));
    ck_assert_msg(got != NULL, "%s", err);
    ck_assert_ptr_nonnull(MSG_peer_key(got));
    ck_assert_str_eq(MSG_peer_key(got), zcert_public_txt(client_cert));
    MSG_destroy(&got);
    MSG_destroy(&msg);
    zsock_destroy(&dealer);
    zsock_destroy(&router);
    zcert_destroy(&client_cert);
    zcert_destroy(&server_cert);
    zsock_destroy(&zap);
}
END_TEST

//  Real sockets: a DEALER talks to a ROUTER over inproc; the reply finds its way back.
START_TEST(test_send_recv)
{
    //  One endpoint per iteration: without fork (valgrind) a closed socket's inproc
    //  name is released asynchronously.
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    ck_assert_ptr_nonnull(router);
    ck_assert_ptr_nonnull(dealer);
    ck_assert_int_eq(zsock_bind(router, "inproc://codec-test-PROTO-%d", _i), 0);
    ck_assert_int_eq(zsock_connect(dealer, "inproc://codec-test-PROTO-%d", _i), 0);
    zsock_set_rcvtimeo(router, 2000);
    zsock_set_rcvtimeo(dealer, 2000);
    MSG_T *msg = s_make(_i);
    ck_assert_int_eq(MSG_send(msg, dealer), 0);
    char err[256] = "";
    MSG_T *got = MSG_recv(router, err, sizeof(err));
    ck_assert_msg(got != NULL, "%s", err);
    s_check(_i, got);
    ck_assert_ptr_nonnull(MSG_routing_id(got));
    //  Reply through the ROUTER with the routing id it recorded.
    ck_assert_int_eq(MSG_send(got, router), 0);
    MSG_T *back = MSG_recv(dealer, err, sizeof(err));
    ck_assert_msg(back != NULL, "%s", err);
    s_check(_i, back);
    ck_assert_ptr_null(MSG_routing_id(back));
    //  A ROUTER cannot send without a routing id.
    ck_assert_int_eq(MSG_send(msg, router), -1);
    //  Garbage and too many frames are refused; the routing id comes back for a reply.
    ck_assert_int_eq(zstr_send(dealer, "not msgpack"), 0);
    zframe_t *routing_id = NULL;
    ck_assert_ptr_null(MSG_recv_from(router, &routing_id, err, sizeof(err)));
    ck_assert_ptr_nonnull(routing_id);
    zframe_destroy(&routing_id);
    ck_assert_int_eq(zstr_sendm(dealer, ""), 0);
    ck_assert_int_eq(zstr_sendm(dealer, ""), 0);
    ck_assert_int_eq(zstr_sendm(dealer, ""), 0);
    ck_assert_int_eq(zstr_sendm(dealer, ""), 0);
    ck_assert_int_eq(zstr_send(dealer, "x"), 0);
    ck_assert_ptr_null(MSG_recv(router, err, sizeof(err)));
    ck_assert_str_eq(err, "bad frame count");
    //  The socket still works after the bad input.
    ck_assert_int_eq(MSG_send(msg, dealer), 0);
    MSG_T *again = MSG_recv(router, err, sizeof(err));
    ck_assert_msg(again != NULL, "%s", err);
    MSG_destroy(&again);
    MSG_destroy(&back);
    MSG_destroy(&got);
    MSG_destroy(&msg);
    zsock_destroy(&dealer);
    zsock_destroy(&router);
}
END_TEST
"""


def source(p):
    n = Names(p)
    o = [banner(p, "test_codec_%s" % p.name), '#include "bly_%s_msg.h"' % p.name,
         '#include "bly_codec_rt.h"', "", "#include <check.h>", "#include <sodium.h>",
         "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>", "",
         "#define BLY_CODEC_TEST_VECTOR_MAX (4u * 1024u * 1024u)",
         "#ifndef BLY_CODEC_VECTOR_DIR  //  Golden vectors, relative to BLY_SOURCE_DIR.",
         "#define BLY_CODEC_VECTOR_DIR \"schemas/vectors\"", "#endif", ""]
    for s in p.structs:
        o += fill_struct(n, s)
    for m in p.messages:
        o += message_fill_check(n, m)
    o += dispatch(n)
    tables, n_limits = limit_tables(p)
    o += tables
    setter, biggest = setter_limits(n)
    o.insert(o.index("#define BLY_CODEC_TEST_VECTOR_MAX (4u * 1024u * 1024u)") + 1,
             "#define BLY_CODEC_TEST_TEXT_MAX %d" % biggest)
    body = STATIC_TESTS.replace("MSG_T", n.msg_t).replace("MSG_", n.msg + "_")
    body = body.replace("VERSION", "BLY_%s_VERSION" % n.P).replace("PROTO", p.name)
    o += body.split("\n")
    o += setter
    signed, has_signed = signed_tests(n)
    o += signed
    o += ["int", "main(void)", "{", "    if (sodium_init() < 0)", "        return 1;",
          "    Suite *suite = suite_create(\"codec_%s\");" % p.name,
          "    TCase *tc = tcase_create(\"codec\");", "    tcase_set_timeout(tc, 60);",
          "    tcase_add_loop_test(tc, test_round_trip, 0, S_MESSAGES);",
          "    tcase_add_loop_test(tc, test_golden_vector, 0, S_MESSAGES);",
          "    tcase_add_loop_test(tc, test_truncated, 0, S_MESSAGES);",
          "    tcase_add_loop_test(tc, test_trailing_byte, 0, S_MESSAGES);",
          "    tcase_add_loop_test(tc, test_bad_header, 0, S_MESSAGES);",
          "    tcase_add_loop_test(tc, test_mutations, 0, S_MESSAGES);",
          "    tcase_add_loop_test(tc, test_send_recv, 0, S_MESSAGES);",
          "    tcase_add_test(tc, test_garbage);", "    tcase_add_test(tc, test_oversize_frame);",
          "    tcase_add_test(tc, test_routing_and_peer_key);",
          "    tcase_add_test(tc, test_curve_peer_key);",
          "    tcase_add_test(tc, test_setter_limits);"]
    if n_limits:
        o.append("    tcase_add_loop_test(tc, test_wire_limits, 0, S_LIMITS);")
    if has_signed:
        o.append("    tcase_add_loop_test(tc, test_signature, 0, S_SIGNED);")
    o += ["    suite_add_tcase(suite, tc);", "    SRunner *runner = srunner_create(suite);",
          "    srunner_run_all(runner, CK_NORMAL);",
          "    int failed = srunner_ntests_failed(runner);", "    srunner_free(runner);",
          "    return failed == 0 ? 0 : 1;", "}", ""]
    return "\n".join(o)
