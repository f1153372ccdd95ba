/* weight4_bnb.c: bitsandbytes 4-bit checkpoint tensors as weight4's layout
 * (see weight4_bnb.h). */
#include "weight4_bnb.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "quant4.h"
#include "weight4.h"

/* name + suffix in st, NULL when absent. */
static const st_tensor *companion(const safetensors *st, const char *name, const char *suffix)
{
    char key[256];
    if ((size_t)snprintf(key, sizeof key, "%s%s", name, suffix) >= sizeof key)
        return NULL;
    return safetensors_find(st, key);
}

/* A companion tensor that must exist with this dtype and element count. */
static const st_tensor *need(const safetensors *st, const char *file, const char *name, const char *suffix,
                             st_dtype dtype, size_t n_elems, errbuf *e)
{
    const st_tensor *t = companion(st, name, suffix);
    if (!t)
        err_set(e, "%s: tensor '%s%s' is missing (the 4-bit weight's block state)", file, name, suffix);
    else if (t->dtype != dtype || t->n_elems != n_elems)
        err_set(e, "%s: tensor '%s%s' is %s with %zu elements; expected %s with %zu", file, name, suffix,
                st_dtype_name(t->dtype), t->n_elems, st_dtype_name(dtype), n_elems);
    else
        return t;
    return NULL;
}

/* The code table the checkpoint dequantizes with must be ours: ==, so that
 * FP4's +0 and our -0 (code 8) agree. */
static int check_map(const st_tensor *t, const char *file, const char *name, const char *what, quant4_type type,
                     errbuf *e)
{
    const float *v = t->data; /* safetensors data is 8-byte aligned */
    for (size_t i = 0; i < t->n_elems; i++) {
        float want = t->n_elems == 16 ? quant4_value(type, (unsigned)i) : quant4_dynamic_value((unsigned)i);
        if (v[i] != want)
            return err_set(e, "%s: tensor '%s.%s'[%zu] is %.9g, not bitsandbytes' %.9g", file, name, what, i,
                           (double)v[i], (double)want);
    }
    return 0;
}

static int json_int_is(json_t *obj, const char *key, long long want)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) == want;
}

/* The quant_state JSON: type, blocksizes, shape, offset. */
static int parse_state(const st_tensor *qs, const char *file, const char *name, quant4_type type,
                       const int64_t shape[2], int *nested, float *offset, errbuf *e)
{
    json_error_t jerr;
    json_t *root = qs->dtype == ST_U8 ? json_loadb(qs->data, qs->n_bytes, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    int rc = 0;
    json_t *qt = json_object_get(root, "quant_type"), *sh = json_object_get(root, "shape");
    json_t *nb = json_object_get(root, "nested_blocksize"), *off = json_object_get(root, "nested_offset");
    const char *qt_name = json_is_string(qt) ? json_string_value(qt) : NULL;
    json_t *bs = json_object_get(root, "blocksize");
    if (qs->dtype != ST_U8)
        rc = err_set(e, "%s: tensor '%s' is %s, not U8 bytes of JSON (bitsandbytes' quant_state)", file, qs->name,
                     st_dtype_name(qs->dtype));
    else if (!root)
        rc = err_set(e, "%s: tensor '%s': quant_state is not valid JSON: %s", file, qs->name, jerr.text);
    else if (!json_is_object(root))
        rc = err_set(e, "%s: tensor '%s': quant_state is not a JSON object", file, qs->name);
    else if (!qt_name || quant4_type_from_name(qt_name) < 0)
        rc = err_set(e, "%s: tensor '%s': quant_type %s%s%s is not one of nf4, fp4", file, qs->name, qt_name ? "'" : "",
                     qt_name ? qt_name : "(missing)", qt_name ? "'" : "");
    else if (quant4_type_from_name(qt_name) != (int)type)
        rc = err_set(e, "%s: tensor '%s': quant_type '%s' differs from the tensor's name", file, qs->name, qt_name);
    else if (!json_is_integer(bs))
        rc = err_set(e, "%s: tensor '%s': blocksize is missing or not an integer", file, qs->name);
    else if (json_integer_value(bs) != WEIGHT4_BLOCKSIZE)
        rc = err_set(e, "%s: tensor '%s': blocksize %lld is not supported (shardtune stores 4-bit weights in blocks "
                        "of %d only, transformers' blocksize)", file, qs->name, (long long)json_integer_value(bs),
                     WEIGHT4_BLOCKSIZE);
    else if (!json_is_array(sh) || json_array_size(sh) != 2 || !json_is_integer(json_array_get(sh, 0)) ||
             !json_is_integer(json_array_get(sh, 1)) || json_integer_value(json_array_get(sh, 0)) != shape[0] ||
             json_integer_value(json_array_get(sh, 1)) != shape[1])
        rc = err_set(e, "%s: tensor '%s': shape is not [%lld, %lld], the shape of '%s'", file, qs->name,
                     (long long)shape[0], (long long)shape[1], name);
    else if (nb && !json_int_is(root, "nested_blocksize", QUANT4_NESTED_BLOCKSIZE))
        rc = err_set(e, "%s: tensor '%s': nested_blocksize must be %d", file, qs->name, QUANT4_NESTED_BLOCKSIZE);
    else if (nb && !json_is_number(off))
        rc = err_set(e, "%s: tensor '%s': nested_offset is missing or not a number", file, qs->name);
    else if (nb && json_object_get(root, "nested_dtype") &&
             !json_is_string(json_object_get(root, "nested_dtype")))
        rc = err_set(e, "%s: tensor '%s': nested_dtype is not a string", file, qs->name);
    else if (nb && json_is_string(json_object_get(root, "nested_dtype")) &&
             strcmp(json_string_value(json_object_get(root, "nested_dtype")), "float32") != 0)
        rc = err_set(e, "%s: tensor '%s': nested_dtype '%s' is not float32", file, qs->name,
                     json_string_value(json_object_get(root, "nested_dtype")));
    if (rc == 0) {
        *nested = nb != NULL;
        /* Python wrote the fp32 offset as a double: it reads back exactly */
        *offset = nb ? (float)json_number_value(off) : 0.0f;
    }
    json_decref(root);
    return rc;
}

int weight4_bnb_find(const safetensors *st, const char *name, const int64_t shape[2], weight4_bnb *w,
                     errbuf *e)
{
    quant4_type type = QUANT4_NF4;
    const st_tensor *qs = companion(st, name, ".quant_state.bitsandbytes__nf4");
    if (!qs && (qs = companion(st, name, ".quant_state.bitsandbytes__fp4")))
        type = QUANT4_FP4;
    if (!qs)
        return 0;
    const char *file = qs->file_path;
    const size_t n = (size_t)shape[0] * (size_t)shape[1], blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE);
    const size_t groups = quant4_n_nested_blocks(blocks);
    int nested;
    float offset;
    if (parse_state(qs, file, name, type, shape, &nested, &offset, e) != 0)
        return -1;
    const st_tensor *packed = safetensors_find(st, name);
    if (!packed)
        return err_set(e, "%s: tensor '%s' (the packed 4-bit codes) is missing", file, name);
    if (packed->dtype != ST_U8 && packed->dtype != ST_BF16 && packed->dtype != ST_F16 && packed->dtype != ST_F32)
        return err_set(e, "%s: tensor '%s' is %s; packed 4-bit codes are stored as U8, BF16, F16 or F32", file, name,
                       st_dtype_name(packed->dtype));
    if (packed->n_bytes != quant4_packed_bytes(n))
        return err_set(e, "%s: tensor '%s' holds %zu bytes; %lld x %lld 4-bit codes take %zu", file, name,
                       packed->n_bytes, (long long)shape[0], (long long)shape[1], quant4_packed_bytes(n));
    const st_tensor *absmax = need(st, file, name, ".absmax", nested ? ST_U8 : ST_F32, blocks, e);
    const st_tensor *map = need(st, file, name, ".quant_map", ST_F32, 16, e);
    if (!absmax || !map || check_map(map, file, name, "quant_map", type, e) != 0)
        return -1;
    memset(w, 0, sizeof *w);
    w->storage = weight4_dtype(type, nested);
    w->pieces[0].t = packed, w->pieces[0].n_bytes = packed->n_bytes;
    w->pieces[1].t = absmax, w->pieces[1].n_bytes = absmax->n_bytes;
    w->n_pieces = 2;
    if (nested) {
        const st_tensor *nabs = need(st, file, name, ".nested_absmax", ST_F32, groups, e);
        const st_tensor *nmap = need(st, file, name, ".nested_quant_map", ST_F32, 256, e);
        if (!nabs || !nmap || check_map(nmap, file, name, "nested_quant_map", type, e) != 0)
            return -1;
        memcpy(w->offset_bytes, &offset, sizeof offset);
        w->pieces[2].t = nabs, w->pieces[2].n_bytes = nabs->n_bytes;
        w->pieces[3].t = NULL, w->pieces[3].n_bytes = sizeof offset;
        w->n_pieces = 4;
    }
    return 1;
}
