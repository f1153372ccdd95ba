/* lora.c: LoRA target names and scale (see lora.h). */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static const char *const module_names[N_LINEARS] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"};
static const char *const module_paths[N_LINEARS] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

const char *lora_module_name(linear_id lin) { return module_names[lin]; }
const char *lora_module_path(linear_id lin) { return module_paths[lin]; }


/* The next item of the comma-separated list at *cursor, without the spaces
 * around it (*len: its length); *cursor moves past it and its comma. */
static const char *list_item(const char **cursor, size_t *len)
{
    const char *p = *cursor, *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    *cursor = end ? end + 1 : p + n;
    while (n && *p == ' ')
        p++, n--;
    while (n && p[n - 1] == ' ')
        n--;
    *len = n;
    return p;
}

int lora_parse_targets(const char *spec, unsigned *mask, errbuf *e)
{
    *mask = 0;
    if (strcmp(spec, "all-linear") == 0) {
        *mask = LORA_ALL_LINEAR;
        return 0;
    }
    const char *cursor = spec;
    while (*cursor) {
        size_t len;
        const char *p = list_item(&cursor, &len);
        int found = -1;
        for (int i = 0; i < N_LINEARS; i++)
            if (strlen(module_names[i]) == len && strncmp(p, module_names[i], len) == 0)
                found = i;
        if (found < 0)
            return err_set(e, "--lora_target_modules: '%.*s' is not all-linear or one of a Llama block's linear "
                              "layers (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)",
                           (int)len, p);
        *mask |= 1u << found;
    }
    if (!*mask)
        return err_set(e, "--lora_target_modules: no module named");
    return 0;
}

void lora_peft_key(char *buf, size_t n_bytes, int layer, linear_id lin, char a_or_b)
{
    if (a_or_b == 'M') {
        snprintf(buf, n_bytes, "base_model.model.model.layers.%d.%s.lora_magnitude_vector", layer, module_paths[lin]);
        return;
    }
    snprintf(buf, n_bytes, "base_model.model.model.layers.%d.%s.lora_%c.weight", layer, module_paths[lin],
             a_or_b);
}

/* ------------------------------------------------------------------ */
/* PEFT's target rules                                                 */
/* peft 0.21.2: tuners_utils.check_target_module_exists (which modules),
 * _maybe_include_all_linear_layers ("all-linear"), utils.other
 * get_pattern_key (rank_pattern, alpha_pattern).  The user's patterns are
 * Python regexes; PCRE2 runs them embedded in the same text PEFT embeds them
 * in, so that alternations and anchors mean what they mean there. */

/* re.fullmatch (full) or re.match of pattern on name; with idx, the named
 * group "idx" as a number (-1 when it took no part).  1: a match, 0: none,
 * -1: not a regular expression (e names the file, the key and user_text). */
static int re_test(const char *pattern, const char *user_text, const char *name, int full, long *idx,
                   const lora_rules *ru, const char *key, errbuf *e)
{
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | (full ? PCRE2_ENDANCHORED : 0), &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        return err_set(e, "%s: %s: '%s' is not a regular expression (%s)", ru->source, key, user_text, (char *)msg);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)name, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
    if (idx) {
        *idx = -1;
        int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR) "idx");
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (rc > g && g > 0 && ov[2 * g] != PCRE2_UNSET)
            *idx = strtol(name + ov[2 * g], NULL, 10);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc > 0;
}

/* PEFT builds regexes around the user's text: prefix + text + suffix. */
static int re_wrapped(const char *prefix, const char *text, const char *suffix, const char *name, long *idx,
                      const lora_rules *ru, const char *key, errbuf *e)
{
    size_t n = strlen(prefix) + strlen(text) + strlen(suffix) + 1;
    char *pattern = xmalloc(n);
    snprintf(pattern, n, "%s%s%s", prefix, text, suffix);
    int rc = re_test(pattern, text, name, 0, idx, ru, key, e);
    free(pattern);
    return rc;
}

/* A list entry names a module when it is the full name or its tail after
 * a dot (key in target_modules or key.endswith("." + entry)). */
static int entry_names(const char *entry, const char *name)
{
    size_t ne = strlen(entry), nn = strlen(name);
    return strcmp(entry, name) == 0 || (nn > ne && name[nn - ne - 1] == '.' && strcmp(name + nn - ne, entry) == 0);
}

/* 1 when the set names the module (*which: the entry, or the regex), 0
 * when not, -1 on a bad regex. */
static int set_names(const lora_name_set *set, const char *name, const char **which, const lora_rules *ru,
                     const char *key, errbuf *e)
{
    if (set->regex) {
        *which = set->regex;
        return re_test(set->regex, set->regex, name, 1, NULL, ru, key, e);
    }
    for (size_t i = 0; i < set->n_names; i++)
        if (entry_names(set->names[i], name)) {
            *which = set->names[i];
            return 1;
        }
    return 0;
}

/* The layer index PEFT reads from a name for layers_to_transform: the
 * number after the first "<layers_pattern>." (by default after the first
 * ".<anything>."), -1 when there is none. */
static int layer_index(const lora_rules *ru, const char *name, long *idx, errbuf *e)
{
    *idx = -1;
    if (!ru->n_layers_pattern)
        return re_test(".*?\\.[^.]*\\.(?P<idx>\\d+)\\.", "", name, 0, idx, ru, "layers_pattern", e) < 0 ? -1 : 0;
    for (size_t i = 0; i < ru->n_layers_pattern && *idx < 0; i++)
        if (re_wrapped("(?:^|.*?\\.)", ru->layers_pattern[i], "\\.(?P<idx>\\d+)\\.", name, idx, ru,
                       "layers_pattern", e) < 0)
            return -1;
    return 0;
}

/* PEFT's verdict on one module: 1 targeted (*why: the target_modules entry
 * or regex that names it), 0 not, -1 error.  is_linear: one of a block's
 * seven linear layers, which is what "all-linear" selects in a Llama. */
static int is_targeted(const lora_rules *ru, const char *name, int is_linear, const char **why, errbuf *e)
{
    const char *which;
    int rc = set_names(&ru->exclude, name, &which, ru, "exclude_modules", e);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (ru->targets.regex && strcasecmp(ru->targets.regex, "all-linear") == 0) {
        *why = ru->targets.regex;
        return is_linear;
    }
    if ((rc = set_names(&ru->targets, name, why, ru, "target_modules", e)) != 1 || !ru->n_layers)
        return rc;
    long idx; /* layers_to_transform restricts list targets only */
    if (layer_index(ru, name, &idx, e) != 0)
        return -1;
    for (size_t i = 0; i < ru->n_layers; i++)
        if (idx >= 0 && idx == ru->layers[i])
            return 1;
    return 0;
}

/* get_pattern_key: the first key, in file order, with
 * re.match("(.*\.)?(key)$", name) gives the value. */
static int pattern_value(const lora_pattern *pat, size_t n, const char *name, double *value, const lora_rules *ru,
                         const char *key, errbuf *e)
{
    for (size_t i = 0; i < n; i++) {
        int rc = re_wrapped("(.*\\.)?(", pat[i].key, ")$", name, NULL, ru, key, e);
        if (rc != 0) {
            if (rc > 0)
                *value = pat[i].value;
            return rc;
        }
    }
    return 0;
}

/* LlamaForCausalLM's modules other than the blocks' linear layers, which a
 * target may name too (PEFT skips only the root ""): outside the blocks, and
 * inside block N after "model.layers.N" ("" is the block itself). */
static const char *const outer_modules[] = {"model",     "model.embed_tokens", "model.layers",
                                            "model.norm", "model.rotary_emb",   "lm_head"};
static const char *const block_modules[] = {"", ".self_attn", ".mlp", ".mlp.act_fn", ".input_layernorm",
                                            ".post_attention_layernorm"};

static int refuse_target(const lora_rules *ru, const char *why, const char *name, errbuf *e)
{
    const char *form = ru->targets.regex ? "the regex " : "";
    if (!strcmp(name, "lm_head") || !strcmp(name, "model.embed_tokens"))
        return err_set(e, "%s: target_modules: %s'%s' names %s; shardtune adapts only the seven linear layers of "
                          "the decoder blocks", ru->source, form, why, name);
    return err_set(e, "%s: target_modules: %s'%s' names %s, which is not a linear layer (PEFT cannot adapt it either)",
                   ru->source, form, why, name);
}

int lora_resolve(const lora_config *lc, int n_layers, lora_module *mods, unsigned *mask, errbuf *e)
{
    memset(mods, 0, (size_t)n_layers * N_LINEARS * sizeof *mods);
    *mask = 0;
    if (lc->r <= 0)
        return 0;
    const lora_rules *ru = lc->rules;
    char name[128];
    const char *why;
    for (size_t i = 0; ru && i < sizeof outer_modules / sizeof outer_modules[0]; i++) {
        int rc = is_targeted(ru, outer_modules[i], 0, &why, e);
        if (rc != 0)
            return rc < 0 ? -1 : refuse_target(ru, why, outer_modules[i], e);
    }
    for (int l = 0; l < n_layers; l++) {
        for (size_t i = 0; ru && i < sizeof block_modules / sizeof block_modules[0]; i++) {
            snprintf(name, sizeof name, "model.layers.%d%s", l, block_modules[i]);
            int rc = is_targeted(ru, name, 0, &why, e);
            if (rc != 0)
                return rc < 0 ? -1 : refuse_target(ru, why, name, e);
        }
        for (int lin = 0; lin < N_LINEARS; lin++) {
            double r = lc->r, alpha = lc->alpha;
            if (ru) {
                snprintf(name, sizeof name, "model.layers.%d.%s", l, module_paths[lin]);
                int rc = is_targeted(ru, name, 1, &why, e);
                if (rc <= 0) {
                    if (rc < 0)
                        return -1;
                    continue;
                }
                if (pattern_value(ru->rank_pattern, ru->n_rank_pattern, name, &r, ru, "rank_pattern", e) < 0 ||
                    pattern_value(ru->alpha_pattern, ru->n_alpha_pattern, name, &alpha, ru, "alpha_pattern", e) < 0)
                    return -1;
            } else if (!(lc->target_mask & (1u << lin))) {
                continue;
            }
            lora_module *md = &mods[(size_t)l * N_LINEARS + lin];
            md->r = (int)r;
            md->alpha = (float)alpha;
            md->scale = lc->use_rslora ? md->alpha / sqrtf((float)md->r) : md->alpha / (float)md->r;
            *mask |= 1u << lin;
        }
    }
    if (!*mask && ru)
        return err_set(e, "%s: target_modules match no linear layer of this model (%d layers)", ru->source, n_layers);
    return 0;
}

/* ------------------------------------------------------------------ */
/* modules_to_save                                                     */

void lora_parse_modules_to_save(const char *spec, lora_config *lc)
{
    lc->save_source = xstrdup("--modules_to_save");
    for (const char *cursor = spec; cursor && *cursor;) {
        size_t len;
        const char *p = list_item(&cursor, &len);
        lc->save_names = realloc(lc->save_names, (lc->n_save_names + 1) * sizeof *lc->save_names);
        if (!lc->save_names)
            die(EXIT_FAILURE_RUN, "out of memory reading --modules_to_save");
        lc->save_names[lc->n_save_names] = xmalloc(len + 1);
        memcpy(lc->save_names[lc->n_save_names], p, len);
        lc->save_names[lc->n_save_names++][len] = 0;
    }
}

static int ends_with(const char *s, const char *tail)
{
    size_t ns = strlen(s), nt = strlen(tail);
    return ns >= nt && strcmp(s + ns - nt, tail) == 0;
}

/* One module of the PeftModel (prefixed name as PEFT matches it) against
 * the name: 0 no match or trained here, -1 refused. */
static int saved_match(const lora_config *lc, const char *name, const char *module, unsigned *save, int *hit,
                       errbuf *e)
{
    char full[160];
    snprintf(full, sizeof full, "base_model.model.%s", module);
    int matches = *module ? ends_with(full, name) /* "": the roots, base_model and base_model.model */
                          : ends_with("base_model.model", name) || ends_with("base_model", name);
    if (!matches)
        return 0;
    *hit = 1;
    if (!strcmp(module, "model.embed_tokens") || !strcmp(module, "lm_head")) {
        *save |= *module == 'm' ? LORA_SAVE_EMBED : LORA_SAVE_LM_HEAD;
        return 0;
    }
    if (ends_with(module, "norm"))
        return err_set(e, "%s: '%s' names %s; training RMSNorm weights fully is not supported yet "
                          "(embed_tokens and lm_head are)", lc->save_source, name, module);
    return err_set(e, "%s: '%s' names %s; shardtune trains only embed_tokens and lm_head fully",
                   lc->save_source, name, *module ? module : "the whole model");
}

int lora_resolve_saved(const lora_config *lc, int n_layers, unsigned *save, errbuf *e)
{
    *save = 0;
    char module[128];
    for (size_t k = 0; k < lc->n_save_names; k++) {
        const char *name = lc->save_names[k];
        int hit = 0;
        if (saved_match(lc, name, "", save, &hit, e) != 0)
            return -1;
        for (size_t i = 0; i < sizeof outer_modules / sizeof outer_modules[0]; i++)
            if (saved_match(lc, name, outer_modules[i], save, &hit, e) != 0)
                return -1;
        for (int l = 0; l < n_layers; l++) {
            for (size_t i = 0; i < sizeof block_modules / sizeof block_modules[0]; i++) {
                snprintf(module, sizeof module, "model.layers.%d%s", l, block_modules[i]);
                if (saved_match(lc, name, module, save, &hit, e) != 0)
                    return -1;
            }
            for (int lin = 0; lin < N_LINEARS; lin++) {
                snprintf(module, sizeof module, "model.layers.%d.%s", l, module_paths[lin]);
                if (saved_match(lc, name, module, save, &hit, e) != 0)
                    return -1;
            }
        }
        if (!hit)
            return err_set(e, "%s: '%s' names no module of this model (shardtune trains "
                              "embed_tokens and lm_head fully)", lc->save_source, name);
    }
    return 0;
}

static void name_set_free(lora_name_set *set)
{
    free(set->regex);
    for (size_t i = 0; i < set->n_names; i++)
        free(set->names[i]);
    free(set->names);
}

static void patterns_free(lora_pattern *pat, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(pat[i].key);
    free(pat);
}

void lora_config_free(lora_config *lc)
{
    for (size_t i = 0; i < lc->n_save_names; i++)
        free(lc->save_names[i]);
    free(lc->save_names);
    free(lc->save_source);
    lc->save_names = NULL, lc->n_save_names = 0, lc->save_source = NULL;
    lora_rules *ru = lc->rules;
    if (!ru)
        return;
    free(ru->source);
    name_set_free(&ru->targets);
    name_set_free(&ru->exclude);
    free(ru->layers);
    for (size_t i = 0; i < ru->n_layers_pattern; i++)
        free(ru->layers_pattern[i]);
    free(ru->layers_pattern);
    patterns_free(ru->rank_pattern, ru->n_rank_pattern);
    patterns_free(ru->alpha_pattern, ru->n_alpha_pattern);
    free(ru);
    lc->rules = NULL;
}
