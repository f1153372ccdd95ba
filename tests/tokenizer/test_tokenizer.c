/* test_tokenizer.c: the tokenizer on real files and on broken ones.
 *
 * - llama.cpp's 46 Llama-2 vectors (ggml-vocab-llama-spm.gguf.inp/.out,
 *   made by transformers' Llama-2 tokenizer with add_special_tokens=False)
 *   with the TinyLlama-chat tokenizer.json: every id.
 * - Special tokens from tokenizer_config.json, added special tokens, the
 *   add_bos_token / add_eos_token flags, and save -> load giving the same ids.
 * - Every refusal: a truncated tokenizer.json, a merge naming an unknown
 *   token, a merge whose result is unknown, invalid UTF-8 text, missing
 *   files, unsupported components; one clear message naming the file.
 * The agreement with Hugging Face tokenizers on thousands of strings is
 * hf_agreement.sh's job. */
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

#include "tokenizer.h"

static char data_dir[4096];
static char tmp_dir[4096];

static const char *data(const char *name)
{
    static char path[2][8192];
    static int which;
    which ^= 1;
    snprintf(path[which], sizeof path[which], "%s/%s", data_dir, name);
    return path[which];
}

static const char *tmp(const char *name)
{
    static char path[2][8192];
    static int which;
    which ^= 1;
    snprintf(path[which], sizeof path[which], "%s/%s", tmp_dir, name);
    return path[which];
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = '\0';
    *n = (size_t)len;
    return buf;
}

static void spit(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_setup(void **state)
{
    const char *top = getenv("top_srcdir");
    snprintf(data_dir, sizeof data_dir, "%s/tests/tokenizer/data", top ? top : ".");
    const char *t = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tok-test.XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    return nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static tokenizer *load_ok(const char *path)
{
    errbuf e;
    tokenizer *t = tokenizer_load(path, &e);
    if (!t)
        fail_msg("%s", e.msg);
    return t;
}

/* Loading PATH fails with a message holding each of the fragments. */
static void load_fails(const char *path, const char *want1, const char *want2)
{
    errbuf e;
    e.msg[0] = '\0';
    tokenizer *t = tokenizer_load(path, &e);
    if (t)
        tokenizer_free(t);
    assert_null(t);
    if (!strstr(e.msg, want1) || (want2 && !strstr(e.msg, want2)))
        fail_msg("message \"%s\" lacks \"%s\"%s%s", e.msg, want1, want2 ? " / " : "",
                 want2 ? want2 : "");
}

static void encode_is(const tokenizer *t, const char *text, int add_special, const int32_t *want,
                      size_t n_want)
{
    int32_t *ids;
    size_t n;
    errbuf e;
    if (tokenizer_encode(t, text, strlen(text), add_special, &ids, &n, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    free(ids);
}

/* ------------------------------------------------------------------------- */

static void test_llama_spm_vectors(void **state)
{
    size_t n_inp, n_out;
    char *inp = slurp(data("ggml-vocab-llama-spm.gguf.inp"), &n_inp);
    char *out = slurp(data("ggml-vocab-llama-spm.gguf.out"), &n_out);
    tokenizer *t = load_ok(data("tinyllama-chat/tokenizer.json"));
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = out;
    int n_cases = 0;
    for (;;) {
        char *end = strstr(p, sep);
        if (!end)
            break;
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = '\0';
        int32_t *ids;
        size_t n_ids;
        errbuf e;
        if (tokenizer_encode(t, p, (size_t)(end - p), 0, &ids, &n_ids, &e) != 0)
            fail_msg("case %d: %s", n_cases + 1, e.msg);
        char got[4096] = "";
        size_t used = 0;
        for (size_t i = 0; i < n_ids; i++)
            used += (size_t)snprintf(got + used, sizeof got - used, " %d", (int)ids[i]);
        if (strcmp(got, line) != 0)
            fail_msg("case %d \"%.*s\": want \"%s\", got \"%s\"", n_cases + 1, (int)(end - p), p,
                     line, got);
        /* and back: byte fallback makes every text round-trip */
        char *text;
        size_t n_text;
        assert_int_equal(tokenizer_decode(t, ids, n_ids, 1, &text, &n_text, &e), 0);
        assert_int_equal(n_text, (size_t)(end - p));
        assert_memory_equal(text, p, n_text);
        free(text);
        free(ids);
        n_cases++;
        p = end + strlen(sep);
        line = eol + 1;
    }
    assert_int_equal(n_cases, 46);
    tokenizer_free(t);
    free(inp);
    free(out);
}

static void test_tinyllama_special_tokens(void **state)
{
    tokenizer *t = load_ok(data("tinyllama-chat"));
    assert_int_equal(tokenizer_vocab_size(t), 32000);
    assert_int_equal(tokenizer_bos_id(t), 1);
    assert_int_equal(tokenizer_eos_id(t), 2);
    assert_int_equal(tokenizer_pad_id(t), 2); /* pad_token "</s>" */
    assert_int_equal(tokenizer_unk_id(t), 0);
    assert_string_equal(tokenizer_id_to_token(t, 15043), "\xe2\x96\x81Hello");
    assert_int_equal(tokenizer_token_to_id(t, "\xe2\x96\x81Hello"), 15043);
    assert_int_equal(tokenizer_token_to_id(t, "no such token"), -1);
    assert_null(tokenizer_id_to_token(t, 32000));

    encode_is(t, "Hello world", 1, (int32_t[]){1, 15043, 3186}, 3);
    encode_is(t, "", 1, (int32_t[]){1}, 1);
    encode_is(t, "", 0, NULL, 0);
    /* added tokens are matched before the model, anywhere */
    encode_is(t, "<s>hi</s>", 0, (int32_t[]){1, 7251, 2}, 3);

    /* a chat token: a new id, matched whole, dropped by skip_special */
    int im = tokenizer_add_special_token(t, "<|im_start|>");
    assert_int_equal(im, 32000);
    assert_int_equal(tokenizer_add_special_token(t, "<|im_start|>"), 32000);
    assert_int_equal(tokenizer_add_special_token(t, "</s>"), 2);
    assert_int_equal(tokenizer_vocab_size(t), 32001);
    encode_is(t, "<|im_start|>user", 0, (int32_t[]){32000, 1404}, 2);
    errbuf e;
    assert_int_equal(tokenizer_set_special(t, "pad", "<pad>", &e), 32001);
    assert_int_equal(tokenizer_pad_id(t), 32001);
    assert_int_equal(tokenizer_set_special(t, "cls", "<cls>", &e), -1);
    assert_non_null(strstr(e.msg, "cls"));

    char *text;
    size_t n;
    int32_t ids[] = {1, 32000, 1404, 2};
    assert_int_equal(tokenizer_decode(t, ids, 4, 1, &text, &n, &e), 0);
    assert_string_equal(text, "user");
    free(text);
    assert_int_equal(tokenizer_decode(t, ids, 4, 0, &text, &n, &e), 0);
    assert_string_equal(text, "<s><|im_start|> user</s>");
    free(text);
    int32_t bad[] = {1, 99999};
    assert_int_equal(tokenizer_decode(t, bad, 2, 0, &text, &n, &e), -1);
    assert_non_null(strstr(e.msg, "99999"));

    /* saved and loaded again: the same ids, the special tokens kept */
    mkdir(tmp("saved"), 0755);
    if (tokenizer_save(t, tmp("saved"), &e) != 0)
        fail_msg("%s", e.msg);
    tokenizer *u = load_ok(tmp("saved"));
    assert_int_equal(tokenizer_vocab_size(u), 32002);
    assert_int_equal(tokenizer_pad_id(u), 32001);
    assert_int_equal(tokenizer_token_to_id(u, "<|im_start|>"), 32000);
    encode_is(u, "<|im_start|>user\nHello world<pad>", 1,
              (int32_t[]){1, 32000, 1404, 13, 10994, 3186, 32001}, 7);
    encode_is(t, "<|im_start|>user\nHello world<pad>", 1,
              (int32_t[]){1, 32000, 1404, 13, 10994, 3186, 32001}, 7);
    tokenizer_free(u);
    tokenizer_free(t);
}

static void test_config_flags(void **state)
{
    /* add_eos_token in tokenizer_config.json decides, as in transformers 4 */
    size_t n;
    char *json = slurp(data("tinyllama-chat/tokenizer.json"), &n);
    mkdir(tmp("eos"), 0755);
    spit(tmp("eos/tokenizer.json"), json, n);
    const char *cfg = "{\"bos_token\": {\"content\": \"<s>\", \"__type\": \"AddedToken\"},"
                      " \"eos_token\": \"</s>\", \"add_bos_token\": false, \"add_eos_token\": true}";
    spit(tmp("eos/tokenizer_config.json"), cfg, strlen(cfg));
    tokenizer *t = load_ok(tmp("eos"));
    encode_is(t, "Hello", 1, (int32_t[]){15043, 2}, 2);
    encode_is(t, "Hello", 0, (int32_t[]){15043}, 1);
    tokenizer_free(t);
    /* a Llama tokenizer whose post_processor is null adds BOS by default */
    char *null_post = strstr(json, "\"post_processor\": {");
    assert_non_null(null_post);
    char *end = strstr(null_post, "\"decoder\"");
    assert_non_null(end);
    size_t head = (size_t)(null_post - json);
    char *edited = malloc(n + 64);
    memcpy(edited, json, head);
    size_t k = head + (size_t)sprintf(edited + head, "\"post_processor\": null,\n  ");
    memcpy(edited + k, end, n - (size_t)(end - json));
    k += n - (size_t)(end - json);
    mkdir(tmp("nopost"), 0755);
    spit(tmp("nopost/tokenizer.json"), edited, k);
    cfg = "{\"bos_token\": \"<s>\", \"tokenizer_class\": \"LlamaTokenizer\"}";
    spit(tmp("nopost/tokenizer_config.json"), cfg, strlen(cfg));
    t = load_ok(tmp("nopost"));
    encode_is(t, "Hello", 1, (int32_t[]){1, 15043}, 2);
    tokenizer_free(t);
    free(edited);
    free(json);
}

static void test_gpt2_slow_files(void **state)
{
    tokenizer *t = load_ok(data("gpt2"));
    assert_int_equal(tokenizer_vocab_size(t), 50257);
    assert_int_equal(tokenizer_eos_id(t), 50256);
    assert_int_equal(tokenizer_bos_id(t), 50256);
    encode_is(t, "Hello world", 1, (int32_t[]){15496, 995}, 2);
    encode_is(t, "Hello<|endoftext|>", 0, (int32_t[]){15496, 50256}, 2);
    tokenizer_free(t);
    t = load_ok(data("gpt2/vocab.json"));
    encode_is(t, " world's", 0, (int32_t[]){995, 338}, 2);
    tokenizer_free(t);
}

/* ------------------------------------------------------------------------- */
/* Refusals. */

static void test_missing_files(void **state)
{
    load_fails(tmp("nowhere/tokenizer.json"), "nowhere/tokenizer.json", "no such");
    mkdir(tmp("empty"), 0755);
    load_fails(tmp("empty"), "empty", "neither tokenizer.json nor vocab.json");
    mkdir(tmp("vocab_only"), 0755);
    spit(tmp("vocab_only/vocab.json"), "{\"a\": 0}", 8);
    load_fails(tmp("vocab_only/vocab.json"), "merges.txt", NULL);
}

static void test_truncated_json(void **state)
{
    size_t n;
    char *json = slurp(data("tinyllama-chat/tokenizer.json"), &n);
    size_t cuts[] = {0, 1, 100, n / 2, n - 2};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        spit(tmp("cut.json"), json, cuts[i]);
        load_fails(tmp("cut.json"), "cut.json", "not valid JSON");
    }
    free(json);
}

/* A small byte-level-free BPE tokenizer.json around the given merges. */
static const char *tiny_json(const char *merges, const char *extra)
{
    static char bufs[8][4096]; /* several live at once in a case table */
    static int which;
    char *buf = bufs[which++ % 8];
    snprintf(buf, sizeof bufs[0],
             "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null,"
             " \"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null,%s"
             " \"model\": {\"type\": \"BPE\", \"unk_token\": \"u\", \"vocab\": {\"u\": 0, \"a\": 1,"
             " \"b\": 2, \"ab\": 3, \"a b\": 4, \"a bb\": 5}, \"merges\": %s}}",
             extra, merges);
    return buf;
}

static void test_bad_models(void **state)
{
    struct {
        const char *json, *want1, *want2;
    } cases[] = {
        {tiny_json("[\"a c\"]", ""), "merge 1", "\"c\", which is not in the vocabulary"},
        {tiny_json("[\"a b\", \"b a\"]", ""), "merge 2", "\"ba\" is not in the vocabulary"},
        {tiny_json("[[\"a\", \"zz\"]]", ""), "merge 1", "\"zz\""},
        {tiny_json("[\"ab\"]", ""), "merge 1 \"ab\"", "two tokens"},
        {tiny_json("[7]", ""), "model.merges[0]", NULL},
        {tiny_json("{}", ""), "model.merges", "not a list"},
        {tiny_json("[]", " \"x\": 1,") , NULL, NULL}, /* unknown members are ignored */
        {"[]", "top level is not an object", NULL},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "Unigram", "only BPE"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", "\"a\"",
         "not an integer"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
         "id 0", "both"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}",
         "dropout", NULL},
        {"{\"normalizer\": {\"type\": \"NFC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, "
         "\"merges\": []}}", "NFC", "not supported"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, "
         "\"behavior\": \"Isolated\", \"invert\": false}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {}, \"merges\": []}}", "regex", "does not compile"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, "
         "\"behavior\": \"Sideways\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "behavior", NULL},
        {"{\"decoder\": {\"type\": \"WordPiece\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, "
         "\"merges\": []}}", "WordPiece", "not supported"},
        {"{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
         "{\"id\": \"<s>\", \"type_id\": 0}}], \"special_tokens\": {}}, \"model\": {\"type\": "
         "\"BPE\", \"vocab\": {}, \"merges\": []}}", "<s>", "special_tokens"},
        {"{\"added_tokens\": [{\"content\": \"x\"}], \"model\": {\"type\": \"BPE\", \"vocab\": {}, "
         "\"merges\": []}}", "added_tokens[0]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        spit(tmp("bad.json"), cases[i].json, strlen(cases[i].json));
        if (!cases[i].want1) {
            tokenizer_free(load_ok(tmp("bad.json")));
            continue;
        }
        load_fails(tmp("bad.json"), "bad.json", cases[i].want1);
        if (cases[i].want2)
            load_fails(tmp("bad.json"), cases[i].want2, NULL);
    }
}

static void test_tolerated_space_in_merge(void **state)
{
    /* "a b b": the token "a b" holds a space; split where both halves and
     * their concatenation are tokens */
    const char *j = tiny_json("[\"a b\", \"a b b\"]", "");
    spit(tmp("ok.json"), j, strlen(j));
    tokenizer *t = load_ok(tmp("ok.json"));
    encode_is(t, "abab", 0, (int32_t[]){3, 3}, 2);
    encode_is(t, "ac", 0, (int32_t[]){1, 0}, 2); /* c is unknown */
    tokenizer_free(t);
}

static void test_bad_merges_txt(void **state)
{
    mkdir(tmp("slow"), 0755);
    const char *vocab = "{\"a\": 0, \"b\": 1, \"ab\": 2}";
    spit(tmp("slow/vocab.json"), vocab, strlen(vocab));
    spit(tmp("slow/merges.txt"), "#version: 0.2\na b\nb c\n", 22);
    load_fails(tmp("slow"), "slow/vocab.json", "merge 2");
    spit(tmp("slow/merges.txt"), "a b\n\xff\xfe\n", 8);
    load_fails(tmp("slow"), "slow/merges.txt", "UTF-8");
    spit(tmp("slow/vocab.json"), "{\"a\": 0,", 8);
    load_fails(tmp("slow"), "slow/vocab.json", "not valid JSON");
}

static void test_invalid_utf8_text(void **state)
{
    tokenizer *t = load_ok(data("tinyllama-chat/tokenizer.json"));
    const char *bad[] = {"\xff", "abc\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "ok \xe2\x82 no", "\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *ids = NULL;
        size_t n;
        errbuf e;
        assert_int_equal(tokenizer_encode(t, bad[i], strlen(bad[i]), 1, &ids, &n, &e), -1);
        assert_null(ids);
        assert_non_null(strstr(e.msg, "not valid UTF-8"));
        assert_non_null(strstr(e.msg, "tokenizer.json"));
    }
    /* NUL is a character like any other */
    int32_t *ids;
    size_t n;
    errbuf e;
    assert_int_equal(tokenizer_encode(t, "a\0b", 3, 0, &ids, &n, &e), 0);
    free(ids);
    tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm_vectors),
        cmocka_unit_test(test_tinyllama_special_tokens),
        cmocka_unit_test(test_config_flags),
        cmocka_unit_test(test_gpt2_slow_files),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_truncated_json),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_tolerated_space_in_merge),
        cmocka_unit_test(test_bad_merges_txt),
        cmocka_unit_test(test_invalid_utf8_text),
    };
    /* e.g. "test_bad_*": the valgrind run picks the cheap tests */
    const char *filter = getenv("TOKENIZER_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
