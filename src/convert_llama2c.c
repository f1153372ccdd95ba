/* convert_llama2c.c: a llama2.c legacy checkpoint and its tokenizer -> a
 * Hugging Face Llama directory (model.safetensors, config.json,
 * tokenizer.json, tokenizer_config.json).
 *
 * It exists so that the published stories260K model (and any llama2.c export)
 * can be fine-tuned and checked against transformers like any HF model.
 * Everything is read and validated before the first output file is written;
 * if a write fails, the files this call wrote are removed again, so a failed
 * conversion never leaves a directory that looks complete. */
#include "convert_llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_make.h"
#include "hf_config.h"
#include "safetensors.h"

/* ---------------------------------------------------------------------------
 * The checkpoint: 7 int32 header, then fp32 tensors in a fixed order. */

enum { L2C_HEADER_BYTES = 7 * 4, L2C_MAX_SIZE = 1 << 24 };

/* llama2.c's newer export formats start with this magic ("ak42"). */
#define L2C_MAGIC 0x616b3432

typedef struct l2c_checkpoint {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int tied;                 /* vocab_size was positive: lm_head = embedding */
    int head_dim, kv_dim;
    void *map;                /* the whole file, read-only */
    size_t map_bytes;
    /* the tensors, pointers into map */
    const float *tok_emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3,
        *rms_final, *wcls;
} l2c_checkpoint;

/* a*b and a+b in size_t, failing instead of wrapping: a garbage header must
 * end in a size mismatch, not in an overflowed "expected" size that matches. */
static int size_mul(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
static int size_add(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out); }

/* Lays the tensors out one after the other from p, in the file's order, and
 * returns the number of floats they take (or -1 on overflow). */
static int l2c_layout(l2c_checkpoint *ck, const float *p, size_t *n_floats)
{
    size_t D = ck->dim, H = ck->hidden_dim, L = ck->n_layers, V = ck->vocab_size;
    size_t KV = ck->kv_dim, S = ck->seq_len, HD = ck->head_dim;
    const float **slots[] = {&ck->tok_emb, &ck->rms_att, &ck->wq, &ck->wk, &ck->wv, &ck->wo,
                             &ck->rms_ffn, &ck->w1, &ck->w2, &ck->w3, &ck->rms_final,
                             NULL, NULL, &ck->wcls};
    /* {rows, cols, layers}; freq_cis_real and freq_cis_imag are skipped:
     * Hugging Face recomputes RoPE from rope_theta. */
    size_t dims[][3] = {{V, D, 1}, {D, 1, L}, {D, D, L}, {KV, D, L}, {KV, D, L}, {D, D, L},
                        {D, 1, L}, {H, D, L}, {D, H, L}, {H, D, L}, {D, 1, 1},
                        {S, HD / 2, 1}, {S, HD / 2, 1}, {V, D, 1}};
    size_t n_tensors = ck->tied ? 13 : 14, total = 0;
    ck->wcls = NULL;
    for (size_t i = 0; i < n_tensors; i++) {
        size_t n;
        if (size_mul(dims[i][0], dims[i][1], &n) || size_mul(n, dims[i][2], &n))
            return -1;
        if (slots[i] && p)
            *slots[i] = p + total;
        if (size_add(total, n, &total))
            return -1;
    }
    *n_floats = total;
    return 0;
}

static void l2c_checkpoint_close(l2c_checkpoint *ck)
{
    if (ck->map && ck->map != MAP_FAILED)
        munmap(ck->map, ck->map_bytes);
    ck->map = NULL;
}

static int l2c_checkpoint_open(const char *path, l2c_checkpoint *ck, errbuf *e)
{
    memset(ck, 0, sizeof *ck);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return err_set(e, "%s: cannot open llama2.c checkpoint: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        err_set(e, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t file_bytes = (size_t)sb.st_size;
    if (!S_ISREG(sb.st_mode) || file_bytes < L2C_HEADER_BYTES) {
        err_set(e, "%s: not a llama2.c checkpoint: %zu bytes, shorter than the %d-byte header",
                path, file_bytes, L2C_HEADER_BYTES);
        close(fd);
        return -1;
    }
    void *map = mmap(NULL, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED)
        return err_set(e, "%s: cannot mmap %zu bytes: %s", path, file_bytes, strerror(errno));
    ck->map = map;
    ck->map_bytes = file_bytes;

    int32_t h[7];
    memcpy(h, map, sizeof h);
    if ((uint32_t)h[0] == L2C_MAGIC) {
        l2c_checkpoint_close(ck);
        return err_set(e, "%s: llama2.c export version %d; only the legacy format "
                       "(export.py --version 0) is supported", path, h[1]);
    }
    ck->dim = h[0];
    ck->hidden_dim = h[1];
    ck->n_layers = h[2];
    ck->n_heads = h[3];
    ck->n_kv_heads = h[4];
    ck->tied = h[5] > 0;
    ck->vocab_size = h[5] == INT32_MIN ? 0 : abs(h[5]);
    ck->seq_len = h[6];
    const char *bad = NULL;
    int sizes[7] = {ck->dim, ck->hidden_dim, ck->n_layers, ck->n_heads, ck->n_kv_heads,
                    ck->vocab_size, ck->seq_len};
    for (int i = 0; i < 7; i++)
        if (sizes[i] <= 0 || sizes[i] > L2C_MAX_SIZE)
            bad = "a size is not in 1..16777216";
    if (!bad && ck->dim % ck->n_heads != 0)
        bad = "dim is not a multiple of n_heads";
    else if (!bad && ck->n_heads % ck->n_kv_heads != 0)
        bad = "n_heads is not a multiple of n_kv_heads";
    else if (!bad && (ck->dim / ck->n_heads) % 2 != 0)
        bad = "the head size is odd (RoPE needs pairs)";
    if (bad) {
        err_set(e, "%s: not a llama2.c checkpoint: header (dim %d, hidden_dim %d, n_layers %d, "
                "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d): %s",
                path, h[0], h[1], h[2], h[3], h[4], h[5], h[6], bad);
        l2c_checkpoint_close(ck);
        return -1;
    }
    ck->head_dim = ck->dim / ck->n_heads;
    ck->kv_dim = ck->head_dim * ck->n_kv_heads;

    size_t n_floats, want_bytes = 0;
    int overflow = l2c_layout(ck, NULL, &n_floats) || size_mul(n_floats, 4, &want_bytes) ||
                   size_add(want_bytes, L2C_HEADER_BYTES, &want_bytes);
    if (overflow || want_bytes != file_bytes) {
        err_set(e, "%s: %s llama2.c checkpoint: the header (dim %d, hidden_dim %d, n_layers %d, "
                "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d) needs %zu bytes, the file "
                "has %zu", path, !overflow && file_bytes < want_bytes ? "truncated" : "not a",
                h[0], h[1], h[2], h[3], h[4], h[5], h[6], overflow ? SIZE_MAX : want_bytes,
                file_bytes);
        l2c_checkpoint_close(ck);
        return -1;
    }
    /* cannot fail: the same sizes just passed without overflow */
    l2c_layout(ck, (const float *)((const char *)map + L2C_HEADER_BYTES), &n_floats);
    return 0;
}

/* llama2.c rotates adjacent pairs (2j, 2j+1) of a head with frequency j;
 * Hugging Face rotates (j, j + hd/2).  So HF row j of a head is llama2.c row
 * 2j and HF row j + hd/2 is row 2j+1: the inverse of the permute() in
 * transformers' convert_llama_weights_to_hf.py. */
static void l2c_permute_rope(const float *src, float *dst, int n_heads, int head_dim, int n_cols)
{
    size_t row_bytes = (size_t)n_cols * sizeof(float);
    for (int h = 0; h < n_heads; h++)
        for (int j = 0; j < head_dim / 2; j++) {
            size_t base = (size_t)h * head_dim;
            memcpy(dst + (base + j) * n_cols, src + (base + 2 * j) * n_cols, row_bytes);
            memcpy(dst + (base + j + head_dim / 2) * n_cols, src + (base + 2 * j + 1) * n_cols,
                   row_bytes);
        }
}

/* ---------------------------------------------------------------------------
 * The tokenizer: int32 max_token_length, then per id {float score, int32 len,
 * len bytes}.  Ids 0..2 are <unk>, <s>, </s>; 3..258 byte tokens <0x00>..
 * <0xFF>; the rest SentencePiece pieces with U+2581 turned into ' '. */

enum { TOK_N_SPECIAL = 3, TOK_FIRST_PIECE = 3 + 256 };

typedef struct l2c_vocab {
    int n;
    char **pieces; /* Hugging Face spelling: U+2581 for space, NUL-terminated */
    float *scores;
} l2c_vocab;

static void l2c_vocab_free(l2c_vocab *v)
{
    for (int i = 0; v->pieces && i < v->n; i++)
        free(v->pieces[i]);
    free(v->pieces);
    free(v->scores);
    memset(v, 0, sizeof *v);
}

/* Copies len bytes with every ' ' turned into U+2581 ("\xe2\x96\x81"). */
static char *l2c_piece_to_hf(const unsigned char *s, size_t len)
{
    size_t n_spaces = 0;
    for (size_t i = 0; i < len; i++)
        n_spaces += s[i] == ' ';
    char *out = xmalloc(len + 2 * n_spaces + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            *o++ = (char)s[i];
        }
    }
    *o = '\0';
    return out;
}

static int l2c_vocab_read(const char *path, int vocab_size, l2c_vocab *v, errbuf *e)
{
    memset(v, 0, sizeof *v);
    if (vocab_size < TOK_FIRST_PIECE)
        return err_set(e, "%s: the checkpoint's vocab_size %d is below %d: not a SentencePiece "
                       "vocabulary with byte fallback", path, vocab_size, TOK_FIRST_PIECE);
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, "%s: cannot open llama2.c tokenizer: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return err_set(e, "%s: not a regular file", path);
    }
    size_t n_bytes = (size_t)sb.st_size;
    unsigned char *buf = xmalloc(n_bytes);
    size_t got = fread(buf, 1, n_bytes, f);
    int read_err = ferror(f);
    fclose(f);
    if (got != n_bytes || read_err) {
        free(buf);
        return err_set(e, "%s: read %zu of %zu bytes", path, got, n_bytes);
    }

    v->n = vocab_size;
    v->pieces = xcalloc((size_t)vocab_size, sizeof *v->pieces);
    v->scores = xcalloc((size_t)vocab_size, sizeof *v->scores);
    size_t pos = 4;
    int32_t max_len = 0;
    if (n_bytes >= 4)
        memcpy(&max_len, buf, 4);
    if (n_bytes < 4 || max_len <= 0) {
        err_set(e, "%s: not a llama2.c tokenizer: bad max_token_length header", path);
        goto fail;
    }
    for (int id = 0; id < vocab_size; id++) {
        float score;
        int32_t len;
        if (n_bytes - pos < 8) {
            err_set(e, "%s: truncated llama2.c tokenizer: token %d of %d is missing (the "
                    "checkpoint's vocab_size)", path, id, vocab_size);
            goto fail;
        }
        memcpy(&score, buf + pos, 4);
        memcpy(&len, buf + pos + 4, 4);
        pos += 8;
        if (len <= 0 || len > max_len || (size_t)len > n_bytes - pos || !isfinite(score)) {
            err_set(e, "%s: token %d at byte %zu: bad record (length %d, max_token_length %d, "
                    "%zu bytes left, score %g)", path, id, pos - 8, len, max_len, n_bytes - pos,
                    (double)score);
            goto fail;
        }
        const unsigned char *s = buf + pos;
        pos += (size_t)len;
        v->scores[id] = score;
        /* The exporter wrote the specials as "<unk>", "\n<s>\n", "\n</s>\n":
         * Hugging Face names them without the newlines. */
        static const char *special[TOK_N_SPECIAL] = {"<unk>", "<s>", "</s>"};
        if (id < TOK_N_SPECIAL) {
            v->pieces[id] = xstrdup(special[id]);
            continue;
        }
        v->pieces[id] = l2c_piece_to_hf(s, (size_t)len);
        if (id < TOK_FIRST_PIECE) {
            char want[8];
            snprintf(want, sizeof want, "<0x%02X>", id - TOK_N_SPECIAL);
            if (strcmp(v->pieces[id], want) != 0) {
                /* err_set writes a newline in the piece escaped (found by fuzz_llama2c) */
                err_set(e, "%s: token %d is \"%.32s\", expected the byte-fallback token %s",
                        path, id, v->pieces[id], want);
                goto fail;
            }
        }
    }
    if (pos != n_bytes) {
        err_set(e, "%s: %zu bytes after the %d tokens the checkpoint's vocab_size asks for: "
                "tokenizer and checkpoint do not match", path, n_bytes - pos, vocab_size);
        goto fail;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    l2c_vocab_free(v);
    return -1;
}

/* ---------------------------------------------------------------------------
 * tokenizer.json: a SentencePiece-style BPE as transformers' LlamaConverter
 * writes it. */

typedef struct merge_rank {
    float score; /* of the merged piece: higher merges first */
    int merged, left, right;
} merge_rank;

static int merge_rank_cmp(const void *pa, const void *pb)
{
    const merge_rank *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->merged != b->merged)
        return a->merged < b->merged ? -1 : 1;
    if (a->left != b->left)
        return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

/* Takes ownership of value (jansson's _new setters): one check covers both a
 * NULL value and a failed insertion. */
static int jset(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

static json_t *tok_replace(const char *from, const char *to)
{
    return json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", from,
                     "content", to);
}

static json_t *tok_added_tokens(const l2c_vocab *v)
{
    json_t *arr = json_array();
    for (int id = 0; arr && id < TOK_N_SPECIAL; id++)
        if (json_array_append_new(arr, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id,
                                                  "content", v->pieces[id], "single_word", 0,
                                                  "lstrip", 0, "rstrip", 0, "normalized", 0,
                                                  "special", 1)) != 0) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

/* Every split of a piece into two pieces of the vocabulary is a merge, ranked
 * by the merged piece's score: what SentencePiece's BPE does when it merges
 * the best-scoring pair first. */
static json_t *tok_merges(const l2c_vocab *v, json_t *vocab, const char *path, errbuf *e)
{
    size_t n = 0, cap = 1024;
    merge_rank *m = xmalloc(cap * sizeof *m);
    char *buf = NULL;
    size_t buf_cap = 0;
    for (int id = TOK_FIRST_PIECE; id < v->n; id++) {
        const char *p = v->pieces[id];
        size_t len = strlen(p);
        if (len + 1 > buf_cap) {
            free(buf);
            buf_cap = 2 * len + 16;
            buf = xmalloc(buf_cap);
        }
        /* split only at UTF-8 character starts (not continuation bytes) */
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)p[k] & 0xC0) == 0x80)
                continue;
            memcpy(buf, p, k);
            buf[k] = '\0';
            json_t *l = json_object_get(vocab, buf), *r = json_object_get(vocab, p + k);
            if (!l || !r)
                continue;
            if (n == cap) {
                cap *= 2;
                merge_rank *grown = realloc(m, cap * sizeof *m);
                if (!grown) {
                    free(m);
                    free(buf);
                    err_set(e, "%s: out of memory building %zu merges", path, cap);
                    return NULL;
                }
                m = grown;
            }
            m[n++] = (merge_rank){v->scores[id], id, (int)json_integer_value(l),
                                  (int)json_integer_value(r)};
        }
    }
    free(buf);
    qsort(m, n, sizeof *m, merge_rank_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        /* "left right": pieces never hold a plain space (it became U+2581) */
        json_t *s = json_sprintf("%s %s", v->pieces[m[i].left], v->pieces[m[i].right]);
        if (json_array_append_new(arr, s) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    free(m);
    if (!arr)
        err_set(e, "%s: out of memory building the merges", path);
    return arr;
}

static json_t *tok_model(const l2c_vocab *v, const char *path, errbuf *e)
{
    json_t *vocab = json_object();
    if (!vocab) {
        err_set(e, "%s: out of memory", path);
        return NULL;
    }
    for (int id = 0; id < v->n; id++) {
        /* jansson refuses invalid UTF-8: the JSON file could not hold it */
        json_t *key_check = json_string(v->pieces[id]);
        if (!key_check) {
            err_set(e, "%s: token %d is not valid UTF-8", path, id);
            goto fail;
        }
        json_decref(key_check);
        if (json_object_get(vocab, v->pieces[id])) {
            err_set(e, "%s: token %d \"%.64s\" repeats token %d", path, id, v->pieces[id],
                    (int)json_integer_value(json_object_get(vocab, v->pieces[id])));
            goto fail;
        }
        if (jset(vocab, v->pieces[id], json_integer(id)) != 0) {
            err_set(e, "%s: out of memory", path);
            goto fail;
        }
    }
    json_t *merges = tok_merges(v, vocab, path, e);
    if (!merges)
        goto fail;
    json_t *model = json_pack("{s:s, s:n, s:s, s:n, s:n, s:b, s:b, s:o, s:o}", "type", "BPE",
                              "dropout", "unk_token", "<unk>", "continuing_subword_prefix",
                              "end_of_word_suffix", "fuse_unk", 1, "byte_fallback", 1,
                              "vocab", vocab, "merges", merges);
    if (!model)
        err_set(e, "%s: out of memory", path);
    return model; /* json_pack's "o" stole vocab and merges, also on failure */
fail:
    json_decref(vocab);
    return NULL;
}

static json_t *tok_json(const l2c_vocab *v, const char *path, errbuf *e)
{
    json_t *model = tok_model(v, path, e);
    if (!model)
        return NULL;
    json_t *normalizer = json_pack(
        "{s:s, s:[{s:s, s:s}, o]}", "type", "Sequence", "normalizers", "type", "Prepend",
        "prepend", "\xe2\x96\x81", tok_replace(" ", "\xe2\x96\x81"));
    json_t *decoder = json_pack(
        "{s:s, s:[o, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence", "decoders",
        tok_replace("\xe2\x96\x81", " "), "type", "ByteFallback", "type", "Fuse", "type", "Strip",
        "content", " ", "start", 1, "stop", 0);
    json_t *post = json_pack(
        "{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}],"
        " s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}],"
        " s:{s:{s:s, s:[i], s:[s]}}}",
        "type", "TemplateProcessing",
        "single", "SpecialToken", "id", "<s>", "type_id", 0, "Sequence", "id", "A", "type_id", 0,
        "pair", "SpecialToken", "id", "<s>", "type_id", 0, "Sequence", "id", "A", "type_id", 0,
        "SpecialToken", "id", "<s>", "type_id", 1, "Sequence", "id", "B", "type_id", 1,
        "special_tokens", "<s>", "id", "<s>", "ids", 1, "tokens", "<s>");
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:o, s:n, s:o, s:o, s:o}", "version", "1.0",
                             "truncation", "padding", "added_tokens", tok_added_tokens(v),
                             "normalizer", normalizer, "pre_tokenizer", "post_processor", post,
                             "decoder", decoder, "model", model);
    if (!root)
        err_set(e, "%s: out of memory building tokenizer.json", path);
    return root;
}

static json_t *tok_config_json(const l2c_vocab *v, int seq_len)
{
    json_t *added = json_object();
    for (int id = 0; added && id < TOK_N_SPECIAL; id++) {
        char key[16];
        snprintf(key, sizeof key, "%d", id);
        if (jset(added, key, json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content",
                                       v->pieces[id], "lstrip", 0, "normalized", 0, "rstrip", 0,
                                       "single_word", 0, "special", 1)) != 0) {
            json_decref(added);
            added = NULL;
        }
    }
    return json_pack("{s:b, s:b, s:o, s:s, s:s, s:s, s:n, s:i, s:s, s:b, s:b}",
                     "add_bos_token", 1, "add_eos_token", 0, "added_tokens_decoder", added,
                     "bos_token", "<s>", "eos_token", "</s>", "unk_token", "<unk>", "pad_token",
                     "model_max_length", seq_len, "tokenizer_class", "LlamaTokenizerFast",
                     "clean_up_tokenization_spaces", 0, "legacy", 0);
}

/* ---------------------------------------------------------------------------
 * Output files. */

/* Writes PATH.tmp and renames it, so a reader never sees half a file. */
static int json_write_atomic(json_t *root, const char *path, errbuf *e)
{
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return err_set(e, "%s: cannot serialize JSON (out of memory)", path);
    size_t tmp_len = strlen(path) + 5;
    char *tmp = xmalloc(tmp_len);
    snprintf(tmp, tmp_len, "%s.tmp", path);
    int rc = -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        size_t n = strlen(text);
        int ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
        int saved = errno;
        if (fclose(f) != 0 && ok) {
            ok = 0;
            saved = errno;
        }
        if (!ok)
            err_set(e, "%s: write failed: %s", tmp, strerror(saved));
        else if (rename(tmp, path) != 0)
            err_set(e, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        else
            rc = 0;
        if (rc != 0)
            unlink(tmp);
    }
    free(tmp);
    free(text);
    return rc;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The HF tensors handed to the writer: it references names and data until it
 * writes, so the names and the permuted q/k live here until then. */
typedef struct hf_tensors {
    char (*names)[96];
    size_t n_names;
    float *wq_hf, *wk_hf;
} hf_tensors;

/* Adds one F32 tensor of shape {rows} (cols 0) or {rows, cols}. */
static void hf_tensor_add(st_writer *w, hf_tensors *t, size_t rows, size_t cols,
                          const float *data, const char *fmt, int layer)
{
    int64_t shape[2] = {(int64_t)rows, (int64_t)cols};
    char *name = t->names[t->n_names++];
    snprintf(name, sizeof t->names[0], fmt, layer);
    st_writer_add(w, name, ST_F32, cols ? 2 : 1, shape, data);
}

static void hf_tensors_add(st_writer *w, const l2c_checkpoint *ck, hf_tensors *t)
{
    size_t D = ck->dim, H = ck->hidden_dim, KV = ck->kv_dim, V = ck->vocab_size;
    t->names = xcalloc(3 + 9 * (size_t)ck->n_layers, sizeof *t->names);
    t->wq_hf = xmalloc((size_t)ck->n_layers * D * D * sizeof(float));
    t->wk_hf = xmalloc((size_t)ck->n_layers * KV * D * sizeof(float));
    hf_tensor_add(w, t, V, D, ck->tok_emb, "model.embed_tokens.weight", 0);
    for (int l = 0; l < ck->n_layers; l++) {
        float *wq = t->wq_hf + l * D * D, *wk = t->wk_hf + l * KV * D;
        l2c_permute_rope(ck->wq + l * D * D, wq, ck->n_heads, ck->head_dim, ck->dim);
        l2c_permute_rope(ck->wk + l * KV * D, wk, ck->n_kv_heads, ck->head_dim, ck->dim);
        hf_tensor_add(w, t, D, 0, ck->rms_att + l * D, "model.layers.%d.input_layernorm.weight", l);
        hf_tensor_add(w, t, D, D, wq, "model.layers.%d.self_attn.q_proj.weight", l);
        hf_tensor_add(w, t, KV, D, wk, "model.layers.%d.self_attn.k_proj.weight", l);
        hf_tensor_add(w, t, KV, D, ck->wv + l * KV * D, "model.layers.%d.self_attn.v_proj.weight", l);
        hf_tensor_add(w, t, D, D, ck->wo + l * D * D, "model.layers.%d.self_attn.o_proj.weight", l);
        hf_tensor_add(w, t, D, 0, ck->rms_ffn + l * D,
                      "model.layers.%d.post_attention_layernorm.weight", l);
        /* llama2.c's w1, w3, w2 are SwiGLU's gate, up and down */
        hf_tensor_add(w, t, H, D, ck->w1 + l * H * D, "model.layers.%d.mlp.gate_proj.weight", l);
        hf_tensor_add(w, t, H, D, ck->w3 + l * H * D, "model.layers.%d.mlp.up_proj.weight", l);
        hf_tensor_add(w, t, D, H, ck->w2 + l * D * H, "model.layers.%d.mlp.down_proj.weight", l);
    }
    hf_tensor_add(w, t, D, 0, ck->rms_final, "model.norm.weight", 0);
    if (!ck->tied)
        hf_tensor_add(w, t, V, D, ck->wcls, "lm_head.weight", 0);
}

static void hf_tensors_free(hf_tensors *t)
{
    free(t->names);
    free(t->wq_hf);
    free(t->wk_hf);
}

static void l2c_llama_config(const l2c_checkpoint *ck, llama_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->hidden_size = ck->dim;
    cfg->intermediate_size = ck->hidden_dim;
    cfg->n_layers = ck->n_layers;
    cfg->n_heads = ck->n_heads;
    cfg->n_kv_heads = ck->n_kv_heads;
    cfg->head_dim = ck->head_dim;
    cfg->vocab_size = ck->vocab_size;
    cfg->max_position_embeddings = ck->seq_len;
    cfg->tie_word_embeddings = ck->tied;
    cfg->bos_token_id = 1;
    cfg->eos_token_id = 2;
    cfg->pad_token_id = -1;
    cfg->rms_norm_eps = 1e-5f; /* llama2.c's rmsnorm */
    cfg->rope_theta = 10000.0f; /* llama2.c's RoPE base */
    cfg->rope_type = ROPE_DEFAULT;
    snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "float32");
}

/* ---------------------------------------------------------------------------
 * The conversion. */

int convert_llama2c(const char *checkpoint_path, const char *tokenizer_path,
                    const char *out_dir, errbuf *e)
{
    l2c_checkpoint ck;
    if (l2c_checkpoint_open(checkpoint_path, &ck, e) != 0)
        return -1;
    l2c_vocab vocab;
    if (l2c_vocab_read(tokenizer_path, ck.vocab_size, &vocab, e) != 0) {
        l2c_checkpoint_close(&ck);
        return -1;
    }
    json_t *tok = tok_json(&vocab, tokenizer_path, e);
    json_t *tok_cfg = tok ? tok_config_json(&vocab, ck.seq_len) : NULL;
    if (tok && !tok_cfg)
        err_set(e, "%s: out of memory building tokenizer_config.json", tokenizer_path);
    l2c_vocab_free(&vocab);

    enum { N_OUT = 4 };
    static const char *names[N_OUT] = {"tokenizer.json", "tokenizer_config.json", "config.json",
                                       "model.safetensors"};
    char *paths[N_OUT] = {0};
    int n_written = 0, rc = -1;
    llama_config cfg;
    l2c_llama_config(&ck, &cfg);
    hf_tensors tensors = {0};
    st_writer *w = NULL;
    if (!tok_cfg || dir_make(out_dir, e) != 0)
        goto done;
    for (int i = 0; i < N_OUT; i++)
        paths[i] = path_join(out_dir, names[i]);
    /* the weights last: a directory without them is never taken for a model */
    if (json_write_atomic(tok, paths[0], e) != 0)
        goto done;
    n_written++;
    if (json_write_atomic(tok_cfg, paths[1], e) != 0)
        goto done;
    n_written++;
    if (llama_config_save(&cfg, paths[2], e) != 0)
        goto done;
    n_written++;
    w = st_writer_new();
    if (!w) {
        err_set(e, "%s: out of memory", paths[3]);
        goto done;
    }
    st_writer_metadata(w, "format", "pt"); /* transformers wants it */
    hf_tensors_add(w, &ck, &tensors);
    if (st_writer_write(w, paths[3], e) != 0)
        goto done;
    rc = 0;
done:
    for (int i = 0; rc != 0 && i < n_written; i++)
        unlink(paths[i]);
    for (int i = 0; i < N_OUT; i++)
        free(paths[i]);
    if (w)
        st_writer_free(w);
    hf_tensors_free(&tensors);
    json_decref(tok);
    json_decref(tok_cfg);
    l2c_checkpoint_close(&ck);
    return rc;
}
