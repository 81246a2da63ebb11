/*  bly_fuzz_replay - run fuzz targets over saved inputs without libFuzzer.

    Linked with each target's LLVMFuzzerTestOneInput in the normal build, so the
    committed corpus and every saved crash (tests/fuzz/corpus/<name>/,
    tests/fuzz/crashes/<name>/) replay on every test run, sanitizers or not.
    Usage: replay_<name> DIR_OR_FILE...  (a missing folder counts as empty).
*/

#include "bly_limits.h"
#include "bly_log.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

//  Inputs larger than this are not replayed (libFuzzer's default -max_len is far smaller).
#define S_INPUT_MAX (4u * 1024u * 1024u)
//  Files read from one folder at most.
#define S_FOLDER_FILES_MAX 100000

static int
s_replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *data = malloc(S_INPUT_MAX);
    bly_assert(data);
    size_t size = fread(data, 1, S_INPUT_MAX, file);
    bool too_big = fgetc(file) != EOF;
    fclose(file);
    if (too_big) {
        fprintf(stderr, "replay: %s is over %u bytes\n", path, S_INPUT_MAX);
        free(data);
        return -1;
    }
    //  An exact-size copy, so a read past the end is caught by ASan.
    uint8_t *exact = malloc(size ? size : 1);
    bly_assert(exact);
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int
s_replay_folder(const char *path, size_t *count)
{
    DIR *dir = opendir(path);
    if (!dir)
        return errno == ENOENT ? 0 : -1;
    int rc = 0;
    struct dirent *entry;
    for (size_t i = 0; i < S_FOLDER_FILES_MAX && (entry = readdir(dir)) != NULL; i++) {
        if (entry->d_name[0] == '.')
            continue;
        char file[BLY_PATH_MAX];
        if (snprintf(file, sizeof(file), "%s/%s", path, entry->d_name) >= (int) sizeof(file)) {
            rc = -1;
            continue;
        }
        struct stat st;
        if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (s_replay_file(file) != 0)
            rc = -1;
        (*count)++;
    }
    closedir(dir);
    return rc;
}

int
main(int argc, char *argv[])
{
    size_t count = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) {
            rc |= s_replay_file(argv[i]);
            count++;
        } else if (s_replay_folder(argv[i], &count) != 0) {
            rc = -1;
        }
    }
    printf("replay: %zu inputs, %s\n", count, rc == 0 ? "no failure" : "errors");
    return rc == 0 ? 0 : 1;
}
