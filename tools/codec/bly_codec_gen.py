#!/usr/bin/env python3
"""bly_codec_gen - turn schemas/<proto>.xml into C and Python codecs, tests and docs.

Python standard library only. Every output is deterministic (no timestamps) and starts
with a "GENERATED, do not edit" banner. See docs/SCHEMAS.md for the schema language.

Usage:
  bly_codec_gen.py --outdir DIR PROTO.xml       C codec (.c/.h), Python codec, Check test
  bly_codec_gen.py --markdown OUT.md A.xml ...  protocol reference (docs/PROTOCOL.md)
  bly_codec_gen.py --write-vectors DIR A.xml .. golden hex vectors <proto>.<message>.hex
  bly_codec_gen.py --write-corpus DIR A.xml ... the same vectors as binary fuzz seeds
  bly_codec_gen.py --check A.xml ...            parse and validate only
"""

import argparse
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bly_codec_model as model  # noqa: E402
import bly_codec_emit_c as emit_c  # noqa: E402
import bly_codec_emit_test as emit_test  # noqa: E402
import bly_codec_emit_py as emit_py  # noqa: E402
import bly_codec_emit_md as emit_md  # noqa: E402
import bly_codec_emit_fuzz as emit_fuzz  # noqa: E402


def write_if_changed(path, text):
    """Write `text` to `path` unless it already holds exactly that (keeps ninja quiet)."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def write_hex(path, data):
    """Hex, 64 digits a line."""
    hexed = data.hex()
    write_if_changed(path, "\n".join(hexed[i:i + 64] for i in range(0, len(hexed), 64)) + "\n")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--outdir", help="write bly_<proto>_msg.{c,h,py}, test_codec_<proto>.c, fuzz_codec_<proto>.c")
    ap.add_argument("--markdown", help="write the protocol reference for all schemas")
    ap.add_argument("--write-vectors", metavar="DIR", help="write golden vectors")
    ap.add_argument("--write-corpus", metavar="DIR",
                    help="write golden vectors as fuzz seeds DIR/codec_<proto>/vector-<message>")
    ap.add_argument("--check", action="store_true", help="validate the schemas only")
    ap.add_argument("schemas", nargs="+")
    args = ap.parse_args(argv)

    protocols = []
    for path in args.schemas:
        try:
            protocols.append(model.load(path))
        except (model.SchemaError, ET.ParseError) as e:
            print("%s: %s" % (path, e), file=sys.stderr)
            return 2
    if args.outdir:
        for p in protocols:
            base = os.path.join(args.outdir, "bly_%s_msg" % p.name)
            write_if_changed(base + ".h", emit_c.header(p))
            write_if_changed(base + ".c", emit_c.source(p))
            write_if_changed(base + ".py", emit_py.module(p))
            write_if_changed(os.path.join(args.outdir, "test_codec_%s.c" % p.name),
                             emit_test.source(p))
            write_if_changed(os.path.join(args.outdir, "fuzz_codec_%s.c" % p.name),
                             emit_fuzz.source(p))
    if args.markdown:
        write_if_changed(args.markdown, emit_md.document(protocols))
    if args.write_vectors:
        os.makedirs(args.write_vectors, exist_ok=True)
        for p in protocols:
            for m in p.messages:
                write_hex(os.path.join(args.write_vectors, "%s.%s.hex" % (p.name, m.name)),
                          model.encode_test_message(p, m))
                if m.signed_by:
                    write_hex(os.path.join(args.write_vectors, "%s.%s.signing.hex"
                                           % (p.name, m.name)), model.signing_test_message(p, m))
    if args.write_corpus:
        for p in protocols:
            folder = os.path.join(args.write_corpus, "codec_%s" % p.name)
            os.makedirs(folder, exist_ok=True)
            for m in p.messages:
                with open(os.path.join(folder, "vector-%s" % m.name), "wb") as f:
                    f.write(model.encode_test_message(p, m))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
