/* test_safetensors.c: the safetensors reader and writer.
 *
 * Round trips prove the writer and reader agree; the F16/BF16 expectations
 * are IEEE bit patterns worked out by hand (not computed by the code under
 * test).  Every refusal is a file crafted byte by byte, and each test
 * asserts that the error names the specific problem. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

/* ------------------------------------------------------------- helpers */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int dir_setup(void **state)
{
    const char *tmpdir = getenv("TMPDIR");
    char *dir = malloc(4096);
    snprintf(dir, 4096, "%s/st-test.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int dir_teardown(void **state)
{
    char *dir = *state;
    int rc = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return rc;
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *bytes, size_t n_bytes)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n_bytes)
        assert_int_equal(fwrite(bytes, 1, n_bytes, f), n_bytes);
    assert_int_equal(fclose(f), 0);
}

/* A safetensors file by hand: u64 LE length of HEADER (or N_HEADER_CLAIMED
 * when not ~0), HEADER, then N_DATA bytes of data (0, 1, 2, ...). */
static void write_crafted(const char *path, const char *header, uint64_t n_header_claimed,
                          size_t n_data)
{
    size_t n_header = strlen(header);
    uint64_t n_len = n_header_claimed != ~(uint64_t)0 ? n_header_claimed : n_header;
    size_t n_bytes = 8 + n_header + n_data;
    unsigned char *buf = malloc(n_bytes);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n_len >> (8 * i));
    memcpy(buf + 8, header, n_header);
    for (size_t i = 0; i < n_data; i++)
        buf[8 + n_header + i] = (unsigned char)i;
    write_bytes(path, buf, n_bytes);
    free(buf);
}

static void *read_whole(const char *path, size_t *n_bytes)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    void *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    assert_int_equal(fclose(f), 0);
    *n_bytes = (size_t)n;
    return buf;
}

#define assert_msg_has(e, needle)                                                             \
    do {                                                                                      \
        if (!strstr((e)->msg, (needle)))                                                      \
            fail_msg("error message \"%s\" does not mention \"%s\"", (e)->msg, (needle));   \
    } while (0)

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Opening PATH fails; the message names the file and NEEDLE. */
static void expect_refused(const char *path, const char *needle)
{
    errbuf e = {{0}};
    safetensors *st = safetensors_open(path, &e);
    if (st) {
        safetensors_close(st);
        fail_msg("%s was accepted; expected an error mentioning \"%s\"", path, needle);
    }
    assert_msg_has(&e, path);
    assert_msg_has(&e, needle);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* -------------------------------------------------------- round trips */

static void test_dtype_table_names_and_sizes(void **state)
{
    assert_string_equal(st_dtype_name(ST_BF16), "BF16");
    assert_int_equal(st_dtype_size(ST_BF16), 2);
    assert_int_equal(st_dtype_size(ST_F64), 8);
    assert_int_equal(st_dtype_size(ST_BOOL), 1);
    assert_int_equal(st_dtype_from_name("F32"), ST_F32);
    assert_int_equal(st_dtype_from_name("U64"), ST_U64);
    assert_int_equal(st_dtype_from_name("F8_E4M3"), -1);
    assert_int_equal(st_dtype_from_name("f32"), -1);
}

static void test_round_trip_keeps_names_shapes_values_and_metadata(void **state)
{
    char *path = path_in(*state, "model.safetensors");
    const float f32[6] = {1.5f, -2.25f, 0.0f, 3.0e-8f, 65504.0f, -1.0e30f};
    /* F16: 1, -2, 65504 (max), 2^-14 (min normal), 2^-24 (min subnormal),
     * 3 * 2^-24 (subnormal), +inf, -inf, NaN, -0 */
    const uint16_t f16[10] = {0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001,
                              0x0003, 0x7c00, 0xfc00, 0x7e00, 0x8000};
    const uint32_t f16_expect[10] = {0x3f800000, 0xc0000000, 0x477fe000, 0x38800000, 0x33800000,
                                     0x34400000, 0x7f800000, 0xff800000, 0x7fc00000, 0x80000000};
    /* BF16: 1, -3, 0.15625, +inf, NaN, smallest subnormal 2^-133 */
    const uint16_t bf16[6] = {0x3f80, 0xc040, 0x3e20, 0x7f80, 0x7fc0, 0x0001};
    const uint32_t bf16_expect[6] = {0x3f800000, 0xc0400000, 0x3e200000,
                                     0x7f800000, 0x7fc00000, 0x00010000};
    const int64_t i64[3] = {-1, 0, INT64_MAX};
    const uint8_t u8[5] = {0, 1, 127, 128, 255};
    const uint8_t flags[2] = {1, 0};
    const double f64[2] = {0.1, -1e300};
    const int32_t i32[1] = {-7};
    const float scalar = 42.0f;

    st_writer *w = st_writer_new();
    st_writer_add(w, "z.first", ST_F32, 2, (int64_t[]){2, 3}, f32);
    st_writer_add(w, "a.half", ST_F16, 1, (int64_t[]){10}, f16);
    st_writer_add(w, "m.bf16", ST_BF16, 2, (int64_t[]){3, 2}, bf16);
    st_writer_add(w, "ints", ST_I64, 1, (int64_t[]){3}, i64);
    st_writer_add(w, "bytes", ST_U8, 1, (int64_t[]){5}, u8);
    st_writer_add(w, "flags", ST_BOOL, 1, (int64_t[]){2}, flags);
    st_writer_add(w, "doubles", ST_F64, 1, (int64_t[]){2}, f64);
    st_writer_add(w, "odd", ST_I32, 1, (int64_t[]){1}, i32);
    st_writer_add(w, "scalar", ST_F32, 0, NULL, &scalar);
    st_writer_add(w, "empty", ST_F32, 2, (int64_t[]){0, 4}, NULL);
    st_writer_metadata(w, "format", "pt");
    st_writer_metadata(w, "source", "overwritten");
    st_writer_metadata(w, "source", "shardtune");
    errbuf e = {{0}};
    if (st_writer_write(w, path, &e) != 0)
        fail_msg("%s", e.msg);
    st_writer_free(w);

    /* Header padded with spaces: the data block starts at a multiple of 8. */
    size_t n_file;
    unsigned char *raw = read_whole(path, &n_file);
    uint64_t n_header = 0;
    for (int i = 7; i >= 0; i--)
        n_header = (n_header << 8) | raw[i];
    assert_int_equal((8 + n_header) % 8, 0);
    assert_int_equal(raw[8], '{');
    size_t n_data = 24 + 20 + 12 + 24 + 5 + 2 + 16 + 4 + 4;
    assert_int_equal(n_file, 8 + n_header + n_data);
    free(raw);
    char *tmp = path_in(*state, "model.safetensors.tmp");
    assert_false(file_exists(tmp));
    free(tmp);

    safetensors *st = safetensors_open(path, &e);
    if (!st)
        fail_msg("%s", e.msg);
    assert_int_equal(safetensors_count(st), 10);
    /* In file order, which is the order added. */
    assert_string_equal(safetensors_at(st, 0)->name, "z.first");
    assert_string_equal(safetensors_at(st, 1)->name, "a.half");
    assert_string_equal(safetensors_at(st, 9)->name, "empty");
    assert_null(safetensors_at(st, 10));
    assert_string_equal(safetensors_metadata(st, "format"), "pt");
    assert_string_equal(safetensors_metadata(st, "source"), "shardtune");
    assert_null(safetensors_metadata(st, "absent"));
    assert_null(safetensors_find(st, "absent"));

    const st_tensor *t = safetensors_find(st, "z.first");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->n_elems, 6);
    assert_int_equal(t->n_bytes, 24);
    assert_string_equal(t->file_path, path);
    assert_int_equal(t->file_offset, 8 + n_header);
    assert_int_equal(t->file_offset % 8, 0);
    float out[10];
    assert_int_equal(st_tensor_to_f32(t, out, &e), 0);
    assert_memory_equal(out, f32, sizeof f32);

    t = safetensors_find(st, "a.half");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F16);
    assert_int_equal(t->file_offset, 8 + n_header + 24);
    assert_memory_equal(t->data, f16, sizeof f16);
    assert_int_equal(st_tensor_to_f32(t, out, &e), 0);
    for (int i = 0; i < 10; i++)
        if (f32_bits(out[i]) != f16_expect[i])
            fail_msg("F16 0x%04x -> 0x%08x, expected 0x%08x", f16[i], f32_bits(out[i]),
                     f16_expect[i]);
    assert_true(isinf(out[6]) && out[6] > 0);
    assert_true(isnan(out[8]));
    assert_true(out[4] == 0x1p-24f);

    t = safetensors_find(st, "m.bf16");
    assert_non_null(t);
    assert_int_equal(st_tensor_to_f32(t, out, &e), 0);
    for (int i = 0; i < 6; i++)
        if (f32_bits(out[i]) != bf16_expect[i])
            fail_msg("BF16 0x%04x -> 0x%08x, expected 0x%08x", bf16[i], f32_bits(out[i]),
                     bf16_expect[i]);
    assert_true(out[2] == 0.15625f);

    t = safetensors_find(st, "ints");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_I64);
    assert_memory_equal(t->data, i64, sizeof i64);
    /* Only float dtypes convert; the message says which tensor and dtype. */
    assert_int_equal(st_tensor_to_f32(t, out, &e), -1);
    assert_msg_has(&e, "'ints'");
    assert_msg_has(&e, "I64");

    t = safetensors_find(st, "bytes");
    assert_memory_equal(t->data, u8, sizeof u8);
    t = safetensors_find(st, "flags");
    assert_int_equal(t->dtype, ST_BOOL);
    assert_memory_equal(t->data, flags, sizeof flags);
    t = safetensors_find(st, "doubles");
    assert_memory_equal(t->data, f64, sizeof f64);
    t = safetensors_find(st, "odd");
    assert_memory_equal(t->data, i32, sizeof i32);

    t = safetensors_find(st, "scalar");
    assert_int_equal(t->n_dims, 0);
    assert_int_equal(t->n_elems, 1);
    assert_int_equal(st_tensor_to_f32(t, out, &e), 0);
    assert_true(out[0] == 42.0f);

    t = safetensors_find(st, "empty");
    assert_int_equal(t->n_elems, 0);
    assert_int_equal(t->n_bytes, 0);
    assert_int_equal(t->shape[1], 4);
    assert_int_equal(st_tensor_to_f32(t, out, &e), 0);

    safetensors_close(st);
    free(path);
}

static void test_writer_without_tensors_writes_a_readable_file(void **state)
{
    char *path = path_in(*state, "empty.safetensors");
    st_writer *w = st_writer_new();
    errbuf e = {{0}};
    assert_int_equal(st_writer_write(w, path, &e), 0);
    st_writer_free(w);
    safetensors *st = safetensors_open(path, &e);
    if (!st)
        fail_msg("%s", e.msg);
    assert_int_equal(safetensors_count(st), 0);
    assert_null(safetensors_find(st, "x"));
    safetensors_close(st);
    free(path);
}

static void test_check_shape_names_tensor_and_both_shapes(void **state)
{
    char *path = path_in(*state, "model.safetensors");
    float q[32 * 64] = {0};
    st_writer *w = st_writer_new();
    st_writer_add(w, "model.layers.0.self_attn.q_proj.weight", ST_F32, 2, (int64_t[]){32, 64}, q);
    errbuf e = {{0}};
    assert_int_equal(st_writer_write(w, path, &e), 0);
    st_writer_free(w);
    safetensors *st = safetensors_open(path, &e);
    assert_non_null(st);
    const st_tensor *t = safetensors_find(st, "model.layers.0.self_attn.q_proj.weight");
    assert_non_null(t);
    assert_int_equal(st_tensor_check_shape(t, 2, (int64_t[]){32, 64}, &e), 0);
    assert_int_equal(st_tensor_check_shape(t, 2, (int64_t[]){64, 64}, &e), -1);
    assert_msg_has(&e, "tensor 'model.layers.0.self_attn.q_proj.weight': expected shape [64, 64], "
                       "found [32, 64]");
    assert_int_equal(st_tensor_check_shape(t, 1, (int64_t[]){2048}, &e), -1);
    assert_msg_has(&e, "expected shape [2048], found [32, 64]");
    safetensors_close(st);
    free(path);
}

/* ------------------------------------------------------------ writer errors */

static void test_writer_refuses_duplicate_name_and_leaves_no_file(void **state)
{
    char *path = path_in(*state, "dup.safetensors");
    char *tmp = path_in(*state, "dup.safetensors.tmp");
    float x[2] = {1, 2};
    st_writer *w = st_writer_new();
    st_writer_add(w, "a", ST_F32, 1, (int64_t[]){2}, x);
    st_writer_add(w, "b", ST_F32, 1, (int64_t[]){2}, x);
    st_writer_add(w, "a", ST_F32, 1, (int64_t[]){1}, x);
    errbuf e = {{0}};
    assert_int_equal(st_writer_write(w, path, &e), -1);
    assert_msg_has(&e, path);
    assert_msg_has(&e, "duplicate tensor name 'a'");
    assert_false(file_exists(path));
    assert_false(file_exists(tmp));
    st_writer_free(w);
    free(path);
    free(tmp);
}

static void test_writer_refuses_bad_entries(void **state)
{
    char *path = path_in(*state, "bad.safetensors");
    float x[2] = {1, 2};
    errbuf e = {{0}};

    st_writer *w = st_writer_new();
    st_writer_add(w, "neg", ST_F32, 1, (int64_t[]){-2}, x);
    assert_int_equal(st_writer_write(w, path, &e), -1);
    assert_msg_has(&e, "'neg'");
    assert_msg_has(&e, "negative");
    st_writer_free(w);

    w = st_writer_new();
    st_writer_add(w, "nodata", ST_F32, 1, (int64_t[]){2}, NULL);
    assert_int_equal(st_writer_write(w, path, &e), -1);
    assert_msg_has(&e, "'nodata'");
    assert_msg_has(&e, "no data");
    st_writer_free(w);

    w = st_writer_new();
    st_writer_add(w, "__metadata__", ST_F32, 1, (int64_t[]){2}, x);
    assert_int_equal(st_writer_write(w, path, &e), -1);
    assert_msg_has(&e, "reserved");
    st_writer_free(w);

    w = st_writer_new();
    st_writer_add(w, "deep", ST_F32, ST_MAX_DIMS + 1, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, x);
    assert_int_equal(st_writer_write(w, path, &e), -1);
    assert_msg_has(&e, "'deep'");
    assert_msg_has(&e, "dimensions");
    st_writer_free(w);

    assert_false(file_exists(path));
    free(path);
}

static void test_writer_reports_unwritable_path(void **state)
{
    char *path = path_in(*state, "no/such/dir/model.safetensors");
    float x = 1;
    st_writer *w = st_writer_new();
    st_writer_add(w, "x", ST_F32, 0, NULL, &x);
    errbuf e = {{0}};
    assert_int_equal(st_writer_write(w, path, &e), -1);
    assert_msg_has(&e, path);
    assert_msg_has(&e, "cannot create");
    st_writer_free(w);
    free(path);
}

/* ------------------------------------------------------- refused files */

static void test_refuses_file_shorter_than_length_field(void **state)
{
    char *path = path_in(*state, "short.safetensors");
    write_bytes(path, "\x10\x00\x00\x00\x00", 5);
    expect_refused(path, "too short");
    write_bytes(path, "", 0);
    expect_refused(path, "file is 0 bytes");
    free(path);
}

static void test_refuses_header_length_past_end(void **state)
{
    char *path = path_in(*state, "past.safetensors");
    /* Claims a 64-byte header; the file holds 8 + 18 bytes. */
    write_crafted(path, "{\"__metadata__\":{}}", 64, 0);
    expect_refused(path, "runs past the end of the file");
    free(path);
}

static void test_refuses_header_length_over_limit(void **state)
{
    char *path = path_in(*state, "huge.safetensors");
    write_crafted(path, "{}", 200000000, 0);
    expect_refused(path, "over the 100000000-byte limit");
    free(path);
}

static void test_refuses_truncated_data(void **state)
{
    char *path = path_in(*state, "trunc.safetensors");
    write_crafted(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", ~0ull,
                  10);
    expect_refused(path, "tensor 'w': data_offsets [0, 16] run past the end of the 10-byte data "
                         "block");
    free(path);
}

static void test_refuses_overlapping_offsets(void **state)
{
    char *path = path_in(*state, "overlap.safetensors");
    write_crafted(path,
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  ~0ull, 12);
    expect_refused(path, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    free(path);
}

static void test_refuses_gap_between_tensors(void **state)
{
    char *path = path_in(*state, "gap.safetensors");
    write_crafted(path,
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                  ~0ull, 12);
    expect_refused(path, "tensor 'b': data_offsets [8, 12] leave a gap of 4 bytes after tensor "
                         "'a'");
    free(path);
}

static void test_refuses_gap_at_start(void **state)
{
    char *path = path_in(*state, "gap0.safetensors");
    write_crafted(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", ~0ull,
                  8);
    expect_refused(path, "gap of 4 bytes at the start of the data block");
    free(path);
}

static void test_refuses_trailing_bytes(void **state)
{
    char *path = path_in(*state, "trail.safetensors");
    write_crafted(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", ~0ull,
                  7);
    expect_refused(path, "data block has 7 bytes but the tensors cover only 4 (3 trailing bytes)");
    free(path);
}

static void test_refuses_size_mismatch(void **state)
{
    char *path = path_in(*state, "size.safetensors");
    write_crafted(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",
                  ~0ull, 12);
    expect_refused(path, "tensor 'x': data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs 16");
    free(path);
}

static void test_refuses_invalid_json(void **state)
{
    char *path = path_in(*state, "json.safetensors");
    write_crafted(path, "{\"x\":{\"dtype\":\"F32\",", ~0ull, 0);
    expect_refused(path, "header is not valid JSON");
    write_crafted(path, "[1, 2]", ~0ull, 0);
    expect_refused(path, "header is not a JSON object");
    write_crafted(path, "", ~0ull, 0);
    expect_refused(path, "header is not valid JSON");
    /* Two entries with one name would make find() ambiguous. */
    write_crafted(path,
                  "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                  ~0ull, 2);
    expect_refused(path, "duplicate");
    free(path);
}

static void test_refuses_unknown_dtype(void **state)
{
    char *path = path_in(*state, "dtype.safetensors");
    write_crafted(path, "{\"x\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", ~0ull,
                  4);
    expect_refused(path, "tensor 'x': unknown dtype 'F12'");
    write_crafted(path, "{\"x\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", ~0ull, 4);
    expect_refused(path, "tensor 'x': \"dtype\" is not a string");
    write_crafted(path, "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", ~0ull, 4);
    expect_refused(path, "tensor 'x': \"dtype\" is missing");
    free(path);
}

static void test_refuses_bad_shape(void **state)
{
    char *path = path_in(*state, "shape.safetensors");
    write_crafted(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", ~0ull,
                  16);
    expect_refused(path, "tensor 'x': \"shape\" is not an array");
    write_crafted(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}",
                  ~0ull, 16);
    expect_refused(path, "tensor 'x': shape[0] is not a non-negative integer");
    write_crafted(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,\"2\"],\"data_offsets\":[0,16]}}",
                  ~0ull, 16);
    expect_refused(path, "tensor 'x': shape[1] is not a non-negative integer");
    write_crafted(path,
                  "{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
                  ~0ull, 1);
    expect_refused(path, "tensor 'x': shape has 9 dimensions, more than 8");
    write_crafted(path,
                  "{\"x\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                  "\"data_offsets\":[0,8]}}",
                  ~0ull, 8);
    expect_refused(path, "tensor 'x': shape [4294967296, 4294967296] is too large");
    write_crafted(path, "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", ~0ull, 16);
    expect_refused(path, "tensor 'x': \"shape\" is missing");
    free(path);
}

static void test_refuses_bad_data_offsets(void **state)
{
    char *path = path_in(*state, "offs.safetensors");
    write_crafted(path, "{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", ~0ull,
                  4);
    expect_refused(path, "tensor 'x': data_offsets [4, 0] begin after they end");
    write_crafted(path, "{\"x\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0]}}", ~0ull, 4);
    expect_refused(path, "tensor 'x': \"data_offsets\" is not [begin, end]");
    write_crafted(path, "{\"x\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[-1,3]}}", ~0ull,
                  4);
    expect_refused(path, "tensor 'x': \"data_offsets\" is not [begin, end]");
    write_crafted(path, "{\"x\":{\"dtype\":\"U8\",\"shape\":[4]}}", ~0ull, 4);
    expect_refused(path, "tensor 'x': \"data_offsets\" is missing");
    write_crafted(path, "{\"x\":[1,2]}", ~0ull, 0);
    expect_refused(path, "tensor 'x': entry is not an object");
    free(path);
}

static void test_refuses_bad_metadata(void **state)
{
    char *path = path_in(*state, "meta.safetensors");
    write_crafted(path, "{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", ~0ull, 0);
    expect_refused(path, "\"__metadata__\" entry 'n' is not a string");
    write_crafted(path, "{\"__metadata__\":[\"pt\"]}", ~0ull, 0);
    expect_refused(path, "\"__metadata__\" is not an object");
    free(path);
}

static void test_refuses_missing_file(void **state)
{
    char *path = path_in(*state, "absent.safetensors");
    expect_refused(path, "cannot open");
    free(path);
}

/* A hand-written file that is valid, with a header not padded to 8 and the
 * metadata last: the reader must not depend on our writer's habits. */
static void test_accepts_unpadded_handwritten_file(void **state)
{
    char *path = path_in(*state, "hand.safetensors");
    write_crafted(path,
                  "{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[4,7]},"
                  "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                  "\"__metadata__\":{\"k\":\"v\"}}",
                  ~0ull, 7);
    errbuf e = {{0}};
    safetensors *st = safetensors_open(path, &e);
    if (!st)
        fail_msg("%s", e.msg);
    assert_int_equal(safetensors_count(st), 2);
    /* In data order, not header order. */
    assert_string_equal(safetensors_at(st, 0)->name, "a");
    assert_string_equal(safetensors_at(st, 1)->name, "b");
    assert_string_equal(safetensors_metadata(st, "k"), "v");
    const st_tensor *b = safetensors_find(st, "b");
    assert_non_null(b);
    assert_int_equal(((const unsigned char *)b->data)[0], 4);
    const st_tensor *a = safetensors_find(st, "a");
    float out[2];
    assert_int_equal(st_tensor_to_f32(a, out, &e), 0);
    /* bytes 00 01 02 03: bf16 0x0100, 0x0302 -> f32 0x01000000, 0x03020000 */
    assert_int_equal(f32_bits(out[0]), 0x01000000);
    assert_int_equal(f32_bits(out[1]), 0x03020000);
    safetensors_close(st);
    free(path);
}

/* ------------------------------------------------------ model directories */

static void write_shard(const char *dir, const char *name, const char *t1, const char *t2,
                        const float *data)
{
    char *path = path_in(dir, name);
    st_writer *w = st_writer_new();
    st_writer_add(w, t1, ST_F32, 1, (int64_t[]){2}, data);
    if (t2)
        st_writer_add(w, t2, ST_F32, 2, (int64_t[]){1, 2}, data + 2);
    st_writer_metadata(w, "format", "pt");
    errbuf e = {{0}};
    if (st_writer_write(w, path, &e) != 0)
        fail_msg("%s", e.msg);
    st_writer_free(w);
    free(path);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *path = path_in(dir, name);
    write_bytes(path, text, strlen(text));
    free(path);
}

static void test_open_dir_reads_sharded_index(void **state)
{
    const char *dir = *state;
    const float v[4] = {1, 2, 3, 4};
    write_shard(dir, "model-00001-of-00002.safetensors", "model.embed_tokens.weight",
                "model.norm.weight", v);
    write_shard(dir, "model-00002-of-00002.safetensors", "lm_head.weight", NULL, v + 2);
    write_text(dir, "model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 24}, \"weight_map\": {"
               "\"lm_head.weight\": \"model-00002-of-00002.safetensors\","
               "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
               "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
    errbuf e = {{0}};
    safetensors *st = safetensors_open_dir(dir, &e);
    if (!st)
        fail_msg("%s", e.msg);
    assert_int_equal(safetensors_count(st), 3);
    const st_tensor *t = safetensors_find(st, "lm_head.weight");
    assert_non_null(t);
    assert_non_null(strstr(t->file_path, "model-00002-of-00002.safetensors"));
    float out[2];
    assert_int_equal(st_tensor_to_f32(t, out, &e), 0);
    assert_true(out[0] == 3.0f && out[1] == 4.0f);
    t = safetensors_find(st, "model.norm.weight");
    assert_non_null(t);
    assert_non_null(strstr(t->file_path, "model-00001-of-00002.safetensors"));
    assert_int_equal(t->n_dims, 2);
    assert_string_equal(safetensors_metadata(st, "format"), "pt");
    safetensors_close(st);

    /* The index names the wrong shard for a tensor. */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {"
               "\"lm_head.weight\": \"model-00001-of-00002.safetensors\","
               "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
               "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}");
    st = safetensors_open_dir(dir, &e);
    assert_null(st);
    assert_msg_has(&e, "tensor 'lm_head.weight' is listed in shard "
                       "'model-00001-of-00002.safetensors' but found in");

    /* The index names a tensor no shard holds. */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.layers.0.mlp.up_proj.weight\": "
               "\"model-00002-of-00002.safetensors\"}}");
    st = safetensors_open_dir(dir, &e);
    assert_null(st);
    assert_msg_has(&e, "tensor 'model.layers.0.mlp.up_proj.weight' is listed in shard "
                       "'model-00002-of-00002.safetensors' but not found there");

    /* A missing shard file names that file. */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"x\": \"model-00003-of-00003.safetensors\"}}");
    st = safetensors_open_dir(dir, &e);
    assert_null(st);
    assert_msg_has(&e, "model-00003-of-00003.safetensors: cannot open");

    /* Shards outside the directory are refused, not opened. */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"x\": \"../elsewhere.safetensors\"}}");
    st = safetensors_open_dir(dir, &e);
    assert_null(st);
    assert_msg_has(&e, "is not a file in the model directory");

    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": [1]}");
    st = safetensors_open_dir(dir, &e);
    assert_null(st);
    assert_msg_has(&e, "model.safetensors.index.json: \"weight_map\" is missing or not an object");

    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {");
    st = safetensors_open_dir(dir, &e);
    assert_null(st);
    assert_msg_has(&e, "model.safetensors.index.json: not valid JSON");
}

static void test_open_dir_reads_single_file(void **state)
{
    const char *dir = *state;
    const float v[4] = {1, 2, 3, 4};
    write_shard(dir, "model.safetensors", "w", "v", v);
    errbuf e = {{0}};
    safetensors *st = safetensors_open_dir(dir, &e);
    if (!st)
        fail_msg("%s", e.msg);
    assert_int_equal(safetensors_count(st), 2);
    assert_non_null(safetensors_find(st, "v"));
    safetensors_close(st);
}

static void test_open_dir_without_weights_says_so(void **state)
{
    const char *dir = *state;
    errbuf e = {{0}};
    assert_null(safetensors_open_dir(dir, &e));
    assert_msg_has(&e, dir);
    assert_msg_has(&e, "no model.safetensors or model.safetensors.index.json");
    char *missing = path_in(dir, "nope");
    assert_null(safetensors_open_dir(missing, &e));
    assert_msg_has(&e, missing);
    free(missing);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)
    const struct CMUnitTest tests[] = {
        T(test_dtype_table_names_and_sizes),
        T(test_round_trip_keeps_names_shapes_values_and_metadata),
        T(test_writer_without_tensors_writes_a_readable_file),
        T(test_check_shape_names_tensor_and_both_shapes),
        T(test_writer_refuses_duplicate_name_and_leaves_no_file),
        T(test_writer_refuses_bad_entries),
        T(test_writer_reports_unwritable_path),
        T(test_refuses_file_shorter_than_length_field),
        T(test_refuses_header_length_past_end),
        T(test_refuses_header_length_over_limit),
        T(test_refuses_truncated_data),
        T(test_refuses_overlapping_offsets),
        T(test_refuses_gap_between_tensors),
        T(test_refuses_gap_at_start),
        T(test_refuses_trailing_bytes),
        T(test_refuses_size_mismatch),
        T(test_refuses_invalid_json),
        T(test_refuses_unknown_dtype),
        T(test_refuses_bad_shape),
        T(test_refuses_bad_data_offsets),
        T(test_refuses_bad_metadata),
        T(test_refuses_missing_file),
        T(test_accepts_unpadded_handwritten_file),
        T(test_open_dir_reads_sharded_index),
        T(test_open_dir_reads_single_file),
        T(test_open_dir_without_weights_says_so),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
