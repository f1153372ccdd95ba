/* rank_agree.c: the start-of-run agreement of the ranks (see rank_agree.h). */
#include "rank_agree.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"

enum { HEAD_BYTES = 1 << 20 };

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* name, size and the first MiB of one file */
static uint64_t file_hash(const char *dir, const char *name, unsigned char *buf)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint64_t h = checksum_fnv1a(CHECKSUM_FNV1A_BASIS, name, strlen(name) + 1);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return h;
    size_t n = fread(buf, 1, HEAD_BYTES, fp);
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    fclose(fp);
    h = checksum_fnv1a(h, &size, sizeof size);
    return checksum_fnv1a(h, buf, n);
}

void rank_agree_dir_files(const char *dir, uint64_t out[3])
{
    out[0] = out[1] = out[2] = 0;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return;
    unsigned char *buf = xmalloc(HEAD_BYTES);
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.' || (ent->d_type != DT_REG && ent->d_type != DT_LNK && ent->d_type != DT_UNKNOWN))
            continue;
        int kind = !strcmp(ent->d_name, "config.json")                                             ? 0
                   : ends_with(ent->d_name, ".safetensors") || ends_with(ent->d_name, ".index.json") ? 1
                                                                                                      : 2;
        out[kind] += file_hash(dir, ent->d_name, buf);
    }
    closedir(d);
    free(buf);
}

uint64_t rank_agree_dataset(const dataset *d)
{
    uint64_t h = checksum_fnv1a(CHECKSUM_FNV1A_BASIS, &d->n_rows, sizeof d->n_rows);
    for (size_t i = 0; i < d->n_rows; i++) {
        size_t n_bytes = (size_t)d->len[i] * sizeof(int32_t);
        h = checksum_fnv1a(h, &d->len[i], sizeof d->len[i]);
        h = checksum_fnv1a(h, d->ids[i], n_bytes);
        if (d->labels[i])
            h = checksum_fnv1a(h, d->labels[i], n_bytes);
    }
    return h;
}

int rank_agree_check(comm *cm, const uint64_t *mine, int n, const char *const *what, errbuf *e)
{
    const int world = cm->size[COMM_WORLD];
    uint64_t *all = xmalloc((size_t)world * (size_t)n * sizeof *all);
    cm->all_gather(cm, COMM_WORLD, mine, all, (size_t)n * sizeof *mine, 0);
    int rc = 0;
    for (int r = 1; r < world && rc == 0; r++)
        for (int i = 0; i < n && rc == 0; i++)
            if (all[(size_t)r * (size_t)n + (size_t)i] != all[i])
                rc = err_set(e, "rank %d %s", r, what[i]);
    free(all);
    return rc;
}
