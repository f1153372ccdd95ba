/* checkpoint.c: HDF5 checkpoints with collective MPI-IO (see checkpoint.h).
 *
 * Every dataset is the full, unpadded tensor or flat unit buffer; a rank
 * writes (and reads) the slice its shard covers, so neither a unit nor a
 * tensor is ever gathered on one rank, and the file does not depend on the
 * number of ranks.  Of replicas holding the same shard, only the first
 * writes.  Checksums are sums of position-aware hashes (checksum.h), added
 * up over the ranks' slices. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checksum.h"
#include "fault_inject.h"

static const char *const layout_names[] = {"sharded", "full"};
static const char *const moment_names[2] = {"exp_avg", "exp_avg_sq"};

/* ------------------------------------------------------------------ */
/* small HDF5 helpers: collective calls, errors as messages             */

static hid_t dxpl_collective(void)
{
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    return dxpl;
}

static int attr_write(hid_t obj, const char *name, hid_t type, const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, type, value) < 0 ? -1 : 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return rc;
}

static int attr_write_string(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    int rc = attr_write(obj, name, t, value);
    H5Tclose(t);
    return rc;
}

static int attr_read(hid_t obj, const char *name, hid_t type, void *value)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int rc = a < 0 || H5Aread(a, type, value) < 0 ? -1 : 0;
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

/* A fixed-length string attribute into buf. */
static int attr_read_string(hid_t obj, const char *name, char *buf, size_t n_bytes)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    size_t len = H5Tget_size(t);
    int rc = -1;
    if (H5Tget_class(t) == H5T_STRING && len < n_bytes) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, len);
        memset(buf, 0, n_bytes);
        rc = H5Aread(a, mt, buf) < 0 ? -1 : 0;
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

/* Selects the elements [a, b) of a row-major dataset with `cols` columns
 * (cols = n for a 1-D one): at most a partial row, full rows, a partial row. */
static void select_flat(hid_t space, int rank2, hsize_t cols, hsize_t a, hsize_t b)
{
    H5Sselect_none(space);
    if (a >= b)
        return;
    if (rank2 == 1) {
        hsize_t start = a, count = b - a;
        H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, NULL, &count, NULL);
        return;
    }
    hsize_t r0 = a / cols, c0 = a % cols, r1 = b / cols, c1 = b % cols;
    hsize_t start[2], count[2];
#define BLOCK(r, c, nr, nc)                                                                        \
    do {                                                                                           \
        start[0] = (r), start[1] = (c), count[0] = (nr), count[1] = (nc);                          \
        H5Sselect_hyperslab(space, H5S_SELECT_OR, start, NULL, count, NULL);                       \
    } while (0)
    if (r0 == r1) {
        BLOCK(r0, c0, 1, c1 - c0);
        return;
    }
    if (c0) {
        BLOCK(r0, c0, 1, cols - c0);
        r0++;
    }
    if (r1 > r0)
        BLOCK(r0, 0, r1 - r0, cols);
    if (c1)
        BLOCK(r1, 0, 1, c1);
#undef BLOCK
}

/* ------------------------------------------------------------------ */
/* what each rank holds: the datasets of the file and their slices     */

typedef struct slice {
    char name[160];      /* dataset path */
    int n_dims;
    hsize_t dims[2];
    hsize_t a, b;        /* this rank's elements [a, b) of the dataset (flattened) */
    float *buf;          /* where they live in memory */
} slice;

/* Datasets for one flat buffer kind (params or a moment) of unit ui, with
 * this rank's slices pointing into its shard `shard`.  Returns the count. */
static int unit_slices(const fsdp *f, int ui, ckpt_layout layout, const char *kind, float *shard, slice *out)
{
    const model_unit *mu = &f->m->units[ui];
    size_t lo = (size_t)f->shard_index * f->shard_elems[ui];
    size_t hi = lo + f->shard_elems[ui] < mu->n_train_elems ? lo + f->shard_elems[ui] : mu->n_train_elems;
    if (hi < lo)
        hi = lo;
    int n = 0;
    if (layout == CKPT_SHARDED) {
        slice *s = &out[n++];
        snprintf(s->name, sizeof s->name, "/units/%03d/%s", ui, kind);
        s->n_dims = 1;
        s->dims[0] = mu->n_train_elems;
        s->a = lo, s->b = hi;
        s->buf = shard;
        return n;
    }
    for (int i = 0; i < mu->n_params; i++) {
        const param_entry *p = &mu->params[i];
        if (!p->trainable)
            continue;
        slice *s = &out[n++];
        snprintf(s->name, sizeof s->name, "/%s/%s", strcmp(kind, "param") == 0 ? "adapter" : kind, p->name);
        s->n_dims = p->n_dims; /* 1 for DoRA's magnitude */
        s->dims[0] = (hsize_t)p->shape[0], s->dims[1] = (hsize_t)p->shape[1];
        size_t t_lo = p->offset, t_hi = p->offset + p->n_elems;
        size_t x = t_lo > lo ? t_lo : lo, y = t_hi < hi ? t_hi : hi;
        if (x >= y)
            x = y = t_lo;
        s->a = x - t_lo, s->b = y - t_lo;
        s->buf = shard + (x - lo);
    }
    return n;
}

static int max_slices(const fsdp *f)
{
    int n = 1;
    for (int ui = 0; ui < f->m->n_units; ui++)
        n = f->m->units[ui].n_params > n ? f->m->units[ui].n_params : n;
    return n;
}

/* Sum over the ranks that own a slice (the first of each replica group);
 * host holds the slice's values in host memory. */
static uint64_t global_checksum(const slice *s, const float *host, int owner)
{
    uint64_t sum = owner ? checksum_f32(checksum_name(s->name), s->a, host, s->b - s->a) : 0;
    MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    return sum;
}

static int ensure_groups(hid_t file, const char *path)
{
    /* every prefix of the dataset path as a group */
    char buf[200];
    for (const char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        size_t len = (size_t)(p - path);
        memcpy(buf, path, len);
        buf[len] = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0)
                return -1;
            H5Gclose(g);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* a save that fails on one rank fails on all of them, together          */

/* Why a save failed, and where: the first failing rank's reason, the same
 * on every rank once save_agree has run. */
typedef struct save_error {
    int rank;         /* -1: no failure */
    char reason[256];
} save_error;

/* The innermost entry of HDF5's error stack (the MPI-IO driver's, which
 * carries the system's message, e.g. "No space left on device"): read
 * right after the failing call, before another HDF5 call clears it. */
static herr_t innermost_error(unsigned n, const H5E_error2_t *err, void *out)
{
    if (n == 0 && err->desc)
        snprintf(out, sizeof ((save_error *)0)->reason, "%s", err->desc);
    return 0;
}

/* Records this rank's failure (the first one): WHAT, and HDF5's reason. */
static void save_failed(save_error *se, const char *what)
{
    const int sys = errno; /* the system's error under MPI-IO, when it reached us */
    if (se->rank >= 0)
        return;
    char inner[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, inner);
    MPI_Comm_rank(MPI_COMM_WORLD, &se->rank);
    snprintf(se->reason, sizeof se->reason, "%s%s%s%s%s", what, *inner ? ": " : "", inner, sys ? ": " : "",
             sys ? strerror(sys) : "");
}

/* Collective: -1 on every rank when any rank has failed (then every rank
 * holds the first failing rank's reason), else 0.  Called between the
 * steps of a save, so that no rank goes on into a collective HDF5 call
 * that a failed rank will never make. */
static int save_agree(save_error *se)
{
    int first = se->rank >= 0 ? se->rank : INT_MAX;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT_MAX)
        return 0;
    MPI_Bcast(se->reason, (int)sizeof se->reason, MPI_CHAR, first, MPI_COMM_WORLD);
    se->rank = first;
    return -1;
}

static int write_slice(const fsdp *f, hid_t file, hid_t dxpl, const slice *s, int owner, save_error *se)
{
    hid_t space = H5Screate_simple(s->n_dims, s->dims, NULL);
    hid_t d = -1;
    if (ensure_groups(file, s->name) != 0 ||
        (d = H5Dcreate2(file, s->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        save_failed(se, "creating a dataset");
    if (save_agree(se) != 0) {
        if (d >= 0)
            H5Dclose(d);
        H5Sclose(space);
        return -1;
    }
    hsize_t cols = s->n_dims == 2 ? s->dims[1] : s->dims[0];
    hsize_t n = owner ? s->b - s->a : 0, one = 1;
    select_flat(space, s->n_dims, cols, owner ? s->a : 0, owner ? s->b : 0);
    hid_t mem = H5Screate_simple(1, n ? &n : &one, NULL);
    if (!n)
        H5Sselect_none(mem);
    /* the shards may live on a device: HDF5 writes from a host copy */
    float *host = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    if (n)
        f->be->copy_to_host(f->be, host, s->buf, (size_t)n * sizeof(float));
    errno = 0;
    if (H5Dwrite(d, H5T_NATIVE_FLOAT, mem, space, dxpl, host) < 0)
        save_failed(se, "writing a dataset");
    uint64_t sum = global_checksum(s, host, owner);
    free(host);
    if (save_agree(se) == 0 && attr_write(d, "checksum", H5T_NATIVE_UINT64, &sum) != 0)
        save_failed(se, "writing a checksum");
    H5Sclose(mem);
    H5Sclose(space);
    if (H5Dclose(d) < 0)
        save_failed(se, "closing a dataset");
    return save_agree(se);
}

static int read_slice(const fsdp *f, hid_t file, hid_t dxpl, const slice *s, int owner, const char *path, errbuf *e)
{
    if (H5Lexists(file, s->name, H5P_DEFAULT) <= 0)
        return err_set(e, "%s: dataset %s is missing", path, s->name);
    hid_t d = H5Dopen2(file, s->name, H5P_DEFAULT);
    hid_t space = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int nd = H5Sget_simple_extent_ndims(space);
    H5Sget_simple_extent_dims(space, dims, NULL);
    int rc = 0;
    const size_t n_read = (size_t)(s->b - s->a);
    float *host = xcalloc(n_read ? n_read : 1, sizeof(float)); /* read on the host, then placed */
    if (nd != s->n_dims || dims[0] != s->dims[0] || (nd == 2 && dims[1] != s->dims[1])) {
        rc = err_set(e, "%s: dataset %s has another shape than this model and adapter", path, s->name);
    } else {
        hsize_t cols = s->n_dims == 2 ? s->dims[1] : s->dims[0];
        hsize_t n = s->b - s->a, one = 1;
        select_flat(space, s->n_dims, cols, s->a, s->b);
        hid_t mem = H5Screate_simple(1, n ? &n : &one, NULL);
        if (!n)
            H5Sselect_none(mem);
        if (H5Dread(d, H5T_NATIVE_FLOAT, mem, space, dxpl, host) < 0)
            rc = err_set(e, "%s: cannot read dataset %s", path, s->name);
        else if (n_read)
            f->be->copy_to_device(f->be, s->buf, host, n_read * sizeof(float));
        H5Sclose(mem);
    }
    /* every rank takes part in the checksum, whatever happened above */
    int bad = rc != 0;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (bad) {
        free(host);
        H5Sclose(space);
        H5Dclose(d);
        return rc != 0 ? rc : err_set(e, "%s: dataset %s is unreadable on another rank", path, s->name);
    }
    uint64_t sum = global_checksum(s, host, owner), stored = 0;
    free(host);
    if (attr_read(d, "checksum", H5T_NATIVE_UINT64, &stored) != 0)
        rc = err_set(e, "%s: dataset %s has no checksum", path, s->name);
    else if (stored != sum)
        rc = err_set(e, "%s: dataset %s: checksum mismatch (stored %016llx, data %016llx): the checkpoint is corrupted",
                     path, s->name, (unsigned long long)stored, (unsigned long long)sum);
    H5Sclose(space);
    H5Dclose(d);
    return rc;
}

/* ------------------------------------------------------------------ */

static hid_t open_file(const char *path, int create)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t file = create ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return file;
}

/* Opens PATH for reading on every rank; -1 on all of them (and e set)
 * when any rank cannot. */
static hid_t open_existing(const char *path, errbuf *e)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = access(path, R_OK) == 0 ? open_file(path, 0) : -1;
    int bad = file < 0;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (bad) {
        if (file >= 0)
            H5Fclose(file);
        err_set(e, "%s: not a readable checkpoint (missing, truncated or not HDF5)", path);
        return -1;
    }
    return file;
}

/* The buffers a slice kind lives in: params, or one AdamW moment. */
static float *kind_buffer(const fsdp *f, const optimizer *o, int kind, int ui)
{
    return kind == 0 ? f->param_shards[ui] : kind == 1 ? o->m[ui] : o->v[ui];
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* A generous bound on the file's size: the float data of the three
 * kinds, and for HDF5's metadata (*metadata_bytes) 4 KiB a dataset, the
 * config twice and 64 KiB. */
static off_t size_bound(const fsdp *f, ckpt_layout layout, size_t config_bytes, off_t *metadata_bytes)
{
    off_t data = 0, meta = 65536 + 2 * (off_t)config_bytes;
    for (int ui = 0; ui < f->m->n_units; ui++) {
        const model_unit *mu = &f->m->units[ui];
        if (!mu->n_train_elems)
            continue;
        int n_sets = 1;
        if (layout == CKPT_FULL)
            for (int i = n_sets = 0; i < mu->n_params; i++)
                n_sets += mu->params[i].trainable;
        data += 3 * (off_t)mu->n_train_elems * (off_t)sizeof(float);
        meta += 3 * 4096 * (off_t)n_sets;
    }
    *metadata_bytes = meta;
    return data + meta;
}

/* Parallel HDF5 cannot fail cleanly once it is writing: a metadata write
 * that fails on rank 0 alone leaves the other ranks waiting in H5Fclose,
 * and a file whose close failed stays open inside HDF5 (which crashes in
 * MPI_Finalize).  So, on rank 0, before HDF5 writes anything:
 * - the file system must hold the whole bound: a reservation of it
 *   (posix_fallocate, which also meets quotas), or the save is refused;
 * - the metadata's share of it stays reserved (a ballast: an unlinked file
 *   held open) until just before H5Fclose, so that the close has room
 *   even when the disk filled during the writes.
 * Returns 0 and *ballast (a descriptor, or -1), or an errno. */
static int reserve_space(const char *tmp, off_t n_bytes, off_t keep_bytes, int *ballast)
{
    char path[4300];
    snprintf(path, sizeof path, "%s.reserve", tmp);
    *ballast = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return errno;
    unlink(path);
    int rc = posix_fallocate(fd, 0, n_bytes);
    if (rc != 0 || ftruncate(fd, keep_bytes) != 0 || posix_fallocate(fd, 0, keep_bytes) != 0) {
        close(fd);
        return rc == EOPNOTSUPP || rc == EINVAL ? 0 : rc ? rc : ENOSPC; /* a file system that cannot tell: go on */
    }
    *ballast = fd;
    return 0;
}

static void release_ballast(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int ckpt_save(fsdp *f, const optimizer *o, const ckpt_meta *meta, const char *config_json, const char *path,
              errbuf *e)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int filler = -1, n_written = 0;
    save_error se = {.rank = -1};
    off_t metadata_bytes;
    const off_t bound = size_bound(f, meta->layout, config_json ? strlen(config_json) : 2, &metadata_bytes);
    int ballast = -1;
    int no_room = rank == 0 ? reserve_space(tmp, bound, metadata_bytes, &ballast) : 0;
    MPI_Bcast(&no_room, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (no_room)
        return err_set(e, "%s: cannot save: %s (reserving %.1f MiB for it); nothing written, earlier checkpoints and "
                          "latest are untouched", path, strerror(no_room), (double)bound / 1048576.0);
    hid_t file = open_file(tmp, 1);
    if (file < 0)
        save_failed(&se, "creating the file");
    if (save_agree(&se) != 0) {
        release_ballast(&ballast);
        if (file >= 0)
            H5Fclose(file);
        if (rank == 0)
            remove(tmp);
        return err_set(e, "%s: cannot create the checkpoint (rank %d: %s)", tmp, se.rank, se.reason);
    }
    const int owner = f->cm->rank[COMM_REPLICA] == 0;
    hid_t dxpl = dxpl_collective();
    int64_t version = CKPT_FORMAT_VERSION;
    int rc = 0;
    rc |= attr_write_string(file, "format", "shardtune-checkpoint");
    rc |= attr_write(file, "format_version", H5T_NATIVE_INT64, &version);
    rc |= attr_write_string(file, "layout", layout_names[meta->layout]);
    int64_t ints[6] = {meta->global_step, meta->epoch, meta->steps_per_epoch, meta->adam_step, meta->seed,
                       meta->world_size};
    const char *int_names[6] = {"global_step", "epoch", "steps_per_epoch", "adam_step", "seed", "world_size"};
    for (int i = 0; i < 6; i++)
        rc |= attr_write(file, int_names[i], H5T_NATIVE_INT64, &ints[i]);
    rc |= attr_write(file, "base_model_fingerprint", H5T_NATIVE_UINT64, &meta->fingerprint);
    rc |= attr_write_string(file, "config", config_json ? config_json : "{}");
    rc |= attr_write_string(file, "rng", "counter-based: data order from (seed, epoch), LoRA dropout masks from "
                                         "(seed, step, micro-batch); no other state");
    if (rc != 0)
        save_failed(&se, "writing the attributes");
    rc = save_agree(&se);
    slice *sl = xcalloc((size_t)max_slices(f), sizeof *sl);
    for (int kind = 0; kind < 3 && rc == 0; kind++)
        for (int ui = 0; ui < f->m->n_units && rc == 0; ui++) {
            if (!f->m->units[ui].n_train_elems)
                continue;
            int n = unit_slices(f, ui, meta->layout, kind == 0 ? "param" : moment_names[kind - 1],
                                kind_buffer(f, o, kind, ui), sl);
            for (int i = 0; i < n && rc == 0; i++) {
                rc = write_slice(f, file, dxpl, &sl[i], owner, &se);
                fault_kill_during_save(meta->global_step, rank, world, ++n_written);
                if (filler < 0) /* test hooks (fault_inject.h) */
                    filler = fault_fill_disk(meta->global_step, rank, dir);
            }
        }
    free(sl);
    H5Pclose(dxpl);
    release_ballast(&ballast);
    errno = 0;
    if (H5Fclose(file) < 0)
        save_failed(&se, "closing the file");
    fault_fill_disk_end(filler);
    if (save_agree(&se) != 0) {
        /* nothing of it may look like a checkpoint: the previous one and
         * `latest` are left as they were */
        if (rank == 0)
            remove(tmp);
        return err_set(e, "%s: writing the checkpoint failed (rank %d: %s); removed, earlier checkpoints and latest are "
                       "untouched",
                       tmp, se.rank, se.reason);
    }
    /* complete and flushed before it takes the real name */
    int failed = 0;
    if (rank == 0 && (fsync_path(tmp) != 0 || rename(tmp, path) != 0)) {
        failed = errno ? errno : EIO;
        remove(tmp);
    }
    MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (failed)
        return err_set(e, "%s: cannot finish the checkpoint: %s", path, strerror(failed));
    return 0;
}

int ckpt_load(fsdp *f, optimizer *o, ckpt_meta *meta, const char *path, errbuf *e)
{
    hid_t file = open_existing(path, e);
    if (file < 0)
        return -1;
    int rc = 0;
    char text[64];
    int64_t version = 0, ints[6];
    const char *int_names[6] = {"global_step", "epoch", "steps_per_epoch", "adam_step", "seed", "world_size"};
    uint64_t fingerprint = 0;
    if (attr_read_string(file, "format", text, sizeof text) != 0 || strcmp(text, "shardtune-checkpoint") != 0)
        rc = err_set(e, "%s: not a shardtune checkpoint", path);
    else if (attr_read(file, "format_version", H5T_NATIVE_INT64, &version) != 0 || version != CKPT_FORMAT_VERSION)
        rc = err_set(e, "%s: checkpoint format version %lld, this shardtune reads %d", path, (long long)version,
                     CKPT_FORMAT_VERSION);
    else if (attr_read_string(file, "layout", text, sizeof text) != 0 ||
             (strcmp(text, "sharded") != 0 && strcmp(text, "full") != 0))
        rc = err_set(e, "%s: unknown checkpoint layout", path);
    else if (attr_read(file, "base_model_fingerprint", H5T_NATIVE_UINT64, &fingerprint) != 0)
        rc = err_set(e, "%s: no base_model_fingerprint", path);
    else if (fingerprint != f->fingerprint)
        rc = err_set(e, "%s: was written for other base weights (fingerprint %016llx, this model %016llx)", path,
                     (unsigned long long)fingerprint, (unsigned long long)f->fingerprint);
    for (int i = 0; i < 6 && rc == 0; i++)
        if (attr_read(file, int_names[i], H5T_NATIVE_INT64, &ints[i]) != 0)
            rc = err_set(e, "%s: attribute %s is missing", path, int_names[i]);
    /* the counts in their ranges: a step beyond int would wrap into another
     * step, a negative one send the training loop backwards (found by
     * fuzz_checkpoint); the seed is any int64 */
    static const int64_t least[6] = {0, 0, 1, 0, INT64_MIN, 1};
    for (int i = 0; i < 6 && rc == 0; i++)
        if (i != 4 && (ints[i] < least[i] || ints[i] > INT_MAX))
            rc = err_set(e, "%s: attribute %s is %lld, not in [%lld, %d]", path, int_names[i], (long long)ints[i],
                         (long long)least[i], INT_MAX);
    if (rc == 0 && ints[3] > ints[0])
        rc = err_set(e, "%s: adam_step %lld is more than global_step %lld", path, (long long)ints[3],
                     (long long)ints[0]);
    if (rc == 0) {
        meta->layout = strcmp(text, "full") == 0 ? CKPT_FULL : CKPT_SHARDED;
        meta->global_step = (int)ints[0], meta->epoch = (int)ints[1], meta->steps_per_epoch = (int)ints[2];
        meta->adam_step = (int)ints[3], meta->seed = ints[4], meta->world_size = (int)ints[5];
        meta->fingerprint = fingerprint;
    }
    const int owner = f->cm->rank[COMM_REPLICA] == 0;
    hid_t dxpl = dxpl_collective();
    slice *sl = xcalloc((size_t)max_slices(f), sizeof *sl);
    for (int kind = 0; kind < 3 && rc == 0; kind++)
        for (int ui = 0; ui < f->m->n_units && rc == 0; ui++) {
            if (!f->m->units[ui].n_train_elems)
                continue;
            float *buf = kind_buffer(f, o, kind, ui);
            f->be->zero(f->be, buf, f->shard_elems[ui] * sizeof(float)); /* the padding stays zero */
            int n = unit_slices(f, ui, meta->layout, kind == 0 ? "param" : moment_names[kind - 1], buf, sl);
            for (int i = 0; i < n && rc == 0; i++)
                rc = read_slice(f, file, dxpl, &sl[i], owner, path, e);
        }
    free(sl);
    H5Pclose(dxpl);
    H5Fclose(file);
    if (rc == 0)
        o->step = meta->adam_step;
    return rc;
}

int ckpt_read_config(const char *path, char **config_json, errbuf *e)
{
    hid_t file = open_existing(path, e);
    if (file < 0)
        return -1;
    char *buf = xmalloc(1 << 16);
    int rc = attr_read_string(file, "config", buf, 1 << 16);
    H5Fclose(file);
    if (rc != 0) {
        free(buf);
        return err_set(e, "%s: no config attribute", path);
    }
    *config_json = buf;
    return 0;
}

/* ------------------------------------------------------------------ */

static int step_of(const char *name)
{
    int step;
    char tail[8];
    return sscanf(name, "checkpoint-%d.h%7s", &step, tail) == 2 && strcmp(tail, "5") == 0 ? step : -1;
}

int ckpt_mark_latest(const char *dir, const char *name, int limit, errbuf *e)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/latest", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp || fprintf(fp, "%s\n", name) < 0 || fflush(fp) != 0 || fsync(fileno(fp)) != 0 || fclose(fp) != 0 ||
        rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(e, "%s: cannot write: %s", path, strerror(errno));
    }
    if (limit <= 0)
        return 0;
    /* only now that a newer one is complete: drop the oldest beyond the limit */
    for (;;) {
        DIR *d = opendir(dir);
        if (!d)
            return 0;
        int count = 0, oldest = -1;
        struct dirent *ent;
        while ((ent = readdir(d))) {
            int s = step_of(ent->d_name);
            if (s < 0)
                continue;
            count++;
            if (oldest < 0 || s < oldest)
                oldest = s;
        }
        closedir(d);
        if (count <= limit || oldest == step_of(name))
            return 0;
        snprintf(path, sizeof path, "%s/checkpoint-%d.h5", dir, oldest);
        if (remove(path) != 0)
            return err_set(e, "%s: cannot remove: %s", path, strerror(errno));
    }
}

int ckpt_resolve_latest(const char *dir, char *buf, size_t n_bytes, errbuf *e)
{
    char path[4096], name[512];
    snprintf(path, sizeof path, "%s/latest", dir);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return err_set(e, "--resume_from_checkpoint latest: %s has no checkpoint yet (no 'latest' marker)", dir);
    int ok = fgets(name, sizeof name, fp) != NULL;
    fclose(fp);
    name[strcspn(name, "\n")] = '\0';
    if (!ok || step_of(name) < 0)
        return err_set(e, "%s: does not name a checkpoint", path);
    snprintf(buf, n_bytes, "%s/%s", dir, name);
    return 0;
}
