/* chat.c: chatml and zephyr rendering and special tokens (see chat.h). */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

/* PEFT examples/sft/utils.py, DEFAULT_CHATML_CHAT_TEMPLATE and
 * DEFAULT_ZEPHYR_CHAT_TEMPLATE, verbatim. */
static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}\n{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% if loop.last and add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}{% endfor %}";
static const char ZEPHYR_TEMPLATE[] =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

typedef struct special_set {
    const char *bos, *eos, *pad;
    const char *additional[3];
} special_set;

/* ChatmlSpecialTokens / ZephyrSpecialTokens of utils.py.  Their list()
 * also repeats eos, bos and pad, which exist by then. */
static const special_set CHATML_TOKENS = {
    "<s>", "<|im_end|>", "<pad>", {"<|im_start|>user", "<|im_start|>assistant", "<|im_start|>system"}};
static const special_set ZEPHYR_TOKENS = {"<s>", "</s>", "<pad>", {"<|user|>", "<|assistant|>", "<|system|>"}};

int chat_format_from_name(const char *name, chat_format *f, errbuf *e)
{
    if (!strcmp(name, "none"))
        *f = CHAT_NONE;
    else if (!strcmp(name, "chatml"))
        *f = CHAT_CHATML;
    else if (!strcmp(name, "zephyr"))
        *f = CHAT_ZEPHYR;
    else
        return err_set(e, "--chat_template_format: '%s' is not one of chatml, zephyr, none", name);
    return 0;
}

const char *chat_format_name(chat_format f)
{
    return f == CHAT_CHATML ? "chatml" : f == CHAT_ZEPHYR ? "zephyr" : "none";
}

const char *chat_template_source(chat_format f)
{
    return f == CHAT_CHATML ? CHATML_TEMPLATE : f == CHAT_ZEPHYR ? ZEPHYR_TEMPLATE : NULL;
}

int chat_setup_tokenizer(tokenizer *t, chat_format f, errbuf *e)
{
    if (f == CHAT_NONE)
        return 0;
    const special_set *s = f == CHAT_CHATML ? &CHATML_TOKENS : &ZEPHYR_TOKENS;
    /* transformers adds the named roles first (bos, eos, pad), then the
     * additional list: that order fixes the new ids.  A token already in the
     * vocabulary keeps its id but becomes special (matched whole). */
    const char *roles[3] = {"bos", "eos", "pad"}, *contents[3] = {s->bos, s->eos, s->pad};
    for (int i = 0; i < 3; i++) {
        tokenizer_add_special_token(t, contents[i]);
        if (tokenizer_set_special(t, roles[i], contents[i], e) < 0)
            return -1;
    }
    for (int i = 0; i < 3; i++)
        tokenizer_add_special_token(t, s->additional[i]);
    /* each must now encode as itself alone */
    const char *all[6] = {s->bos, s->eos, s->pad, s->additional[0], s->additional[1], s->additional[2]};
    for (int i = 0; i < 6; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (tokenizer_encode(t, all[i], strlen(all[i]), 0, &ids, &n, e) != 0)
            return -1;
        free(ids);
        if (n != 1)
            return err_set(e, "chat template %s: \"%s\" does not encode as one token (%zu)", chat_format_name(f),
                           all[i], n);
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Rendering. */

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            die(EXIT_FAILURE_RUN, "chat: out of memory rendering a conversation (%zu bytes)", cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void add_span(chat_text *out, size_t *cap, size_t start, size_t end)
{
    if (2 * (out->n_assistant + 1) > *cap) {
        *cap = *cap ? 2 * *cap : 16;
        out->assistant = realloc(out->assistant, *cap * sizeof *out->assistant);
        if (!out->assistant)
            die(EXIT_FAILURE_RUN, "chat: out of memory");
    }
    out->assistant[2 * out->n_assistant] = start;
    out->assistant[2 * out->n_assistant + 1] = end;
    out->n_assistant++;
}

/* What the templates write per message.  With transformers' Jinja settings
 * (trim_blocks, lstrip_blocks) the newline after each {% %} tag goes; the
 * one after a {{ }} in zephyr's template stays. */
int chat_render(chat_format f, const chat_message *msgs, size_t n, int add_generation_prompt, chat_text *out,
                errbuf *e)
{
    memset(out, 0, sizeof *out);
    if (f == CHAT_NONE)
        return err_set(e, "chat: no chat template (--chat_template_format none) to render a conversation with");
    strbuf b = {0};
    size_t cap = 0;
    sb_put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        const chat_message *m = &msgs[i];
        int is_assistant = !strcmp(m->role, "assistant");
        if (f == CHAT_CHATML) {
            sb_puts(&b, "<|im_start|>");
            sb_puts(&b, m->role);
            sb_puts(&b, "\n");
            size_t start = b.n;
            sb_put(&b, m->content, m->content_len);
            sb_puts(&b, "<|im_end|>");
            if (is_assistant)
                add_span(out, &cap, start, b.n);
            sb_puts(&b, "\n");
            if (i + 1 == n && add_generation_prompt)
                sb_puts(&b, "<|im_start|>assistant\n");
        } else {
            const char *head = !strcmp(m->role, "user")     ? "<|user|>\n"
                             : !strcmp(m->role, "system")   ? "<|system|>\n"
                             : is_assistant                 ? "<|assistant|>\n"
                                                            : NULL;
            if (head) {
                sb_puts(&b, head);
                size_t start = b.n;
                sb_put(&b, m->content, m->content_len);
                sb_puts(&b, ZEPHYR_TOKENS.eos);
                if (is_assistant)
                    add_span(out, &cap, start, b.n);
                sb_puts(&b, "\n");
            }
            if (i + 1 == n && add_generation_prompt)
                sb_puts(&b, "<|assistant|>\n");
        }
    }
    out->text = b.p;
    out->n_bytes = b.n;
    return 0;
}

void chat_text_free(chat_text *c)
{
    free(c->text);
    free(c->assistant);
    memset(c, 0, sizeof *c);
}
