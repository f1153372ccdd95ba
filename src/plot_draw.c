/* plot_draw.c: loss plots with cairo.  One function, draw(), paints onto a
 * cairo_t, so that the PNG (image surface) and the SVG (vector surface)
 * are the same picture; the layout is in plot_draw.h. */
#include "plot_draw.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int plot_available(void) { return 1; }

typedef struct axis {
    double lo, hi, tick;
} axis;

/* Heckbert's "nice numbers" (Graphics Gems, 1990): 1, 2 or 5 x 10^k. */
static double nice_num(double x, int round)
{
    double ex = floor(log10(x)), f = x / pow(10.0, ex), nf;
    if (round)
        nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10.0, ex);
}

/* An axis over the data range [lo, hi] with about six ticks; snap widens it
 * to whole ticks (the y axes), else it is the data range itself (x).  No
 * data (lo > hi) gives 0..1; a constant is widened by 10% (1 around 0). */
static axis make_axis(double lo, double hi, int snap)
{
    if (!(lo <= hi)) {
        lo = 0.0;
        hi = 1.0;
    }
    if (hi - lo <= fabs(hi) * 1e-12) {
        double d = lo != 0.0 ? fabs(lo) * 0.1 : 1.0;
        lo -= d;
        hi += d;
    }
    axis a = {lo, hi, nice_num(nice_num(hi - lo, 0) / 5.0, 1)};
    if (snap) {
        a.lo = floor(lo / a.tick) * a.tick;
        a.hi = ceil(hi / a.tick) * a.tick;
    }
    return a;
}

static double map(const axis *a, double v, double p0, double p1) { return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0); }

static void range_of(const plot_series *s, double *lo, double *hi, int use_x)
{
    for (size_t i = 0; i < s->n; i++) {
        double v = use_x ? s->x[i] : s->y[i];
        *lo = v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
    }
}

static void set_colour(cairo_t *cr, unsigned rgb, double alpha)
{
    cairo_set_source_rgba(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0, (rgb & 255) / 255.0, alpha);
}

/* Text placed by an anchor: ax, ay = 0 left/top, 0.5 centre, 1 right/bottom. */
static void text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_move_to(cr, x - ax * te.width - te.x_bearing, y - ay * te.height - te.y_bearing);
    cairo_show_text(cr, s);
}

static void text_vertical(cairo_t *cr, const char *s, double x, double y)
{
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, s, 0, 0, 0.5, 0.5);
    cairo_restore(cr);
}

/* The line style says which series (loss, eval loss, lr) a line is. */
static void set_style(cairo_t *cr, int k)
{
    static const double dashed[] = {9.0, 5.0}, dotted[] = {2.0, 4.0};
    cairo_set_line_width(cr, k == PLOT_LR ? 1.5 : 2.0);
    cairo_set_dash(cr, k == PLOT_EVAL_LOSS ? dashed : dotted, k == PLOT_LOSS ? 0 : 2, 0.0);
}

static const unsigned tab10[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
static const unsigned one_run_colour[PLOT_N_SERIES] = {PLOT_LOSS_RGB, 0xff7f0e, 0x2ca02c};

static unsigned colour_of(int n_runs, int run, int k) { return n_runs == 1 ? one_run_colour[k] : tab10[run % 10]; }

/* Tick labels: as many decimals as the tick needs (loss), %g (lr). */
static void tick_label(char *buf, size_t size, double v, double tick, int general)
{
    if (fabs(v) < tick * 1e-9)
        v = 0.0;
    if (general)
        snprintf(buf, size, "%.3g", v);
    else
        snprintf(buf, size, "%.*f", tick >= 1 ? 0 : (int)ceil(-log10(tick) - 1e-9), v);
}

/* Grid lines and labels of one axis: side 0 = x (bottom), 1 = left, 2 = right. */
static void draw_ticks(cairo_t *cr, const axis *a, int side)
{
    long first = (long)ceil(a->lo / a->tick - 1e-9), last = (long)floor(a->hi / a->tick + 1e-9);
    cairo_set_font_size(cr, 12);
    for (long i = first; i <= last; i++) {
        double v = (double)i * a->tick;
        char label[64];
        tick_label(label, sizeof label, v, a->tick, side == 2);
        set_colour(cr, 0x000000, 0.8);
        if (side == 0) {
            double x = map(a, v, PLOT_LEFT, PLOT_RIGHT);
            text_at(cr, label, x, PLOT_BOTTOM + 8, 0.5, 0.0);
            set_colour(cr, 0x000000, 0.08);
            cairo_move_to(cr, x, PLOT_TOP);
            cairo_line_to(cr, x, PLOT_BOTTOM);
        } else {
            double y = map(a, v, PLOT_BOTTOM, PLOT_TOP);
            text_at(cr, label, side == 1 ? PLOT_LEFT - 8 : PLOT_RIGHT + 8, y, side == 1 ? 1.0 : 0.0, 0.5);
            if (side == 2)
                continue; /* one grid is enough: the left axis's */
            set_colour(cr, 0x000000, 0.08);
            cairo_move_to(cr, PLOT_LEFT, y);
            cairo_line_to(cr, PLOT_RIGHT, y);
        }
        cairo_set_line_width(cr, 1.0);
        cairo_set_dash(cr, NULL, 0, 0.0);
        cairo_stroke(cr);
    }
}

/* Lines through the points; markers where points are sparse (eval loss)
 * or alone (one logged step would otherwise draw nothing). */
static void draw_series(cairo_t *cr, const plot_series *s, const axis *ax, const axis *ay, int k)
{
    if (s->n == 0)
        return;
    set_style(cr, k);
    for (size_t i = 0; i < s->n; i++)
        cairo_line_to(cr, map(ax, s->x[i], PLOT_LEFT, PLOT_RIGHT), map(ay, s->y[i], PLOT_BOTTOM, PLOT_TOP));
    cairo_stroke(cr);
    if (k == PLOT_EVAL_LOSS || s->n == 1)
        for (size_t i = 0; i < s->n; i++) {
            cairo_new_sub_path(cr);
            cairo_arc(cr, map(ax, s->x[i], PLOT_LEFT, PLOT_RIGHT), map(ay, s->y[i], PLOT_BOTTOM, PLOT_TOP), 3.5, 0,
                      2 * M_PI);
            cairo_fill(cr);
        }
}

typedef struct legend_entry {
    char text[600];
    unsigned rgb;
    int style;
} legend_entry;

/* Where the legend hides the fewest points: the four corners of the plot
 * area, top right first (matplotlib's loc="best", on the vertices only). */
static void legend_place(const plot_run *runs, int n_runs, const axis *ax, const axis *ay, const axis *alr, double w,
                         double h, double *x, double *y)
{
    long best = -1;
    for (int corner = 0; corner < 4; corner++) {
        double cx = corner % 2 == 0 ? PLOT_RIGHT - w - 10.0 : PLOT_LEFT + 10.0;
        double cy = corner < 2 ? PLOT_TOP + 10.0 : PLOT_BOTTOM - h - 10.0;
        long hidden = 0;
        for (int r = 0; r < n_runs; r++)
            for (int k = 0; k < PLOT_N_SERIES; k++)
                for (size_t i = 0; i < runs[r].s[k].n; i++) {
                    double px = map(ax, runs[r].s[k].x[i], PLOT_LEFT, PLOT_RIGHT);
                    double py = map(k == PLOT_LR ? alr : ay, runs[r].s[k].y[i], PLOT_BOTTOM, PLOT_TOP);
                    hidden += px >= cx - 4 && px <= cx + w + 4 && py >= cy - 4 && py <= cy + h + 4;
                }
        if (best < 0 || hidden < best) {
            best = hidden;
            *x = cx;
            *y = cy;
        }
    }
}

static void draw_legend(cairo_t *cr, const legend_entry *en, int n, const plot_run *runs, int n_runs, const axis *ax,
                        const axis *ay, const axis *alr)
{
    if (n == 0)
        return;
    cairo_set_font_size(cr, 12);
    double width = 0.0, row = 18.0;
    for (int i = 0; i < n; i++) {
        cairo_text_extents_t te;
        cairo_text_extents(cr, en[i].text, &te);
        width = te.x_advance > width ? te.x_advance : width;
    }
    double w = width + 56.0, h = row * n + 12.0, x = 0.0, y = 0.0;
    legend_place(runs, n_runs, ax, ay, alr, w, h, &x, &y);
    cairo_rectangle(cr, x, y, w, h);
    set_colour(cr, 0xffffff, 0.85);
    cairo_fill_preserve(cr);
    set_colour(cr, 0x000000, 0.3);
    cairo_set_line_width(cr, 1.0);
    cairo_set_dash(cr, NULL, 0, 0.0);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double cy = y + 6.0 + row * (i + 0.5);
        set_colour(cr, en[i].rgb, 1.0);
        set_style(cr, en[i].style);
        cairo_move_to(cr, x + 8.0, cy);
        cairo_line_to(cr, x + 40.0, cy);
        cairo_stroke(cr);
        set_colour(cr, 0x000000, 0.9);
        text_at(cr, en[i].text, x + 48.0, cy, 0.0, 0.5);
    }
}

static const char *const series_name[PLOT_N_SERIES] = {"training loss", "eval loss", "learning rate (right axis)"};

static int legend_entries(const plot_run *runs, int n_runs, const int present[PLOT_N_SERIES], legend_entry *en)
{
    int n = 0;
    /* several runs: one entry a run, then the key to the line styles, in grey */
    for (int r = 0; r < n_runs && n_runs > 1; r++, n++) {
        en[n] = (legend_entry){"", tab10[r % 10], PLOT_LOSS};
        plot_run_legend(&runs[r], en[n].text, sizeof en[n].text);
    }
    for (int k = 0; k < PLOT_N_SERIES; k++)
        if (present[k]) {
            en[n] = (legend_entry){"", n_runs == 1 ? one_run_colour[k] : 0x555555, k};
            snprintf(en[n++].text, sizeof en->text, "%s", series_name[k]);
        }
    return n;
}

static void draw_title(cairo_t *cr, const plot_run *runs, int n_runs)
{
    char title[1024];
    plot_title(runs, n_runs, title, sizeof title);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    double size = 17.0;
    cairo_text_extents_t te;
    for (;; size -= 1.0) { /* a long title shrinks to fit rather than being cut */
        cairo_set_font_size(cr, size);
        cairo_text_extents(cr, title, &te);
        if (te.x_advance <= PLOT_WIDTH - 40 || size <= 8.0)
            break;
    }
    set_colour(cr, 0x000000, 1.0);
    text_at(cr, title, PLOT_WIDTH / 2.0, PLOT_TOP / 2.0, 0.5, 0.5);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

static void draw(cairo_t *cr, const plot_run *runs, int n_runs)
{
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY, lr_lo = INFINITY, lr_hi = -INFINITY;
    int present[PLOT_N_SERIES] = {0};
    for (int r = 0; r < n_runs; r++)
        for (int k = 0; k < PLOT_N_SERIES; k++) {
            const plot_series *s = &runs[r].s[k];
            present[k] |= s->n > 0;
            range_of(s, &x_lo, &x_hi, 1);
            range_of(s, k == PLOT_LR ? &lr_lo : &y_lo, k == PLOT_LR ? &lr_hi : &y_hi, 0);
        }
    if (x_lo == x_hi) { /* one step: it sits in the middle */
        x_lo -= 1.0;
        x_hi += 1.0;
    }
    const axis ax = make_axis(x_lo, x_hi, 0), ay = make_axis(y_lo, y_hi, 1), alr = make_axis(lr_lo, lr_hi, 1);

    set_colour(cr, 0xffffff, 1.0);
    cairo_paint(cr);
    draw_title(cr, runs, n_runs);
    draw_ticks(cr, &ax, 0);
    draw_ticks(cr, &ay, 1);
    if (present[PLOT_LR])
        draw_ticks(cr, &alr, 2);
    cairo_set_font_size(cr, 14);
    set_colour(cr, 0x000000, 1.0);
    text_at(cr, "step", (PLOT_LEFT + PLOT_RIGHT) / 2.0, PLOT_BOTTOM + 32, 0.5, 0.0);
    text_vertical(cr, "loss", 25, (PLOT_TOP + PLOT_BOTTOM) / 2.0);
    if (present[PLOT_LR])
        text_vertical(cr, "learning rate", PLOT_WIDTH - 22, (PLOT_TOP + PLOT_BOTTOM) / 2.0);

    /* the frame under the lines, so that a line along an edge stays its colour */
    cairo_rectangle(cr, PLOT_LEFT, PLOT_TOP, PLOT_RIGHT - PLOT_LEFT, PLOT_BOTTOM - PLOT_TOP);
    set_colour(cr, 0x000000, 0.6);
    cairo_set_line_width(cr, 1.0);
    cairo_set_dash(cr, NULL, 0, 0.0);
    cairo_stroke(cr);

    cairo_save(cr);
    cairo_rectangle(cr, PLOT_LEFT - 4, PLOT_TOP - 4, PLOT_RIGHT - PLOT_LEFT + 8, PLOT_BOTTOM - PLOT_TOP + 8);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    /* lr first: the losses, which the plot is about, are drawn over it */
    static const int order[PLOT_N_SERIES] = {PLOT_LR, PLOT_EVAL_LOSS, PLOT_LOSS};
    for (int o = 0; o < PLOT_N_SERIES; o++)
        for (int r = 0; r < n_runs; r++) {
            int k = order[o];
            set_colour(cr, colour_of(n_runs, r, k), 1.0);
            draw_series(cr, &runs[r].s[k], &ax, k == PLOT_LR ? &alr : &ay, k);
        }
    cairo_restore(cr);

    legend_entry *en = xcalloc((size_t)n_runs + PLOT_N_SERIES, sizeof *en);
    draw_legend(cr, en, legend_entries(runs, n_runs, present, en), runs, n_runs, &ax, &ay, &alr);
    free(en);
}

int plot_render(const plot_run *runs, int n_runs, const char *path, errbuf *e)
{
    const char *ext = strrchr(path, '.');
    const int svg = ext && !strcasecmp(ext, ".svg");
    if (!svg && !(ext && !strcasecmp(ext, ".png")))
        return err_set(e, "%s: a plot file ends in .png or .svg", path);
    char tmp[4300];
    if (plot_tmp_path(path, tmp, sizeof tmp) != 0)
        return err_set(e, "%s: path too long", path);
    cairo_surface_t *sf = svg ? cairo_svg_surface_create(tmp, PLOT_WIDTH, PLOT_HEIGHT)
                              : cairo_image_surface_create(CAIRO_FORMAT_RGB24, PLOT_WIDTH, PLOT_HEIGHT);
    cairo_t *cr = cairo_create(sf);
    draw(cr, runs, n_runs);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && !svg)
        st = cairo_surface_write_to_png(sf, tmp);
    cairo_surface_finish(sf); /* the SVG is written out here */
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(sf);
    cairo_surface_destroy(sf);
    if (st != CAIRO_STATUS_SUCCESS) {
        unlink(tmp);
        return err_set(e, "%s: cannot write: %s", path, cairo_status_to_string(st));
    }
    return plot_commit_tmp(tmp, path, e);
}
