/* suggest.c: see suggest.h. */
#include "suggest.h"

#include <string.h>

size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (nb > 127)
        return (size_t)-1;
    size_t row[128]; /* one row of the distance table, over b */
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

void suggest_begin(suggestion *s, const char *name)
{
    s->name = name;
    s->best = NULL;
    s->best_distance = (size_t)-1;
}

void suggest_offer(suggestion *s, const char *candidate)
{
    size_t d = edit_distance(s->name, candidate);
    /* a shortened name (max_shard for max_shard_size) is as good as one typo */
    size_t n = strlen(s->name), nc = strlen(candidate);
    if (n >= 4 && n < nc && !strncmp(s->name, candidate, n))
        d = 1;
    if (d < s->best_distance) {
        s->best_distance = d;
        s->best = candidate;
    }
}

const char *suggest_result(const suggestion *s)
{
    if (!s->best)
        return NULL;
    /* a third of the longer name: lora_rank -> lora_r, learning_rat -> learning_rate */
    size_t longer = strlen(s->best) > strlen(s->name) ? strlen(s->best) : strlen(s->name), allowed = longer / 3;
    return s->best_distance <= (allowed < 2 ? 2 : allowed) ? s->best : NULL;
}

const char *suggest_among(const char *name, const char *const *names)
{
    suggestion s;
    suggest_begin(&s, name);
    for (; *names; names++)
        suggest_offer(&s, *names);
    return suggest_result(&s);
}

void die_unknown_flag(const char *command, const char *flag, const char *const *known)
{
    const char *near = suggest_among(flag, known);
    if (near)
        die(EXIT_USAGE, "%s: %s: unknown flag (did you mean %s?)", command, flag, near);
    die(EXIT_USAGE, "%s: %s: unknown flag (see shardtune %s --help)", command, flag, command);
}
