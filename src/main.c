/* main.c: `shardtune <command>` dispatch.  Every command reports failure
 * through die(): one line, exit 2 for usage errors and 1 otherwise; a
 * training run stopped by a signal or its time limit, with a checkpoint
 * saved, exits 75 (EXIT_PREEMPTED). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "convert_llama2c.h"
#include "log.h"
#include "generate.h"
#include "merge.h"
#include "plan.h"
#include "plot_cmd.h"
#include "preempt.h"
#include "tokenizer.h"
#include "chat_template_cmd.h"
#include "suggest.h"
#include "train.h"

static const char *find_flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int cmd_convert(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "llama2c") != 0)
        die(EXIT_USAGE, "convert: the only source format is llama2c (shardtune convert llama2c "
                        "--checkpoint FILE --tokenizer FILE --out DIR)");
    for (int i = 1; i < argc; i += 2)
        if (strcmp(argv[i], "--checkpoint") && strcmp(argv[i], "--tokenizer") && strcmp(argv[i], "--out"))
            die_unknown_flag("convert llama2c", argv[i], (const char *const[]){"--checkpoint", "--tokenizer", "--out", NULL});
    const char *ckpt = find_flag(argc, argv, "--checkpoint");
    const char *tok = find_flag(argc, argv, "--tokenizer");
    const char *out = find_flag(argc, argv, "--out");
    if (!ckpt || !tok || !out)
        die(EXIT_USAGE, "convert llama2c: --checkpoint, --tokenizer and --out are required");
    errbuf e;
    if (convert_llama2c(ckpt, tok, out, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    log_info("converted %s to %s", ckpt, out);
    return 0;
}

/* The commands that take run_config flags: parse, run, report. */
typedef int (*command_fn)(const run_config *c, int argc, char **argv, errbuf *e);

static int cmd_run(const char *name, command_id cmd, command_fn fn, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("flags of shardtune %s:\n", name);
            config_print_help(cmd);
            return 0;
        }
    run_config c;
    errbuf e;
    if (config_parse(&c, cmd, argc, argv, &e) != 0)
        die(EXIT_USAGE, "%s", e.msg);
    if (c.json)
        log_info_to_stderr();
    int rc = fn(&c, argc, argv, &e);
    config_free(&c);
    if (rc == TRAIN_STOPPED) /* a checkpoint holds every step done: the batch script requeues */
        return EXIT_PREEMPTED;
    if (rc != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    return 0;
}

int main(int argc, char **argv)
{
    /* what needs no MPI (and runs at build time, for the man page) */
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        commands_print_version(stdout);
        return 0;
    }
    if (argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        if (argc >= 3 && !strcmp(argv[2], "--man"))
            commands_print_man(stdout);
        else
            commands_print_usage(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    int provided, rank = 0, size = 1;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "shardtune: error: MPI_Init_thread failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    log_set_rank(rank, size);
    if (argc < 2) {
        commands_print_usage(stderr);
        die(EXIT_USAGE, "no command given");
    }
    const char *cmd = argv[1];
    int rc;
    if (!strcmp(cmd, "convert")) {
        rc = rank == 0 ? cmd_convert(argc - 2, argv + 2) : 0; /* one writer */
    } else if (!strcmp(cmd, "train")) {
        rc = cmd_run(cmd, CMD_TRAIN, train_run, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "eval")) {
        rc = cmd_run(cmd, CMD_EVAL, eval_run, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "plan")) {
        rc = rank == 0 ? cmd_run(cmd, CMD_PLAN, plan_run, argc - 2, argv + 2) : 0;
    } else if (!strcmp(cmd, "tokenize")) {
        rc = rank == 0 ? tokenize_main(argc - 2, argv + 2) : 0;
    } else if (!strcmp(cmd, "chat-template")) {
        rc = rank == 0 ? chat_template_main(argc - 2, argv + 2) : 0;
    } else if (!strcmp(cmd, "plot")) {
        rc = rank == 0 ? plot_main(argc - 2, argv + 2) : 0;
    } else if (!strcmp(cmd, "generate")) {
        rc = cmd_run(cmd, CMD_GENERATE, generate_run, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "export")) {
        const char *out = find_flag(argc - 2, argv + 2, "--out");
        if (argc != 5 || !out || argv[2][0] == '-')
            die(EXIT_USAGE, "export: usage: shardtune export CHECKPOINT --out DIR");
        errbuf e;
        if (export_run(argv[2], out, &e) != 0)
            die(EXIT_FAILURE_RUN, "%s", e.msg);
        rc = 0;
    } else if (!strcmp(cmd, "merge")) {
        rc = cmd_run(cmd, CMD_MERGE, merge_run, argc - 2, argv + 2);
    } else {
        suggestion sg;
        suggest_begin(&sg, cmd);
        for (const command_doc *d = shardtune_commands; d->name; d++)
            suggest_offer(&sg, d->name);
        const char *near = suggest_result(&sg);
        if (near)
            die(EXIT_USAGE, "'%s' is not a command (did you mean %s?)", cmd, near);
        commands_print_usage(stderr);
        die(EXIT_USAGE, "'%s' is not a command", cmd);
    }
    MPI_Finalize();
    return rc;
}
