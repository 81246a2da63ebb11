"""test_codec_gen - the codec generator refuses malformed schemas with a clear reason.

Run by meson: test_codec_gen.py SOURCE_DIR. Standard library only.
"""

import os
import sys
import tempfile

GOOD_FIELD = '<field name="a" type="u32" test="1"/>'


def schema(body, version="1"):
    return ('<protocol name="t" version="%s"><message name="m" id="1">%s</message></protocol>'
            % (version, body))


CASES = [
    ("unknown type", schema('<field name="a" type="float" test="1"/>'), "unknown type"),
    ("string without max", schema('<field name="a" type="string" test="x"/>'), "needs max"),
    ("bytes with size and max", schema('<field name="a" type="bytes" size="2" max="2" test="0000"/>'),
     "exactly one"),
    ("bad field name", schema('<field name="A" type="u32" test="1"/>'), "bad name"),
    ("keyword field name", schema('<field name="int" type="u32" test="1"/>'), "bad name"),
    ("reserved field name", schema('<field name="encode" type="u32" test="1"/>'), "reserved"),
    ("duplicate field", schema(GOOD_FIELD + GOOD_FIELD), "duplicate field"),
    ("missing test value", schema('<field name="a" type="u32"/>'), "missing test"),
    ("test value too long", schema('<field name="a" type="string" max="2" test="abc"/>'),
     "longer than max"),
    ("test value out of range", schema('<field name="a" type="u8" test="256"/>'), "out of range"),
    ("bytes test of wrong size", schema('<field name="a" type="bytes" size="2" test="00"/>'),
     "wrong size"),
    ("limit of zero", schema('<field name="a" type="string" max="0" test=""/>'), "out of range"),
    ("version 0", schema(GOOD_FIELD, version="0"), "version"),
    ("id out of range", '<protocol name="t" version="1"><message name="m" id="200">'
     '</message></protocol>', "id must be"),
    ("duplicate id", '<protocol name="t" version="1"><message name="m" id="1"/>'
     '<message name="n" id="1"/></protocol>', "duplicate"),
    ("signed without signature", '<protocol name="t" version="1"><message name="m" id="1" '
     'signed-by="k"><field name="k" type="bytes" size="32" test="%s"/></message></protocol>'
     % ("00" * 32), "signature"),
    ("signed-by a string", '<protocol name="t" version="1"><message name="m" id="1" '
     'signed-by="k"><field name="k" type="string" max="32" test="x"/></message></protocol>',
     "signed-by"),
    ("list of unknown struct", schema('<field name="a" type="list" of="nope" max_count="2"/>'),
     "unknown struct"),
    ("list inside a struct", '<protocol name="t" version="1"><struct name="s">'
     '<field name="a" type="u8" test="1"/></struct><struct name="u">'
     '<field name="b" type="list" of="s" max_count="2"/></struct>'
     '<message name="m" id="1"/></protocol>', "nesting"),
    ("shared field declared twice differently", '<protocol name="t" version="1">'
     '<message name="m" id="1"><field name="a" type="u32" test="1"/></message>'
     '<message name="n" id="2"><field name="a" type="u64" test="1"/></message></protocol>',
     "declare it differently"),
    ("unknown element", '<protocol name="t" version="1"><mesage name="m" id="1"/></protocol>',
     "unknown element"),
    ("no messages", '<protocol name="t" version="1"></protocol>', "no messages"),
    ("not XML", '<protocol name="t"', ""),
]


def main(argv):
    src = argv[1]
    sys.path.insert(0, os.path.join(src, "tools", "codec"))
    import bly_codec_gen as gen
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.xml")
        for title, text, reason in CASES:
            with open(path, "w") as f:
                f.write(text)
            import io
            import contextlib
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = gen.main(["--check", path])
            if rc != 2 or reason not in err.getvalue():
                print("FAIL: %s: rc=%s, stderr=%r" % (title, rc, err.getvalue()))
                failures += 1
        # The real schemas pass, and generating twice gives the same bytes.
        schemas = sorted(os.path.join(src, "schemas", n)
                         for n in os.listdir(os.path.join(src, "schemas")) if n.endswith(".xml"))
        outputs = []
        for k in range(2):
            out = os.path.join(tmp, "out%d" % k)
            os.mkdir(out)
            if gen.main(["--outdir", out, "--markdown", os.path.join(out, "P.md")] + schemas):
                print("FAIL: the committed schemas do not generate")
                return 1
            outputs.append({n: open(os.path.join(out, n), "rb").read()
                            for n in sorted(os.listdir(out))})
        if outputs[0] != outputs[1]:
            print("FAIL: generation is not deterministic")
            failures += 1
        for name, data in outputs[0].items():
            if b"GENERATED" not in data[:400]:
                print("FAIL: %s has no GENERATED banner" % name)
                failures += 1
    print("%d schema cases, %d failures" % (len(CASES), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
