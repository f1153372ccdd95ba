/* peft_adapter.c: PEFT LoRA adapter directories (see peft_adapter.h). */
#include "peft_adapter.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"

static void join_path(char *buf, size_t n, const char *dir, const char *file)
{
    snprintf(buf, n, "%s/%s", dir, file);
}

static int parse_targets(json_t *tm, const char *path, unsigned *mask, errbuf *e)
{
    *mask = 0;
    if (json_is_string(tm))
        return lora_parse_targets(json_string_value(tm), mask, e);
    if (!json_is_array(tm))
        return err_set(e, "%s: target_modules must be a list or a string", path);
    size_t i;
    json_t *it;
    json_array_foreach(tm, i, it) {
        unsigned one;
        if (!json_is_string(it))
            return err_set(e, "%s: target_modules[%zu] is not a string", path, i);
        if (lora_parse_targets(json_string_value(it), &one, e) != 0)
            return err_set(e, "%s: target_modules: '%s' is not a linear layer of a Llama block", path,
                           json_string_value(it));
        *mask |= one;
    }
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
    if (!json_is_integer(r) || json_integer_value(r) <= 0) {
        err_set(e, "%s: r must be a positive integer", path);
        goto out;
    }
    lc->r = (int)json_integer_value(r);
    lc->alpha = json_is_number(alpha) ? (float)json_number_value(alpha) : 8.0f;
    json_t *drop = json_object_get(root, "lora_dropout");
    lc->dropout = json_is_number(drop) ? (float)json_number_value(drop) : 0.0f;
    lc->use_rslora = json_is_true(json_object_get(root, "use_rslora"));
    json_t *bias = json_object_get(root, "bias");
    if (bias && json_is_string(bias) && strcmp(json_string_value(bias), "none") != 0) {
        err_set(e, "%s: bias \"%s\" is not supported (only \"none\")", path, json_string_value(bias));
        goto out;
    }
    const char *refused[] = {"use_dora", "layers_to_transform", "rank_pattern", "alpha_pattern",
                             "modules_to_save", "fan_in_fan_out", "layer_replication"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (refuse_if_set(root, refused[i], path, e) != 0)
            goto out;
    json_t *tm = json_object_get(root, "target_modules");
    if (!tm) {
        err_set(e, "%s: target_modules missing", path);
        goto out;
    }
    if (parse_targets(tm, path, &lc->target_mask, e) != 0)
        goto out;
    rc = 0;
out:
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
        if (!t)
            return err_set(e, "adapter: missing tensor '%s' (expected shape [%lld, %lld])", p->name,
                           (long long)p->shape[0], (long long)p->shape[1]);
        if (st_tensor_check_shape(t, 2, p->shape, e) != 0 || st_tensor_to_f32(t, host_train + p->offset, e) != 0)
            return -1;
    }
    return 0;
}

static int write_config(const model *m, const char *dir, const char *base, errbuf *e)
{
    json_t *root = json_object();
    json_t *targets = json_array();
    for (int lin = 0; lin < N_LINEARS; lin++)
        if (m->lora.target_mask & (1u << lin))
            json_array_append_new(targets, json_string(lora_module_name(lin)));
    json_object_set_new(root, "alpha_pattern", json_object());
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
    json_object_set_new(root, "modules_to_save", json_null());
    json_object_set_new(root, "peft_type", json_string("LORA"));
    json_object_set_new(root, "r", json_integer(m->lora.r));
    json_object_set_new(root, "rank_pattern", json_object());
    json_object_set_new(root, "revision", json_null());
    json_object_set_new(root, "target_modules", targets);
    json_object_set_new(root, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(root, "use_dora", json_false());
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
                st_writer_add(w, p->name, ST_F32, 2, p->shape, host_train[ui] + p->offset);
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
