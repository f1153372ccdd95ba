/* peft_adapter.c: PEFT LoRA adapter directories (see peft_adapter.h). */
#include "peft_adapter.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"

static void join_path(char *buf, size_t n, const char *dir, const char *file)
{
    snprintf(buf, n, "%s/%s", dir, file);
}

/* target_modules, exclude_modules: a list of names or a regex string
 * (null: none). */
static int read_name_set(json_t *v, const char *key, const char *path, lora_name_set *set, errbuf *e)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        set->regex = xstrdup(json_string_value(v));
        return 0;
    }
    if (!json_is_array(v))
        return err_set(e, "%s: %s must be a list of module names or a regex string", path, key);
    set->names = xcalloc(json_array_size(v) + 1, sizeof *set->names);
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it) {
        if (!json_is_string(it))
            return err_set(e, "%s: %s[%zu] is not a string", path, key, i);
        set->names[set->n_names++] = xstrdup(json_string_value(it));
    }
    return 0;
}

/* PEFT's "one value or a list of them" fields: v itself as a list of one,
 * a list, or an error naming key; each item must pass is_item (an error
 * naming key[i] and what it must be). *n_out: the count. */
static int read_one_or_list(json_t *v, const char *key, const char *what, int (*is_item)(const json_t *),
                            const char *path, size_t *n_out, json_t ***items, errbuf *e)
{
    json_t *one = is_item(v) ? v : NULL;
    if (!one && !json_is_array(v))
        return err_set(e, "%s: %s must be %s or a list of them", path, key, what);
    size_t n = one ? 1 : json_array_size(v);
    *items = xcalloc(n + 1, sizeof **items);
    for (size_t i = 0; i < n; i++) {
        json_t *it = one ? one : json_array_get(v, i);
        if (!is_item(it)) {
            free(*items);
            *items = NULL;
            return err_set(e, "%s: %s[%zu] is not %s", path, key, i, what);
        }
        (*items)[i] = it;
    }
    *n_out = n;
    return 0;
}

static int is_json_integer(const json_t *v) { return json_is_integer(v); }
static int is_json_string(const json_t *v) { return json_is_string(v); }

/* layers_to_transform: an index or a list of them (null or []: every layer). */
static int read_layers(json_t *v, const char *path, lora_rules *ru, errbuf *e)
{
    if (!v || json_is_null(v))
        return 0;
    json_t **items;
    size_t n;
    if (read_one_or_list(v, "layers_to_transform", "a layer index", is_json_integer, path, &n, &items, e) != 0)
        return -1;
    ru->layers = xcalloc(n + 1, sizeof *ru->layers);
    for (size_t i = 0; i < n; i++) {
        json_int_t idx = json_integer_value(items[i]);
        /* beyond int it would wrap onto another, real layer */
        if (idx < INT_MIN || idx > INT_MAX) {
            free(items);
            return err_set(e, "%s: layers_to_transform: %" JSON_INTEGER_FORMAT " is not a layer index", path, idx);
        }
        ru->layers[ru->n_layers++] = (int)idx;
    }
    free(items);
    return 0;
}

/* A list of names (layers_pattern, modules_to_save): a string or a list of
 * strings (null or "": none). */
static int read_names(json_t *v, const char *key, const char *path, char ***names, size_t *n_names, errbuf *e)
{
    if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
        return 0;
    json_t **items;
    size_t n;
    if (read_one_or_list(v, key, "a string", is_json_string, path, &n, &items, e) != 0)
        return -1;
    *names = xcalloc(n + 1, sizeof **names);
    for (size_t i = 0; i < n; i++)
        (*names)[(*n_names)++] = xstrdup(json_string_value(items[i]));
    free(items);
    return 0;
}

/* rank_pattern (positive integers) or alpha_pattern (numbers), in file
 * order: PEFT takes the first key that matches. */
static int read_patterns(json_t *v, const char *key, int is_rank, const char *path, lora_pattern **out, size_t *n,
                         errbuf *e)
{
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return err_set(e, "%s: %s must be an object of pattern: value", path, key);
    *out = xcalloc(json_object_size(v) + 1, sizeof **out);
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val) {
        /* a rank becomes an int (lora_resolve): bounded like r */
        if (is_rank ? !json_is_integer(val) || json_integer_value(val) <= 0 || json_integer_value(val) > INT_MAX
                    : !json_is_number(val)) {
            char *text = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
            err_set(e, "%s: %s: '%s' gives %s=%s; it must be %s", path, key, k, is_rank ? "r" : "lora_alpha",
                    text ? text : "?", is_rank ? "a positive integer" : "a number");
            free(text);
            return -1;
        }
        (*out)[*n].key = xstrdup(k);
        (*out)[(*n)++].value = json_number_value(val);
    }
    return 0;
}

/* Everything adapter_config.json says about which modules carry an adapter
 * and their r and alpha, with the combinations PEFT itself refuses refused. */
static int read_rules(json_t *root, const char *path, lora_rules *ru, errbuf *e)
{
    ru->source = xstrdup(path);
    json_t *tm = json_object_get(root, "target_modules");
    json_t *layers = json_object_get(root, "layers_to_transform"), *pattern = json_object_get(root, "layers_pattern");
    if (!tm || json_is_null(tm))
        return err_set(e, "%s: target_modules missing", path);
    if (read_name_set(tm, "target_modules", path, &ru->targets, e) != 0 ||
        read_name_set(json_object_get(root, "exclude_modules"), "exclude_modules", path, &ru->exclude, e) != 0 ||
        read_layers(layers, path, ru, e) != 0 ||
        read_names(pattern, "layers_pattern", path, &ru->layers_pattern, &ru->n_layers_pattern, e) != 0 ||
        read_patterns(json_object_get(root, "rank_pattern"), "rank_pattern", 1, path, &ru->rank_pattern,
                      &ru->n_rank_pattern, e) != 0 ||
        read_patterns(json_object_get(root, "alpha_pattern"), "alpha_pattern", 0, path, &ru->alpha_pattern,
                      &ru->n_alpha_pattern, e) != 0)
        return -1;
    /* LoraConfig.__post_init__'s own checks */
    if (ru->targets.regex && layers && !json_is_null(layers))
        return err_set(e, "%s: layers_to_transform cannot be used when target_modules is a regex string", path);
    if (ru->targets.regex && pattern && !json_is_null(pattern))
        return err_set(e, "%s: layers_pattern cannot be used when target_modules is a regex string", path);
    if (ru->n_layers_pattern && (!layers || json_is_null(layers)))
        return err_set(e, "%s: layers_pattern is set but layers_to_transform is not", path);
    return 0;
}

/* A key that would change the math if set: refuse it rather than ignore it. */
static int refuse_if_set(json_t *root, const char *key, const char *path, errbuf *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v) || json_is_false(v) || (json_is_object(v) && json_object_size(v) == 0) ||
        (json_is_array(v) && json_array_size(v) == 0))
        return 0;
    return err_set(e, "%s: %s is set; shardtune does not support it yet", path, key);
}

int peft_adapter_read_config(const char *dir, lora_config *lc, errbuf *e)
{
    char path[4096];
    join_path(path, sizeof path, dir, "adapter_config.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return err_set(e, "%s: %s (line %d)", path, jerr.text, jerr.line);
    int rc = -1;
    memset(lc, 0, sizeof *lc);
    json_t *pt = json_object_get(root, "peft_type");
    if (pt && (!json_is_string(pt) || strcmp(json_string_value(pt), "LORA") != 0)) {
        err_set(e, "%s: peft_type %s is not LORA", path, json_is_string(pt) ? json_string_value(pt) : "?");
        goto out;
    }
    json_t *r = json_object_get(root, "r"), *alpha = json_object_get(root, "lora_alpha");
    /* r is kept as an int: a larger value would wrap to another rank */
    if (!json_is_integer(r) || json_integer_value(r) <= 0 || json_integer_value(r) > INT_MAX) {
        err_set(e, "%s: r must be a positive integer (at most %d)", path, INT_MAX);
        goto out;
    }
    lc->r = (int)json_integer_value(r);
    lc->alpha = json_is_number(alpha) ? (float)json_number_value(alpha) : 8.0f;
    json_t *drop = json_object_get(root, "lora_dropout");
    lc->dropout = json_is_number(drop) ? (float)json_number_value(drop) : 0.0f;
    lc->use_rslora = json_is_true(json_object_get(root, "use_rslora"));
    lc->use_dora = json_is_true(json_object_get(root, "use_dora"));
    json_t *bias = json_object_get(root, "bias");
    if (bias && json_is_string(bias) && strcmp(json_string_value(bias), "none") != 0) {
        err_set(e, "%s: bias \"%s\" is not supported (only \"none\")", path, json_string_value(bias));
        goto out;
    }
    const char *refused[] = {"fan_in_fan_out", "layer_replication", "target_parameters"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (refuse_if_set(root, refused[i], path, e) != 0)
            goto out;
    size_t n_source = strlen(path) + sizeof ": modules_to_save"; /* resolved by model_init (lora_resolve_saved) */
    lc->save_source = xmalloc(n_source);
    snprintf(lc->save_source, n_source, "%s: modules_to_save", path);
    if (read_names(json_object_get(root, "modules_to_save"), "modules_to_save", path, &lc->save_names,
                   &lc->n_save_names, e) != 0)
        goto out;
    lc->rules = xcalloc(1, sizeof *lc->rules); /* target_mask: once resolved (lora_resolve) */
    if (read_rules(root, path, lc->rules, e) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        lora_config_free(lc);
    json_decref(root);
    return rc;
}

safetensors *peft_adapter_open_weights(const char *dir, errbuf *e)
{
    char path[4096];
    join_path(path, sizeof path, dir, "adapter_model.safetensors");
    return safetensors_open(path, e);
}

int peft_adapter_fill_unit(const safetensors *weights, const model *m, int ui, float *host_train, errbuf *e)
{
    const model_unit *u = &m->units[ui];
    for (int i = 0; i < u->n_params; i++) {
        const param_entry *p = &u->params[i];
        if (!p->trainable)
            continue;
        const st_tensor *t = safetensors_find(weights, p->name);
        if (!t && p->n_dims == 1)
            return err_set(e, "adapter: missing tensor '%s' (expected shape [%lld])", p->name, (long long)p->shape[0]);
        if (!t)
            return err_set(e, "adapter: missing tensor '%s' (expected shape [%lld, %lld])", p->name,
                           (long long)p->shape[0], (long long)p->shape[1]);
        if (st_tensor_check_shape(t, p->n_dims, p->shape, e) != 0 ||
            st_tensor_to_f32(t, host_train + p->offset, e) != 0)
            return -1;
    }
    return 0;
}

/* rank_pattern (want_r) or alpha_pattern entries for module lin where its r
 * or alpha is not the config's r / lora_alpha: the name when every layer's
 * lin has the one value, else each layer's escaped full path (keys are
 * regexes to PEFT). */
static void add_overrides(const model *m, linear_id lin, int want_r, json_t *obj)
{
    double base = want_r ? m->lora.r : m->lora.alpha, first = 0.0;
    int n = 0, uniform = 1;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const lora_module *md = &m->layers[l].lora[lin];
        double v = want_r ? md->r : md->alpha;
        if (md->r && n++ == 0)
            first = v;
        else if (md->r && v != first)
            uniform = 0;
    }
    for (int l = 0; l < m->cfg.n_layers && n; l++) {
        const lora_module *md = &m->layers[l].lora[lin];
        double v = want_r ? md->r : md->alpha;
        if (!md->r || v == base)
            continue;
        char key[160], path[128];
        if (uniform) {
            snprintf(key, sizeof key, "%s", lora_module_name(lin));
        } else {
            snprintf(path, sizeof path, "model.layers.%d.%s", l, lora_module_path(lin));
            size_t k = 0;
            for (const char *c = path; *c && k + 3 < sizeof key; c++) {
                if (*c == '.')
                    key[k++] = '\\';
                key[k++] = *c;
            }
            key[k] = 0;
        }
        json_object_set_new(obj, key, want_r ? json_integer(md->r) : json_real(md->alpha));
    }
}

/* target_modules as PEFT reads them back to the same modules: names when
 * every layer has the same ones, else full paths (as peft saves
 * "all-linear"); the modules' own r and alpha in rank_pattern and
 * alpha_pattern. */
static void add_targets(const model *m, json_t *root)
{
    json_t *targets = json_array(), *ranks = json_object(), *alphas = json_object();
    int same_layers = 1;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int lin = 0; lin < N_LINEARS; lin++)
            if (!m->layers[l].lora[lin].r != !m->layers[0].lora[lin].r)
                same_layers = 0;
    char path[128];
    for (int l = 0; l < (same_layers ? 1 : m->cfg.n_layers); l++)
        for (int lin = 0; lin < N_LINEARS; lin++) {
            if (!m->layers[l].lora[lin].r)
                continue;
            snprintf(path, sizeof path, "model.layers.%d.%s", l, lora_module_path(lin));
            json_array_append_new(targets, json_string(same_layers ? lora_module_name(lin) : path));
        }
    for (int lin = 0; lin < N_LINEARS; lin++) {
        add_overrides(m, lin, 1, ranks);
        add_overrides(m, lin, 0, alphas);
    }
    json_object_set_new(root, "target_modules", targets);
    json_object_set_new(root, "rank_pattern", ranks);
    json_object_set_new(root, "alpha_pattern", alphas);
}

static int write_config(const model *m, const char *dir, const char *base, errbuf *e)
{
    json_t *root = json_object();
    add_targets(m, root);
    json_object_set_new(root, "auto_mapping", json_null());
    json_object_set_new(root, "base_model_name_or_path", base ? json_string(base) : json_null());
    json_object_set_new(root, "bias", json_string("none"));
    json_object_set_new(root, "fan_in_fan_out", json_false());
    json_object_set_new(root, "inference_mode", json_true());
    json_object_set_new(root, "init_lora_weights", json_true());
    json_object_set_new(root, "layers_pattern", json_null());
    json_object_set_new(root, "layers_to_transform", json_null());
    json_object_set_new(root, "lora_alpha", json_real(m->lora.alpha));
    json_object_set_new(root, "lora_dropout", json_real(m->lora.dropout));
    json_t *saved = json_array(); /* PEFT's own names for the wrapped modules */
    if (m->lora.save_mask & LORA_SAVE_EMBED)
        json_array_append_new(saved, json_string("embed_tokens"));
    if (m->lora.save_mask & LORA_SAVE_LM_HEAD)
        json_array_append_new(saved, json_string("lm_head"));
    json_object_set_new(root, "modules_to_save", json_array_size(saved) ? saved : json_null());
    if (!json_array_size(saved))
        json_decref(saved);
    json_object_set_new(root, "peft_type", json_string("LORA"));
    json_object_set_new(root, "r", json_integer(m->lora.r));
    json_object_set_new(root, "revision", json_null());
    json_object_set_new(root, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(root, "use_dora", m->lora.use_dora ? json_true() : json_false());
    json_object_set_new(root, "use_rslora", m->lora.use_rslora ? json_true() : json_false());
    char path[4096], tmp[4200];
    join_path(path, sizeof path, dir, "adapter_config.json");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (rc != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(e, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

int peft_adapter_save(const model *m, float *const *host_train, const adapter_extra *extra, int n_extra,
                      const char *dir, const char *base_model_name_or_path, errbuf *e)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_set(e, "%s: cannot create directory: %s", dir, strerror(errno));
    st_writer *w = st_writer_new();
    for (int ui = 0; ui < m->n_units; ui++) {
        const model_unit *u = &m->units[ui];
        for (int i = 0; i < u->n_params; i++) {
            const param_entry *p = &u->params[i];
            if (p->trainable)
                st_writer_add(w, p->name, ST_F32, p->n_dims, p->shape, host_train[ui] + p->offset);
        }
    }
    for (int i = 0; i < n_extra; i++)
        st_writer_add(w, extra[i].key, extra[i].dtype, 2, extra[i].shape, extra[i].data);
    st_writer_metadata(w, "format", "pt");
    char path[4096];
    join_path(path, sizeof path, dir, "adapter_model.safetensors");
    int rc = st_writer_write(w, path, e);
    st_writer_free(w);
    if (rc != 0)
        return -1;
    return write_config(m, dir, base_model_name_or_path, e);
}
