/* log.h: error reporting and rank-0 output.
 *
 * Library code reports a failure through an errbuf and returns -1, so that a
 * caller (or a test) decides what happens next; the command line ends the
 * job with die(), which prints one line "shardtune: error: <where>: <what>"
 * and takes every rank down. */
#ifndef SHARDTUNE_LOG_H
#define SHARDTUNE_LOG_H

#include <stddef.h>

enum { EXIT_FAILURE_RUN = 1, EXIT_USAGE = 2 };

typedef struct errbuf {
    char msg[1024];
} errbuf;

/* Formats the message into e (if e is not NULL) and returns -1. */
int err_set(errbuf *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies in to out (cap bytes, cap >= 5; cut to fit) with every control
 * character written as Python's repr writes it (\n, \t, \r, \xNN): for an
 * error or note that quotes untrusted text (a config value, a token), which
 * must stay one line. */
void escape_controls(const char *in, char *out, size_t cap);

/* Prints "shardtune: error: <message>" and ends the whole job with status.
 * Under MPI with more than one rank, MPI_Abort brings the other ranks down. */
#ifdef __cplusplus
#define SHARDTUNE_NORETURN [[noreturn]] /* the CUDA files are C++ */
#else
#define SHARDTUNE_NORETURN _Noreturn
#endif
SHARDTUNE_NORETURN void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rank and world size, set once MPI is up; before that rank 0 of 1. */
void log_set_rank(int rank, int size);
int log_rank(void);

/* Prints a line on rank 0 only (stdout; stderr after log_info_to_stderr). */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* --json: stdout carries the one JSON object alone (log_result), so a
 * script can parse it whatever the run reported on the way. */
void log_info_to_stderr(void);
/* A live line on rank 0's stderr (a terminal), redrawn in place by each
 * call; other output is printed above it.  log_live_end leaves it as the
 * last state and goes to the next line. */
void log_live(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_live_end(void);

/* Prints a line on rank 0 only, always on stdout: a command's result. */
void log_result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds on the monotonic clock: for timing steps, collectives and ops. */
double monotonic_seconds(void);

/* Allocation that cannot fail silently: dies naming the call site. */
void *xmalloc_at(size_t n_bytes, const char *file, int line);
void *xcalloc_at(size_t n_elems, size_t elem_size, const char *file, int line);
char *xstrdup_at(const char *s, const char *file, int line);
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, s) xcalloc_at((n), (s), __FILE__, __LINE__)
#define xstrdup(s) xstrdup_at((s), __FILE__, __LINE__)

#endif
