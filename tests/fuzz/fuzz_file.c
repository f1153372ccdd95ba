/* fuzz_file.c: see fuzz_file.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fuzz_file.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64];

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path) != 0; /* nonzero stops the walk: the caller reports it */
}

void fuzz_remove(const char *path)
{
    if (access(path, F_OK) == 0 && nftw(path, remove_one, 8, FTW_DEPTH | FTW_PHYS) != 0) {
        perror(path);
        abort(); /* a left-over file would change what the next input tests */
    }
}

static void remove_dir(void)
{
    fuzz_remove(dir);
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t n)
{
    static char path[8][128];
    static unsigned next;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/shardtune-fuzz.XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz_file: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    if (!name)
        return dir;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(p);
        abort();
    }
    return p;
}
