/* plot_none.c: plot_draw.h for a build without cairo: every plot is refused
 * with one line saying what to install. */
#include "plot_draw.h"

int plot_available(void) { return 0; }

int plot_render(const plot_run *runs, int n_runs, const char *path, errbuf *e)
{
    return err_set(e, "%s: plots need cairo (libcairo2-dev): this shardtune was built without it", path);
}
