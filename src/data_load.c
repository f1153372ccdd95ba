/* data_load.c: from --dataset_name and --splits to a dataset of rows.
 *
 * A split is a file: --dataset_name itself (a single file is the first
 * split), or <dir>/<split>.jsonl or <dir>/<split>.json.  A file holds JSON
 * Lines or one JSON array of rows (what datasets' "json" loader reads);
 * either way errors name the line a row starts on.  Rows become documents
 * (data_rows.c), documents become rows of at most max_seq_len tokens
 * (truncated, or packed by data_pack.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "data_internal.h"

void data_options_default(data_options *o)
{
    memset(o, 0, sizeof *o);
    o->splits = "train,test";
    o->dataset_text_field = "text";
    o->chat_format = CHAT_NONE;
    o->packing_strategy = PACK_WRAPPED;
    o->max_seq_len = 512;
}

int data_options_from_config(const run_config *c, data_options *o, errbuf *e)
{
    data_options_default(o);
    o->dataset_name = c->dataset_name;
    if (c->splits)
        o->splits = c->splits;
    if (c->dataset_text_field)
        o->dataset_text_field = c->dataset_text_field;
    if (c->chat_template_format && chat_format_from_name(c->chat_template_format, &o->chat_format, e) != 0)
        return -1;
    if (c->packing_strategy && packing_strategy_from_name(c->packing_strategy, &o->packing_strategy, e) != 0)
        return -1;
    o->packing = c->packing;
    o->append_concat_token = c->append_concat_token;
    o->add_special_tokens = c->add_special_tokens;
    o->assistant_only_loss = c->assistant_only_loss;
    o->max_seq_len = c->max_seq_len;
    return 0;
}

int packing_strategy_from_name(const char *name, packing_strategy *s, errbuf *e)
{
    if (!strcmp(name, "wrapped"))
        *s = PACK_WRAPPED;
    else if (!strcmp(name, "bfd"))
        *s = PACK_BFD;
    else
        return err_set(e, "--packing_strategy: '%s' is not one of wrapped, bfd", name);
    return 0;
}

/* The name of split k in "train,test" (spaces around names ignored). */
static int split_name(const char *splits, int k, char *out, size_t cap)
{
    const char *p = splits ? splits : "";
    for (int i = 0;; i++) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *a = p;
        while (n > 0 && *a == ' ')
            a++, n--;
        while (n > 0 && a[n - 1] == ' ')
            n--;
        if (i == k) {
            if (n == 0 || n >= cap)
                return -1;
            memcpy(out, a, n);
            out[n] = '\0';
            return 0;
        }
        if (!end)
            return -1;
        p = end + 1;
    }
}

static int path_kind(const char *path) /* 0 missing, 1 file, 2 directory */
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return S_ISDIR(st.st_mode) ? 2 : 1;
}

/* The file of split k; NULL (with e set) when there is none. */
static char *split_path(const data_options *o, int k, errbuf *e)
{
    char name[256];
    if (!o->dataset_name)
        return err_set(e, "--dataset_name is required"), NULL;
    if (split_name(o->splits, k, name, sizeof name) != 0)
        return err_set(e, "--splits '%s': no %s split named", o->splits ? o->splits : "",
                       k == 0 ? "first (training)" : "second (evaluation)"),
               NULL;
    int kind = path_kind(o->dataset_name);
    if (kind == 0)
        return err_set(e, "%s: no such dataset file or directory", o->dataset_name), NULL;
    if (kind == 1) {
        if (k != 0)
            return err_set(e, "%s: a single file holds only the first split; for the '%s' split give a directory "
                           "with %s.jsonl", o->dataset_name, name, name),
                   NULL;
        return xstrdup(o->dataset_name);
    }
    const char *ext[2] = {".jsonl", ".json"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(o->dataset_name) + strlen(name) + strlen(ext[i]) + 2;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/%s%s", o->dataset_name, name, ext[i]);
        if (path_kind(p) == 1)
            return p;
        free(p);
    }
    return err_set(e, "%s: no %s.jsonl or %s.json for the '%s' split (--splits %s)", o->dataset_name, name, name,
                   name, o->splits),
           NULL;
}

int dataset_has_split(const data_options *o, int split)
{
    char *p = split_path(o, split, NULL);
    free(p);
    return p != NULL;
}

/* ------------------------------------------------------------------------- */
/* Files of rows. */

static int row_error_json(const char *path, size_t line, const json_error_t *jerr, errbuf *e)
{
    if (json_error_code(jerr) == json_error_invalid_utf8)
        return err_set(e, "%s:%zu: not valid UTF-8 (%s)", path, line, jerr->text);
    return err_set(e, "%s:%zu: invalid JSON: %s", path, line, jerr->text);
}

static int read_jsonl(FILE *f, doc_reader *r, errbuf *e)
{
    char *line = NULL;
    size_t cap = 0, line_no = 0;
    ssize_t got;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, f)) != -1) {
        line_no++;
        size_t k = 0;
        while (k < (size_t)got && (line[k] == ' ' || line[k] == '\t' || line[k] == '\n' || line[k] == '\r'))
            k++;
        if (k == (size_t)got)
            continue; /* blank line */
        json_error_t jerr;
        json_t *row = json_loadb(line, (size_t)got, 0, &jerr);
        if (!row) {
            rc = row_error_json(r->path, line_no, &jerr, e);
            break;
        }
        rc = data_row_to_doc(r, row, line_no, e);
        json_decref(row);
    }
    if (rc == 0 && ferror(f))
        rc = err_set(e, "%s: read error: %s", r->path, strerror(errno));
    free(line);
    return rc;
}

static size_t skip_space(const char *s, size_t n, size_t at, size_t *line)
{
    while (at < n && (s[at] == ' ' || s[at] == '\t' || s[at] == '\n' || s[at] == '\r')) {
        if (s[at] == '\n')
            (*line)++;
        at++;
    }
    return at;
}

/* A JSON array of rows, decoded one row at a time so that an error can name
 * the line its row starts on. */
static int read_array(const char *s, size_t n, size_t at, size_t line, doc_reader *r, errbuf *e)
{
    at = skip_space(s, n, at + 1, &line); /* past '[' */
    if (at < n && s[at] == ']')
        return 0;
    for (;;) {
        if (at >= n)
            return err_set(e, "%s:%zu: the JSON array is not closed", r->path, line);
        json_error_t jerr;
        json_t *row = json_loadb(s + at, n - at, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &jerr);
        if (!row)
            return row_error_json(r->path, line + (jerr.line > 0 ? (size_t)jerr.line - 1 : 0), &jerr, e);
        int rc = data_row_to_doc(r, row, line, e);
        json_decref(row);
        if (rc != 0)
            return -1;
        for (size_t end = at + (size_t)jerr.position; at < end; at++)
            if (s[at] == '\n')
                line++;
        at = skip_space(s, n, at, &line);
        if (at < n && s[at] == ',') {
            at = skip_space(s, n, at + 1, &line);
            continue;
        }
        if (at < n && s[at] == ']')
            break;
        return err_set(e, "%s:%zu: expected ',' or ']' after a row of the JSON array", r->path, line);
    }
    at = skip_space(s, n, at + 1, &line);
    if (at < n)
        return err_set(e, "%s:%zu: text after the end of the JSON array", r->path, line);
    return 0;
}

static int read_rows(doc_reader *r, errbuf *e)
{
    FILE *f = fopen(r->path, "rb");
    if (!f)
        return err_set(e, "%s: cannot open the dataset: %s", r->path, strerror(errno));
    /* a file whose first character is '[' is one JSON array */
    int c;
    size_t line = 1;
    while ((c = fgetc(f)) == ' ' || c == '\t' || c == '\r' || c == '\n')
        line += c == '\n';
    if (c != '[') {
        rewind(f);
        int rc = read_jsonl(f, r, e);
        fclose(f);
        return rc;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return err_set(e, "%s: cannot seek: %s", r->path, strerror(errno));
    }
    long size = ftell(f);
    rewind(f);
    char *s = size > 0 ? malloc((size_t)size) : NULL;
    if (!s) {
        fclose(f);
        return err_set(e, "%s: cannot hold %ld bytes in memory", r->path, size);
    }
    size_t got = fread(s, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(s);
        return err_set(e, "%s: read %zu of %ld bytes", r->path, got, size);
    }
    size_t at = 0, l = 1;
    at = skip_space(s, got, 0, &l);
    int rc = read_array(s, got, at, l, r, e);
    free(s);
    return rc;
}

/* ------------------------------------------------------------------------- */

int dataset_load(const data_options *o, int split, const tokenizer *tok, int vocab_size, dataset *d, errbuf *e)
{
    memset(d, 0, sizeof *d);
    if (o->max_seq_len < 2)
        return err_set(e, "--max_seq_len: %d is too small (at least 2)", o->max_seq_len);
    if (o->assistant_only_loss && o->chat_format == CHAT_NONE && !o->chat_model)
        return err_set(e, "--assistant_only_loss needs a chat template (assistant turns are found by rendering "
                       "conversations): the model has none; give --chat_template_path FILE or "
                       "--chat_template_format chatml|zephyr");
    int eos_id = -1;
    if (o->packing && o->append_concat_token) {
        eos_id = tok ? tokenizer_eos_id(tok) : -1;
        if (eos_id < 0)
            return err_set(e, "--append_concat_token: the tokenizer has no EOS token to put between documents");
        if (eos_id >= vocab_size)
            return err_set(e, "--append_concat_token: the EOS token %d is outside the model's vocabulary of %d",
                           eos_id, vocab_size);
    }
    char *path = split_path(o, split, e);
    if (!path)
        return -1;
    dataset docs = {0};
    doc_reader r = {o, tok, vocab_size, eos_id, path, &docs};
    int rc = read_rows(&r, e);
    if (rc == 0 && docs.n_rows == 0)
        rc = err_set(e, "%s: no rows", path);
    free(path);
    if (rc != 0) {
        dataset_free(&docs);
        return -1;
    }
    if (!o->packing) {
        dataset_truncate(&docs, o->max_seq_len);
        *d = docs;
        return 0;
    }
    if (o->packing_strategy == PACK_BFD)
        dataset_pack_bfd(&docs, o->max_seq_len, d);
    else
        dataset_pack_wrapped(&docs, o->max_seq_len, d);
    dataset_free(&docs);
    return 0;
}
