/* chat_model.h: a model's own chat template (Jinja, jinja.h) as training,
 * evaluation, generation and `shardtune chat-template` use it: found where
 * transformers finds it, given the variables apply_chat_template gives it,
 * and, for --assistant_only_loss, where the assistant's replies lie in the
 * rendered text.
 *
 * The template is, first found: --chat_template_path FILE (TRL's flag), the
 * tokenizer directory's chat_template.jinja (with
 * additional_chat_templates/tool_use.jinja), or its tokenizer_config.json
 * "chat_template" (a string, or a list of {name, template}).  As
 * transformers' get_chat_template, a conversation with tools uses the
 * "tool_use" template when there is one, else the "default" one.
 * bos_token, eos_token, unk_token and pad_token come from that
 * tokenizer_config.json. */
#ifndef SHARDTUNE_CHAT_MODEL_H
#define SHARDTUNE_CHAT_MODEL_H

#include <jansson.h>

#include "chat.h"
#include "log.h"

typedef struct chat_model chat_model;

/* The template of dir (a tokenizer directory; NULL with template_path) or of
 * template_path.  *out is NULL (and 0 returned) when there is none.  A
 * template that does not parse is an error only when rendered: a run on
 * plain text never renders it. */
int chat_model_load(const char *dir, const char *template_path, chat_model **out, errbuf *e);
void chat_model_free(chat_model *m);

/* The template's parse error ("ORIGIN: chat template line N: ..."), or NULL
 * when it parsed. */
const char *chat_model_error(const chat_model *m);
/* What a saved adapter's tokenizer_config.json needs as "chat_template" for
 * these templates to come back (a new reference: a string, or a list of
 * {name, template} with "tool_use"), or NULL when they came from that file's
 * own "chat_template" (copied with the rest). */
json_t *chat_model_saved_template(const chat_model *m);
/* Where it came from ("DIR/tokenizer_config.json", a file), for messages. */
const char *chat_model_origin(const chat_model *m);

/* Renders messages (a JSON list of {role, content, ...}, as the rows have
 * them) as apply_chat_template(messages, tools=tools, tokenize=False,
 * add_generation_prompt=...) does; tools may be NULL (None).  With
 * want_spans, out->assistant gets the byte spans trained on with
 * --assistant_only_loss, sorted and disjoint: the text of the template's
 * {% generation %} blocks when it has any (transformers'
 * return_assistant_tokens_mask); else each non-empty assistant "content",
 * found in the text in order (as it is, else stripped of surrounding white
 * space, as templates' |trim writes it), with the eos_token right after it
 * (the model learns to stop).  An assistant reply that cannot be found is an
 * error naming it. */
int chat_model_render(const chat_model *m, json_t *messages, json_t *tools, int add_generation_prompt,
                      int want_spans, chat_text *out, errbuf *e);

#endif
