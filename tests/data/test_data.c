/* test_data.c: datasets, chat templates and packing (src/data*.c, chat.c).
 *
 * - chatml / zephyr rendering of small conversations, exactly, with the
 *   assistant spans and the generation prompt; the special-token ids
 *   PEFT's script gets from transformers (recorded from transformers 5 on
 *   the TinyLlama-chat tokenizer: chatml <|im_end|> 32000, <pad> 32001,
 *   <|im_start|>user/assistant/system 32002-32004; zephyr <pad> 32000,
 *   <|user|>/<|assistant|>/<|system|> 32001-32003).
 * - Every schema loads: "messages" (UltraChat), ShareGPT "conversations"
 *   in a JSON array, a text column, pre-tokenized input_ids + labels; a
 *   directory of splits.
 * - Every refusal: a row without the configured column, invalid UTF-8,
 *   malformed JSON (in JSON Lines and in an array), wrong types, unknown
 *   ShareGPT roles, ids outside the vocabulary, an empty dataset, missing
 *   splits: one message that names the file and the line.
 * - Packing: wrapped blocks of exactly max_seq_len (the last kept),
 *   concatenation tokens; best-fit decreasing on TRL's documented example
 *   and, on random documents, every document whole in one row, rows of at
 *   most max_seq_len, seg marking documents, and micro-batches whose
 *   positions restart and whose targets stay inside each document.
 * The comparisons with transformers, tokenizers and TRL on real data are
 * chat_agreement.sh's and data_agreement.sh's job. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chat.h"
#include "data.h"
#include "tokenizer.h"

static char data_dir[4096], tok_dir[4096], tmp_dir[4096];

static const char *tmp(const char *name)
{
    static char path[4][8192];
    static int which;
    which = (which + 1) % 4;
    snprintf(path[which], sizeof path[which], "%s/%s", tmp_dir, name);
    return path[which];
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) { return remove(path); }

static int group_setup(void **state)
{
    const char *top = getenv("top_srcdir");
    snprintf(data_dir, sizeof data_dir, "%s/tests/data", top ? top : ".");
    snprintf(tok_dir, sizeof tok_dir, "%s/tests/tokenizer/data/tinyllama-chat", top ? top : ".");
    const char *t = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/data-test.XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state) { return nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static tokenizer *tinyllama(chat_format f)
{
    errbuf e;
    tokenizer *t = tokenizer_load(tok_dir, &e);
    if (!t)
        fail_msg("%s", e.msg);
    if (chat_setup_tokenizer(t, f, &e) != 0)
        fail_msg("%s", e.msg);
    return t;
}

static data_options opts(const char *path)
{
    data_options o;
    data_options_default(&o);
    o.dataset_name = path;
    return o;
}

/* Loads and expects success. */
static void load_ok(const data_options *o, int split, const tokenizer *t, int vocab, dataset *d)
{
    errbuf e;
    if (dataset_load(o, split, t, vocab, d, &e) != 0)
        fail_msg("%s", e.msg);
}

/* Loads and expects a failure whose message starts with `prefix` and holds
 * `what`. */
static void load_fails(const data_options *o, int split, const tokenizer *t, int vocab, const char *prefix,
                       const char *what)
{
    errbuf e;
    dataset d;
    memset(&e, 0, sizeof e);
    if (dataset_load(o, split, t, vocab, &d, &e) == 0) {
        dataset_free(&d);
        fail_msg("loading %s should fail with \"%s\"", o->dataset_name, what);
    }
    if (strncmp(e.msg, prefix, strlen(prefix)) != 0 || !strstr(e.msg, what))
        fail_msg("message \"%s\" does not start with \"%s\" or lacks \"%s\"", e.msg, prefix, what);
    assert_int_equal(d.n_rows, 0);
}

/* ------------------------------------------------------------------------- */
/* Chat templates. */

static const chat_message CONV[] = {
    {"system", "Be brief.", 9},
    {"user", "Hi!", 3},
    {"assistant", "Hello.", 6},
    {"user", "Bye", 3},
    {"assistant", "Bye!", 4},
};

static void check_spans(const chat_text *ct, const char *const *want, size_t n)
{
    assert_int_equal(ct->n_assistant, n);
    for (size_t i = 0; i < n; i++) {
        size_t a = ct->assistant[2 * i], b = ct->assistant[2 * i + 1];
        assert_int_equal(b - a, strlen(want[i]));
        assert_memory_equal(ct->text + a, want[i], b - a);
    }
}

static void test_chat_render_chatml(void **state)
{
    chat_text ct;
    errbuf e;
    assert_int_equal(chat_render(CHAT_CHATML, CONV, 5, 0, &ct, &e), 0);
    assert_string_equal(ct.text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
                                 "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                                 "<|im_start|>assistant\nBye!<|im_end|>\n");
    assert_int_equal(ct.n_bytes, strlen(ct.text));
    const char *replies[] = {"Hello.<|im_end|>", "Bye!<|im_end|>"};
    check_spans(&ct, replies, 2);
    chat_text_free(&ct);
    assert_int_equal(chat_render(CHAT_CHATML, CONV + 1, 1, 1, &ct, &e), 0);
    assert_string_equal(ct.text, "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
    assert_int_equal(ct.n_assistant, 0);
    chat_text_free(&ct);
    /* chatml writes any role */
    chat_message tool = {"tool", "42", 2};
    assert_int_equal(chat_render(CHAT_CHATML, &tool, 1, 0, &ct, &e), 0);
    assert_string_equal(ct.text, "<|im_start|>tool\n42<|im_end|>\n");
    chat_text_free(&ct);
    assert_int_equal(chat_render(CHAT_NONE, CONV, 5, 0, &ct, &e), -1);
}

static void test_chat_render_zephyr(void **state)
{
    chat_text ct;
    errbuf e;
    assert_int_equal(chat_render(CHAT_ZEPHYR, CONV, 5, 1, &ct, &e), 0);
    assert_string_equal(ct.text, "<|system|>\nBe brief.</s>\n<|user|>\nHi!</s>\n<|assistant|>\nHello.</s>\n"
                                 "<|user|>\nBye</s>\n<|assistant|>\nBye!</s>\n<|assistant|>\n");
    const char *replies[] = {"Hello.</s>", "Bye!</s>"};
    check_spans(&ct, replies, 2);
    chat_text_free(&ct);
    /* the template writes nothing for another role, the prompt still comes */
    chat_message tool[] = {{"user", "x", 1}, {"tool", "42", 2}};
    assert_int_equal(chat_render(CHAT_ZEPHYR, tool, 2, 1, &ct, &e), 0);
    assert_string_equal(ct.text, "<|user|>\nx</s>\n<|assistant|>\n");
    chat_text_free(&ct);
}

static void test_chat_formats(void **state)
{
    chat_format f;
    errbuf e;
    assert_int_equal(chat_format_from_name("chatml", &f, &e), 0);
    assert_int_equal(f, CHAT_CHATML);
    assert_int_equal(chat_format_from_name("zephyr", &f, &e), 0);
    assert_int_equal(f, CHAT_ZEPHYR);
    assert_int_equal(chat_format_from_name("none", &f, &e), 0);
    assert_int_equal(f, CHAT_NONE);
    assert_int_equal(chat_format_from_name("llama3", &f, &e), -1);
    assert_non_null(strstr(e.msg, "--chat_template_format: 'llama3'"));
    assert_null(chat_template_source(CHAT_NONE));
    assert_non_null(strstr(chat_template_source(CHAT_CHATML), "'<|im_start|>' + message['role']"));
    packing_strategy s;
    assert_int_equal(packing_strategy_from_name("bfd", &s, &e), 0);
    assert_int_equal(s, PACK_BFD);
    assert_int_equal(packing_strategy_from_name("bfd_split", &s, &e), -1);
}

static void expect_single(const tokenizer *t, const char *tok, int id)
{
    int32_t *ids;
    size_t n;
    errbuf e;
    assert_int_equal(tokenizer_encode(t, tok, strlen(tok), 0, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id);
    free(ids);
}

static void test_chat_setup_tokenizer(void **state)
{
    tokenizer *t = tinyllama(CHAT_CHATML);
    expect_single(t, "<|im_end|>", 32000);
    expect_single(t, "<pad>", 32001);
    expect_single(t, "<|im_start|>user", 32002);
    expect_single(t, "<|im_start|>assistant", 32003);
    expect_single(t, "<|im_start|>system", 32004);
    expect_single(t, "<s>", 1);
    assert_int_equal(tokenizer_bos_id(t), 1);
    assert_int_equal(tokenizer_eos_id(t), 32000);
    assert_int_equal(tokenizer_pad_id(t), 32001);
    assert_int_equal(tokenizer_vocab_size(t), 32005);
    tokenizer_free(t);

    t = tinyllama(CHAT_ZEPHYR);
    expect_single(t, "<pad>", 32000);
    expect_single(t, "<|user|>", 32001);
    expect_single(t, "<|assistant|>", 32002);
    expect_single(t, "<|system|>", 32003);
    expect_single(t, "</s>", 2);
    assert_int_equal(tokenizer_eos_id(t), 2);
    assert_int_equal(tokenizer_pad_id(t), 32000);
    assert_int_equal(tokenizer_vocab_size(t), 32004);
    errbuf e;
    assert_int_equal(chat_setup_tokenizer(t, CHAT_ZEPHYR, &e), 0); /* twice: nothing new */
    assert_int_equal(tokenizer_vocab_size(t), 32004);
    tokenizer_free(t);
}

static void test_offsets_match_ids(void **state)
{
    tokenizer *t = tinyllama(CHAT_CHATML);
    const char *text = "<|im_start|>user\nHello  world<|im_end|>\n";
    int32_t *ids, *plain;
    size_t *off, n, n_plain;
    errbuf e;
    assert_int_equal(tokenizer_encode_offsets(t, text, strlen(text), 1, &ids, &off, &n, &e), 0);
    assert_int_equal(tokenizer_encode(t, text, strlen(text), 1, &plain, &n_plain, &e), 0);
    assert_int_equal(n, n_plain);
    assert_memory_equal(ids, plain, n * sizeof *ids);
    /* tokenizers: <s> (0,0), <|im_start|>user (0,16), a prepended U+2581
     * standing for the "\n" (16,17), "\n" (16,17), "Hello" (17,22) */
    size_t want[] = {0, 0, 0, 16, 16, 17, 16, 17, 17, 22};
    assert_memory_equal(off, want, sizeof want);
    free(ids);
    free(plain);
    free(off);
    assert_int_equal(tokenizer_encode_offsets(t, "\xff", 1, 0, &ids, &off, &n, &e), -1);
    assert_non_null(strstr(e.msg, "not valid UTF-8"));
    tokenizer_free(t);
}

/* ------------------------------------------------------------------------- */
/* Schemas and splits. */

static void test_load_messages(void **state)
{
    tokenizer *t = tinyllama(CHAT_CHATML);
    char path[8192];
    snprintf(path, sizeof path, "%s/ultrachat_200k_sample16.jsonl", data_dir);
    data_options o = opts(path);
    o.chat_format = CHAT_CHATML;
    o.max_seq_len = 100000;
    dataset d;
    load_ok(&o, 0, t, 32008, &d);
    assert_int_equal(d.n_rows, 16);
    for (size_t i = 0; i < d.n_rows; i++) {
        assert_int_equal(d.ids[i][0], 32002); /* <|im_start|>user */
        assert_int_equal(d.ids[i][d.len[i] - 3], 32000); /* <|im_end|> U+2581 "\n" */
        assert_null(d.labels[i]);
    }
    assert_null(d.seg);
    dataset_free(&d);

    /* assistant-only: the first tokens (the user's turn) are not trained */
    o.assistant_only_loss = 1;
    load_ok(&o, 0, t, 32008, &d);
    for (size_t i = 0; i < d.n_rows; i++) {
        assert_non_null(d.labels[i]);
        assert_int_equal(d.labels[i][0], IGNORE_INDEX);
        int n_trained = 0;
        for (int k = 0; k < d.len[i]; k++)
            n_trained += d.labels[i][k] != IGNORE_INDEX;
        assert_true(n_trained > 0 && n_trained < d.len[i]);
    }
    dataset_free(&d);
    /* ids of the added tokens must fit the model */
    o.assistant_only_loss = 0;
    load_fails(&o, 0, t, 32000, path, "is outside the model's vocabulary of 32000");
    tokenizer_free(t);
}

static void test_load_sharegpt_array(void **state)
{
    tokenizer *t = tinyllama(CHAT_ZEPHYR);
    char path[8192];
    snprintf(path, sizeof path, "%s/fastchat_dummy_conversation.json", data_dir);
    data_options o = opts(path);
    o.chat_format = CHAT_ZEPHYR;
    dataset d;
    load_ok(&o, 0, t, 32004, &d);
    assert_int_equal(d.n_rows, 500);
    for (size_t i = 0; i < d.n_rows; i++)
        assert_int_equal(d.ids[i][0], 32001); /* <|user|> */
    dataset_free(&d);
    /* without a template, conversations are not text */
    o.chat_format = CHAT_NONE;
    load_fails(&o, 0, t, 32004, path, ":2: no \"text\" (--dataset_text_field) but \"conversations\"");
    tokenizer_free(t);
}

static void test_load_text_and_ids(void **state)
{
    tokenizer *t = tinyllama(CHAT_NONE);
    spit(tmp("text.jsonl"), "{\"body\": \"Hello world\", \"other\": 1}\n\n{\"body\": \"caf\\u00e9 \\u4e2d\"}\n");
    data_options o = opts(tmp("text.jsonl"));
    o.dataset_text_field = "body";
    o.add_special_tokens = 1;
    dataset d;
    load_ok(&o, 0, t, 32000, &d);
    assert_int_equal(d.n_rows, 2);
    int32_t *ids;
    size_t n;
    errbuf e;
    assert_int_equal(tokenizer_encode(t, "Hello world", 11, 1, &ids, &n, &e), 0);
    assert_int_equal(d.len[0], (int)n);
    assert_memory_equal(d.ids[0], ids, n * sizeof *ids);
    assert_int_equal(d.ids[0][0], 1); /* BOS */
    free(ids);
    dataset_free(&d);

    /* pre-tokenized rows need no tokenizer; labels as given */
    spit(tmp("ids.jsonl"), "{\"input_ids\": [5, 6, 7], \"labels\": [-100, 6, 7]}\n{\"input_ids\": [8, 9]}\n");
    o = opts(tmp("ids.jsonl"));
    o.max_seq_len = 2;
    load_ok(&o, 0, NULL, 10, &d);
    assert_int_equal(d.n_rows, 2);
    assert_int_equal(d.len[0], 2); /* cut to max_seq_len */
    assert_int_equal(d.labels[0][0], IGNORE_INDEX);
    assert_null(d.labels[1]);
    dataset_free(&d);
    tokenizer_free(t);
}

static void test_split_directory(void **state)
{
    mkdir(tmp("splits"), 0777);
    spit(tmp("splits/train.jsonl"), "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [4, 5]}\n");
    spit(tmp("splits/test.json"), "[\n  {\"input_ids\": [6, 7]}\n]\n");
    data_options o = opts(tmp("splits"));
    assert_int_equal(dataset_has_split(&o, 0), 1);
    assert_int_equal(dataset_has_split(&o, 1), 1);
    dataset d;
    load_ok(&o, 0, NULL, 10, &d);
    assert_int_equal(d.n_rows, 2);
    dataset_free(&d);
    load_ok(&o, 1, NULL, 10, &d);
    assert_int_equal(d.n_rows, 1);
    assert_int_equal(d.ids[0][1], 7);
    dataset_free(&d);

    o.splits = "train_sft, test_sft";
    assert_int_equal(dataset_has_split(&o, 0), 0);
    load_fails(&o, 0, NULL, 10, tmp("splits"), "no train_sft.jsonl or train_sft.json for the 'train_sft' split");
    o.splits = "train";
    assert_int_equal(dataset_has_split(&o, 1), 0);
    load_fails(&o, 1, NULL, 10, "--splits 'train'", "no second (evaluation) split");

    /* a single file is the first split only */
    o = opts(tmp("splits/train.jsonl"));
    assert_int_equal(dataset_has_split(&o, 0), 1);
    assert_int_equal(dataset_has_split(&o, 1), 0);
    load_fails(&o, 1, NULL, 10, tmp("splits/train.jsonl"), "a single file holds only the first split");
    o = opts(tmp("no-such-file.jsonl"));
    load_fails(&o, 0, NULL, 10, tmp("no-such-file.jsonl"), "no such dataset file or directory");
}

/* ------------------------------------------------------------------------- */
/* Refusals. */

typedef struct bad_case {
    const char *name, *content;
    int chat;        /* render with chatml */
    const char *at;  /* ":LINE:" expected after the path */
    const char *what;
} bad_case;

static void test_bad_rows(void **state)
{
    static const bad_case cases[] = {
        {"no_column.jsonl", "{\"text\": \"a\"}\n{\"txt\": \"b\"}\n", 0, ":2: ", "no \"text\" (--dataset_text_field)"},
        {"utf8.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"caf\xe9\"}\n", 0, ":3: ", "not valid UTF-8"},
        {"json.jsonl", "{\"text\": \"a\"\n", 0, ":1: ", "invalid JSON"},
        {"not_object.jsonl", "[1, 2]\n", 0, ":1: ", "a row must be a JSON object"},
        {"text_type.jsonl", "{\"text\": 5}\n", 0, ":1: ", "\"text\" is not a string"},
        {"empty_text.jsonl", "{\"text\": \"\"}\n", 0, ":1: ", "the text is empty"},
        {"msgs_type.jsonl", "{\"messages\": \"hi\"}\n", 1, ":1: ", "\"messages\" is not a list of messages"},
        {"msgs_empty.jsonl", "{\"messages\": []}\n", 1, ":1: ", "\"messages\" is empty"},
        {"msg_content.jsonl", "{\"messages\": [{\"role\": \"user\"}]}\n", 1, ":1: ", "\"messages\"[0] has no \"content\""},
        {"msg_role.jsonl", "{\"messages\": [{\"role\": 1, \"content\": \"x\"}]}\n", 1, ":1: ",
         "\"messages\"[0] \"role\" is not a string"},
        {"msg_null.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": null}]}\n", 1, ":1: ",
         "\"content\" is not a string"},
        {"sharegpt_from.jsonl", "{\"conversations\": [{\"from\": \"bot\", \"value\": \"x\"}]}\n", 1, ":1: ",
         "is from \"bot\""},
        {"ids_type.jsonl", "{\"input_ids\": [1, \"2\"]}\n", 0, ":1: ", "\"input_ids\"[1] is not an integer"},
        {"ids_vocab.jsonl", "{\"input_ids\": [1, 99999]}\n", 0, ":1: ", "outside the vocabulary"},
        {"ids_labels.jsonl", "{\"input_ids\": [1, 2], \"labels\": [1]}\n", 0, ":1: ", "\"labels\" has 1 entries"},
        {"empty.jsonl", "", 0, ": ", "no rows"},
        {"blank.jsonl", "\n  \n\n", 0, ": ", "no rows"},
        {"empty_array.json", "[ ]\n", 0, ": ", "no rows"},
        {"array_row.json", "[\n {\"text\": \"a\"},\n {\"text\": \"b\"},\n {\"txt\": \"c\"}\n]\n", 0, ":4: ",
         "no \"text\""},
        {"array_json.json", "[\n {\"text\": \"a\"},\n\n {\"text\": \"b\",}\n]\n", 0, ":4: ", "invalid JSON"},
        {"array_open.json", "[\n {\"text\": \"a\"},\n", 0, ":3: ", "the JSON array is not closed"},
        {"array_sep.json", "[\n {\"text\": \"a\"} {\"text\": \"b\"}\n]\n", 0, ":2: ", "expected ',' or ']'"},
        {"array_tail.json", "[{\"text\": \"a\"}]\n]\n", 0, ":2: ", "text after the end of the JSON array"},
        {"array_utf8.json", "[\n{\"text\": \"\xff\"}]", 0, ":2: ", "not valid UTF-8"},
    };
    tokenizer *t = tinyllama(CHAT_CHATML);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const bad_case *c = &cases[i];
        spit(tmp(c->name), c->content);
        data_options o = opts(tmp(c->name));
        o.chat_format = c->chat ? CHAT_CHATML : CHAT_NONE;
        char prefix[8192];
        snprintf(prefix, sizeof prefix, "%s%s", tmp(c->name), c->at);
        load_fails(&o, 0, t, 32008, prefix, c->what);
    }
    /* text without a tokenizer; plain text with --assistant_only_loss */
    spit(tmp("plain.jsonl"), "{\"text\": \"a\"}\n");
    data_options o = opts(tmp("plain.jsonl"));
    load_fails(&o, 0, NULL, 32008, tmp("plain.jsonl"), ":1: text and conversations need a tokenizer");
    o.chat_format = CHAT_CHATML;
    o.assistant_only_loss = 1;
    load_fails(&o, 0, t, 32008, tmp("plain.jsonl"), ":1: --assistant_only_loss needs conversations");
    o.chat_format = CHAT_NONE;
    load_fails(&o, 0, t, 32008, "--assistant_only_loss", "needs a chat template");
    /* a concatenation token needs an EOS */
    o = opts(tmp("plain.jsonl"));
    o.packing = o.append_concat_token = 1;
    load_fails(&o, 0, NULL, 32008, "--append_concat_token", "no EOS token");
    tokenizer_free(t);
}

/* ------------------------------------------------------------------------- */
/* Packing. */

static dataset make_docs(const int *lens, size_t n, int with_labels)
{
    dataset d = {0};
    int32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = malloc((size_t)(lens[i] ? lens[i] : 1) * sizeof *ids);
        int32_t *labels = with_labels ? malloc((size_t)(lens[i] ? lens[i] : 1) * sizeof *labels) : NULL;
        for (int k = 0; k < lens[i]; k++) {
            ids[k] = next++;
            if (labels)
                labels[k] = k % 2 ? ids[k] : IGNORE_INDEX;
        }
        dataset_push(&d, ids, labels, NULL, lens[i]);
    }
    return d;
}

static void test_pack_wrapped(void **state)
{
    const int lens[] = {5, 3, 7, 1, 2};
    dataset docs = make_docs(lens, 5, 1), p;
    dataset_pack_wrapped(&docs, 4, &p);
    /* 18 tokens: four blocks of 4 and the last 2 kept, as TRL's "wrapped" */
    assert_int_equal(p.n_rows, 5);
    for (size_t r = 0; r < p.n_rows; r++) {
        assert_int_equal(p.len[r], r < 4 ? 4 : 2);
        for (int k = 0; k < p.len[r]; k++) {
            int32_t want = (int32_t)(4 * r + (size_t)k); /* ids run 0, 1, ... across documents */
            assert_int_equal(p.ids[r][k], want);
            assert_non_null(p.labels[r]);
        }
    }
    assert_null(p.seg); /* one sequence per row: positions run on, as TRL's */
    /* labels travel with their tokens: document 1 starts at token 5 */
    assert_int_equal(p.labels[1][1], IGNORE_INDEX);
    assert_int_equal(p.labels[1][2], 6);
    dataset_free(&p);
    dataset_pack_wrapped(&docs, 6, &p);
    assert_int_equal(p.n_rows, 3); /* 18 = 3 x 6 exactly */
    dataset_free(&p);
    dataset_free(&docs);
}

static void test_pack_bfd_trl_example(void **state)
{
    /* TRL's pack_dataset docstring: [[1,2,3,4,5],[6,7],[8,9,10],[11]] at 4
     * -> [[1,2,3,4],[8,9,10,11],[6,7]], seq_lengths [[4],[3,1],[2]] */
    const int lens[] = {5, 2, 3, 1};
    dataset docs = make_docs(lens, 4, 0), p;
    dataset_pack_bfd(&docs, 4, &p);
    assert_int_equal(p.n_rows, 3);
    const int32_t want0[] = {0, 1, 2, 3}, want1[] = {7, 8, 9, 10}, want2[] = {5, 6};
    const int32_t seg1[] = {0, 0, 0, 1};
    assert_int_equal(p.len[0], 4);
    assert_memory_equal(p.ids[0], want0, sizeof want0);
    assert_int_equal(p.len[1], 4);
    assert_memory_equal(p.ids[1], want1, sizeof want1);
    assert_memory_equal(p.seg[1], seg1, sizeof seg1);
    assert_int_equal(p.len[2], 2);
    assert_memory_equal(p.ids[2], want2, sizeof want2);
    assert_null(p.labels[0]);
    dataset_free(&p);
    dataset_free(&docs);
}

static void test_pack_bfd_properties(void **state)
{
    enum { N = 300, SEQ = 64 };
    int lens[N];
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        lens[i] = 1 + (int)((x >> 33) % 90); /* some longer than SEQ: truncated */
    }
    dataset docs = make_docs(lens, N, 1), p;
    dataset_pack_bfd(&docs, SEQ, &p);
    /* doc i holds ids first[i] .. first[i] + lens[i] - 1: find each once */
    int32_t first[N];
    int32_t next = 0;
    for (int i = 0; i < N; i++) {
        first[i] = next;
        next += lens[i];
    }
    int seen[N] = {0};
    size_t n_tokens = 0, n_docs_tokens = 0;
    for (size_t r = 0; r < p.n_rows; r++) {
        assert_true(p.len[r] >= 1 && p.len[r] <= SEQ);
        n_tokens += (size_t)p.len[r];
        int k = 0, doc_no = 0;
        while (k < p.len[r]) {
            int i = 0;
            while (i < N && first[i] != p.ids[r][k])
                i++;
            assert_true(i < N); /* a row starts each document at its first token */
            assert_int_equal(seen[i], 0);
            seen[i] = 1;
            int len = lens[i] < SEQ ? lens[i] : SEQ;
            assert_true(k + len <= p.len[r]); /* never split */
            for (int j = 0; j < len; j++) {
                assert_int_equal(p.ids[r][k + j], first[i] + j);
                assert_int_equal(p.seg[r][k + j], doc_no);
                assert_int_equal(p.labels[r][k + j], docs.labels[i][j]);
            }
            k += len;
            doc_no++;
        }
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(seen[i], 1);
        n_docs_tokens += (size_t)(lens[i] < SEQ ? lens[i] : SEQ);
    }
    assert_int_equal(n_tokens, n_docs_tokens);

    /* micro-batches of packed rows: positions restart at every document,
     * no target crosses into the next, every in-document target is kept */
    size_t rows[8];
    for (int b = 0; b < 8; b++)
        rows[b] = (size_t)b;
    host_batch hb;
    dataset_batch(&p, rows, 8, 0, &hb);
    size_t want_targets = 0;
    for (int b = 0; b < 8; b++) {
        const int32_t *seg = p.seg[b], *labels = p.labels[b];
        for (int t = 0; t < hb.seq; t++) {
            size_t k = (size_t)b * hb.seq + t;
            if (t >= p.len[b]) {
                assert_int_equal(hb.seg[k], -1);
                assert_int_equal(hb.targets[k], IGNORE_INDEX);
                continue;
            }
            int start = t;
            while (start > 0 && seg[start - 1] == seg[t])
                start--;
            assert_int_equal(hb.pos[k], t - start);
            assert_int_equal(hb.seg[k], seg[t]);
            int same = t + 1 < p.len[b] && seg[t + 1] == seg[t];
            assert_int_equal(hb.targets[k], same ? labels[t + 1] : IGNORE_INDEX);
            want_targets += same && labels[t + 1] != IGNORE_INDEX;
        }
    }
    assert_int_equal(hb.n_targets, want_targets);
    host_batch_free(&hb);
    dataset_free(&p);
    dataset_free(&docs);
}

static void test_concat_token(void **state)
{
    tokenizer *t = tinyllama(CHAT_NONE);
    spit(tmp("concat.jsonl"), "{\"input_ids\": [5, 6, 7]}\n{\"input_ids\": [8, 9], \"labels\": [-100, 9]}\n");
    data_options o = opts(tmp("concat.jsonl"));
    o.packing = 1;
    o.append_concat_token = 1;
    o.max_seq_len = 4;
    dataset d;
    load_ok(&o, 0, t, 32000, &d);
    /* 5 6 7 </s> | 8 9 </s>, labels on every token but the one marked */
    assert_int_equal(d.n_rows, 2);
    const int32_t ids0[] = {5, 6, 7, 2}, ids1[] = {8, 9, 2}, lab1[] = {-100, 9, 2};
    assert_memory_equal(d.ids[0], ids0, sizeof ids0);
    assert_int_equal(d.len[1], 3);
    assert_memory_equal(d.ids[1], ids1, sizeof ids1);
    assert_memory_equal(d.labels[1], lab1, sizeof lab1);
    assert_memory_equal(d.labels[0], ids0, sizeof ids0);
    dataset_free(&d);
    /* best fit: 4 and 3 tokens do not share a bin of 4 */
    o.packing_strategy = PACK_BFD;
    load_ok(&o, 0, t, 32000, &d);
    assert_int_equal(d.n_rows, 2);
    assert_memory_equal(d.ids[1], ids1, sizeof ids1);
    dataset_free(&d);
    /* no concatenation token without packing (old TRL: packing only) */
    o.packing = 0;
    load_ok(&o, 0, t, 32000, &d);
    assert_int_equal(d.len[0], 3);
    dataset_free(&d);
    tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_render_chatml),
        cmocka_unit_test(test_chat_render_zephyr),
        cmocka_unit_test(test_chat_formats),
        cmocka_unit_test(test_chat_setup_tokenizer),
        cmocka_unit_test(test_offsets_match_ids),
        cmocka_unit_test(test_load_messages),
        cmocka_unit_test(test_load_sharegpt_array),
        cmocka_unit_test(test_load_text_and_ids),
        cmocka_unit_test(test_split_directory),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_pack_wrapped),
        cmocka_unit_test(test_pack_bfd_trl_example),
        cmocka_unit_test(test_pack_bfd_properties),
        cmocka_unit_test(test_concat_token),
    };
    /* e.g. "test_pack_*": the valgrind run picks tests */
    const char *filter = getenv("DATA_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
