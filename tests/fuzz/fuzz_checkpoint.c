/* fuzz_checkpoint.c: libFuzzer target for shardtune's own checkpoint
 * validation above HDF5 (io/checkpoint.c: ckpt_load, ckpt_read_config): the
 * root attributes (format, version, layout, steps, seed, world size,
 * base-model fingerprint, config), the datasets each layout must hold,
 * their shapes and their checksums.
 *
 * HDF5's own parser of the file's bytes is not under test here (it is
 * HDF5's).  Each input describes a checkpoint of a small fixed model (two
 * units with trainable tensors, one without): the layout, and for every
 * attribute and dataset whether it is written right, left out, given
 * another value, another type or shape, another checksum or none, or
 * stored as float64.  The target writes that file with the HDF5 API in a
 * private directory, loads it through MPI-IO as training does, and checks:
 * a refusal is one non-empty line; a file written entirely right loads; a
 * file that loads had every part right (a wrong shape, checksum, type or
 * value never passes), its meta holds the attributes written and in their
 * ranges, and the shards and AdamW moments hold exactly the data written,
 * their padding zero.  ckpt_read_config gives back the config written. */
#include <hdf5.h>
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "checksum.h"
#include "fuzz_file.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", what);
        abort();
    }
}

/* ---- the fixed model, sharded over one rank ---------------------- */

enum { N_UNITS = 3, PAD = 3 };
static param_entry unit0[3], unit1[1], unit2[1];
static model the_model;
static model_unit units[N_UNITS];
static comm the_comm;
static backend the_backend;
static fsdp f;
static optimizer o;
static size_t shard_elems[N_UNITS];
static float *params[N_UNITS], *m1[N_UNITS], *m2[N_UNITS];

static void be_zero(backend *be, void *p, size_t n) { memset(p, 0, n); }
static void be_copy(backend *be, void *dst, const void *src, size_t n) { memcpy(dst, src, n); }

static param_entry entry(const char *name, int n_dims, int64_t rows, int64_t cols, size_t offset, int trainable)
{
    param_entry p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.n_dims = n_dims, p.shape[0] = rows, p.shape[1] = cols;
    p.n_elems = (size_t)(rows * (n_dims == 2 ? cols : 1));
    p.offset = offset, p.trainable = trainable;
    return p;
}

/* LeakSanitizer's hook: what Open MPI allocates in MPI_Init (hwloc's
 * topology, its components' tables) lives until exit and is not freed by
 * it; as in tests/sanitize/lsan.supp, these are not our leaks.  One of its
 * strings (asprintf) has a stack that the fast unwinder cuts at vasprintf:
 * the code under test calls no asprintf, so that entry hides none of ours.
 * A leak of the checkpoint code, per input or at exit, is still reported. */
const char *__lsan_default_suppressions(void);
/* Open MPI's MPI-IO selects and unloads components per file opened, and
 * strings they allocate then have no module to name: the fast unwinder
 * stops at them, so no entry above can match and such a leak fails the
 * run now and then.  The full unwinder walks on into libmpi, which the
 * entries name (a quarter of the executions a second; our own leaks are
 * still reported with their whole stack). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:mca_\nleak:libhwloc.so\n"
           "leak:libevent\nleak:libpmix.so\nleak:__vasprintf_internal\n";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    MPI_Init(NULL, NULL);
    unit0[0] = entry("layers.0.q_proj.lora_A.weight", 2, 2, 3, 0, 1);
    unit0[1] = entry("layers.0.q_proj.weight", 2, 4, 4, 0, 0); /* frozen: never in a checkpoint */
    unit0[2] = entry("layers.0.q_proj.lora_B.weight", 2, 3, 2, 6, 1);
    unit1[0] = entry("layers.1.q_proj.lora_magnitude_vector", 1, 4, 0, 0, 1);
    unit2[0] = entry("norm.weight", 1, 4, 0, 0, 0);
    units[0] = (model_unit){.n_train_elems = 12, .n_params = 3, .params = unit0};
    units[1] = (model_unit){.n_train_elems = 4, .n_params = 1, .params = unit1};
    units[2] = (model_unit){.n_train_elems = 0, .n_params = 1, .params = unit2};
    the_model.n_units = N_UNITS;
    the_model.units = units;
    the_comm.size[COMM_WORLD] = the_comm.size[COMM_SHARD] = the_comm.size[COMM_REPLICA] = 1;
    the_backend.zero = be_zero;
    the_backend.copy_to_device = be_copy;
    the_backend.copy_to_host = be_copy;
    for (int u = 0; u < N_UNITS; u++) {
        shard_elems[u] = units[u].n_train_elems ? units[u].n_train_elems + PAD : 0; /* padded, as fsdp pads */
        params[u] = xcalloc(shard_elems[u] + 1, sizeof(float));
        m1[u] = xcalloc(shard_elems[u] + 1, sizeof(float));
        m2[u] = xcalloc(shard_elems[u] + 1, sizeof(float));
    }
    f.m = &the_model, f.be = &the_backend, f.cm = &the_comm;
    f.n_ranges = N_UNITS, f.shard_elems = shard_elems, f.param_shards = params;
    f.fingerprint = 0x5eed5eed12345678ull;
    o.n_ranges = N_UNITS, o.n_elems = shard_elems, o.m = m1, o.v = m2;
    return 0;
}

/* ---- the input, read as choices ------------------------------------ */

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static uint8_t byte(input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint64_t u64(input *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | byte(in);
    return v;
}

/* ---- writing the described file ------------------------------------ */

enum mode { RIGHT, MISSING, OTHER_VALUE, OTHER_TYPE, N_MODES };

static void put_attr(hid_t obj, const char *name, hid_t type, const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    check(a >= 0 && H5Awrite(a, type, value) >= 0, "writing an attribute");
    H5Aclose(a);
    H5Sclose(space);
}

static void put_string(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    put_attr(obj, name, t, value);
    H5Tclose(t);
}

/* A string attribute: RIGHT writes `right`; OTHER_VALUE a string of the
 * input; OTHER_TYPE an int64.  Returns 1 when written right. */
static int string_attr(hid_t file, input *in, const char *name, const char *right, char *written, size_t cap)
{
    int mode = byte(in) % N_MODES;
    char text[48];
    int64_t number = (int64_t)u64(in);
    switch (mode) {
    case RIGHT:
        put_string(file, name, right);
        if (written)
            snprintf(written, cap, "%s", right);
        return 1;
    case OTHER_VALUE: {
        size_t len = byte(in) % (sizeof text - 1);
        for (size_t i = 0; i < len; i++)
            text[i] = (char)(byte(in) | 1); /* no NUL inside */
        text[len] = '\0';
        put_string(file, name, text);
        if (written)
            snprintf(written, cap, "%s", text);
        return strcmp(text, right) == 0;
    }
    case OTHER_TYPE:
        put_attr(file, name, H5T_NATIVE_INT64, &number);
        return 0;
    }
    return 0;
}

static const char *const int_names[6] = {"global_step", "epoch", "steps_per_epoch", "adam_step", "seed", "world_size"};
static const char *const kinds_sharded[3] = {"param", "exp_avg", "exp_avg_sq"};
static const char *const kinds_full[3] = {"adapter", "exp_avg", "exp_avg_sq"};

typedef struct dataset_plan {
    char name[160];
    int unit, kind;
    size_t offset, n;       /* where its elements live in the unit's shard */
    int n_dims;
    hsize_t dims[2];
    int right;              /* written with its shape, data and checksum */
    float data[16];
} dataset_plan;

/* The datasets a layout must hold (as io/checkpoint.c names them). */
static int expected(int full, dataset_plan *out)
{
    int n = 0;
    for (int kind = 0; kind < 3; kind++)
        for (int u = 0; u < N_UNITS; u++) {
            if (!units[u].n_train_elems)
                continue;
            if (!full) {
                dataset_plan *d = &out[n++];
                snprintf(d->name, sizeof d->name, "/units/%03d/%s", u, kinds_sharded[kind]);
                d->unit = u, d->kind = kind, d->offset = 0, d->n = units[u].n_train_elems;
                d->n_dims = 1, d->dims[0] = units[u].n_train_elems;
                continue;
            }
            for (int i = 0; i < units[u].n_params; i++) {
                const param_entry *p = &units[u].params[i];
                if (!p->trainable)
                    continue;
                dataset_plan *d = &out[n++];
                snprintf(d->name, sizeof d->name, "/%s/%s", kinds_full[kind], p->name);
                d->unit = u, d->kind = kind, d->offset = p->offset, d->n = p->n_elems;
                d->n_dims = p->n_dims, d->dims[0] = (hsize_t)p->shape[0], d->dims[1] = (hsize_t)p->shape[1];
            }
        }
    return n;
}

static void groups_for(hid_t file, const char *path)
{
    char buf[200];
    for (const char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        memcpy(buf, path, (size_t)(p - path));
        buf[p - path] = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0)
            H5Gclose(H5Gcreate2(file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    }
}

enum { D_RIGHT, D_MISSING, D_SHAPE, D_CHECKSUM, D_NO_CHECKSUM, D_FLOAT64, N_DMODES };

static void write_dataset(hid_t file, input *in, dataset_plan *d)
{
    int mode = byte(in) % N_DMODES;
    for (size_t i = 0; i < d->n; i++) {
        uint32_t bits = (uint32_t)byte(in) << 24 | (uint32_t)byte(in) << 16; /* any float, NaN and inf too */
        memcpy(&d->data[i], &bits, sizeof bits);
    }
    d->right = mode == D_RIGHT || mode == D_FLOAT64;
    if (mode == D_MISSING)
        return;
    int n_dims = d->n_dims;
    hsize_t dims[2] = {d->dims[0], d->dims[1]};
    if (mode == D_SHAPE) {
        n_dims = 1 + byte(in) % 2;
        dims[0] = byte(in) % 20, dims[1] = byte(in) % 20;
        d->right = n_dims == d->n_dims && dims[0] == d->dims[0] && (n_dims == 1 || dims[1] == d->dims[1]);
    }
    hsize_t count = dims[0] * (n_dims == 2 ? dims[1] : 1);
    float *buf = xcalloc(count + 1, sizeof(float));
    memcpy(buf, d->data, (count < d->n ? count : d->n) * sizeof(float));
    groups_for(file, d->name);
    hid_t space = H5Screate_simple(n_dims, dims, NULL);
    hid_t type = mode == D_FLOAT64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    hid_t ds = H5Dcreate2(file, d->name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    check(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, "writing a dataset");
    uint64_t sum = checksum_f32(checksum_name(d->name), 0, buf, count);
    if (mode == D_CHECKSUM) {
        uint64_t other = u64(in);
        d->right = other == sum && d->right;
        sum = other;
    }
    if (mode != D_NO_CHECKSUM)
        put_attr(ds, "checksum", H5T_NATIVE_UINT64, &sum);
    free(buf);
    H5Dclose(ds);
    H5Sclose(space);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const int full = byte(&in) & 1;
    const char *path = fuzz_write("checkpoint-1.h5", "", 0);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    check(file >= 0, "creating the file");
    int all_right = 1;
    all_right &= string_attr(file, &in, "format", "shardtune-checkpoint", NULL, 0);
    /* format_version, the six counts and the fingerprint: int64/uint64 */
    int64_t ints[8];
    int ints_right = 1;
    for (int i = 0; i < 8; i++) {
        const char *name = i == 0 ? "format_version" : i == 7 ? "base_model_fingerprint" : int_names[i - 1];
        int mode = byte(&in) % N_MODES;
        uint64_t value = u64(&in);
        if (mode == RIGHT) /* a right value: the version, the fingerprint, a count in range */
            value = i == 0   ? CKPT_FORMAT_VERSION
                    : i == 7 ? f.fingerprint
                    : i == 4 ? value % (ints[1] >= 0 && ints[1] < 1000 ? (uint64_t)ints[1] + 1 : 1) /* <= global_step */
                             : value % 1000 + (i == 3 || i == 6);
        ints[i] = (int64_t)value;
        if (mode == MISSING) {
            ints_right = 0;
            continue;
        }
        if (mode == OTHER_TYPE) {
            put_string(file, name, "7");
            ints_right = 0;
            continue;
        }
        put_attr(file, name, i == 7 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, &ints[i]);
        if (mode == OTHER_VALUE)
            ints_right &= i == 0 ? value == CKPT_FORMAT_VERSION : i == 7 ? value == f.fingerprint : 0;
    }
    all_right &= ints_right;
    all_right &= string_attr(file, &in, "layout", full ? "full" : "sharded", NULL, 0);
    char config[64] = "";
    int config_right = string_attr(file, &in, "config", "[\"--seed\",\"3\"]", config, sizeof config);
    dataset_plan plan[16];
    const int n_sets = expected(full, plan);
    for (int i = 0; i < n_sets; i++) {
        write_dataset(file, &in, &plan[i]);
        all_right &= plan[i].right;
    }
    check(H5Fclose(file) >= 0, "closing the file");

    ckpt_meta meta;
    errbuf e = {{0}};
    for (int u = 0; u < N_UNITS; u++) /* what was there before must not show through */
        for (size_t i = 0; i < shard_elems[u]; i++)
            params[u][i] = m1[u][i] = m2[u][i] = -7.0f;
    o.step = -1;
    if (ckpt_load(&f, &o, &meta, path, &e) != 0) {
        fuzz_check_error("fuzz_checkpoint", "ckpt_load", &e);
        check(!all_right, "a checkpoint written entirely right was refused");
    } else {
        /* an OTHER_VALUE count in range is right too: meta must hold what was written */
        check(meta.layout == (full ? CKPT_FULL : CKPT_SHARDED), "the layout");
        int64_t got[6] = {meta.global_step, meta.epoch, meta.steps_per_epoch, meta.adam_step, meta.seed, meta.world_size};
        for (int i = 0; i < 6; i++)
            check(got[i] == ints[i + 1], "a count differs from the attribute written");
        check(meta.global_step >= 0 && meta.epoch >= 0 && meta.steps_per_epoch >= 1 && meta.adam_step >= 0 &&
                  meta.adam_step <= meta.global_step && meta.world_size >= 1,
              "a count out of its range was accepted");
        check(meta.fingerprint == f.fingerprint && o.step == meta.adam_step, "fingerprint or adam step");
        for (int i = 0; i < n_sets; i++) {
            const dataset_plan *d = &plan[i];
            check(d->right, "a dataset with a wrong shape, checksum or none, or missing, was accepted");
            float *buf = (d->kind == 0 ? params : d->kind == 1 ? m1 : m2)[d->unit] + d->offset;
            check(memcmp(buf, d->data, d->n * sizeof(float)) == 0, "loaded values differ from the file's");
        }
        for (int u = 0; u < N_UNITS; u++)
            for (size_t i = units[u].n_train_elems; i < shard_elems[u]; i++)
                check(params[u][i] == 0 && m1[u][i] == 0 && m2[u][i] == 0, "the padding is not zero");
        char *text = NULL;
        if (ckpt_read_config(path, &text, &e) == 0) {
            check(config_right || strcmp(text, config) == 0 || !*config, "the config read back");
            free(text);
        } else {
            fuzz_check_error("fuzz_checkpoint", "ckpt_read_config", &e);
        }
    }
    fuzz_remove("checkpoint-1.h5");
    return 0;
}
