/* fuzz_file.c: see fuzz_file.h.  The directory is removed at exit (the
 * files a target wrote first), so that runs leave nothing behind. */
#include "fuzz_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char path[128];
static const char *written[8]; /* the names ever written, to clean up at exit */
static int n_written;

static void cleanup(void)
{
    for (int i = 0; i < n_written; i++)
        fuzz_remove(written[i]);
    rmdir(dir);
}

const char *fuzz_dir(void)
{
    if (!dir[0]) {
        struct stat st;
        snprintf(dir, sizeof dir, "%s/shardtune-fuzz.XXXXXX", stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz_file: mkdtemp");
            abort();
        }
        atexit(cleanup);
    }
    return dir;
}

static const char *path_of(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    return path;
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t n)
{
    int known = 0;
    for (int i = 0; i < n_written; i++)
        known |= !strcmp(written[i], name);
    if (!known) {
        if (n_written == (int)(sizeof written / sizeof *written)) {
            fprintf(stderr, "fuzz_file: more than %d file names\n", n_written);
            abort();
        }
        written[n_written++] = name;
    }
    FILE *f = fopen(path_of(name), "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror("fuzz_file: writing the input");
        abort();
    }
    return path;
}

void fuzz_remove(const char *name)
{
    unlink(path_of(name));
}
