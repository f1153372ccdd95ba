/* tokenizer_config.json: what transformers adds on top of tokenizer.json:
 * the special tokens (bos/eos/pad/unk, a string or {"content": ...}), tokens
 * of added_tokens_decoder that tokenizer.json lacks (GPT-2's slow files),
 * and add_bos_token / add_eos_token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static int get_bool(json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* "bos_token": "<s>" or {"content": "<s>", ...} or null. */
static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_string_value(v);
}

int tokenizer_apply_config(tokenizer *t, const char *path, errbuf *e)
{
    json_t *cfg = t->config;
    if (!json_is_object(cfg))
        return err_set(e, "%s: the top level is not an object", path);
    /* added_tokens_decoder: {"32000": {"content": ..., "special": true, ...}} */
    json_t *decoder = json_object_get(cfg, "added_tokens_decoder"), *v;
    const char *key;
    json_object_foreach(decoder, key, v) {
        char *end;
        long id = strtol(key, &end, 10);
        const char *content = json_string_value(json_object_get(v, "content"));
        if (*end || id < 0 || id > INT32_MAX || !content)
            return err_set(e, "%s: added_tokens_decoder[\"%s\"] needs a numeric id and a content",
                           path, key);
        if (added_find_content(&t->added, content, strlen(content)) >= 0)
            continue; /* tokenizer.json already says */
        int special = get_bool(v, "special", 0);
        added_put(&t->added, content, strlen(content), (int32_t)id, special, get_bool(v, "lstrip", 0),
                  get_bool(v, "rstrip", 0), get_bool(v, "single_word", 0),
                  get_bool(v, "normalized", !special));
    }
    added_refresh(&t->added, t->norm, t->n_norm);

    static const char *roles[] = {"bos", "eos", "pad", "unk"};
    for (int r = 0; r < 4; r++) {
        char k[16];
        snprintf(k, sizeof k, "%s_token", roles[r]);
        const char *content = config_token(cfg, k);
        if (content && tokenizer_set_special(t, roles[r], content, e) < 0)
            return -1;
    }

    /* add_bos_token / add_eos_token decide when present (transformers 4's
     * LlamaTokenizerFast rebuilds its template from them); a Llama
     * tokenizer without post-processor adds BOS by default. */
    json_t *add_bos = json_object_get(cfg, "add_bos_token"), *add_eos = json_object_get(cfg, "add_eos_token");
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    json_t *post = json_object_get(t->json, "post_processor");
    int llama_no_post = cls && !strncmp(cls, "Llama", 5) && (!post || json_is_null(post));
    if (json_is_boolean(add_bos) || llama_no_post) {
        int on = json_is_boolean(add_bos) ? json_is_true(add_bos) : 1;
        t->post_prefix.n = 0;
        if (on) {
            if (t->bos_id < 0)
                return err_set(e, "%s: add_bos_token is true but there is no bos_token", path);
            idvec_push(&t->post_prefix, t->bos_id);
        }
    }
    if (json_is_boolean(add_eos)) {
        t->post_suffix.n = 0;
        if (json_is_true(add_eos)) {
            if (t->eos_id < 0)
                return err_set(e, "%s: add_eos_token is true but there is no eos_token", path);
            idvec_push(&t->post_suffix, t->eos_id);
        }
    }
    return 0;
}
