/* data_rows.c: one dataset row -> one document (token ids and labels).
 *
 * A row is, first match wins:
 *   - pre-tokenized: "input_ids" (+ optional "labels"), used as they are;
 *   - a conversation, when a chat template is on: "messages" [{role,
 *     content}] (UltraChat, what PEFT's create_datasets renders into its
 *     "content" column) or ShareGPT "conversations" [{from, value}] with
 *     human -> user, gpt -> assistant (FastChat's roles);
 *   - else a conversation in the model's own chat template, as TRL's
 *     SFTTrainer renders conversational rows (with the row's "tools"),
 *     when the model has a template;
 *   - text: the --dataset_text_field column, as it is.
 * Text is tokenized with --add_special_tokens, the model template's text
 * without (apply_chat_template(tokenize=True) adds none); with
 * --assistant_only_loss only tokens that overlap an assistant span (chat.h,
 * chat_model.h) keep their labels, found through the tokens' byte
 * offsets. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chat_model.h"
#include "data_internal.h"

int data_row_messages(json_t *list, const char *key, const char *path, size_t line, chat_message **out,
                         size_t *n_out, errbuf *e)
{
    const int sharegpt = !strcmp(key, "conversations");
    const char *role_key = sharegpt ? "from" : "role", *text_key = sharegpt ? "value" : "content";
    if (!json_is_array(list))
        return err_set(e, "%s:%zu: \"%s\" is not a list of messages", path, line, key);
    size_t n = json_array_size(list);
    if (n == 0)
        return err_set(e, "%s:%zu: \"%s\" is empty", path, line, key);
    chat_message *m = xmalloc(n * sizeof *m);
    for (size_t i = 0; i < n; i++) {
        json_t *msg = json_array_get(list, i);
        json_t *role = json_object_get(msg, role_key), *text = json_object_get(msg, text_key);
        const char *why = !json_is_object(msg)  ? "is not an object"
                        : !role                 ? sharegpt ? "has no \"from\"" : "has no \"role\""
                        : !json_is_string(role) ? sharegpt ? "\"from\" is not a string" : "\"role\" is not a string"
                        : !text                 ? sharegpt ? "has no \"value\"" : "has no \"content\""
                        : !json_is_string(text) ? sharegpt ? "\"value\" is not a string" : "\"content\" is not a string"
                                                : NULL;
        if (why) {
            free(m);
            return err_set(e, "%s:%zu: \"%s\"[%zu] %s", path, line, key, i, why);
        }
        const char *r = json_string_value(role);
        if (sharegpt) {
            const char *mapped = !strcmp(r, "human") || !strcmp(r, "user")     ? "user"
                               : !strcmp(r, "gpt") || !strcmp(r, "assistant") ? "assistant"
                               : !strcmp(r, "system")                           ? "system"
                                                                                : NULL;
            if (!mapped) {
                free(m);
                return err_set(e, "%s:%zu: \"conversations\"[%zu] is from \"%s\" (human, gpt or system expected)",
                               path, line, i, r);
            }
            r = mapped;
        }
        m[i] = (chat_message){r, json_string_value(text), json_string_length(text)};
    }
    *out = m;
    *n_out = n;
    return 0;
}

json_t *data_row_template_messages(json_t *row, const char *key, const char *path, size_t line, errbuf *e)
{
    json_t *list = json_object_get(row, key);
    if (!strcmp(key, "messages")) {
        if (json_is_array(list) && json_array_size(list) > 0)
            return json_incref(list);
        err_set(e, "%s:%zu: \"messages\" is %s", path, line, json_is_array(list) ? "empty" : "not a list of messages");
        return NULL;
    }
    chat_message *msgs;
    size_t n;
    if (data_row_messages(list, key, path, line, &msgs, &n, e) != 0)
        return NULL;
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_pack("{s:s, s:s%}", "role", msgs[i].role, "content", msgs[i].content,
                                             msgs[i].content_len));
    free(msgs);
    return out;
}

/* Labels that keep only tokens overlapping an assistant span. */
static int32_t *assistant_labels(const int32_t *ids, const size_t *offsets, size_t n_ids, const chat_text *ct)
{
    int32_t *labels = xmalloc((n_ids ? n_ids : 1) * sizeof *labels);
    size_t k = 0; /* spans and tokens both run left to right */
    for (size_t i = 0; i < n_ids; i++) {
        size_t a = offsets[2 * i], b = offsets[2 * i + 1];
        while (k < ct->n_assistant && ct->assistant[2 * k + 1] <= a)
            k++;
        int in = b > a && k < ct->n_assistant && ct->assistant[2 * k] < b;
        labels[i] = in ? ids[i] : IGNORE_INDEX;
    }
    return labels;
}

static void push_doc(doc_reader *r, int32_t *ids, int32_t *labels, size_t n)
{
    if (r->o->packing && r->o->append_concat_token) {
        int had_labels = labels != NULL;
        ids = realloc(ids, (n + 1) * sizeof *ids);
        if (had_labels)
            labels = realloc(labels, (n + 1) * sizeof *labels);
        if (!ids || (had_labels && !labels))
            die(EXIT_FAILURE_RUN, "out of memory reading %s", r->path);
        ids[n] = r->eos_id;
        if (labels) /* with assistant-only loss the separator is no reply */
            labels[n] = r->o->assistant_only_loss ? IGNORE_INDEX : r->eos_id;
        n++;
    }
    dataset_push(r->docs, ids, labels, NULL, (int)n);
}

static int text_to_doc(doc_reader *r, const char *text, size_t n_bytes, int add_special, const chat_text *ct,
                       size_t line, errbuf *e)
{
    const data_options *o = r->o;
    int32_t *ids = NULL, *labels = NULL;
    size_t *offsets = NULL, n = 0;
    errbuf te;
    int rc = ct && o->assistant_only_loss
                 ? tokenizer_encode_offsets(r->tok, text, n_bytes, add_special, &ids, &offsets, &n, &te)
                 : tokenizer_encode(r->tok, text, n_bytes, add_special, &ids, &n, &te);
    if (rc != 0)
        return err_set(e, "%s:%zu: %s", r->path, line, te.msg);
    if (n == 0) {
        free(ids);
        free(offsets);
        return err_set(e, "%s:%zu: the text is empty (no tokens)", r->path, line);
    }
    if (n > INT_MAX) {
        free(ids);
        free(offsets);
        return err_set(e, "%s:%zu: %zu tokens in one row is too many", r->path, line, n);
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= r->vocab_size) {
            const char *piece = tokenizer_id_to_token(r->tok, ids[i]);
            err_set(e, "%s:%zu: token %d (\"%s\") is outside the model's vocabulary of %d (tokens added for a chat "
                    "template need the embeddings resized)", r->path, line, ids[i], piece ? piece : "?",
                    r->vocab_size);
            free(ids);
            free(offsets);
            return -1;
        }
    if (offsets)
        labels = assistant_labels(ids, offsets, n, ct);
    free(offsets);
    push_doc(r, ids, labels, n);
    return 0;
}

/* A conversation rendered by the model's own template. */
static int model_template_to_doc(doc_reader *r, json_t *row, const char *conv_key, size_t line, errbuf *e)
{
    json_t *messages = data_row_template_messages(row, conv_key, r->path, line, e);
    if (!messages)
        return -1;
    chat_text ct;
    errbuf ce;
    int rc = chat_model_render(r->o->chat_model, messages, json_object_get(row, "tools"), 0,
                               r->o->assistant_only_loss, &ct, &ce);
    json_decref(messages);
    if (rc != 0)
        return err_set(e, "%s:%zu: %s", r->path, line, ce.msg);
    rc = text_to_doc(r, ct.text, ct.n_bytes, 0, &ct, line, e);
    chat_text_free(&ct);
    return rc;
}

int data_row_to_doc(doc_reader *r, json_t *row, size_t line, errbuf *e)
{
    const data_options *o = r->o;
    if (!json_is_object(row))
        return err_set(e, "%s:%zu: a row must be a JSON object", r->path, line);
    if (json_object_get(row, "input_ids")) {
        int32_t *ids, *labels;
        int n;
        if (data_row_ids(row, r->path, line, INT_MAX, r->vocab_size, &ids, &labels, &n, e) != 0)
            return -1;
        push_doc(r, ids, labels, (size_t)n);
        return 0;
    }
    const char *conv_key = json_object_get(row, "messages") ? "messages"
                         : json_object_get(row, "conversations") ? "conversations"
                                                                  : NULL;
    if (!r->tok && (conv_key || json_object_get(row, o->dataset_text_field)))
        return err_set(e, "%s:%zu: text and conversations need a tokenizer (tokenizer.json in the model directory)",
                       r->path, line);
    if (o->chat_format != CHAT_NONE && conv_key) {
        chat_message *msgs = NULL;
        size_t n_msgs = 0;
        if (data_row_messages(json_object_get(row, conv_key), conv_key, r->path, line, &msgs, &n_msgs, e) != 0)
            return -1;
        chat_text ct;
        errbuf ce;
        int rc = chat_render(o->chat_format, msgs, n_msgs, 0, &ct, &ce);
        free(msgs);
        if (rc != 0)
            return err_set(e, "%s:%zu: %s", r->path, line, ce.msg);
        rc = text_to_doc(r, ct.text, ct.n_bytes, o->add_special_tokens, &ct, line, e);
        chat_text_free(&ct);
        return rc;
    }
    if (o->chat_model && conv_key)
        return model_template_to_doc(r, row, conv_key, line, e);
    json_t *text = json_object_get(row, o->dataset_text_field);
    if (!text) {
        if (conv_key)
            return err_set(e, "%s:%zu: no \"%s\" (--dataset_text_field) but \"%s\", and the model has no chat "
                           "template to render it (chat_template.jinja or tokenizer_config.json's \"chat_template\"): "
                           "give --chat_template_path FILE or --chat_template_format chatml|zephyr", r->path, line,
                           o->dataset_text_field, conv_key);
        return err_set(e, "%s:%zu: no \"%s\" (--dataset_text_field), \"messages\", \"conversations\" or \"input_ids\"",
                       r->path, line, o->dataset_text_field);
    }
    if (!json_is_string(text))
        return err_set(e, "%s:%zu: \"%s\" is not a string", r->path, line, o->dataset_text_field);
    if (o->assistant_only_loss)
        return err_set(e, "%s:%zu: --assistant_only_loss needs conversations (\"messages\" or \"conversations\"), "
                       "this row is plain text", r->path, line);
    return text_to_doc(r, json_string_value(text), json_string_length(text), o->add_special_tokens, NULL, line, e);
}
