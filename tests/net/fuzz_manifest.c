/*  fuzz_manifest - the manifest reader on arbitrary bytes: it must return a manifest
    or "FILE:LINE: reason" text, never crash, read out of bounds or leak. */

#include "bly_manifest.h"
#include "bly_node.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[4096];
    bly_manifest_t *m = bly_manifest_parse((const char *) data, size, "fuzz.zpl", "/tmp",
                                           bly_node_schema(), err, sizeof(err));
    if (m) {
        //  Read back everything a node would.
        (void) bly_manifest_get(m, BLY_MANIFEST_NODE, "name");
        char path[1024];
        if (bly_manifest_get_path(m, BLY_MANIFEST_NODE, "key_file", path, sizeof(path)) != 0)
            path[0] = 0;
        for (size_t i = 0; i < bly_manifest_actor_count(m); i++)
            (void) bly_manifest_get_int(m, (int) i, "expiry_ms", 0);
        bly_manifest_destroy(&m);
    } else if (strncmp(err, "fuzz.zpl:", 9) != 0) {
        __builtin_trap();    //  Every mistake names the file and a line.
    }
    return 0;
}
