/* tokenize_cmd.c: `shardtune tokenize`, the tokenizer from the command line:
 * see what ids a text becomes (or what text ids are) before training on it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suggest.h"
#include "tokenizer.h"

static const char USAGE[] =
    "usage: shardtune tokenize --tokenizer PATH [--add_special_tokens True|False]\n"
    "                          [--decode [--skip_special_tokens True|False]] TEXT...\n"
    "  PATH: tokenizer.json, a model directory, or vocab.json (with merges.txt beside it)\n"
    "  prints one line per TEXT: its token ids, space-separated; with --decode each TEXT\n"
    "  is a space-separated list of ids and the line is the decoded text\n";

static int parse_bool(const char *flag, const char *v)
{
    if (!strcmp(v, "True") || !strcmp(v, "true") || !strcmp(v, "1"))
        return 1;
    if (!strcmp(v, "False") || !strcmp(v, "false") || !strcmp(v, "0"))
        return 0;
    die(EXIT_USAGE, "tokenize: %s: \"%s\" is not True or False", flag, v);
}

/* "12 7 99" -> ids; dies naming the argument when a field is not an id. */
static int32_t *parse_ids(const char *arg, int which, size_t *n_ids)
{
    size_t cap = strlen(arg) / 2 + 1, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        die(EXIT_FAILURE_RUN, "tokenize: out of memory");
    const char *p = arg;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX ||
            (*end && *end != ' ' && *end != '\t' && *end != ','))
            die(EXIT_USAGE, "tokenize --decode: TEXT %d: \"%s\" is not a list of token ids", which,
                arg);
        ids[n++] = (int32_t)v;
        p = end;
    }
    *n_ids = n;
    return ids;
}

int tokenize_main(int argc, char **argv)
{
    const char *path = NULL;
    int add_special = 1, skip_special = 0, decode = 0, first_text = argc;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            first_text = i + 1;
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--decode")) {
            decode = 1;
        } else if (!strcmp(a, "--tokenizer") || !strcmp(a, "--add_special_tokens") ||
                   !strcmp(a, "--skip_special_tokens")) {
            if (i + 1 >= argc)
                die(EXIT_USAGE, "tokenize: %s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--tokenizer"))
                path = v;
            else if (!strcmp(a, "--add_special_tokens"))
                add_special = parse_bool(a, v);
            else
                skip_special = parse_bool(a, v);
        } else if (!strncmp(a, "--", 2)) {
            static const char *const known[] = {"--tokenizer", "--add_special_tokens", "--skip_special_tokens",
                                                "--decode", "--help", NULL};
            die_unknown_flag("tokenize", a, known);
        } else {
            first_text = i;
            break;
        }
    }
    if (!path)
        die(EXIT_USAGE, "tokenize: --tokenizer PATH is required");
    if (first_text >= argc)
        die(EXIT_USAGE, "tokenize: no TEXT given");
    errbuf e;
    tokenizer *t = tokenizer_load(path, &e);
    if (!t)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    for (int i = first_text; i < argc; i++) {
        int which = i - first_text + 1;
        if (decode) {
            size_t n_ids, n_bytes;
            int32_t *ids = parse_ids(argv[i], which, &n_ids);
            char *text;
            if (tokenizer_decode(t, ids, n_ids, skip_special, &text, &n_bytes, &e) != 0)
                die(EXIT_FAILURE_RUN, "tokenize --decode: TEXT %d: %s", which, e.msg);
            fwrite(text, 1, n_bytes, stdout);
            fputc('\n', stdout);
            free(text);
            free(ids);
        } else {
            int32_t *ids;
            size_t n_ids;
            if (tokenizer_encode(t, argv[i], strlen(argv[i]), add_special, &ids, &n_ids, &e) != 0)
                die(EXIT_FAILURE_RUN, "tokenize: TEXT %d: %s", which, e.msg);
            for (size_t k = 0; k < n_ids; k++)
                printf(k ? " %d" : "%d", (int)ids[k]);
            fputc('\n', stdout);
            free(ids);
        }
    }
    tokenizer_free(t);
    if (fflush(stdout) != 0)
        die(EXIT_FAILURE_RUN, "tokenize: cannot write the output: %s", strerror(errno));
    return 0;
}
