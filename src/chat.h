/* chat.h: the chat templates of PEFT's examples/sft (utils.py) and their
 * special tokens.
 *
 * --chat_template_format chatml|zephyr makes PEFT's script load the
 * tokenizer with extra special tokens and set one of two Jinja templates;
 * conversations are then rendered to text by transformers'
 * apply_chat_template.  Both templates are simple enough to render here
 * directly, character for character (tests/data/chat_agreement.sh compares
 * with transformers).  Rendering also reports where each assistant reply
 * lies in the text, for --assistant_only_loss. */
#ifndef SHARDTUNE_CHAT_H
#define SHARDTUNE_CHAT_H

#include <stddef.h>

#include "log.h"
#include "tokenizer.h"

typedef enum chat_format { CHAT_NONE, CHAT_CHATML, CHAT_ZEPHYR } chat_format;

/* "none", "chatml", "zephyr" (train.py's --chat_template_format values). */
int chat_format_from_name(const char *name, chat_format *f, errbuf *e);
const char *chat_format_name(chat_format f);
/* The Jinja template PEFT's utils.py sets for f (NULL for CHAT_NONE): what
 * a saved tokenizer_config.json carries as "chat_template". */
const char *chat_template_source(chat_format f);

/* As PEFT's AutoTokenizer.from_pretrained(pad_token=, bos_token=,
 * eos_token=, additional_special_tokens=ChatmlSpecialTokens.list()):
 *   chatml: bos "<s>", eos "<|im_end|>", pad "<pad>", and
 *           "<|im_start|>user", "<|im_start|>assistant", "<|im_start|>system"
 *   zephyr: bos "<s>", eos "</s>", pad "<pad>", and "<|user|>",
 *           "<|assistant|>", "<|system|>"
 * each a single special token.  New tokens get ids in transformers' order
 * (bos, eos, pad, then the additional list), so the ids equal PEFT's; the
 * tokenizer's vocabulary grows (the model's embeddings must grow with it:
 * PEFT resizes to a multiple of 8).  CHAT_NONE changes nothing. */
int chat_setup_tokenizer(tokenizer *t, chat_format f, errbuf *e);

typedef struct chat_message {
    const char *role;      /* NUL-terminated */
    const char *content;   /* content_len bytes (may hold NUL) */
    size_t content_len;
} chat_message;

/* A rendered conversation: text, and the byte spans [start, end) of every
 * assistant turn's content with its end-of-turn token ("<|im_end|>" for
 * chatml, "</s>" for zephyr), which is what --assistant_only_loss trains on
 * (the model learns to stop). */
typedef struct chat_text {
    char *text;            /* NUL-terminated */
    size_t n_bytes;
    size_t *assistant;     /* 2 per span */
    size_t n_assistant;
} chat_text;

/* Renders msgs[0..n) as apply_chat_template(tokenize=False) does with the
 * template of f.  Zephyr's template writes nothing for a role other than
 * user / system / assistant; chatml writes any role. */
int chat_render(chat_format f, const chat_message *msgs, size_t n, int add_generation_prompt, chat_text *out,
                errbuf *e);
void chat_text_free(chat_text *c);

#endif
