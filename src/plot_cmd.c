/* plot_cmd.c: `shardtune plot RUN_DIR... [--out FILE.png|FILE.svg]...`:
 * the loss plot of finished runs, several overlaid to compare them. */
#include "plot_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plot_data.h"
#include "plot_draw.h"

static const char USAGE[] =
    "usage: shardtune plot RUN_DIR... [--out FILE.png|FILE.svg]...\n"
    "  draws training loss, eval loss and learning rate against step from each RUN_DIR/metrics.jsonl\n"
    "  (1200x700; the title from RUN_DIR/training_args.json, which train writes).  One run: by\n"
    "  default RUN_DIR/loss.png and RUN_DIR/loss.svg.  Several runs are overlaid, one colour each,\n"
    "  and need --out; the extension picks the format, and --out may be given more than once.\n";

int plot_write_dir(const char *dir, errbuf *e)
{
    plot_run r;
    int rc = plot_run_read(&r, dir, e);
    for (int svg = 0; svg < 2 && rc == 0; svg++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/loss.%s", dir, svg ? "svg" : "png");
        rc = plot_render(&r, 1, path, e);
    }
    plot_run_free(&r);
    return rc;
}

static int has_plot_extension(const char *path)
{
    const char *ext = strrchr(path, '.');
    return ext && (!strcasecmp(ext, ".png") || !strcasecmp(ext, ".svg"));
}

int plot_main(int argc, char **argv)
{
    const char **dirs = xcalloc((size_t)argc + 1, sizeof *dirs), **outs = xcalloc((size_t)argc + 1, sizeof *outs);
    int n_dirs = 0, n_outs = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out")) {
            if (i + 1 == argc)
                die(EXIT_USAGE, "plot: --out: missing value (FILE.png or FILE.svg)");
            if (!has_plot_extension(argv[++i]))
                die(EXIT_USAGE, "plot: --out %s: the file must end in .png or .svg", argv[i]);
            outs[n_outs++] = argv[i];
        } else if (argv[i][0] == '-') {
            die(EXIT_USAGE, "plot: %s: unknown flag (shardtune plot RUN_DIR... [--out FILE.png|FILE.svg])", argv[i]);
        } else {
            dirs[n_dirs++] = argv[i];
        }
    }
    if (n_dirs == 0)
        die(EXIT_USAGE, "plot: no RUN_DIR given (shardtune plot RUN_DIR... [--out FILE.png|FILE.svg])");
    /* several runs have no directory of their own to write into */
    if (n_dirs > 1 && n_outs == 0)
        die(EXIT_USAGE, "plot: %d runs: --out FILE.png or --out FILE.svg is required", n_dirs);
    if (!plot_available())
        die(EXIT_FAILURE_RUN, "plot: plots need cairo (libcairo2-dev): this shardtune was built without it");
    errbuf e;
    if (n_outs == 0) {
        if (plot_write_dir(dirs[0], &e) != 0)
            die(EXIT_FAILURE_RUN, "plot: %s", e.msg);
        log_info("plot: wrote %s/loss.png and %s/loss.svg", dirs[0], dirs[0]);
    } else {
        plot_run *runs = xcalloc((size_t)n_dirs, sizeof *runs);
        for (int r = 0; r < n_dirs; r++)
            if (plot_run_read(&runs[r], dirs[r], &e) != 0)
                die(EXIT_FAILURE_RUN, "plot: %s", e.msg);
        for (int o = 0; o < n_outs; o++) {
            if (plot_render(runs, n_dirs, outs[o], &e) != 0)
                die(EXIT_FAILURE_RUN, "plot: %s", e.msg);
            log_info("plot: wrote %s", outs[o]);
        }
        for (int r = 0; r < n_dirs; r++)
            plot_run_free(&runs[r]);
        free(runs);
    }
    free(dirs);
    free(outs);
    return 0;
}
