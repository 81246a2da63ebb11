/*  =========================================================================
    blyan keygen --out FILE - create a node identity key file

    Writes a new Ed25519 key pair (64 bytes, mode 0600) and prints the node
    id. Refuses to overwrite an existing file.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_identity.h"

#include <stdio.h>

int
bly_cli_keygen(int argc, char **argv)
{
    static const char *const known[] = {"--out=", NULL};
    if (bly_cli_check_options(argc, argv, known) != 0)
        return 2;
    const char *out = bly_cli_opt(argc, argv, "--out");
    if (!out) {
        fprintf(stderr, "usage: blyan keygen --out FILE\n");
        return 2;
    }
    bly_identity_t *identity = bly_identity_new_random();
    if (!identity) {
        fprintf(stderr, "blyan keygen: cannot generate a key pair\n");
        return 1;
    }
    char err[512];
    int rc = bly_identity_save(identity, out, err, sizeof(err));
    if (rc == 0)
        printf("%s\n", bly_identity_id_hex(identity));
    else
        fprintf(stderr, "blyan keygen: %s\n", err);
    bly_identity_destroy(&identity);
    return rc == 0 ? 0 : 1;
}
