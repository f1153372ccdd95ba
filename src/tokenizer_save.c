/* tokenizer_save.c: writes tokenizer.json and tokenizer_config.json into a
 * model directory, so that a tuned model carries the tokenizer it was
 * trained with (including special tokens added for a chat template).
 *
 * tokenizer.json is the tree that was loaded (or built from vocab.json +
 * merges.txt) with "added_tokens" rewritten; tokenizer_config.json is the
 * loaded one (or a new one) with the special tokens and
 * added_tokens_decoder brought up to date.  Each file is written under a
 * temporary name and renamed, so a reader never sees half a file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static int write_atomic(json_t *root, const char *dir, const char *name, errbuf *e)
{
    size_t n = strlen(dir) + strlen(name) + 8;
    char *path = xmalloc(n), *tmp = xmalloc(n + 4);
    snprintf(path, n, "%s/%s", dir, name);
    snprintf(tmp, n + 4, "%s.tmp", path);
    int rc = -1;
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    FILE *f = text ? fopen(tmp, "wb") : NULL;
    if (!text) {
        err_set(e, "%s: cannot serialize JSON (out of memory)", path);
    } else if (!f) {
        err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        size_t len = strlen(text);
        int bad = fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF;
        bad |= fclose(f) != 0;
        if (bad)
            err_set(e, "%s: write failed (disk full?)", tmp);
        else if (rename(tmp, path) != 0)
            err_set(e, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        else
            rc = 0;
        if (rc != 0)
            remove(tmp);
    }
    free(text);
    free(path);
    free(tmp);
    return rc;
}

static json_t *added_token_json(const added_token *a, int with_id)
{
    json_t *o = json_pack("{s:s%, s:b, s:b, s:b, s:b, s:b}", "content", a->content, a->len,
                          "single_word", a->single_word, "lstrip", a->lstrip, "rstrip", a->rstrip,
                          "normalized", a->normalized, "special", a->special);
    if (o && with_id && json_object_set_new(o, "id", json_integer(a->id)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static int cmp_added_id(const void *pa, const void *pb)
{
    const added_token *a = *(const added_token *const *)pa, *b = *(const added_token *const *)pb;
    return (a->id > b->id) - (a->id < b->id);
}

int tokenizer_save(const tokenizer *t, const char *dir, errbuf *e)
{
    const added_token **sorted = xmalloc((t->added.n + 1) * sizeof *sorted);
    for (size_t i = 0; i < t->added.n; i++)
        sorted[i] = &t->added.v[i];
    qsort(sorted, t->added.n, sizeof *sorted, cmp_added_id);

    json_t *tok = json_deep_copy(t->json);
    json_t *cfg = t->config ? json_deep_copy(t->config) : json_object();
    json_t *list = json_array(), *decoder = json_object();
    int oom = !tok || !cfg || !list || !decoder;
    for (size_t i = 0; !oom && i < t->added.n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", (int)sorted[i]->id);
        oom = json_array_append_new(list, added_token_json(sorted[i], 1)) != 0 ||
              json_object_set_new(decoder, key, added_token_json(sorted[i], 0)) != 0;
    }
    free(sorted);
    if (!oom) {
        oom = json_object_set(tok, "added_tokens", list) != 0 ||
              json_object_set(cfg, "added_tokens_decoder", decoder) != 0;
    }
    static const char *roles[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    int32_t ids[] = {t->bos_id, t->eos_id, t->pad_id, t->unk_id};
    for (int r = 0; !oom && r < 4; r++) {
        const char *content = tokenizer_id_to_token(t, ids[r]);
        if (content)
            oom = json_object_set_new(cfg, roles[r], json_string(content)) != 0;
    }
    json_decref(list);
    json_decref(decoder);
    int rc = -1;
    if (oom)
        err_set(e, "%s: out of memory building the tokenizer files", dir);
    else if (write_atomic(tok, dir, "tokenizer.json", e) == 0 &&
             write_atomic(cfg, dir, "tokenizer_config.json", e) == 0)
        rc = 0;
    json_decref(tok);
    json_decref(cfg);
    return rc;
}
