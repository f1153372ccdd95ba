/* tokenizer_slow.c: GPT-2's "slow" tokenizer files, vocab.json + merges.txt,
 * turned into the tokenizer.json tree that transformers' GPT2TokenizerFast
 * would write for them: a byte-level BPE with GPT-2's regex, no prefix
 * space, and <|endoftext|> as a special token when the vocabulary has it.
 * The rest of the loader then reads that tree like any tokenizer.json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_read.h"
#include "tokenizer_internal.h"

static json_t *slow_merges(const char *path, errbuf *e)
{
    size_t n;
    char *text = file_read_all(path, &n, e);
    if (!text)
        return NULL;
    size_t bad;
    if (!utf8_valid(text, n, &bad)) {
        free(text);
        err_set(e, "%s: not valid UTF-8 (byte %zu)", path, bad);
        return NULL;
    }
    json_t *list = json_array();
    size_t line_no = 0;
    for (char *p = text, *end = text + n; p < end;) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((eol ? eol : end) - p);
        line_no++;
        if (len > 0 && p[len - 1] == '\r')
            len--;
        /* the "#version: 0.2" header and blank lines carry no merge */
        if (len > 0 && !(len >= 8 && !memcmp(p, "#version", 8)) &&
            json_array_append_new(list, json_stringn(p, len)) != 0) {
            json_decref(list);
            free(text);
            err_set(e, "%s: line %zu: out of memory", path, line_no);
            return NULL;
        }
        p = eol ? eol + 1 : end;
    }
    free(text);
    return list;
}

json_t *tokenizer_slow_json(const char *vocab_path, const char *merges_path, errbuf *e)
{
    size_t n;
    char *text = file_read_all(vocab_path, &n, e);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *vocab = json_loadb(text, n, 0, &jerr);
    free(text);
    if (!vocab) {
        err_set(e, "%s: not valid JSON (line %d, column %d): %s", vocab_path, jerr.line,
                jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(vocab)) {
        json_decref(vocab);
        err_set(e, "%s: not a vocab.json (the top level is not an object of token: id)", vocab_path);
        return NULL;
    }
    json_t *merges = slow_merges(merges_path, e);
    if (!merges) {
        json_decref(vocab);
        return NULL;
    }
    json_t *added = json_array();
    json_t *eot = json_object_get(vocab, "<|endoftext|>");
    if (json_is_integer(eot))
        json_array_append_new(added, json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id",
                                               json_integer_value(eot), "content", "<|endoftext|>",
                                               "single_word", 0, "lstrip", 0, "rstrip", 0,
                                               "normalized", 0, "special", 1));
    json_t *root = json_pack(
        "{s:s, s:n, s:n, s:o, s:n,"
        " s:{s:s, s:b, s:b, s:b},"
        " s:{s:s, s:b, s:b, s:b},"
        " s:{s:s, s:b, s:b, s:b},"
        " s:{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}}",
        "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer",
        "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 1,
        "post_processor", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0, "use_regex", 1,
        "decoder", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1, "use_regex", 1,
        "model", "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix", "",
        "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab",
        vocab, "merges", merges);
    if (!root)
        err_set(e, "%s: out of memory building the tokenizer", vocab_path);
    return root;
}
