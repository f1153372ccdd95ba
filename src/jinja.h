/* jinja.h: chat templates (the Jinja2 of tokenizer_config.json's
 * "chat_template") rendered as transformers' apply_chat_template renders
 * them: an ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks,
 * loop controls, the {% generation %} block, and transformers' globals and
 * tojson filter.
 *
 * Only the part of the language chat templates use is implemented; anything
 * else is refused, at parse time where it can be seen there, with one line
 * "chat template line N: ..." -- never rendered differently.  A template is
 * untrusted input: parsing and rendering are bounded (nesting depth, loop
 * iterations, memory and output size) and read no file. */
#ifndef SHARDTUNE_JINJA_H
#define SHARDTUNE_JINJA_H

#include <jansson.h>
#include <stddef.h>

#include "log.h"

typedef struct jinja_template jinja_template;

/* Parses src[0..n) (a template's text, valid UTF-8: utf8.h; a JSON string
 * always is).  NULL and e set when it is not
 * a template or uses something not supported. */
jinja_template *jinja_parse(const char *src, size_t n, errbuf *e);
void jinja_free(jinja_template *t);

/* Renders t with the variables of vars (a JSON object: messages,
 * add_generation_prompt, bos_token, eos_token, tools, ...) into a
 * NUL-terminated malloc'd *out of *n_out bytes.  strftime_now() reads the
 * clock, or SHARDTUNE_CHAT_TEMPLATE_NOW ("YYYY-MM-DD HH:MM:SS") when set, so
 * that tests can pin the date.  -1 and e set on raise_exception(), an error
 * of the template (as Jinja raises one) or a limit reached. */
int jinja_render(const jinja_template *t, json_t *vars, char **out, size_t *n_out, errbuf *e);

/* As jinja_render, and the byte spans [start, end) of the text each
 * {% generation %} block wrote: (*spans)[2k], (*spans)[2k+1] for the k-th
 * block to end (transformers' AssistantTracker; nested blocks give nested
 * spans), *spans malloc'd.  A block inside {% set %} ... {% endset %} is an
 * error here (its text has no place in the output yet). */
int jinja_render_spans(const jinja_template *t, json_t *vars, char **out, size_t *n_out, size_t **spans,
                       size_t *n_spans, errbuf *e);
/* 1 when t has a {% generation %} block. */
int jinja_has_generation(const jinja_template *t);

#endif
