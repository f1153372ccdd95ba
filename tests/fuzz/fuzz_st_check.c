/* fuzz_st_check.c: see fuzz_st_check.h. */
#include "fuzz_st_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_file.h"

/* Conversions allocate n_elems floats: a cap keeps a run's memory bounded
 * whatever the shapes (the reader already ties n_bytes to the file size). */
enum { CONVERT_CAP_BYTES = 64 << 20 };

static void fail(const char *target, const st_tensor *t, const char *what)
{
    fprintf(stderr, "%s: tensor '%s' (%s): %s\n", target, t->name ? t->name : "(null)",
            t->file_path ? t->file_path : "(null)", what);
    abort();
}

/* The file t lies in, by inode: the reader names a shard as the index does
 * ("./model.safetensors" is the file written as "model.safetensors"). */
static const fuzz_st_file *file_of(const char *target, const st_tensor *t, const fuzz_st_file *files, int n_files)
{
    struct stat a, b;
    if (!t->file_path || stat(t->file_path, &a) != 0)
        fail(target, t, "its file_path is not a file");
    for (int i = 0; i < n_files; i++)
        if (stat(files[i].path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return &files[i];
    fail(target, t, "its file_path is none of the files written");
    return NULL;
}

void fuzz_st_check(const char *target, const safetensors *st, const fuzz_st_file *files, int n_files)
{
    size_t converted = 0;
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const st_tensor *t = safetensors_at(st, i);
        if (!t->name || (unsigned)t->dtype >= ST_N_DTYPES || t->n_dims < 0 || t->n_dims > ST_MAX_DIMS)
            fail(target, t, "no name, an unknown dtype or a bad rank");
        size_t n = 1;
        for (int d = 0; d < t->n_dims; d++)
            n *= (size_t)t->shape[d]; /* cannot wrap: the reader refused shapes that do */
        if (n != t->n_elems || t->n_bytes != n * st_dtype_size(t->dtype))
            fail(target, t, "n_elems or n_bytes disagree with the shape and dtype");
        const fuzz_st_file *f = file_of(target, t, files, n_files);
        uint64_t n_header = 0;
        for (int b = 7; b >= 0; b--)
            n_header = (n_header << 8) | f->bytes[b];
        if (t->file_offset < 8 + n_header || t->file_offset > f->size || t->n_bytes > f->size - t->file_offset)
            fail(target, t, "its bytes are not inside the file's data block");
        if (t->n_bytes && memcmp(t->data, f->bytes + t->file_offset, t->n_bytes) != 0)
            fail(target, t, "data does not point at its bytes in the file");
        if (safetensors_find(st, t->name) != t)
            fail(target, t, "safetensors_find does not give it back");
        errbuf e = {{0}};
        int floating = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        if (!floating) {
            if (st_tensor_to_f32(t, NULL, &e) == 0)
                fail(target, t, "a non-floating dtype converts to F32");
            fuzz_check_error(target, "st_tensor_to_f32", &e);
        } else if (converted + t->n_elems * sizeof(float) <= CONVERT_CAP_BYTES) {
            converted += t->n_elems * sizeof(float);
            float *out = malloc(t->n_elems * sizeof *out + 1); /* + 1: never malloc(0) */
            if (!out || st_tensor_to_f32(t, out, &e) != 0)
                fail(target, t, "cannot convert to F32");
            free(out);
        }
    }
    const char *v = safetensors_metadata(st, "format");
    if (v && strlen(v) > 16384)
        abort(); /* a value longer than the input: not read from it */
}
