/* fuzz_file.c: the input as a file in a private directory, and the check of
 * a refusal (see fuzz_file.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fuzz_file.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[512];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    (void)remove(path);
    return 0;
}

/* Depth first, not following links: what a target wrote, then the directory. */
static void remove_tree(const char *path) { (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void remove_dir(void) { remove_tree(dir); }

const char *fuzz_dir(void)
{
    if (dir[0])
        return dir;
    /* /dev/shm: memory, not disk, for millions of small writes */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/shardtune-fuzz.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_file: mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return dir;
}

const char *fuzz_write(const char *name, const void *data, size_t size)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

void fuzz_remove(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    remove_tree(path);
}

void fuzz_check_error(const char *target, const char *what, const errbuf *e)
{
    if (!e->msg[0] || strchr(e->msg, '\n')) {
        fprintf(stderr, "%s: %s error is not one non-empty line: \"%s\"\n", target, what, e->msg);
        abort();
    }
}
