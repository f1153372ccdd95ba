/* generate.c: tokenize the prompt, run it through the units once (filling
 * the KV cache), then one token at a time until EOS or --max_new_tokens.
 * Sampling is transformers' order: temperature, then top-p (nucleus, at
 * least one token kept), then a draw from the seeded generator.  Every rank
 * runs the same steps (FSDP gathers units for them); rank 0 prints. */
#include "generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chat.h"
#include "chat_model.h"
#include "config.h"
#include "rng.h"
#include "session.h"
#include "tokenizer.h"

typedef struct decode_args {
    const int32_t *ids;
    int n;
    float *logits;
} decode_args;

static void decode_unit(model *m, int ui, void *arg)
{
    decode_args *a = arg;
    model_decode_unit(m, ui, a->ids, a->n, a->logits);
}

typedef struct scored {
    float p;
    int id;
} scored;

static int by_prob_desc(const void *x, const void *y)
{
    const scored *a = x, *b = y;
    return a->p < b->p ? 1 : a->p > b->p ? -1 : a->id - b->id;
}

static int pick_token(const float *logits, int vocab, double temperature, double top_p, rng *r)
{
    int best = 0;
    for (int i = 1; i < vocab; i++)
        if (logits[i] > logits[best])
            best = i;
    if (temperature <= 0.0)
        return best;
    scored *s = xmalloc((size_t)vocab * sizeof *s);
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) {
        s[i].p = (float)exp((logits[i] - logits[best]) / temperature);
        s[i].id = i;
        sum += s[i].p;
    }
    qsort(s, (size_t)vocab, sizeof *s, by_prob_desc);
    int keep = 0;
    double mass = 0.0;
    while (keep < vocab && (keep == 0 || mass < top_p * sum))
        mass += s[keep++].p;
    double u = rng_next_uniform(r) * mass, acc = 0.0;
    int chosen = s[keep - 1].id;
    for (int i = 0; i < keep; i++) {
        acc += s[i].p;
        if (u < acc) {
            chosen = s[i].id;
            break;
        }
    }
    free(s);
    return chosen;
}

/* The adapter directory's tokenizer (with the tokens and chat template
 * training added) wins over the base model's. */
static const char *tokenizer_dir(const run_config *c)
{
    char path[4096];
    struct stat st;
    if (c->adapter) {
        snprintf(path, sizeof path, "%s/tokenizer.json", c->adapter);
        if (stat(path, &st) == 0)
            return c->adapter;
    }
    return c->model_name_or_path;
}

/* The prompt as one user turn of the chat template, with the generation
 * prompt, tokenized as apply_chat_template(tokenize=True) does (no special
 * tokens added): the tokenizer's own template (or --chat_template_path's);
 * else PEFT's chatml or zephyr, when the tokenizer has their tokens. */
static int chat_prompt_ids(const run_config *c, const tokenizer *tok, int32_t **ids, size_t *n_ids, errbuf *e)
{
    chat_model *m;
    if (chat_model_load(tokenizer_dir(c), c->chat_template_path, &m, e) != 0)
        return -1;
    chat_text rendered;
    int rc;
    if (m) {
        json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", c->prompt);
        rc = chat_model_render(m, msgs, NULL, 1, 0, &rendered, e);
        json_decref(msgs);
        chat_model_free(m);
    } else {
        chat_format f = tokenizer_token_to_id(tok, "<|im_start|>assistant") >= 0 ? CHAT_CHATML
                        : tokenizer_token_to_id(tok, "<|assistant|>") >= 0  ? CHAT_ZEPHYR
                                                                            : CHAT_NONE;
        if (f == CHAT_NONE)
            return err_set(e, "--chat: %s has no chat template (chat_template.jinja or tokenizer_config.json's "
                           "\"chat_template\") and no chatml or zephyr tokens; give --chat_template_path FILE",
                           tokenizer_dir(c));
        chat_message msg = {.role = "user", .content = c->prompt, .content_len = strlen(c->prompt)};
        rc = chat_render(f, &msg, 1, 1, &rendered, e);
    }
    if (rc != 0)
        return -1;
    rc = tokenizer_encode(tok, rendered.text, rendered.n_bytes, 0, ids, n_ids, e);
    chat_text_free(&rendered);
    return rc;
}

int generate_run(const run_config *c, int argc, char **argv, errbuf *e)
{
    tokenizer *tok = tokenizer_load(tokenizer_dir(c), e);
    if (!tok)
        return -1;
    int rc = -1;
    session s;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    float *logits = NULL;
    char *text = NULL;
    if (c->chat) {
        if (chat_prompt_ids(c, tok, &ids, &n_ids, e) != 0)
            goto out_tok;
    } else if (tokenizer_encode(tok, c->prompt, strlen(c->prompt), 1, &ids, &n_ids, e) != 0) {
        goto out_tok;
    }
    if (n_ids == 0) {
        err_set(e, "--prompt: no tokens");
        goto out_tok;
    }
    if (session_open(&s, c, 0, 0, argc, argv, e) != 0)
        goto out;
    const int vocab = s.m.cfg.vocab_size;
    const int total = (int)n_ids + c->max_new_tokens;
    ids = realloc(ids, (size_t)total * sizeof *ids);
    logits = xmalloc((size_t)vocab * sizeof *logits);
    model_decode_begin(&s.m, total);
    rng r;
    rng_init(&r, (uint64_t)c->seed, 0x67656e); /* "gen" */
    int eos = tokenizer_eos_id(tok) >= 0 ? tokenizer_eos_id(tok) : s.m.cfg.eos_token_id;
    int n = (int)n_ids, fed = 0;
    while (n < total) {
        decode_args a = {ids + fed, n - fed, logits};
        fsdp_forward_each(&s.f, decode_unit, &a, 0);
        fed = n;
        int next = pick_token(logits, vocab, c->temperature, c->top_p, &r);
        ids[n++] = next;
        if (next == eos)
            break;
    }
    size_t n_text = 0;
    /* decode prompt and continuation together: decoders strip the leading
     * space of a sequence, which would eat the one between the two */
    if (tokenizer_decode(tok, c->chat ? ids + n_ids : ids, c->chat ? (size_t)n - n_ids : (size_t)n, 1, &text,
                         &n_text, e) != 0)
        goto out;
    if (s.rank == 0) {
        printf("%s\n", text);
        fprintf(stderr, "generated %d tokens:", n - (int)n_ids);
        for (int i = (int)n_ids; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    rc = 0;
out:
    model_decode_end(&s.m);
    session_close(&s);
out_tok:
    free(text);
    free(logits);
    free(ids);
    tokenizer_free(tok);
    return rc;
}
