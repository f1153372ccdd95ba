/* make_random_llama: writes a seeded random Llama in Hugging Face layout
 * (config.json + model.safetensors, F32 or BF16) and a .jsonl of random
 * token rows, with no Python: for the multi-rank tests, the loading-memory
 * test (a model of a few hundred MB) and the plan checks.
 *   make_random_llama --out DIR [--hidden 64 --intermediate 96 --layers 2
 *       --heads 4 --kv_heads 2 --vocab 96 --dtype f32|bf16 --tied 0|1
 *       --seed 1 --rows 12 --min_len 5 --max_len 40] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_config.h"
#include "lora.h"
#include "rng.h"
#include "safetensors.h"

static int arg_int(int argc, char **argv, const char *name, int fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return atoi(argv[i + 1]);
    return fallback;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return fallback;
}

typedef struct tensor_buf {
    char name[96];
    int n_dims;
    int64_t shape[2];
    void *data;
} tensor_buf;

static void fill(tensor_buf *t, rng *r, int bf16, int is_norm, float scale)
{
    size_t n = (size_t)t->shape[0] * (size_t)(t->n_dims > 1 ? t->shape[1] : 1);
    t->data = xmalloc(n * (bf16 ? 2 : 4));
    for (size_t i = 0; i < n; i++) {
        float v = is_norm ? 1.0f + 0.1f * (2.0f * rng_next_uniform(r) - 1.0f)
                          : scale * (2.0f * rng_next_uniform(r) - 1.0f);
        if (bf16) {
            uint32_t bits;
            memcpy(&bits, &v, 4);
            ((uint16_t *)t->data)[i] = (uint16_t)(bits >> 16);
        } else {
            ((float *)t->data)[i] = v;
        }
    }
}

int main(int argc, char **argv)
{
    const char *out = arg_str(argc, argv, "--out", NULL);
    if (!out) {
        fprintf(stderr, "usage: make_random_llama --out DIR [options]\n");
        return 2;
    }
    llama_config c = {0};
    c.hidden_size = arg_int(argc, argv, "--hidden", 64);
    c.intermediate_size = arg_int(argc, argv, "--intermediate", 96);
    c.n_layers = arg_int(argc, argv, "--layers", 2);
    c.n_heads = arg_int(argc, argv, "--heads", 4);
    c.n_kv_heads = arg_int(argc, argv, "--kv_heads", 2);
    c.head_dim = c.hidden_size / c.n_heads;
    c.vocab_size = arg_int(argc, argv, "--vocab", 96);
    c.max_position_embeddings = 4096;
    c.tie_word_embeddings = arg_int(argc, argv, "--tied", 0);
    c.bos_token_id = 1, c.eos_token_id = 2, c.pad_token_id = -1;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.rope_type = ROPE_DEFAULT;
    int bf16 = strcmp(arg_str(argc, argv, "--dtype", "f32"), "bf16") == 0;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "%s", bf16 ? "bfloat16" : "float32");
    uint64_t seed = (uint64_t)arg_int(argc, argv, "--seed", 1);
    mkdir(out, 0777);

    errbuf e;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", out);
    if (llama_config_save(&c, path, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    int n_max = 4 + 9 * c.n_layers;
    tensor_buf *ts = xcalloc((size_t)n_max, sizeof *ts);
    int n = 0;
    rng r;
    rng_init(&r, seed, 7);
    int q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
#define ADD(nm, d0, d1, norm)                                                                     \
    do {                                                                                           \
        tensor_buf *t = &ts[n++];                                                                  \
        snprintf(t->name, sizeof t->name, "%s", nm);                                               \
        t->n_dims = (d1) ? 2 : 1;                                                                  \
        t->shape[0] = (d0), t->shape[1] = (d1);                                                    \
        fill(t, &r, bf16, norm, 0.5f / (float)c.hidden_size * 8.0f);                               \
    } while (0)
    ADD("model.embed_tokens.weight", c.vocab_size, c.hidden_size, 0);
    char nm[96];
    for (int l = 0; l < c.n_layers; l++) {
        int outs[N_LINEARS] = {q, kv, kv, c.hidden_size, c.intermediate_size, c.intermediate_size, c.hidden_size};
        int ins[N_LINEARS] = {c.hidden_size, c.hidden_size, c.hidden_size, q, c.hidden_size, c.hidden_size,
                              c.intermediate_size};
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        ADD(nm, c.hidden_size, 0, 1);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(nm, c.hidden_size, 0, 1);
        for (int lin = 0; lin < N_LINEARS; lin++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, lora_module_path(lin));
            ADD(nm, outs[lin], ins[lin], 0);
        }
    }
    ADD("model.norm.weight", c.hidden_size, 0, 1);
    if (!c.tie_word_embeddings)
        ADD("lm_head.weight", c.vocab_size, c.hidden_size, 0);
    st_writer *w = st_writer_new();
    for (int i = 0; i < n; i++)
        st_writer_add(w, ts[i].name, bf16 ? ST_BF16 : ST_F32, ts[i].n_dims, ts[i].shape, ts[i].data);
    st_writer_metadata(w, "format", "pt");
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    if (st_writer_write(w, path, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    st_writer_free(w);
    for (int i = 0; i < n; i++)
        free(ts[i].data);
    free(ts);

    int rows = arg_int(argc, argv, "--rows", 12);
    int min_len = arg_int(argc, argv, "--min_len", 5), max_len = arg_int(argc, argv, "--max_len", 40);
    snprintf(path, sizeof path, "%s/data.jsonl", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    rng_init(&r, seed, 8);
    for (int i = 0; i < rows; i++) {
        int len = min_len + (int)(rng_next_u64(&r) % (uint64_t)(max_len - min_len + 1));
        fprintf(f, "{\"input_ids\": [");
        for (int t = 0; t < len; t++)
            fprintf(f, "%s%d", t ? ", " : "", (int)(rng_next_u64(&r) % (uint64_t)c.vocab_size));
        fprintf(f, "]}\n");
    }
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}
