/* test_tb_events.c: TensorBoard event files (src/tb_events.c) against facts
 * written out here: CRC32C test vectors (the "123456789" check value of the
 * CRC catalogue, RFC 3720's 32 zero bytes) with TFRecord's mask worked out
 * by hand, and the records of a written file read back, framing and all,
 * with protobuf-c.  TensorBoard's own reader of such files is
 * tests/ref/tensorboard_matches_metrics.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_read.h"
#include "tb_event.pb-c.h"
#include "tb_events.h"

static void masked_crc_of_known_vectors(void **state)
{
    (void)state;
    /* CRC32C("123456789") = 0xE3069283; masked: rotr15 + 0xa282ead8 */
    assert_int_equal(tb_masked_crc32c("123456789", 9), 0xc78ab0e5u);
    /* RFC 3720 B.4: 32 zero bytes -> 0x8A9136AA */
    unsigned char zeros[32] = {0};
    assert_int_equal(tb_masked_crc32c(zeros, sizeof zeros), 0x0fd7fffau);
}

static uint64_t get_le(const unsigned char *p, int n_bytes)
{
    uint64_t v = 0;
    for (int i = n_bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The next record at *pos: its Event, framing and both CRCs checked. */
static ShardtuneTb__Event *next_event(const unsigned char *buf, size_t n, size_t *pos)
{
    assert_true(*pos + 12 <= n);
    const uint64_t len = get_le(buf + *pos, 8);
    assert_int_equal(get_le(buf + *pos + 8, 4), tb_masked_crc32c(buf + *pos, 8));
    assert_true(*pos + 12 + len + 4 <= n);
    const unsigned char *data = buf + *pos + 12;
    assert_int_equal(get_le(data + len, 4), tb_masked_crc32c(data, len));
    *pos += 12 + len + 4;
    ShardtuneTb__Event *ev = shardtune_tb__event__unpack(NULL, len, data);
    assert_non_null(ev);
    return ev;
}

static void records_read_back(void **state)
{
    (void)state;
    char dir[] = "/tmp/tb_events_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/runs/a", dir); /* made on the way, as mkdir -p */
    errbuf e;
    tb_writer *w = tb_open(sub, &e);
    assert_non_null(w);
    assert_int_equal(tb_session_start(w, 4, &e), 0);
    assert_int_equal(tb_scalar(w, 7, "train/learning_rate", 0.0, &e), 0);
    assert_int_equal(tb_scalar(w, 8, "train/loss", 1.0 / 3.0, &e), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s", tb_path(w));
    assert_int_equal(tb_close(w, &e), 0);
    assert_non_null(strstr(path, "/events.out.tfevents."));

    size_t n;
    unsigned char *buf = (unsigned char *)file_read_all(path, &n, &e);
    assert_non_null(buf);
    size_t pos = 0;
    ShardtuneTb__Event *ev = next_event(buf, n, &pos);
    assert_int_equal(ev->what_case, SHARDTUNE_TB__EVENT__WHAT_FILE_VERSION);
    assert_string_equal(ev->file_version, "brain.Event:2");
    assert_true(ev->wall_time > 1e9);
    shardtune_tb__event__free_unpacked(ev, NULL);

    ev = next_event(buf, n, &pos);
    assert_int_equal(ev->what_case, SHARDTUNE_TB__EVENT__WHAT_SESSION_LOG);
    assert_int_equal(ev->session_log->status, SHARDTUNE_TB__SESSION_LOG__SESSION_STATUS__START);
    assert_int_equal(ev->step, 4);
    shardtune_tb__event__free_unpacked(ev, NULL);

    /* a 0 is on the wire (a oneof member), not left out as a proto3 default */
    const struct {
        int64_t step;
        const char *tag;
        float value;
    } want[] = {{7, "train/learning_rate", 0.0f}, {8, "train/loss", (float)(1.0 / 3.0)}};
    for (int i = 0; i < 2; i++) {
        ev = next_event(buf, n, &pos);
        assert_int_equal(ev->what_case, SHARDTUNE_TB__EVENT__WHAT_SUMMARY);
        assert_int_equal(ev->step, want[i].step);
        assert_int_equal(ev->summary->n_value, 1);
        assert_string_equal(ev->summary->value[0]->tag, want[i].tag);
        assert_int_equal(ev->summary->value[0]->value_case, SHARDTUNE_TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE);
        assert_memory_equal(&ev->summary->value[0]->simple_value, &want[i].value, sizeof(float));
        shardtune_tb__event__free_unpacked(ev, NULL);
    }
    assert_int_equal(pos, n);
    free(buf);
    unlink(path);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/runs", dir);
    rmdir(sub);
    rmdir(dir);
}

static void unwritable_dir_is_named(void **state)
{
    (void)state;
    char file[] = "/tmp/tb_events_file.XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    close(fd);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/runs", file); /* under a regular file */
    errbuf e;
    assert_null(tb_open(sub, &e));
    assert_non_null(strstr(e.msg, file));
    unlink(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(masked_crc_of_known_vectors),
        cmocka_unit_test(records_read_back),
        cmocka_unit_test(unwritable_dir_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
