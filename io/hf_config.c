/* hf_config.c: config.json of a Hugging Face LlamaForCausalLM, in and out.
 *
 * Defaults are transformers' LlamaConfig defaults, so that a config that
 * transformers reads without complaint means the same model here.  Both the
 * older "rope_scaling" + "rope_theta" keys and the newer "rope_parameters"
 * object (transformers >= 5) are read; we write the older form, which every
 * transformers version understands. */
#include "hf_config.h"

#include <errno.h>
#include <jansson.h>
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* DIR -> DIR/config.json; a file path as it is.  Caller frees. */
static char *config_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return xstrdup(path);
    size_t n = strlen(path);
    char *p = xmalloc(n + sizeof "/config.json");
    memcpy(p, path, n);
    strcpy(p + n, n && path[n - 1] == '/' ? "config.json" : "/config.json");
    return p;
}

/* A present, non-null value of KEY, or NULL. */
static json_t *get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* KEY as a positive int; DEF when absent/null and not required. */
static int get_pos_int(json_t *obj, const char *file, const char *prefix, const char *key,
                       int required, int def, int *out, errbuf *e)
{
    json_t *v = get(obj, key);
    if (!v) {
        if (required)
            return err_set(e, "%s: \"%s%s\" is missing (required)", file, prefix, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT_MAX)
        return err_set(e, "%s: \"%s%s\" must be a positive integer", file, prefix, key);
    *out = (int)json_integer_value(v);
    return 0;
}

/* KEY as a positive number (int or real); DEF when absent/null and not required. */
static int get_pos_float(json_t *obj, const char *file, const char *prefix, const char *key,
                         int required, float def, float *out, errbuf *e)
{
    json_t *v = get(obj, key);
    if (!v) {
        if (required)
            return err_set(e, "%s: \"%s%s\" is missing (required)", file, prefix, key);
        *out = def;
        return 0;
    }
    /* the model computes in fp32: a value beyond FLT_MAX would become inf
     * (found by tests/fuzz/fuzz_hf_config) */
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !(json_number_value(v) <= FLT_MAX))
        return err_set(e, "%s: \"%s%s\" must be a positive number (at most %g, the fp32 range)", file, prefix, key,
                       (double)FLT_MAX);
    *out = (float)json_number_value(v);
    return 0;
}

/* A token id: -1 when absent or null; a list (eos of Llama 3) gives its first. */
static int get_token_id(json_t *obj, const char *file, const char *key, int *out, errbuf *e)
{
    json_t *v = get(obj, key);
    if (json_is_array(v))
        v = json_array_size(v) ? json_array_get(v, 0) : NULL;
    if (!v) {
        *out = -1;
        return 0;
    }
    /* -1 is what some older configs write for "none". */
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > INT_MAX)
        return err_set(e, "%s: \"%s\" must be a token id (a non-negative integer, a list of them, "
                          "or null)", file, key);
    *out = (int)json_integer_value(v);
    return 0;
}

/* rope_scaling or rope_parameters (FIELD names which, for messages). */
static int rope_parse(json_t *rope, const char *file, const char *field, llama_config *cfg,
                      errbuf *e)
{
    if (!json_is_object(rope))
        return err_set(e, "%s: \"%s\" must be an object or null", file, field);
    json_t *type = get(rope, "rope_type");
    if (!type)
        type = get(rope, "type"); /* the older spelling */
    if (!json_is_string(type))
        return err_set(e, "%s: \"%s\" has no \"rope_type\" string", file, field);
    const char *name = json_string_value(type);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", field);
    if (strcmp(name, "default") == 0) {
        cfg->rope_type = ROPE_DEFAULT;
        return 0;
    }
    if (strcmp(name, "llama3") != 0)
        return err_set(e, "%s: \"%s\" rope_type '%s' is not supported (only 'default' and "
                          "'llama3')", file, field, name);
    cfg->rope_type = ROPE_LLAMA3;
    if (get_pos_float(rope, file, prefix, "factor", 1, 0, &cfg->rope_factor, e) ||
        get_pos_float(rope, file, prefix, "low_freq_factor", 1, 0, &cfg->rope_low_freq_factor,
                      e) ||
        get_pos_float(rope, file, prefix, "high_freq_factor", 1, 0, &cfg->rope_high_freq_factor,
                      e) ||
        get_pos_int(rope, file, prefix, "original_max_position_embeddings", 1, 0,
                    &cfg->rope_original_max_position_embeddings, e))
        return -1;
    return 0;
}

/* What must hold for shardtune to build the model (load and save). */
static int config_check(const llama_config *cfg, const char *file, errbuf *e)
{
    if (cfg->hidden_size <= 0 || cfg->intermediate_size <= 0 || cfg->n_layers <= 0 ||
        cfg->n_heads <= 0 || cfg->n_kv_heads <= 0 || cfg->head_dim <= 0 || cfg->vocab_size <= 0 ||
        cfg->max_position_embeddings <= 0)
        return err_set(e, "%s: sizes must be positive integers (hidden_size %d, "
                          "intermediate_size %d, num_hidden_layers %d, num_attention_heads %d, "
                          "num_key_value_heads %d, head_dim %d, vocab_size %d, "
                          "max_position_embeddings %d)", file, cfg->hidden_size,
                       cfg->intermediate_size, cfg->n_layers, cfg->n_heads, cfg->n_kv_heads,
                       cfg->head_dim, cfg->vocab_size, cfg->max_position_embeddings);
    /* Grouped-query attention: each kv head serves a whole number of heads. */
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return err_set(e, "%s: \"num_attention_heads\" %d is not a multiple of "
                          "\"num_key_value_heads\" %d", file, cfg->n_heads, cfg->n_kv_heads);
    if (!(cfg->rms_norm_eps > 0) || !(cfg->rope_theta > 0))
        return err_set(e, "%s: \"rms_norm_eps\" and \"rope_theta\" must be positive", file);
    if (cfg->rope_type == ROPE_LLAMA3) {
        if (!(cfg->rope_factor > 0) || !(cfg->rope_low_freq_factor > 0) ||
            cfg->rope_original_max_position_embeddings <= 0)
            return err_set(e, "%s: llama3 rope_scaling needs positive factor, low_freq_factor, "
                              "high_freq_factor and original_max_position_embeddings", file);
        /* The llama3 ramp divides by (high - low). */
        if (!(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor))
            return err_set(e, "%s: llama3 rope_scaling: high_freq_factor %g must be greater than "
                              "low_freq_factor %g", file, cfg->rope_high_freq_factor,
                           cfg->rope_low_freq_factor);
    } else if (cfg->rope_type != ROPE_DEFAULT) {
        return err_set(e, "%s: unknown rope type %d", file, (int)cfg->rope_type);
    }
    return 0;
}

/* quantization_config: bitsandbytes 4-bit is read; any other method
 * (8-bit, GPTQ, AWQ, ...) stores weights shardtune cannot read. */
static int quantization_parse(json_t *q, const char *file, llama_config *cfg, errbuf *e)
{
    if (!json_is_object(q))
        return err_set(e, "%s: \"quantization_config\" must be an object", file);
    json_t *method = get(q, "quant_method");
    const char *name = json_is_string(method) ? json_string_value(method) : "?";
    if (method && strcmp(name, "bitsandbytes") != 0)
        return err_set(e, "%s: \"quantization_config\": quant_method '%s' is not supported (only bitsandbytes "
                          "4-bit checkpoints are)", file, name);
    if (json_is_true(get(q, "load_in_8bit")))
        return err_set(e, "%s: \"quantization_config\": load_in_8bit checkpoints are not supported (only 4-bit)",
                       file);
    if (!json_is_true(get(q, "load_in_4bit")))
        return err_set(e, "%s: \"quantization_config\": expected load_in_4bit true (a bitsandbytes 4-bit "
                          "checkpoint)", file);
    json_t *type = get(q, "bnb_4bit_quant_type"), *nested = get(q, "bnb_4bit_use_double_quant");
    const char *t = type ? (json_is_string(type) ? json_string_value(type) : "?") : "fp4"; /* bitsandbytes' default */
    if (strcmp(t, "nf4") != 0 && strcmp(t, "fp4") != 0)
        return err_set(e, "%s: \"quantization_config.bnb_4bit_quant_type\" '%s' is not one of nf4, fp4", file, t);
    if (nested && !json_is_boolean(nested))
        return err_set(e, "%s: \"quantization_config.bnb_4bit_use_double_quant\" must be true or false", file);
    cfg->bnb_4bit = 1;
    strcpy(cfg->bnb_4bit_quant_type, t);
    cfg->bnb_4bit_nested = json_is_true(nested);
    return 0;
}

static int config_parse(json_t *root, const char *file, llama_config *cfg, errbuf *e)
{
    if (!json_is_object(root))
        return err_set(e, "%s: not a JSON object", file);
    json_t *model_type = get(root, "model_type");
    if (model_type && (!json_is_string(model_type) ||
                       strcmp(json_string_value(model_type), "llama") != 0)) {
        const char *name = json_is_string(model_type) ? json_string_value(model_type) : "?";
        return err_set(e, "%s: \"model_type\" is '%s', not 'llama': shardtune runs Llama models "
                          "only", file, name);
    }
    if (get_pos_int(root, file, "", "hidden_size", 1, 0, &cfg->hidden_size, e) ||
        get_pos_int(root, file, "", "intermediate_size", 1, 0, &cfg->intermediate_size, e) ||
        get_pos_int(root, file, "", "num_hidden_layers", 1, 0, &cfg->n_layers, e) ||
        get_pos_int(root, file, "", "num_attention_heads", 1, 0, &cfg->n_heads, e) ||
        get_pos_int(root, file, "", "num_key_value_heads", 0, cfg->n_heads, &cfg->n_kv_heads, e) ||
        get_pos_int(root, file, "", "vocab_size", 1, 0, &cfg->vocab_size, e) ||
        get_pos_int(root, file, "", "max_position_embeddings", 0, 2048,
                    &cfg->max_position_embeddings, e))
        return -1;
    if (!get(root, "head_dim") && cfg->hidden_size % cfg->n_heads != 0)
        return err_set(e, "%s: \"hidden_size\" %d is not divisible by \"num_attention_heads\" %d "
                          "(and no \"head_dim\" is given)", file, cfg->hidden_size, cfg->n_heads);
    if (get_pos_int(root, file, "", "head_dim", 0, cfg->hidden_size / cfg->n_heads,
                    &cfg->head_dim, e) ||
        get_pos_float(root, file, "", "rms_norm_eps", 0, 1e-6f, &cfg->rms_norm_eps, e) ||
        get_pos_float(root, file, "", "rope_theta", 0, 10000.0f, &cfg->rope_theta, e) ||
        get_token_id(root, file, "bos_token_id", &cfg->bos_token_id, e) ||
        get_token_id(root, file, "eos_token_id", &cfg->eos_token_id, e) ||
        get_token_id(root, file, "pad_token_id", &cfg->pad_token_id, e))
        return -1;

    json_t *tie = get(root, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie))
        return err_set(e, "%s: \"tie_word_embeddings\" must be true or false", file);
    cfg->tie_word_embeddings = json_is_true(tie);

    /* "dtype" is the newer name of "torch_dtype"; prefer it when both exist. */
    const char *dtype_key = get(root, "dtype") ? "dtype" : "torch_dtype";
    json_t *dtype = get(root, dtype_key);
    if (dtype) {
        if (!json_is_string(dtype) || strlen(json_string_value(dtype)) >= sizeof cfg->torch_dtype)
            return err_set(e, "%s: \"%s\" must be a dtype name such as \"bfloat16\"", file,
                           dtype_key);
        strcpy(cfg->torch_dtype, json_string_value(dtype));
    }

    cfg->rope_type = ROPE_DEFAULT;
    json_t *params = get(root, "rope_parameters"), *scaling = get(root, "rope_scaling");
    if (params) {
        if (rope_parse(params, file, "rope_parameters", cfg, e) != 0 ||
            get_pos_float(params, file, "rope_parameters.", "rope_theta", 0, cfg->rope_theta,
                          &cfg->rope_theta, e) != 0)
            return -1;
    } else if (scaling) {
        if (rope_parse(scaling, file, "rope_scaling", cfg, e) != 0)
            return -1;
    }
    json_t *quant = get(root, "quantization_config");
    if (quant && quantization_parse(quant, file, cfg, e) != 0)
        return -1;
    return config_check(cfg, file, e);
}

int llama_config_load(const char *path, llama_config *cfg, errbuf *e)
{
    memset(cfg, 0, sizeof *cfg);
    char *file = config_path(path);
    json_error_t jerr;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    int rc;
    if (!root && jerr.line < 1) /* could not open or read: jansson's text says why */
        rc = err_set(e, "%s: cannot read: %s", file, jerr.text);
    else if (!root)
        rc = err_set(e, "%s: not valid JSON: %s (line %d, column %d)", file, jerr.text,
                     jerr.line, jerr.column);
    else
        rc = config_parse(root, file, cfg, e);
    json_decref(root);
    free(file);
    return rc;
}

/* ------------------------------------------------------------------- save */

/* The shortest decimal that reads back as F, as a double: 1e-6f is written
 * "1e-6", not "9.99999997e-07", so the file says what the user meant. */
static double float_shortest(float f)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f)
            return strtod(buf, NULL);
    }
    return (double)f;
}

static int jset(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

static json_t *token_json(int id) { return id < 0 ? json_null() : json_integer(id); }

static json_t *config_json(const llama_config *cfg)
{
    /* Each step runs only while the previous ones succeeded; a failed set
     * has already released its value, so root is all there is to free. */
    json_t *root = json_object(), *arch = json_array();
    if (json_array_append_new(arch, json_string("LlamaForCausalLM")) != 0) {
        json_decref(arch);
        arch = NULL;
    }
    int rc = jset(root, "architectures", arch);
    rc = rc ? rc : jset(root, "model_type", json_string("llama"));
    rc = rc ? rc : jset(root, "hidden_size", json_integer(cfg->hidden_size));
    rc = rc ? rc : jset(root, "intermediate_size", json_integer(cfg->intermediate_size));
    rc = rc ? rc : jset(root, "num_hidden_layers", json_integer(cfg->n_layers));
    rc = rc ? rc : jset(root, "num_attention_heads", json_integer(cfg->n_heads));
    rc = rc ? rc : jset(root, "num_key_value_heads", json_integer(cfg->n_kv_heads));
    rc = rc ? rc : jset(root, "head_dim", json_integer(cfg->head_dim));
    rc = rc ? rc : jset(root, "vocab_size", json_integer(cfg->vocab_size));
    rc = rc ? rc : jset(root, "max_position_embeddings",
                        json_integer(cfg->max_position_embeddings));
    rc = rc ? rc : jset(root, "rms_norm_eps", json_real(float_shortest(cfg->rms_norm_eps)));
    rc = rc ? rc : jset(root, "rope_theta", json_real(float_shortest(cfg->rope_theta)));
    if (cfg->rope_type == ROPE_LLAMA3) {
        json_t *rope = rc ? NULL : json_object();
        rc = rc ? rc : jset(root, "rope_scaling", rope);
        rc = rc ? rc : jset(rope, "rope_type", json_string("llama3"));
        rc = rc ? rc : jset(rope, "factor", json_real(float_shortest(cfg->rope_factor)));
        rc = rc ? rc : jset(rope, "low_freq_factor",
                            json_real(float_shortest(cfg->rope_low_freq_factor)));
        rc = rc ? rc : jset(rope, "high_freq_factor",
                            json_real(float_shortest(cfg->rope_high_freq_factor)));
        rc = rc ? rc : jset(rope, "original_max_position_embeddings",
                            json_integer(cfg->rope_original_max_position_embeddings));
    } else {
        rc = rc ? rc : jset(root, "rope_scaling", json_null());
    }
    rc = rc ? rc : jset(root, "tie_word_embeddings", json_boolean(cfg->tie_word_embeddings));
    rc = rc ? rc : jset(root, "bos_token_id", token_json(cfg->bos_token_id));
    rc = rc ? rc : jset(root, "eos_token_id", token_json(cfg->eos_token_id));
    rc = rc ? rc : jset(root, "pad_token_id", token_json(cfg->pad_token_id));
    rc = rc ? rc : jset(root, "hidden_act", json_string("silu"));
    rc = rc ? rc : jset(root, "attention_bias", json_false());
    rc = rc ? rc : jset(root, "mlp_bias", json_false());
    rc = rc ? rc : jset(root, "torch_dtype",
                        json_string(cfg->torch_dtype[0] ? cfg->torch_dtype : "float32"));
    if (rc != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int llama_config_save(const llama_config *cfg, const char *path, errbuf *e)
{
    char *file = config_path(path);
    char *tmp = NULL, *text = NULL;
    json_t *root = NULL;
    FILE *fp = NULL;
    int rc = config_check(cfg, file, e);
    if (rc != 0)
        goto out;
    if (memchr(cfg->torch_dtype, '\0', sizeof cfg->torch_dtype) == NULL) {
        rc = err_set(e, "%s: torch_dtype is not a terminated string", file);
        goto out;
    }
    root = config_json(cfg);
    /* 9 significant digits print every float_shortest() value as it is. */
    text = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    if (!text) {
        rc = err_set(e, "%s: cannot build the JSON (out of memory, or torch_dtype is not UTF-8)",
                     file);
        goto out;
    }
    size_t n = strlen(file);
    tmp = xmalloc(n + 5);
    memcpy(tmp, file, n);
    memcpy(tmp + n, ".tmp", 5);
    fp = fopen(tmp, "w");
    if (!fp) {
        rc = err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    if (fputs(text, fp) == EOF || fputc('\n', fp) == EOF || fflush(fp) != 0 ||
        fsync(fileno(fp)) != 0) {
        rc = err_set(e, "%s: cannot write: %s", tmp, strerror(errno));
        (void)fclose(fp); /* already failing; the tmp file goes below */
        fp = NULL;
        (void)unlink(tmp);
        goto out;
    }
    int rc_close = fclose(fp);
    fp = NULL;
    if (rc_close != 0) {
        rc = err_set(e, "%s: cannot write: %s", tmp, strerror(errno));
        (void)unlink(tmp);
        goto out;
    }
    if (rename(tmp, file) != 0) {
        rc = err_set(e, "%s: cannot rename %s to it: %s", file, tmp, strerror(errno));
        (void)unlink(tmp);
    }
out:
    free(text);
    json_decref(root);
    free(tmp);
    free(file);
    return rc;
}
