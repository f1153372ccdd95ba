/* safetensors.c: the .safetensors reader (mmap, validated before use) and
 * writer (tmp file + rename).
 *
 * A model file comes from outside: every byte of the header is checked
 * before a tensor pointer is handed out, so that a truncated download or a
 * malformed file is one clear error instead of a read past the mapping. */
#include "safetensors.h"

#include "dtype.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor data is used in place, as the file stores it: little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian tensor data in place; a big-endian host needs byte swaps"
#endif

/* The reference implementation (safetensors' MAX_HEADER_SIZE) refuses
 * larger headers; so do we, so that a garbage length cannot make us parse
 * gigabytes of "JSON". */
enum { ST_MAX_HEADER_BYTES = 100000000 };

static const struct {
    const char *name;
    size_t n_bytes;
} st_dtypes[ST_N_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4}, [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},   [ST_I64] = {"I64", 8}, [ST_U64] = {"U64", 8},
    [ST_F64] = {"F64", 8},
};

const char *st_dtype_name(st_dtype d)
{
    return (unsigned)d < ST_N_DTYPES ? st_dtypes[d].name : "?";
}

size_t st_dtype_size(st_dtype d)
{
    return (unsigned)d < ST_N_DTYPES ? st_dtypes[d].n_bytes : 0;
}

int st_dtype_from_name(const char *name)
{
    for (int d = 0; d < ST_N_DTYPES; d++)
        if (strcmp(st_dtypes[d].name, name) == 0)
            return d;
    return -1;
}

/* ------------------------------------------------------------------ reader */

typedef struct st_file {
    char *path;
    unsigned char *map;
    size_t n_bytes;
    size_t n_meta;
    char **meta_keys, **meta_values;
} st_file;

struct safetensors {
    st_file **files; /* pointers, so that st_tensor.file_path stays valid */
    size_t n_files;
    st_tensor *tensors;
    size_t n_tensors, cap_tensors;
    const st_tensor **by_name; /* sorted by name, for safetensors_find */
};

/* "[2, 3]" into buf. */
static const char *shape_str(char *buf, size_t n_buf, int n_dims, const int64_t *shape)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, n_buf, "[");
    for (int i = 0; i < n_dims && used < n_buf; i++)
        used += (size_t)snprintf(buf + used, n_buf - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < n_buf)
        snprintf(buf + used, n_buf - used, "]");
    return buf;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n_dir = strlen(dir), n_name = strlen(name);
    int slash = n_dir > 0 && dir[n_dir - 1] != '/';
    char *p = xmalloc(n_dir + slash + n_name + 1);
    memcpy(p, dir, n_dir);
    if (slash)
        p[n_dir] = '/';
    memcpy(p + n_dir + slash, name, n_name + 1);
    return p;
}

static void file_free(st_file *f)
{
    if (!f)
        return;
    /* A read-only private mapping: unmapping cannot lose data. */
    if (f->map)
        (void)munmap(f->map, f->n_bytes);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    free(f);
}

void safetensors_close(safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_tensors; i++)
        free((char *)st->tensors[i].name);
    free(st->tensors);
    free(st->by_name);
    for (size_t i = 0; i < st->n_files; i++)
        file_free(st->files[i]);
    free(st->files);
    free(st);
}

static int file_map(st_file *f, errbuf *e)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        (void)close(fd); /* read-only descriptor: nothing to lose */
        return err_set(e, "%s: cannot stat: %s", f->path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        (void)close(fd);
        return err_set(e, "%s: not a regular file", f->path);
    }
    f->n_bytes = (size_t)sb.st_size;
    if (f->n_bytes < 8) {
        (void)close(fd);
        return err_set(e, "%s: file is %zu bytes, too short for the 8-byte header length "
                          "(truncated?)", f->path, f->n_bytes);
    }
    void *p = mmap(NULL, f->n_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    (void)close(fd); /* the mapping keeps the file open */
    if (p == MAP_FAILED)
        return err_set(e, "%s: cannot mmap %zu bytes: %s", f->path, f->n_bytes, strerror(err));
    f->map = p;
    return 0;
}

static int metadata_parse(st_file *f, json_t *meta, errbuf *e)
{
    if (json_is_null(meta)) /* the reference writer's "no metadata" */
        return 0;
    if (!json_is_object(meta))
        return err_set(e, "%s: \"__metadata__\" is not an object", f->path);
    size_t n = json_object_size(meta);
    f->meta_keys = xcalloc(n, sizeof *f->meta_keys);
    f->meta_values = xcalloc(n, sizeof *f->meta_values);
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value))
            return err_set(e, "%s: \"__metadata__\" entry '%s' is not a string", f->path, key);
        f->meta_keys[f->n_meta] = xstrdup(key);
        f->meta_values[f->n_meta] = xstrdup(json_string_value(value));
        f->n_meta++;
    }
    return 0;
}

/* dtype, shape, data_offsets of one header entry; begin/end relative to the
 * data block.  Sizes are checked against overflow before they are used. */
static int tensor_parse(const st_file *f, const char *name, json_t *entry, st_tensor *t,
                        size_t *begin, size_t *end, errbuf *e)
{
    const char *path = f->path;
    if (!json_is_object(entry))
        return err_set(e, "%s: tensor '%s': entry is not an object", path, name);

    json_t *dtype = json_object_get(entry, "dtype");
    if (!dtype)
        return err_set(e, "%s: tensor '%s': \"dtype\" is missing", path, name);
    if (!json_is_string(dtype))
        return err_set(e, "%s: tensor '%s': \"dtype\" is not a string", path, name);
    int d = st_dtype_from_name(json_string_value(dtype));
    if (d < 0)
        return err_set(e, "%s: tensor '%s': unknown dtype '%s'", path, name,
                       json_string_value(dtype));
    t->dtype = (st_dtype)d;

    json_t *shape = json_object_get(entry, "shape");
    if (!shape)
        return err_set(e, "%s: tensor '%s': \"shape\" is missing", path, name);
    if (!json_is_array(shape))
        return err_set(e, "%s: tensor '%s': \"shape\" is not an array", path, name);
    size_t n_dims = json_array_size(shape);
    if (n_dims > ST_MAX_DIMS)
        return err_set(e, "%s: tensor '%s': shape has %zu dimensions, more than %d", path, name,
                       n_dims, ST_MAX_DIMS);
    t->n_dims = (int)n_dims;
    size_t n_elems = 1;
    int too_large = 0;
    for (size_t i = 0; i < n_dims; i++) {
        json_t *dim = json_array_get(shape, i);
        if (!json_is_integer(dim) || json_integer_value(dim) < 0)
            return err_set(e, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                           name, i);
        t->shape[i] = (int64_t)json_integer_value(dim);
        uint64_t n = (uint64_t)t->shape[i];
        if (n != 0 && n_elems > SIZE_MAX / n)
            too_large = 1;
        else
            n_elems *= (size_t)n;
    }
    char sbuf[256];
    shape_str(sbuf, sizeof sbuf, t->n_dims, t->shape);
    if (too_large || n_elems > SIZE_MAX / st_dtype_size(t->dtype))
        return err_set(e, "%s: tensor '%s': shape %s is too large", path, name, sbuf);
    t->n_elems = n_elems;
    t->n_bytes = n_elems * st_dtype_size(t->dtype);

    json_t *offsets = json_object_get(entry, "data_offsets");
    if (!offsets)
        return err_set(e, "%s: tensor '%s': \"data_offsets\" is missing", path, name);
    json_t *jb = json_array_get(offsets, 0), *je = json_array_get(offsets, 1);
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 || !json_is_integer(jb) ||
        !json_is_integer(je) || json_integer_value(jb) < 0 || json_integer_value(je) < 0)
        return err_set(e, "%s: tensor '%s': \"data_offsets\" is not [begin, end] with "
                          "non-negative integers", path, name);
    json_int_t b = json_integer_value(jb), en = json_integer_value(je);
    if (b > en)
        return err_set(e, "%s: tensor '%s': data_offsets [%lld, %lld] begin after they end",
                       path, name, (long long)b, (long long)en);
    *begin = (size_t)b;
    *end = (size_t)en;
    if (*end - *begin != t->n_bytes)
        return err_set(e, "%s: tensor '%s': data_offsets [%zu, %zu] hold %zu bytes but %s %s "
                          "needs %zu", path, name, *begin, *end, *end - *begin,
                       st_dtype_name(t->dtype), sbuf, t->n_bytes);
    return 0;
}

typedef struct span {
    size_t begin, end;
    const char *name;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile the data block: sorted by offset, each begins where
 * the previous one ended, the first at 0 and the last at the block's end.
 * Anything else is a corrupt or hand-edited file (or hides extra bytes). */
static int spans_check(const st_file *f, span *spans, size_t n_spans, size_t n_data, errbuf *e)
{
    qsort(spans, n_spans, sizeof *spans, span_cmp);
    size_t expected = 0;
    for (size_t i = 0; i < n_spans; i++) {
        const span *s = &spans[i];
        if (s->begin < expected)
            return err_set(e, "%s: tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s' "
                              "[%zu, %zu]", f->path, s->name, s->begin, s->end,
                           spans[i - 1].name, spans[i - 1].begin, spans[i - 1].end);
        if (s->begin > expected) {
            if (i == 0)
                return err_set(e, "%s: tensor '%s': data_offsets [%zu, %zu] leave a gap of %zu "
                                  "bytes at the start of the data block", f->path, s->name,
                               s->begin, s->end, s->begin);
            return err_set(e, "%s: tensor '%s': data_offsets [%zu, %zu] leave a gap of %zu "
                              "bytes after tensor '%s'", f->path, s->name, s->begin, s->end,
                           s->begin - expected, spans[i - 1].name);
        }
        expected = s->end;
    }
    if (expected < n_data)
        return err_set(e, "%s: data block has %zu bytes but the tensors cover only %zu "
                          "(%zu trailing bytes)", f->path, n_data, expected, n_data - expected);
    return 0;
}

static void tensors_reserve(safetensors *st, size_t n_more)
{
    if (st->n_tensors + n_more <= st->cap_tensors)
        return;
    size_t cap = st->cap_tensors ? st->cap_tensors : 16;
    while (cap < st->n_tensors + n_more)
        cap *= 2;
    st_tensor *p = realloc(st->tensors, cap * sizeof *p);
    if (!p)
        die(EXIT_FAILURE_RUN, "%s:%d: out of memory for %zu tensors", __FILE__, __LINE__, cap);
    st->tensors = p;
    st->cap_tensors = cap;
}

static int offset_cmp(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->file_offset != y->file_offset)
        return x->file_offset < y->file_offset ? -1 : 1;
    return strcmp(x->name, y->name); /* empty tensors share an offset */
}

/* Maps PATH, validates its header and appends its tensors to st. */
static int file_load(safetensors *st, const char *path, errbuf *e)
{
    st_file *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(path);
    st_file **files = realloc(st->files, (st->n_files + 1) * sizeof *files);
    if (!files) {
        file_free(f);
        die(EXIT_FAILURE_RUN, "%s:%d: out of memory", __FILE__, __LINE__);
    }
    st->files = files;
    st->files[st->n_files++] = f; /* owned by st from here on */
    if (file_map(f, e) != 0)
        return -1;

    uint64_t n_header = 0;
    for (int i = 7; i >= 0; i--)
        n_header = (n_header << 8) | f->map[i];
    if (n_header > ST_MAX_HEADER_BYTES)
        return err_set(e, "%s: header length %llu is over the %d-byte limit (not a safetensors "
                          "file?)", path, (unsigned long long)n_header, ST_MAX_HEADER_BYTES);
    if (n_header > f->n_bytes - 8)
        return err_set(e, "%s: header length %llu runs past the end of the file (%zu bytes; "
                          "truncated?)", path, (unsigned long long)n_header, f->n_bytes);
    size_t data_start = 8 + (size_t)n_header;
    size_t n_data = f->n_bytes - data_start;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->map + 8, (size_t)n_header, JSON_REJECT_DUPLICATES,
                              &jerr);
    if (!root)
        return err_set(e, "%s: header is not valid JSON: %s (at byte %d of the header)", path,
                       jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, "%s: header is not a JSON object", path);
    }

    size_t n_entries = json_object_size(root);
    size_t first = st->n_tensors;
    span *spans = xcalloc(n_entries, sizeof *spans);
    size_t n_spans = 0;
    tensors_reserve(st, n_entries);
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = metadata_parse(f, value, e);
        } else {
            st_tensor *t = &st->tensors[st->n_tensors];
            memset(t, 0, sizeof *t);
            size_t begin = 0, end = 0;
            rc = tensor_parse(f, key, value, t, &begin, &end, e);
            if (rc == 0 && end > n_data)
                rc = err_set(e, "%s: tensor '%s': data_offsets [%zu, %zu] run past the end of "
                                "the %zu-byte data block (truncated?)", path, key, begin, end,
                             n_data);
            if (rc == 0) {
                t->name = xstrdup(key);
                t->data = f->map + data_start + begin;
                t->file_path = f->path;
                t->file_offset = data_start + begin;
                spans[n_spans++] = (span){begin, end, t->name};
                st->n_tensors++;
            }
        }
        if (rc != 0)
            break;
    }
    if (rc == 0)
        rc = spans_check(f, spans, n_spans, n_data, e);
    /* safetensors_at() walks a file in data order: reading a model front to
     * back is then sequential I/O whatever order the header lists. */
    if (rc == 0 && st->n_tensors > first)
        qsort(st->tensors + first, st->n_tensors - first, sizeof *st->tensors, offset_cmp);
    free(spans);
    json_decref(root);
    return rc;
}

static int by_name_cmp(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Sorted name index; a name in two files (of a sharded set) is ambiguous. */
static int index_build(safetensors *st, errbuf *e)
{
    st->by_name = xcalloc(st->n_tensors, sizeof *st->by_name);
    for (size_t i = 0; i < st->n_tensors; i++)
        st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, st->n_tensors, sizeof *st->by_name, by_name_cmp);
    for (size_t i = 1; i < st->n_tensors; i++)
        if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0)
            return err_set(e, "tensor '%s' is in both %s and %s", st->by_name[i]->name,
                           st->by_name[i - 1]->file_path, st->by_name[i]->file_path);
    return 0;
}

safetensors *safetensors_open(const char *path, errbuf *e)
{
    safetensors *st = xcalloc(1, sizeof *st);
    if (file_load(st, path, e) != 0 || index_build(st, e) != 0) {
        safetensors_close(st);
        return NULL;
    }
    return st;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard name is a file next to the index: never a path that leaves the
 * model directory. */
static int shard_name_ok(const char *name)
{
    if (name[0] == '\0' || name[0] == '/')
        return 0;
    for (const char *p = name; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += n + (slash != NULL);
    }
    return 1;
}

static int index_open(safetensors *st, const char *dir, const char *index_path, errbuf *e)
{
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 1) /* open or read failure, not a syntax error */
            return err_set(e, "%s: %s", index_path, jerr.text);
        return err_set(e, "%s: not valid JSON: %s (line %d, column %d)", index_path, jerr.text,
                       jerr.line, jerr.column);
    }
    int rc = 0;
    json_t *map = json_object_get(root, "weight_map");
    size_t n_entries = json_object_size(map);
    const char **shards = xcalloc(n_entries, sizeof *shards);
    size_t n_shards = 0;
    const char *name;
    json_t *value;
    if (!json_is_object(root))
        rc = err_set(e, "%s: not a JSON object", index_path);
    else if (!json_is_object(map))
        rc = err_set(e, "%s: \"weight_map\" is missing or not an object", index_path);
    else if (n_entries == 0)
        rc = err_set(e, "%s: \"weight_map\" lists no tensors", index_path);
    if (rc == 0) {
        json_object_foreach(map, name, value) {
            if (!json_is_string(value)) {
                rc = err_set(e, "%s: weight_map: tensor '%s': shard is not a string", index_path,
                             name);
                break;
            }
            if (!shard_name_ok(json_string_value(value))) {
                rc = err_set(e, "%s: weight_map: tensor '%s': shard '%s' is not a file in the "
                                "model directory", index_path, name, json_string_value(value));
                break;
            }
            shards[n_shards++] = json_string_value(value);
        }
    }
    if (rc == 0) {
        /* Open each distinct shard once, in name order (model-00001-of-... first). */
        qsort(shards, n_shards, sizeof *shards, str_cmp);
        for (size_t i = 0; i < n_shards && rc == 0; i++) {
            if (i > 0 && strcmp(shards[i], shards[i - 1]) == 0)
                continue;
            char *path = path_join(dir, shards[i]);
            rc = file_load(st, path, e);
            free(path);
        }
    }
    if (rc == 0)
        rc = index_build(st, e);
    if (rc == 0) {
        json_object_foreach(map, name, value) {
            const char *shard = json_string_value(value);
            const st_tensor *t = safetensors_find(st, name);
            char *path = path_join(dir, shard);
            if (!t)
                rc = err_set(e, "%s: tensor '%s' is listed in shard '%s' but not found there",
                             index_path, name, shard);
            else if (strcmp(t->file_path, path) != 0)
                rc = err_set(e, "%s: tensor '%s' is listed in shard '%s' but found in %s",
                             index_path, name, shard, t->file_path);
            free(path);
            if (rc != 0)
                break;
        }
    }
    free(shards);
    json_decref(root);
    return rc;
}

safetensors *safetensors_open_dir(const char *dir, errbuf *e)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        err_set(e, "%s: cannot open model directory: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(sb.st_mode)) {
        err_set(e, "%s: not a directory", dir);
        return NULL;
    }
    char *index_path = path_join(dir, "model.safetensors.index.json");
    char *single_path = path_join(dir, "model.safetensors");
    safetensors *st = NULL;
    if (stat(index_path, &sb) == 0) {
        st = xcalloc(1, sizeof *st);
        if (index_open(st, dir, index_path, e) != 0) {
            safetensors_close(st);
            st = NULL;
        }
    } else if (errno != ENOENT) {
        err_set(e, "%s: cannot stat: %s", index_path, strerror(errno));
    } else if (stat(single_path, &sb) == 0) {
        st = safetensors_open(single_path, e);
    } else if (errno != ENOENT) {
        err_set(e, "%s: cannot stat: %s", single_path, strerror(errno));
    } else {
        err_set(e, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(index_path);
    free(single_path);
    return st;
}

size_t safetensors_count(const safetensors *st) { return st->n_tensors; }

const st_tensor *safetensors_at(const safetensors *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const st_tensor *safetensors_find(const safetensors *st, const char *name)
{
    st_tensor key = {.name = name};
    const st_tensor *pkey = &key;
    const st_tensor **hit = bsearch(&pkey, st->by_name, st->n_tensors, sizeof *st->by_name,
                                    by_name_cmp);
    return hit ? *hit : NULL;
}

const char *safetensors_metadata(const safetensors *st, const char *key)
{
    if (st->n_files == 0)
        return NULL;
    const st_file *f = st->files[0];
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------- conversion */

int st_tensor_to_f32(const st_tensor *t, float *out, errbuf *e)
{
    switch (t->dtype) {
    case ST_F32:
        storage_to_f32(DT_F32, t->data, out, t->n_elems);
        return 0;
    case ST_F16:
        storage_to_f32(DT_F16, t->data, out, t->n_elems);
        return 0;
    case ST_BF16:
        storage_to_f32(DT_BF16, t->data, out, t->n_elems);
        return 0;
    default:
        return err_set(e, "%s: tensor '%s': dtype %s cannot be converted to F32 (only F32, F16 "
                          "and BF16 can)", t->file_path ? t->file_path : "safetensors", t->name,
                       st_dtype_name(t->dtype));
    }
}

int st_tensor_check_shape(const st_tensor *t, int n_dims, const int64_t *shape, errbuf *e)
{
    int same = t->n_dims == n_dims;
    for (int i = 0; same && i < n_dims; i++)
        same = t->shape[i] == shape[i];
    if (same)
        return 0;
    char want[256], have[256];
    shape_str(want, sizeof want, n_dims, shape);
    shape_str(have, sizeof have, t->n_dims, t->shape);
    return err_set(e, "%s: tensor '%s': expected shape %s, found %s",
                   t->file_path ? t->file_path : "safetensors", t->name, want, have);
}

/* ------------------------------------------------------------------ writer */

typedef struct st_entry {
    char *name;
    st_dtype dtype;
    int n_dims; /* as given; checked by st_writer_write */
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} st_entry;

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct st_writer {
    st_entry *entries;
    size_t n_entries, cap_entries;
    st_meta *meta;
    size_t n_meta, cap_meta;
};

st_writer *st_writer_new(void) { return xcalloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_entries; i++)
        free(w->entries[i].name);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->entries);
    free(w->meta);
    free(w);
}

static void *grow(void *p, size_t *cap, size_t n_needed, size_t elem_size)
{
    if (n_needed <= *cap)
        return p;
    size_t cap_new = *cap ? 2 * *cap : 16;
    while (cap_new < n_needed)
        cap_new *= 2;
    void *q = realloc(p, cap_new * elem_size);
    if (!q)
        die(EXIT_FAILURE_RUN, "%s:%d: out of memory for %zu entries", __FILE__, __LINE__, cap_new);
    *cap = cap_new;
    return q;
}

/* Nothing is checked here (the function cannot fail): st_writer_write
 * refuses bad entries, duplicates included, naming the output file. */
void st_writer_add(st_writer *w, const char *name, st_dtype dtype, int n_dims,
                   const int64_t *shape, const void *data)
{
    w->entries = grow(w->entries, &w->cap_entries, w->n_entries + 1, sizeof *w->entries);
    st_entry *en = &w->entries[w->n_entries++];
    memset(en, 0, sizeof *en);
    en->name = xstrdup(name);
    en->dtype = dtype;
    en->n_dims = n_dims;
    for (int i = 0; i < n_dims && i < ST_MAX_DIMS; i++)
        en->shape[i] = shape[i];
    en->data = data;
}

/* Setting a key again replaces its value. */
void st_writer_metadata(st_writer *w, const char *key, const char *value)
{
    for (size_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = xstrdup(value);
            return;
        }
    }
    w->meta = grow(w->meta, &w->cap_meta, w->n_meta + 1, sizeof *w->meta);
    w->meta[w->n_meta].key = xstrdup(key);
    w->meta[w->n_meta].value = xstrdup(value);
    w->n_meta++;
}

static int entry_cmp(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    return strcmp(x->name, y->name);
}

/* Checks every entry and fills n_bytes[i]: the file must be one the reader
 * (ours and the reference) accepts. */
static int writer_check(const st_writer *w, const char *path, size_t *n_bytes, errbuf *e)
{
    size_t n_total = 0;
    for (size_t i = 0; i < w->n_entries; i++) {
        const st_entry *en = &w->entries[i];
        if (strcmp(en->name, "__metadata__") == 0)
            return err_set(e, "%s: tensor name '__metadata__' is reserved", path);
        if ((unsigned)en->dtype >= ST_N_DTYPES)
            return err_set(e, "%s: tensor '%s': invalid dtype %d", path, en->name, (int)en->dtype);
        if (en->n_dims < 0 || en->n_dims > ST_MAX_DIMS)
            return err_set(e, "%s: tensor '%s': %d dimensions (0 to %d allowed)", path, en->name,
                           en->n_dims, ST_MAX_DIMS);
        size_t n = st_dtype_size(en->dtype);
        for (int d = 0; d < en->n_dims; d++) {
            if (en->shape[d] < 0)
                return err_set(e, "%s: tensor '%s': negative shape[%d] = %lld", path, en->name,
                               d, (long long)en->shape[d]);
            if (en->shape[d] != 0 && n > SIZE_MAX / (uint64_t)en->shape[d])
                return err_set(e, "%s: tensor '%s': shape is too large", path, en->name);
            n *= (size_t)en->shape[d];
        }
        if (n > 0 && !en->data)
            return err_set(e, "%s: tensor '%s': no data for %zu bytes", path, en->name, n);
        if (n > (size_t)LLONG_MAX - n_total)
            return err_set(e, "%s: tensors add up to more than %lld bytes", path, LLONG_MAX);
        n_bytes[i] = n;
        n_total += n;
    }
    const st_entry **sorted = xcalloc(w->n_entries, sizeof *sorted);
    for (size_t i = 0; i < w->n_entries; i++)
        sorted[i] = &w->entries[i];
    qsort(sorted, w->n_entries, sizeof *sorted, entry_cmp);
    int rc = 0;
    for (size_t i = 1; i < w->n_entries && rc == 0; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
            rc = err_set(e, "%s: duplicate tensor name '%s' added to the writer", path,
                         sorted[i]->name);
    free(sorted);
    return rc;
}

/* json_object_set_new that reports failure (allocation, or a key that is
 * not UTF-8); the value is consumed either way. */
static int jset(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

static int japp(json_t *arr, json_t *value)
{
    return value ? json_array_append_new(arr, value) : -1;
}

/* The header text, padded with spaces so that the data block starts at a
 * multiple of 8 (aligned loads for every dtype after mmap). */
static char *header_build(const st_writer *w, const size_t *n_bytes, const char *path,
                          size_t *n_header, errbuf *e)
{
    json_t *root = json_object();
    if (!root) {
        err_set(e, "%s: out of memory building the header", path);
        return NULL;
    }
    int rc = 0;
    if (w->n_meta > 0) {
        /* First, as the reference writer puts it. */
        json_t *meta = json_object();
        rc = jset(root, "__metadata__", meta);
        if (rc != 0)
            err_set(e, "%s: out of memory building the header", path);
        for (size_t i = 0; i < w->n_meta && rc == 0; i++) {
            rc = jset(meta, w->meta[i].key, json_string(w->meta[i].value));
            if (rc != 0)
                err_set(e, "%s: metadata '%s': key or value is not valid UTF-8 (or out of memory)",
                        path, w->meta[i].key);
        }
    }
    size_t offset = 0;
    for (size_t i = 0; i < w->n_entries && rc == 0; i++) {
        const st_entry *en = &w->entries[i];
        json_t *obj = json_object(), *shape = json_array(), *offs = json_array();
        rc = jset(obj, "dtype", json_string(st_dtype_name(en->dtype)));
        for (int d = 0; d < en->n_dims && rc == 0; d++)
            rc = japp(shape, json_integer((json_int_t)en->shape[d]));
        rc = rc ? rc : japp(offs, json_integer((json_int_t)offset));
        rc = rc ? rc : japp(offs, json_integer((json_int_t)(offset + n_bytes[i])));
        if (rc == 0)
            rc = jset(obj, "shape", shape);
        else
            json_decref(shape);
        if (rc == 0)
            rc = jset(obj, "data_offsets", offs);
        else
            json_decref(offs);
        if (rc == 0)
            rc = jset(root, en->name, obj);
        else
            json_decref(obj);
        if (rc != 0)
            err_set(e, "%s: tensor '%s': cannot add to the header (name not valid UTF-8, or out "
                       "of memory)", path, en->name);
        offset += n_bytes[i];
    }
    char *text = NULL;
    if (rc == 0) {
        text = json_dumps(root, JSON_COMPACT);
        if (!text)
            err_set(e, "%s: out of memory writing the header", path);
    }
    json_decref(root);
    if (!text)
        return NULL;
    size_t n_text = strlen(text);
    size_t n_pad = (8 - (8 + n_text) % 8) % 8;
    char *padded = xmalloc(n_text + n_pad);
    memcpy(padded, text, n_text);
    memset(padded + n_text, ' ', n_pad);
    free(text);
    *n_header = n_text + n_pad;
    return padded;
}

static int write_all(int fd, const void *buf, size_t n_bytes)
{
    const unsigned char *p = buf;
    while (n_bytes > 0) {
        /* Linux writes at most ~2 GiB per call: loop over large tensors. */
        size_t n_chunk = n_bytes < ((size_t)1 << 30) ? n_bytes : ((size_t)1 << 30);
        ssize_t n = write(fd, p, n_chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        n_bytes -= (size_t)n;
    }
    return 0;
}

/* Makes the rename itself durable: a crash after we return must not bring
 * back the old file (or none). */
static int dir_sync(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int err = errno;
    (void)close(fd); /* read-only descriptor */
    errno = err;
    return rc;
}

int st_writer_write(st_writer *w, const char *path, errbuf *e)
{
    size_t *n_bytes = xcalloc(w->n_entries, sizeof *n_bytes);
    size_t n_header = 0;
    char *header = NULL;
    if (writer_check(w, path, n_bytes, e) != 0 ||
        !(header = header_build(w, n_bytes, path, &n_header, e))) {
        free(n_bytes);
        return -1;
    }

    size_t n_path = strlen(path);
    char *tmp = xmalloc(n_path + 5);
    memcpy(tmp, path, n_path);
    memcpy(tmp + n_path, ".tmp", 5);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++)
        len_le[i] = (unsigned char)((uint64_t)n_header >> (8 * i));
    if (write_all(fd, len_le, 8) != 0 || write_all(fd, header, n_header) != 0) {
        rc = err_set(e, "%s: cannot write the header: %s", tmp, strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < w->n_entries; i++) {
        if (write_all(fd, w->entries[i].data, n_bytes[i]) != 0) {
            rc = err_set(e, "%s: cannot write tensor '%s': %s", tmp, w->entries[i].name,
                         strerror(errno));
            goto fail;
        }
    }
    if (fsync(fd) != 0) {
        rc = err_set(e, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail;
    }
    int rc_close = close(fd);
    fd = -1;
    if (rc_close != 0) {
        rc = err_set(e, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        rc = err_set(e, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (dir_sync(path) != 0)
        rc = err_set(e, "%s: written, but fsync of its directory failed: %s", path,
                     strerror(errno));
    goto out;
fail:
    if (fd >= 0)
        (void)close(fd); /* already failing: the tmp file is removed below */
    (void)unlink(tmp);   /* best effort: the error above is the one to report */
out:
    free(tmp);
    free(header);
    free(n_bytes);
    return rc;
}
