/* tokenizer_speed.c: encoding throughput of the C tokenizer on one core.
 *
 *   tokenizer_speed TOKENIZER DOCS.json [PASSES]
 *
 * DOCS.json is a list of strings.  Each pass encodes every document once
 * (add_special_tokens on, as data preparation does); prints one line with the
 * best pass (bytes, tokens, seconds, MB/s with MB = 10^6 bytes) and the first
 * pass's MB/s: the word cache starts cold there and is warm after it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        die(EXIT_USAGE, "usage: tokenizer_speed TOKENIZER DOCS.json [PASSES]");
    int passes = argc > 3 ? atoi(argv[3]) : 3;
    errbuf e;
    double t0 = now();
    tokenizer *t = tokenizer_load(argv[1], &e);
    if (!t)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    double load_s = now() - t0;
    json_error_t jerr;
    json_t *docs = json_load_file(argv[2], JSON_ALLOW_NUL, &jerr);
    if (!json_is_array(docs))
        die(EXIT_FAILURE_RUN, "%s: not a JSON list of strings (%s)", argv[2], jerr.text);
    size_t n_docs = json_array_size(docs), n_bytes = 0, n_tokens = 0;
    double best = 1e30, first = 0;
    for (int p = 0; p < passes; p++) {
        n_bytes = n_tokens = 0;
        double start = now();
        for (size_t i = 0; i < n_docs; i++) {
            json_t *s = json_array_get(docs, i);
            int32_t *ids;
            size_t n_ids;
            if (tokenizer_encode(t, json_string_value(s), json_string_length(s), 1, &ids, &n_ids,
                                 &e) != 0)
                die(EXIT_FAILURE_RUN, "document %zu: %s", i, e.msg);
            n_bytes += json_string_length(s);
            n_tokens += n_ids;
            free(ids);
        }
        double s = now() - start;
        if (p == 0)
            first = s;
        if (s < best)
            best = s;
    }
    printf("bytes %zu tokens %zu seconds %.4f MB/s %.2f first_MB/s %.2f load_s %.3f\n", n_bytes,
           n_tokens, best, (double)n_bytes / best / 1e6, (double)n_bytes / first / 1e6, load_s);
    json_decref(docs);
    tokenizer_free(t);
    return 0;
}
