/* fuzz_jinja.c: libFuzzer target for chat templates (src/jinja*.c), the
 * untrusted Jinja of a model's tokenizer_config.json.
 *
 * Each input is a template (inputs that are not UTF-8 are skipped: the
 * callers refuse them before parsing, as chat_model.c does).  It is parsed; when it parses it is rendered,
 * with {% generation %} spans, on a conversation that exercises what
 * templates read (system, user, assistant turns, a tool call, tools, special
 * tokens, add_generation_prompt).  The sanitizers (ASan, UBSan) and
 * libFuzzer's -timeout / -rss_limit_mb catch crashes, undefined behaviour,
 * hangs and unbounded memory; the target itself checks what a refusal and a
 * rendering promise: an error is one non-empty line, the text is
 * NUL-terminated, and every span lies inside it, start <= end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_error.h"
#include "jinja.h"
#include "utf8.h"

static json_t *vars;

static const char VARS[] =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"You are terse.\"},"
    "{\"role\": \"user\", \"content\": \"Hi \\u00e9\\u4e16 {{ x }}\"},"
    "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\", \"function\":"
    " {\"name\": \"get\", \"arguments\": {\"city\": \"Paris\", \"n\": 3}}}]},"
    "{\"role\": \"tool\", \"content\": \"22\"},"
    "{\"role\": \"assistant\", \"content\": \" It is 22. \"}],"
    "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get\", \"description\": \"weather\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}],"
    "\"documents\": null, \"add_generation_prompt\": true,"
    "\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", \"pad_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vars) {
        json_error_t jerr;
        if (!(vars = json_loads(VARS, 0, &jerr))) {
            fprintf(stderr, "fuzz_jinja: the variables do not parse: %s\n", jerr.text);
            abort();
        }
    }
    if (!utf8_valid((const char *)data, size, NULL))
        return 0;
    errbuf e = {{0}};
    jinja_template *t = jinja_parse((const char *)data, size, &e);
    if (!t) {
        fuzz_check_error(&e, "fuzz_jinja: parse");
        return 0;
    }
    char *out = NULL;
    size_t n = 0, *spans = NULL, n_spans = 0;
    if (jinja_render_spans(t, vars, &out, &n, &spans, &n_spans, &e) != 0) {
        fuzz_check_error(&e, "fuzz_jinja: render");
    } else {
        if (out[n] != 0)
            abort();
        for (size_t k = 0; k < n_spans; k++)
            if (spans[2 * k] > spans[2 * k + 1] || spans[2 * k + 1] > n) {
                fprintf(stderr, "fuzz_jinja: span %zu [%zu, %zu) outside the text of %zu bytes\n", k, spans[2 * k],
                        spans[2 * k + 1], n);
                abort();
            }
        free(out);
        free(spans);
    }
    jinja_free(t);
    return 0;
}
