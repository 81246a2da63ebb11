"""bly_codec_emit_fuzz - a libFuzzer target for one protocol's C decoder.

Any input: decode must not crash; when it succeeds the message must re-encode to the very
same bytes (canonical form), and the accessors, signing bytes and verify must hold up.
"""

from bly_codec_emit_c import Names, banner


def source(p):
    n = Names(p)
    M = n.msg
    signed = any(m.signed_by for m in p.messages)
    o = [banner(p, "fuzz_codec_%s" % p.name), '#include "bly_%s_msg.h"' % p.name, "",
         "#include <stdlib.h>", "#include <string.h>", "",
         "int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);", "",
         "int", "LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)", "{",
         "    %s *msg = NULL;" % n.msg_t, "    char err[256];",
         "    if (%s_decode(data, size, &msg, err, sizeof(err)) != 0) {" % M,
         "        bly_assert(msg == NULL);", "        bly_assert(err[0] != 0);",
         "        return 0;", "    }", "    bly_assert(msg);",
         "    bly_assert(%s_command(msg) != NULL);" % M,
         "    uint8_t *again = NULL;", "    size_t again_size = 0;",
         "    bly_assert(%s_encode(msg, &again, &again_size) == 0);" % M,
         "    //  Canonical: the only accepted encoding is the one the encoder writes.",
         "    bly_assert(again_size == size);", "    bly_assert(memcmp(again, data, size) == 0);",
         "    free(again);"]
    if signed:
        o += ["    uint8_t *signing = NULL;", "    size_t signing_size = 0;",
              "    if (%s_signing_bytes(msg, &signing, &signing_size) == 0) {" % M,
              "        bly_assert(signing_size > 0);", "        free(signing);",
              "        (void) %s_verify(msg);" % M, "    }"]
    o += ["    %s_destroy(&msg);" % M, "    return 0;", "}", ""]
    return "\n".join(o)
