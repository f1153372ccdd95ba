/* test_hf_config.c: config.json of LlamaForCausalLM, in and out.
 *
 * The configs below are the shapes transformers writes: Llama 3.x with
 * rope_scaling "llama3" (transformers 4), the same with rope_parameters
 * (transformers 5), and a bare one that relies on LlamaConfig's defaults.
 * Errors must name the file and the field. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_config.h"

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int dir_setup(void **state)
{
    const char *tmpdir = getenv("TMPDIR");
    char *dir = malloc(4096);
    snprintf(dir, 4096, "%s/cfg-test.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
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

/* Writes TEXT to DIR/config.json and returns that path (static buffer). */
static const char *write_config(const char *dir, const char *text)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

#define assert_msg_has(e, needle)                                                             \
    do {                                                                                      \
        if (!strstr((e)->msg, (needle)))                                                      \
            fail_msg("error message \"%s\" does not mention \"%s\"", (e)->msg, (needle));   \
    } while (0)

/* Loading TEXT fails; the message names config.json and NEEDLE. */
static void expect_refused(const char *dir, const char *text, const char *needle)
{
    const char *path = write_config(dir, text);
    llama_config cfg;
    errbuf e = {{0}};
    if (llama_config_load(path, &cfg, &e) == 0)
        fail_msg("config accepted; expected an error mentioning \"%s\":\n%s", needle, text);
    assert_msg_has(&e, path);
    assert_msg_has(&e, needle);
}

static const char LLAMA32_ROPE_SCALING[] =
    "{\n"
    "  \"architectures\": [\"LlamaForCausalLM\"],\n"
    "  \"attention_bias\": false,\n"
    "  \"bos_token_id\": 128000,\n"
    "  \"eos_token_id\": [128001, 128008, 128009],\n"
    "  \"head_dim\": 64,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 2048,\n"
    "  \"intermediate_size\": 8192,\n"
    "  \"max_position_embeddings\": 131072,\n"
    "  \"model_type\": \"llama\",\n"
    "  \"num_attention_heads\": 32,\n"
    "  \"num_hidden_layers\": 16,\n"
    "  \"num_key_value_heads\": 8,\n"
    "  \"pad_token_id\": null,\n"
    "  \"rms_norm_eps\": 1e-05,\n"
    "  \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0,\n"
    "                   \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},\n"
    "  \"rope_theta\": 500000.0,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"vocab_size\": 128256\n"
    "}\n";

static void test_llama3_rope_scaling_is_read(void **state)
{
    const char *path = write_config(*state, LLAMA32_ROPE_SCALING);
    llama_config cfg;
    errbuf e = {{0}};
    if (llama_config_load(path, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.hidden_size, 2048);
    assert_int_equal(cfg.intermediate_size, 8192);
    assert_int_equal(cfg.n_layers, 16);
    assert_int_equal(cfg.n_heads, 32);
    assert_int_equal(cfg.n_kv_heads, 8);
    assert_int_equal(cfg.head_dim, 64);
    assert_int_equal(cfg.vocab_size, 128256);
    assert_int_equal(cfg.max_position_embeddings, 131072);
    assert_int_equal(cfg.tie_word_embeddings, 1);
    assert_int_equal(cfg.bos_token_id, 128000);
    assert_int_equal(cfg.eos_token_id, 128001); /* the first of the list */
    assert_int_equal(cfg.pad_token_id, -1);
    assert_true(cfg.rms_norm_eps == 1e-5f);
    assert_true(cfg.rope_theta == 500000.0f);
    assert_int_equal(cfg.rope_type, ROPE_LLAMA3);
    assert_true(cfg.rope_factor == 32.0f);
    assert_true(cfg.rope_low_freq_factor == 1.0f);
    assert_true(cfg.rope_high_freq_factor == 4.0f);
    assert_int_equal(cfg.rope_original_max_position_embeddings, 8192);
    assert_string_equal(cfg.torch_dtype, "bfloat16");

    /* A directory path means DIR/config.json. */
    llama_config cfg2;
    if (llama_config_load(*state, &cfg2, &e) != 0)
        fail_msg("%s", e.msg);
    assert_memory_equal(&cfg, &cfg2, sizeof cfg);
}

/* What transformers 5's LlamaConfig.save_pretrained writes. */
static void test_rope_parameters_are_read(void **state)
{
    const char *path = write_config(
        *state,
        "{\"attention_bias\": false, \"bos_token_id\": 1, \"eos_token_id\": 2, \"head_dim\": 16,"
        " \"hidden_act\": \"silu\", \"hidden_size\": 64, \"intermediate_size\": 128,"
        " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"model_type\": \"llama\","
        " \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"num_key_value_heads\": 2,"
        " \"pad_token_id\": null, \"rms_norm_eps\": 1e-06,"
        " \"rope_parameters\": {\"factor\": 8.0, \"high_freq_factor\": 4.0,"
        "   \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192,"
        "   \"rope_theta\": 500000.0, \"rope_type\": \"llama3\"},"
        " \"tie_word_embeddings\": false, \"dtype\": \"float32\", \"vocab_size\": 100}");
    llama_config cfg;
    errbuf e = {{0}};
    if (llama_config_load(path, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.rope_type, ROPE_LLAMA3);
    assert_true(cfg.rope_theta == 500000.0f);
    assert_true(cfg.rope_factor == 8.0f);
    assert_int_equal(cfg.rope_original_max_position_embeddings, 8192);
    assert_int_equal(cfg.eos_token_id, 2);
    assert_int_equal(cfg.n_kv_heads, 2);
    assert_string_equal(cfg.torch_dtype, "float32");

    path = write_config(*state,
                        "{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
                        " \"num_attention_heads\": 4, \"vocab_size\": 100,"
                        " \"rope_parameters\": {\"rope_theta\": 10000.0, \"rope_type\": \"default\"}}");
    if (llama_config_load(path, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.rope_type, ROPE_DEFAULT);
    assert_true(cfg.rope_theta == 10000.0f);
}

static void test_defaults_follow_llama_config(void **state)
{
    const char *path = write_config(*state,
                                    "{\"hidden_size\": 96, \"intermediate_size\": 256,"
                                    " \"num_hidden_layers\": 3, \"num_attention_heads\": 6,"
                                    " \"vocab_size\": 512, \"head_dim\": null,"
                                    " \"rope_scaling\": null}");
    llama_config cfg;
    errbuf e = {{0}};
    if (llama_config_load(path, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.n_kv_heads, 6);
    assert_int_equal(cfg.head_dim, 16);
    assert_int_equal(cfg.max_position_embeddings, 2048);
    assert_int_equal(cfg.tie_word_embeddings, 0);
    assert_int_equal(cfg.bos_token_id, -1);
    assert_int_equal(cfg.eos_token_id, -1);
    assert_int_equal(cfg.pad_token_id, -1);
    assert_true(cfg.rms_norm_eps == 1e-6f);
    assert_true(cfg.rope_theta == 10000.0f);
    assert_int_equal(cfg.rope_type, ROPE_DEFAULT);
    assert_string_equal(cfg.torch_dtype, "");

    /* The older spelling "type", and "default" meaning no scaling. */
    path = write_config(*state,
                        "{\"hidden_size\": 96, \"intermediate_size\": 256, \"num_hidden_layers\": 3,"
                        " \"num_attention_heads\": 6, \"vocab_size\": 512,"
                        " \"rope_scaling\": {\"type\": \"default\"}}");
    if (llama_config_load(path, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.rope_type, ROPE_DEFAULT);
}

#define BASE "\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2, " \
             "\"vocab_size\": 100"

static void test_refuses_bad_configs(void **state)
{
    const char *dir = *state;
    expect_refused(dir, "{\"intermediate_size\": 128, \"num_hidden_layers\": 2, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 100}",
                   "\"hidden_size\" is missing");
    expect_refused(dir, "{" BASE "}", "\"num_attention_heads\" is missing");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 0}",
                   "\"num_attention_heads\" must be a positive integer");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": \"4\"}",
                   "\"num_attention_heads\" must be a positive integer");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4.0}",
                   "\"num_attention_heads\" must be a positive integer");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, \"num_key_value_heads\": 3}",
                   "\"num_attention_heads\" 4 is not a multiple of \"num_key_value_heads\" 3");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 5}",
                   "\"hidden_size\" 64 is not divisible by \"num_attention_heads\" 5");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, \"model_type\": \"mistral\"}",
                   "\"model_type\" is 'mistral'");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, "
                        "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}",
                   "rope_type 'yarn' is not supported");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, "
                        "\"rope_parameters\": {\"rope_type\": \"dynamic\", \"factor\": 4.0}}",
                   "\"rope_parameters\" rope_type 'dynamic' is not supported");
    /* found by tests/fuzz/fuzz_hf_config: a newline the file spells \n is
     * quoted escaped, so the error stays one line */
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, "
                        "\"rope_parameters\": {\"type\": \"de\\nfault\"}}",
                   "rope_type 'de\\nfault' is not supported");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, "
                        "\"rope_scaling\": {\"rope_type\": \"llama3\", \"low_freq_factor\": 1.0, "
                        "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}}",
                   "\"rope_scaling.factor\" is missing");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, "
                        "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                        "\"low_freq_factor\": 4.0, \"high_freq_factor\": 1.0, "
                        "\"original_max_position_embeddings\": 8192}}",
                   "high_freq_factor 1 must be greater than low_freq_factor 4");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, \"rope_scaling\": {\"factor\": 2}}",
                   "\"rope_scaling\" has no \"rope_type\"");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, \"rms_norm_eps\": -1}",
                   "\"rms_norm_eps\" must be a positive number");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, \"tie_word_embeddings\": 1}",
                   "\"tie_word_embeddings\" must be true or false");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, \"eos_token_id\": \"</s>\"}",
                   "\"eos_token_id\" must be a token id");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4, \"torch_dtype\": 16}",
                   "\"torch_dtype\" must be a dtype name");
    expect_refused(dir, "{" BASE ", \"num_attention_heads\": 4,", "not valid JSON");
    expect_refused(dir, "[1]", "not a JSON object");

    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nothing.json", dir);
    llama_config cfg;
    errbuf e = {{0}};
    assert_int_equal(llama_config_load(missing, &cfg, &e), -1);
    assert_msg_has(&e, missing);
    assert_msg_has(&e, "cannot read");
}

static void test_save_then_load_gives_same_config(void **state)
{
    const char *path = write_config(*state, LLAMA32_ROPE_SCALING);
    llama_config cfg, back;
    errbuf e = {{0}};
    if (llama_config_load(path, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    char out[4200];
    snprintf(out, sizeof out, "%s/saved.json", (const char *)*state);
    if (llama_config_save(&cfg, out, &e) != 0)
        fail_msg("%s", e.msg);
    if (llama_config_load(out, &back, &e) != 0)
        fail_msg("%s", e.msg);
    assert_memory_equal(&cfg, &back, sizeof cfg);

    /* Floats are written as the user wrote them, not as 9.99999975e-06. */
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "\"rms_norm_eps\": 1e-5"));
    assert_non_null(strstr(text, "\"rope_theta\": 500000.0"));
    assert_non_null(strstr(text, "\"LlamaForCausalLM\""));
    assert_non_null(strstr(text, "\"pad_token_id\": null"));

    /* Default rope, no dtype: rope_scaling null, torch_dtype float32. */
    memset(&cfg, 0, sizeof cfg);
    cfg.hidden_size = 64;
    cfg.intermediate_size = 128;
    cfg.n_layers = 2;
    cfg.n_heads = 4;
    cfg.n_kv_heads = 4;
    cfg.head_dim = 16;
    cfg.vocab_size = 100;
    cfg.max_position_embeddings = 256;
    cfg.bos_token_id = 1;
    cfg.eos_token_id = 2;
    cfg.pad_token_id = -1;
    cfg.rms_norm_eps = 1e-6f;
    cfg.rope_theta = 10000.0f;
    if (llama_config_save(&cfg, *state, &e) != 0) /* a directory: DIR/config.json */
        fail_msg("%s", e.msg);
    if (llama_config_load(*state, &back, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(back.torch_dtype, "float32");
    strcpy(cfg.torch_dtype, "float32");
    assert_memory_equal(&cfg, &back, sizeof cfg);

    /* Nothing is written for a config that could not be loaded back. */
    cfg.n_kv_heads = 3;
    assert_int_equal(llama_config_save(&cfg, out, &e), -1);
    assert_msg_has(&e, "not a multiple");
    snprintf(out, sizeof out, "%s/no/such/dir/config.json", (const char *)*state);
    cfg.n_kv_heads = 4;
    assert_int_equal(llama_config_save(&cfg, out, &e), -1);
    assert_msg_has(&e, "cannot create");
    assert_msg_has(&e, out);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)
    const struct CMUnitTest tests[] = {
        T(test_llama3_rope_scaling_is_read),
        T(test_rope_parameters_are_read),
        T(test_defaults_follow_llama_config),
        T(test_refuses_bad_configs),
        T(test_save_then_load_gives_same_config),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
