/* fuzz_hf_config.c: libFuzzer target for a model's config.json
 * (io/hf_config.c, llama_config_load), untrusted like the rest of a
 * downloaded model directory.
 *
 * Each input is written as config.json in a private directory and loaded.
 * The sanitizers and libFuzzer's limits catch crashes, undefined behaviour,
 * hangs and unbounded memory; the target checks that a refusal is one
 * non-empty line and that an accepted config holds what the model code
 * relies on: positive sizes, whole kv-head groups, positive finite norm eps,
 * rope theta and llama3 factors with high > low, token ids >= -1, 0/1 flags,
 * a terminated torch_dtype, an nf4/fp4 quant type when bnb_4bit. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "hf_config.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_hf_config: an accepted config breaks: %s\n", what);
        abort();
    }
}

static int pos_finite(float f) { return f > 0 && isfinite(f); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("config.json", data, size);
    llama_config c;
    errbuf e = {{0}};
    if (llama_config_load(path, &c, &e) != 0) {
        fuzz_check_error("fuzz_hf_config", "llama_config_load", &e);
        return 0;
    }
    check(c.hidden_size > 0 && c.intermediate_size > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 &&
              c.head_dim > 0 && c.vocab_size > 0 && c.max_position_embeddings > 0,
          "a size is not positive");
    check(c.n_heads % c.n_kv_heads == 0, "num_attention_heads is not a multiple of num_key_value_heads");
    check(pos_finite(c.rms_norm_eps) && pos_finite(c.rope_theta), "rms_norm_eps or rope_theta");
    check(c.rope_type == ROPE_DEFAULT || c.rope_type == ROPE_LLAMA3, "rope type");
    if (c.rope_type == ROPE_LLAMA3)
        check(pos_finite(c.rope_factor) && pos_finite(c.rope_low_freq_factor) &&
                  pos_finite(c.rope_high_freq_factor) && c.rope_high_freq_factor > c.rope_low_freq_factor &&
                  c.rope_original_max_position_embeddings > 0,
              "llama3 rope factors");
    check(c.bos_token_id >= -1 && c.eos_token_id >= -1 && c.pad_token_id >= -1, "a token id below -1");
    check((c.tie_word_embeddings == 0 || c.tie_word_embeddings == 1) && (c.bnb_4bit == 0 || c.bnb_4bit == 1) &&
              (c.bnb_4bit_nested == 0 || c.bnb_4bit_nested == 1),
          "a flag is not 0 or 1");
    check(memchr(c.torch_dtype, 0, sizeof c.torch_dtype) != NULL, "torch_dtype is not terminated");
    if (c.bnb_4bit)
        check(strcmp(c.bnb_4bit_quant_type, "nf4") == 0 || strcmp(c.bnb_4bit_quant_type, "fp4") == 0,
              "bnb_4bit_quant_type");
    return 0;
}
