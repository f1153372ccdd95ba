/* plot_draw.h: loss plots drawn with cairo (plot_draw.c), or refused when
 * shardtune was configured without cairo (plot_none.c).
 *
 * The picture, PNG and SVG alike: PLOT_WIDTH x PLOT_HEIGHT (1200 x 700), a
 * white background, the plot area from (PLOT_LEFT, PLOT_TOP) to
 * (PLOT_RIGHT, PLOT_BOTTOM) in pixels.  x maps the first to the last logged
 * step of all runs linearly onto [PLOT_LEFT, PLOT_RIGHT] (one step s alone:
 * s - 1 to s + 1); the left y axis (loss and eval loss) and the right one
 * (learning rate) span "nice" tick values around their data.  One run:
 * training loss PLOT_LOSS_RGB (solid), eval loss orange (dashed, with
 * markers), learning rate green (dotted, right axis).  Several runs: one
 * colour each, the same three line styles. */
#ifndef SHARDTUNE_PLOT_DRAW_H
#define SHARDTUNE_PLOT_DRAW_H

#include "log.h"
#include "plot_data.h"

enum { PLOT_WIDTH = 1200, PLOT_HEIGHT = 700, PLOT_LEFT = 90, PLOT_RIGHT = 1100, PLOT_TOP = 60, PLOT_BOTTOM = 630 };
#define PLOT_LOSS_RGB 0x1f77b4 /* the first colour of matplotlib's tab10 */

/* 1 when this build draws (cairo found at configure time). */
int plot_available(void);

/* Draws runs[0..n_runs) into path, a .png or .svg file (tmp + rename). */
int plot_render(const plot_run *runs, int n_runs, const char *path, errbuf *e);

#endif
