/* commands.h: the commands of `shardtune`, one table for the usage text,
 * the man page and "did you mean". */
#ifndef SHARDTUNE_COMMANDS_H
#define SHARDTUNE_COMMANDS_H

#include <stdio.h>

#include "config.h"

typedef struct command_doc {
    const char *name;
    const char *synopsis;  /* the arguments after the name */
    const char *summary;   /* one line */
    unsigned flags_of;     /* command_id whose flag table it takes (0: its own, in synopsis) */
} command_doc;

/* The commands, ending with a NULL name. */
extern const command_doc shardtune_commands[];

/* `shardtune help`: the usage text. */
void commands_print_usage(FILE *out);
/* `shardtune --version`: the version, the backends built in and the
 * libraries linked, with their versions. */
void commands_print_version(FILE *out);
/* `shardtune help --man`: the man page (roff) from the tables above and
 * config.c's flag table, so it cannot drift from the program. */
void commands_print_man(FILE *out);

#endif
