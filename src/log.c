/* log.c: one place that prints errors, progress and ends the job. */
#include "log.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0, g_size = 1;
static void live_clear(void);

void log_set_rank(int rank, int size) { g_rank = rank; g_size = size; }
int log_rank(void) { return g_rank; }

int err_set(errbuf *e, const char *fmt, ...)
{
    if (e) {
        /* formatted apart first: callers may pass e->msg as an argument */
        char raw[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        escape_controls(raw, e->msg, sizeof e->msg);
    }
    return -1;
}

/* Every error is one line, whatever it quotes from the input (a JSON
 * parser's excerpt, a key, a role, a template's string, a YAML scalar): the
 * fuzz targets of tests/fuzz found messages that a quoted newline had split
 * in two.  err_set and the notes of accel_config.c pass through this. */
void escape_controls(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < cap; p++) {
        if (*p >= 0x20 && *p != 0x7f)
            out[o++] = (char)*p;
        else if (*p == '\n' || *p == '\t' || *p == '\r')
            o += (size_t)snprintf(out + o, cap - o, "\\%c", *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r');
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *p);
    }
    out[o] = '\0';
}

void die(int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    live_clear();
    if (g_size > 1)
        fprintf(stderr, "shardtune: error: rank %d: %s\n", g_rank, msg);
    else
        fprintf(stderr, "shardtune: error: %s\n", msg);
    fflush(stderr);
    fflush(stdout);
    int mpi_up = 0, mpi_down = 0;
    MPI_Initialized(&mpi_up);
    MPI_Finalized(&mpi_down);
    if (mpi_up && !mpi_down && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

static FILE *g_info_stream; /* NULL: stdout */

void log_info_to_stderr(void) { g_info_stream = stderr; }

/* The live line (log_live): kept at the bottom of the terminal, so a line
 * printed meanwhile clears it first and draws it again after. */
static char g_live[512];

static void live_clear(void)
{
    if (g_live[0]) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

static void live_draw(void)
{
    if (g_live[0]) {
        fputs(g_live, stderr);
        fflush(stderr);
    }
}

static void print_line(FILE *out, const char *fmt, va_list ap)
{
    live_clear();
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    fflush(out);
    live_draw();
}

void log_live(const char *fmt, ...)
{
    if (g_rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_live + 4, sizeof g_live - 4, fmt, ap); /* after "\r\033[K": */
    va_end(ap);
    memcpy(g_live, "\r\033[K", 4);                     /* each draw erases the last */
    live_draw();
}

void log_live_end(void)
{
    if (g_rank != 0 || !g_live[0])
        return;
    fputc('\n', stderr); /* the last state stays on screen */
    fflush(stderr);
    g_live[0] = 0;
}

void log_info(const char *fmt, ...)
{
    if (g_rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    print_line(g_info_stream ? g_info_stream : stdout, fmt, ap);
    va_end(ap);
}

void log_result(const char *fmt, ...)
{
    if (g_rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    print_line(stdout, fmt, ap);
    va_end(ap);
}

void *xmalloc_at(size_t n_bytes, const char *file, int line)
{
    void *p = malloc(n_bytes ? n_bytes : 1);
    if (!p)
        die(EXIT_FAILURE_RUN, "%s:%d: out of memory allocating %zu bytes", file, line, n_bytes);
    return p;
}

void *xcalloc_at(size_t n_elems, size_t elem_size, const char *file, int line)
{
    void *p = calloc(n_elems ? n_elems : 1, elem_size ? elem_size : 1);
    if (!p)
        die(EXIT_FAILURE_RUN, "%s:%d: out of memory allocating %zu x %zu bytes", file, line,
            n_elems, elem_size);
    return p;
}

char *xstrdup_at(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}

double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
