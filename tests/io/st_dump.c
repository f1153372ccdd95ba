/* st_dump.c: the C side of tests/io/safetensors_python.sh, where the PyPI
 * safetensors and transformers packages are the reference.
 *
 *   st_dump PATH [KEY...]       PATH a .safetensors file or a model directory:
 *                               prints JSON {"tensors": [{name, dtype, shape,
 *                               values}], "metadata": {KEY: value or null}}
 *                               (values as strings: floats through
 *                               st_tensor_to_f32 with 9 digits, exact)
 *   st_dump --write-sample PATH writes a fixed file with the C writer
 *   st_dump --config PATH       prints llama_config_load's fields as JSON
 *   st_dump --write-config PATH writes a fixed Llama 3 style config.json
 *
 * Any failure: one line on stderr, exit status 1. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_config.h"
#include "safetensors.h"

static void check_json(int rc, const char *what)
{
    if (rc != 0)
        die(EXIT_FAILURE_RUN, "st_dump: cannot build JSON for %s", what);
}

static void print_json(json_t *root)
{
    check_json(json_dumpf(root, stdout, JSON_INDENT(1)), "stdout");
    if (fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        die(EXIT_FAILURE_RUN, "st_dump: cannot write to stdout");
    json_decref(root);
}

/* Element I of T as text: exact for every dtype (9 digits round-trip fp32). */
static void value_str(const st_tensor *t, const float *f32, size_t i, char *buf, size_t n_buf)
{
    const unsigned char *p = (const unsigned char *)t->data + i * st_dtype_size(t->dtype);
    union {
        int8_t i8; uint8_t u8; int16_t i16; uint16_t u16; int32_t i32; uint32_t u32;
        int64_t i64; uint64_t u64; double f64;
    } v;
    memcpy(&v, p, st_dtype_size(t->dtype));
    switch (t->dtype) {
    case ST_F32: case ST_F16: case ST_BF16: snprintf(buf, n_buf, "%.9g", (double)f32[i]); break;
    case ST_F64: snprintf(buf, n_buf, "%.17g", v.f64); break;
    case ST_BOOL: case ST_U8: snprintf(buf, n_buf, "%u", (unsigned)v.u8); break;
    case ST_I8: snprintf(buf, n_buf, "%d", (int)v.i8); break;
    case ST_I16: snprintf(buf, n_buf, "%d", (int)v.i16); break;
    case ST_U16: snprintf(buf, n_buf, "%u", (unsigned)v.u16); break;
    case ST_I32: snprintf(buf, n_buf, "%" PRId32, v.i32); break;
    case ST_U32: snprintf(buf, n_buf, "%" PRIu32, v.u32); break;
    case ST_I64: snprintf(buf, n_buf, "%" PRId64, v.i64); break;
    case ST_U64: snprintf(buf, n_buf, "%" PRIu64, v.u64); break;
    default: snprintf(buf, n_buf, "?"); break;
    }
}

static json_t *tensor_json(const st_tensor *t)
{
    json_t *obj = json_object(), *shape = json_array(), *values = json_array();
    if (!obj || !shape || !values)
        die(EXIT_FAILURE_RUN, "st_dump: out of memory");
    check_json(json_object_set_new(obj, "name", json_string(t->name)), t->name);
    check_json(json_object_set_new(obj, "dtype", json_string(st_dtype_name(t->dtype))), t->name);
    for (int d = 0; d < t->n_dims; d++)
        check_json(json_array_append_new(shape, json_integer(t->shape[d])), t->name);
    float *f32 = NULL;
    if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) {
        errbuf e;
        f32 = xcalloc(t->n_elems, sizeof *f32);
        if (st_tensor_to_f32(t, f32, &e) != 0)
            die(EXIT_FAILURE_RUN, "%s", e.msg);
    }
    for (size_t i = 0; i < t->n_elems; i++) {
        char buf[64];
        value_str(t, f32, i, buf, sizeof buf);
        check_json(json_array_append_new(values, json_string(buf)), t->name);
    }
    free(f32);
    check_json(json_object_set_new(obj, "shape", shape), t->name);
    check_json(json_object_set_new(obj, "values", values), t->name);
    return obj;
}

static int dump(const char *path, int n_keys, char **keys)
{
    errbuf e;
    struct stat sb;
    int is_dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    safetensors *st = is_dir ? safetensors_open_dir(path, &e) : safetensors_open(path, &e);
    if (!st)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    json_t *root = json_object(), *tensors = json_array(), *meta = json_object();
    if (!root || !tensors || !meta)
        die(EXIT_FAILURE_RUN, "st_dump: out of memory");
    for (size_t i = 0; i < safetensors_count(st); i++)
        check_json(json_array_append_new(tensors, tensor_json(safetensors_at(st, i))), "tensor");
    for (int k = 0; k < n_keys; k++) {
        const char *v = safetensors_metadata(st, keys[k]);
        check_json(json_object_set_new(meta, keys[k], v ? json_string(v) : json_null()), keys[k]);
    }
    check_json(json_object_set_new(root, "tensors", tensors), "tensors");
    check_json(json_object_set_new(root, "metadata", meta), "metadata");
    print_json(root);
    safetensors_close(st);
    return 0;
}

/* The fixed sample; safetensors_python.sh holds the same values. */
static int write_sample(const char *path)
{
    const float f32[6] = {1.5f, -2.25f, 0.0f, 3.0e-8f, 65504.0f, -1.0e30f};
    const uint16_t f16[6] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000};
    const uint16_t bf16[4] = {0x3f80, 0xc040, 0x3e20, 0x7f80};
    const int64_t i64[3] = {-1, 0, INT64_MAX};
    const int32_t i32[2] = {-7, INT32_MAX};
    const int16_t i16[2] = {INT16_MIN, 5};
    const int8_t i8[2] = {INT8_MIN, INT8_MAX};
    const uint8_t u8[3] = {0, 128, 255};
    const uint8_t flags[3] = {1, 0, 1};
    const double f64[2] = {0.1, -1e300};
    const float scalar = 42.0f;
    st_writer *w = st_writer_new();
    st_writer_add(w, "f32", ST_F32, 2, (int64_t[]){2, 3}, f32);
    st_writer_add(w, "f16", ST_F16, 1, (int64_t[]){6}, f16);
    st_writer_add(w, "bf16", ST_BF16, 2, (int64_t[]){2, 2}, bf16);
    st_writer_add(w, "i64", ST_I64, 1, (int64_t[]){3}, i64);
    st_writer_add(w, "i32", ST_I32, 1, (int64_t[]){2}, i32);
    st_writer_add(w, "i16", ST_I16, 1, (int64_t[]){2}, i16);
    st_writer_add(w, "i8", ST_I8, 1, (int64_t[]){2}, i8);
    st_writer_add(w, "u8", ST_U8, 1, (int64_t[]){3}, u8);
    st_writer_add(w, "bool", ST_BOOL, 1, (int64_t[]){3}, flags);
    st_writer_add(w, "f64", ST_F64, 1, (int64_t[]){2}, f64);
    st_writer_add(w, "scalar", ST_F32, 0, NULL, &scalar);
    st_writer_add(w, "empty", ST_F32, 2, (int64_t[]){0, 3}, NULL);
    st_writer_metadata(w, "format", "pt");
    st_writer_metadata(w, "source", "shardtune st_dump");
    errbuf e;
    if (st_writer_write(w, path, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    st_writer_free(w);
    return 0;
}

static int dump_config(const char *path)
{
    llama_config c;
    errbuf e;
    if (llama_config_load(path, &c, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    json_t *o = json_pack(
        "{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:i, s:i, s:f, s:f, s:s, s:f, s:f, "
        "s:f, s:i, s:s}",
        "hidden_size", c.hidden_size, "intermediate_size", c.intermediate_size,
        "num_hidden_layers", c.n_layers, "num_attention_heads", c.n_heads,
        "num_key_value_heads", c.n_kv_heads, "head_dim", c.head_dim, "vocab_size", c.vocab_size,
        "max_position_embeddings", c.max_position_embeddings, "tie_word_embeddings",
        c.tie_word_embeddings, "bos_token_id", c.bos_token_id, "eos_token_id", c.eos_token_id,
        "pad_token_id", c.pad_token_id, "rms_norm_eps", (double)c.rms_norm_eps, "rope_theta",
        (double)c.rope_theta, "rope_type", c.rope_type == ROPE_LLAMA3 ? "llama3" : "default",
        "factor", (double)c.rope_factor, "low_freq_factor", (double)c.rope_low_freq_factor,
        "high_freq_factor", (double)c.rope_high_freq_factor, "original_max_position_embeddings",
        c.rope_original_max_position_embeddings, "torch_dtype", c.torch_dtype);
    if (!o)
        die(EXIT_FAILURE_RUN, "st_dump: cannot build JSON for %s", path);
    print_json(o);
    return 0;
}

/* A Llama 3.2 style config; safetensors_python.sh checks what transformers
 * reads from it. */
static int write_config(const char *path)
{
    llama_config c = {
        .hidden_size = 64, .intermediate_size = 160, .n_layers = 2, .n_heads = 8,
        .n_kv_heads = 2, .head_dim = 16, .vocab_size = 300, .max_position_embeddings = 131072,
        .tie_word_embeddings = 1, .bos_token_id = 1, .eos_token_id = 2, .pad_token_id = -1,
        .rms_norm_eps = 1e-5f, .rope_theta = 500000.0f, .rope_type = ROPE_LLAMA3,
        .rope_factor = 32.0f, .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f,
        .rope_original_max_position_embeddings = 8192, .torch_dtype = "bfloat16",
    };
    errbuf e;
    if (llama_config_save(&c, path, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-sample") == 0)
        return write_sample(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return dump_config(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--write-config") == 0)
        return write_config(argv[2]);
    if (argc >= 2 && argv[1][0] != '-')
        return dump(argv[1], argc - 2, argv + 2);
    fprintf(stderr, "usage: st_dump PATH [METADATA_KEY...] | --write-sample PATH | "
                    "--config PATH | --write-config PATH\n");
    return EXIT_USAGE;
}
