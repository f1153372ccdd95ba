/* run_data.c: options, tokenizer and vocabulary of a run (see run_data.h). */
#include "run_data.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "chat.h"

static int has_file(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

int run_data_prepare(run_data *rd, const run_config *c, errbuf *e)
{
    memset(rd, 0, sizeof *rd);
    if (data_options_from_config(c, &rd->o, e) != 0)
        return -1;
    const char *dir = c->adapter && has_file(c->adapter, "tokenizer.json") ? c->adapter
                      : has_file(c->model_name_or_path, "tokenizer.json") ? c->model_name_or_path
                                                                          : NULL;
    if (dir && !(rd->tok = tokenizer_load(dir, e)))
        return -1;
    if (rd->o.chat_format != CHAT_NONE) {
        if (!rd->tok)
            return err_set(e, "--chat_template_format %s: %s has no tokenizer.json",
                           chat_format_name(rd->o.chat_format), c->model_name_or_path);
        if (chat_setup_tokenizer(rd->tok, rd->o.chat_format, e) != 0)
            return -1;
        /* as PEFT's example: resize_token_embeddings(len(tokenizer), pad_to_multiple_of=8) */
        rd->vocab_size = (int)((tokenizer_vocab_size(rd->tok) + 7) / 8 * 8);
        return 0;
    }
    if (chat_model_load(dir, c->chat_template_path, &rd->chat, e) != 0)
        return -1;
    /* a template asked for by name must work; the model's own may stay unused */
    if (c->chat_template_path && chat_model_error(rd->chat))
        return err_set(e, "--chat_template_path %s", chat_model_error(rd->chat));
    rd->o.chat_model = rd->chat;
    return 0;
}

void run_data_free(run_data *rd)
{
    tokenizer_free(rd->tok);
    chat_model_free(rd->chat);
    memset(rd, 0, sizeof *rd);
}

int run_data_pad_id(const run_data *rd, int model_pad_id)
{
    if (rd->tok && tokenizer_pad_id(rd->tok) >= 0)
        return tokenizer_pad_id(rd->tok);
    return model_pad_id >= 0 ? model_pad_id : 0;
}

/* tokenizer_config.json's "chat_template" set to value. */
static int set_config_template(const char *dir, json_t *value, errbuf *e)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    if (!cfg)
        return err_set(e, "%s: %s", path, jerr.text);
    json_object_set(cfg, "chat_template", value);
    int rc = json_dump_file(cfg, tmp, JSON_INDENT(2));
    json_decref(cfg);
    if (rc != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(e, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

int run_data_save_tokenizer(const run_data *rd, const char *dir, errbuf *e)
{
    if (!rd->tok)
        return 0;
    if (tokenizer_save(rd->tok, dir, e) != 0)
        return -1;
    /* the template trained with goes with the adapter, as PEFT's example
     * saves it; the tokenizer's own "chat_template" is already there */
    json_t *saved = rd->o.chat_format != CHAT_NONE ? json_string(chat_template_source(rd->o.chat_format))
                    : rd->chat                      ? chat_model_saved_template(rd->chat)
                                                    : NULL;
    int rc = saved ? set_config_template(dir, saved, e) : 0;
    json_decref(saved);
    return rc;
}
