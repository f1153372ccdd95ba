/* tb_events.c: TensorBoard event files (see tb_events.h).
 *
 * TFRecord framing of each serialized Event:
 *   uint64 length (little endian) | uint32 masked CRC32C of those 8 bytes |
 *   the bytes | uint32 masked CRC32C of the bytes
 * TensorBoard's reader checks both checksums, so a torn or corrupted record
 * is refused rather than read as a wrong value. */
#include "tb_events.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "dir_make.h"
#include "tb_event.pb-c.h"

struct tb_writer {
    FILE *f;
    char path[4096];
};

uint32_t tb_masked_crc32c(const void *data, size_t n_bytes)
{
    /* ISA-L's crc32_iscsi is CRC32C without the customary pre- and
     * post-inversion: seeding with ~0 and inverting the result gives the
     * standard CRC32C (0xE3069283 for "123456789").  It takes an int length;
     * records here are a few dozen bytes, a long one is fed in pieces. */
    uint32_t crc = 0xffffffffu;
    const unsigned char *p = data;
    while (n_bytes > 0) {
        int piece = n_bytes > (1u << 30) ? 1 << 30 : (int)n_bytes;
        crc = crc32_iscsi((unsigned char *)p, piece, crc);
        p += piece;
        n_bytes -= (size_t)piece;
    }
    crc = ~crc;
    /* TFRecord's mask: a CRC of data that holds CRCs is weak, so the stored
     * value is rotated and offset. */
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static void put_le(unsigned char *out, uint64_t v, int n_bytes)
{
    for (int i = 0; i < n_bytes; i++)
        out[i] = (unsigned char)(v >> (8 * i));
}

static double wall_time(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* Serializes ev and writes it as one TFRecord. */
static int write_event(tb_writer *w, const ShardtuneTb__Event *ev, errbuf *e)
{
    size_t n = shardtune_tb__event__get_packed_size(ev);
    unsigned char *buf = xmalloc(n + 16);
    unsigned char *data = buf + 12;
    shardtune_tb__event__pack(ev, data);
    put_le(buf, (uint64_t)n, 8);
    put_le(buf + 8, tb_masked_crc32c(buf, 8), 4);
    put_le(data + n, tb_masked_crc32c(data, n), 4);
    int ok = fwrite(buf, 1, n + 16, w->f) == n + 16 && fflush(w->f) == 0;
    free(buf);
    if (!ok)
        return err_set(e, "%s: cannot write: %s", w->path, strerror(errno));
    return 0;
}

tb_writer *tb_open(const char *dir, errbuf *e)
{
    if (dir_make(dir, e) != 0)
        return NULL;
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    tb_writer *w = xcalloc(1, sizeof *w);
    const double now = wall_time();
    snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010lld.%s.%ld", dir, (long long)now, host,
             (long)getpid());
    if (!(w->f = fopen(w->path, "wb"))) {
        err_set(e, "%s: cannot create: %s", w->path, strerror(errno));
        free(w);
        return NULL;
    }
    ShardtuneTb__Event ev = SHARDTUNE_TB__EVENT__INIT;
    ev.wall_time = now;
    ev.what_case = SHARDTUNE_TB__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    if (write_event(w, &ev, e) != 0) {
        tb_close(w, NULL);
        return NULL;
    }
    return w;
}

int tb_scalar(tb_writer *w, int64_t step, const char *tag, double value, errbuf *e)
{
    ShardtuneTb__Summary__Value v = SHARDTUNE_TB__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = SHARDTUNE_TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = (float)value;
    ShardtuneTb__Summary__Value *values[1] = {&v};
    ShardtuneTb__Summary sum = SHARDTUNE_TB__SUMMARY__INIT;
    sum.n_value = 1;
    sum.value = values;
    ShardtuneTb__Event ev = SHARDTUNE_TB__EVENT__INIT;
    ev.wall_time = wall_time();
    ev.step = step;
    ev.what_case = SHARDTUNE_TB__EVENT__WHAT_SUMMARY;
    ev.summary = &sum;
    return write_event(w, &ev, e);
}

int tb_session_start(tb_writer *w, int64_t step, errbuf *e)
{
    ShardtuneTb__SessionLog log = SHARDTUNE_TB__SESSION_LOG__INIT;
    log.status = SHARDTUNE_TB__SESSION_LOG__SESSION_STATUS__START;
    ShardtuneTb__Event ev = SHARDTUNE_TB__EVENT__INIT;
    ev.wall_time = wall_time();
    ev.step = step;
    ev.what_case = SHARDTUNE_TB__EVENT__WHAT_SESSION_LOG;
    ev.session_log = &log;
    return write_event(w, &ev, e);
}

int tb_close(tb_writer *w, errbuf *e)
{
    if (!w)
        return 0;
    int rc = 0;
    if (fclose(w->f) != 0)
        rc = err_set(e, "%s: write failed: %s", w->path, strerror(errno));
    free(w);
    return rc;
}

const char *tb_path(const tb_writer *w) { return w->path; }
