/* suggest.h: "did you mean": the closest of a set of names to a misspelt
 * one, for unknown flags, commands and configuration keys. */
#ifndef SHARDTUNE_SUGGEST_H
#define SHARDTUNE_SUGGEST_H

#include <stddef.h>

/* Edit distance (insertions, deletions, substitutions); (size_t)-1 for a
 * name of 128 bytes or more. */
size_t edit_distance(const char *a, const char *b);

/* Offer candidates one by one; the result is the closest, when it is close
 * enough to be a misspelling (a third of the longer name's letters, at least
 * 2; a name that begins a candidate, of 4 letters or more, counts as one
 * letter off) rather
 * than another word, else NULL. */
typedef struct suggestion {
    const char *name;     /* the misspelt name */
    const char *best;
    size_t best_distance;
} suggestion;

void suggest_begin(suggestion *s, const char *name);
void suggest_offer(suggestion *s, const char *candidate);
const char *suggest_result(const suggestion *s);
/* The same over a NULL-terminated list. */
const char *suggest_among(const char *name, const char *const *names);

/* Ends the command (exit 2): "COMMAND: FLAG: unknown flag (did you mean
 * X?)", or "(see shardtune COMMAND --help)" when no known flag is near. */
#include "log.h"
SHARDTUNE_NORETURN void die_unknown_flag(const char *command, const char *flag, const char *const *known);

#endif
