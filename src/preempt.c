/* preempt.c: signals as a flag, agreed on at step boundaries; the job's
 * time limit as a stop before it (see preempt.h). */
#include "preempt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const int watched[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
#define N_WATCHED ((int)(sizeof watched / sizeof watched[0]))

/* What the handlers write, and nothing else: the only state a signal
 * handler may touch (async-signal-safe).  Process-wide because signals
 * are; one training loop runs per process. */
static volatile sig_atomic_t first_signal, seen[N_WATCHED];
static struct sigaction saved[N_WATCHED];

static void on_signal(int sig)
{
    for (int i = 0; i < N_WATCHED; i++)
        if (watched[i] == sig) {
            if (sig == SIGINT && seen[i]) { /* Ctrl-C twice: stop now */
                signal(SIGINT, SIG_DFL);
                raise(SIGINT);
            }
            seen[i] = 1;
        }
    if (!first_signal)
        first_signal = sig;
}

static const char *signal_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGUSR1 ? "SIGUSR1"
         : sig == SIGUSR2 ? "SIGUSR2" : "a signal";
}

/* SHARDTUNE_JOB_END_TIME (seconds since the epoch: set by a batch script,
 * e.g. the PBS one from PBS_WALLTIME), else SLURM_JOB_END_TIME (newer Slurm
 * sets it), else squeue's expected end of SLURM_JOB_ID.  A job without a
 * time limit has none (Slurm then shows Unknown, or a year ahead). */
time_t preempt_job_end_time(errbuf *e)
{
    const char *env = getenv("SHARDTUNE_JOB_END_TIME");
    if (!env || !*env)
        env = getenv("SLURM_JOB_END_TIME");
    char text[64] = "";
    if (env && *env) {
        snprintf(text, sizeof text, "%s", env);
    } else {
        const char *job = getenv("SLURM_JOB_ID");
        if (!job || !*job || strspn(job, "0123456789") != strlen(job))
            return 0;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "SLURM_TIME_FORMAT=%%s squeue -h -j %s -o %%e 2>/dev/null", job);
        FILE *p = popen(cmd, "r");
        if (!p)
            return err_set(e, "squeue: cannot run: %s", strerror(errno)), (time_t)0;
        if (!fgets(text, sizeof text, p))
            text[0] = '\0';
        pclose(p);
    }
    char *end = NULL;
    long long t = strtoll(text, &end, 10);
    while (end && (*end == '\n' || *end == ' '))
        end++;
    time_t now = time(NULL);
    if (end == text || *end || t <= 0 || t > (long long)now + 300LL * 86400)
        return 0;
    return (time_t)t;
}

int preempt_begin(preempt_watch *w, const run_config *c, int rank, errbuf *e)
{
    memset(w, 0, sizeof *w);
    first_signal = 0;
    for (int i = 0; i < N_WATCHED; i++) {
        seen[i] = 0;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART; /* an interrupted read or MPI wait carries on */
        sigaction(watched[i], &sa, &saved[i]);
    }
    w->installed = 1;
    w->last_boundary = monotonic_seconds();
    const char *mode = c->save_before_time_limit;
    if (rank != 0 || !strcasecmp(mode, "false"))
        return 0;
    errbuf why = {""};
    w->end_time = preempt_job_end_time(&why);
    if (!strcasecmp(mode, "true") && !w->end_time)
        return err_set(e, "--save_before_time_limit True: no job end time is known (%s)",
                       *why.msg ? why.msg : "no SHARDTUNE_JOB_END_TIME or SLURM_JOB_END_TIME, and no Slurm job with a time limit");
    if (w->end_time) {
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&w->end_time));
        log_info("time limit: the job ends at %s; a checkpoint is written and the run stops (exit status %d) "
                 "before a step that would not end in time", when, EXIT_PREEMPTED);
    }
    return 0;
}

int preempt_check(preempt_watch *w, comm *cm, int rank)
{
    double now = monotonic_seconds();
    if (now - w->last_boundary > w->longest_step)
        w->longest_step = now - w->last_boundary;
    w->last_boundary = now;
    /* [0]: ranks that got a signal; [1 + i]: ranks that got watched[i]; last: the time limit */
    double votes[PREEMPT_AGREE_ELEMS] = {0};
    for (int i = 0; i < N_WATCHED; i++) {
        votes[1 + i] = seen[i];
        if (seen[i])
            votes[0] = 1;
    }
    /* one more step and a save (as long as a step, at most: LoRA state is
     * small) and the margin must fit before the end */
    double needed = 2.0 * w->longest_step + PREEMPT_MARGIN_SECONDS;
    double left = w->end_time ? difftime(w->end_time, time(NULL)) : 0.0;
    if (rank == 0 && w->end_time && left < needed)
        votes[1 + N_WATCHED] = 1;
    if (cm->size[COMM_WORLD] > 1)
        cm->all_reduce(cm, COMM_WORLD, votes, PREEMPT_AGREE_ELEMS, COMM_F64, 0);
    if (votes[0] > 0) {
        /* name this rank's signal when it got one, else the first watched one that arrived anywhere */
        int sig = first_signal;
        for (int i = 0; i < N_WATCHED && !sig; i++)
            if (votes[1 + i] > 0)
                sig = watched[i];
        snprintf(w->reason, sizeof w->reason, "%s reached %.0f of %d rank(s)", signal_name(sig), votes[0],
                 cm->size[COMM_WORLD]);
        return 1;
    }
    if (votes[1 + N_WATCHED] > 0) {
        snprintf(w->reason, sizeof w->reason,
                 "the job's time limit is %.0f s away, less than a step and a checkpoint need "
                 "(2 x %.1f s, the longest step so far, + %.0f s)",
                 left, w->longest_step, PREEMPT_MARGIN_SECONDS);
        return 1;
    }
    return 0;
}

void preempt_end(preempt_watch *w)
{
    if (!w->installed)
        return;
    for (int i = 0; i < N_WATCHED; i++)
        sigaction(watched[i], &saved[i], NULL);
    w->installed = 0;
}
