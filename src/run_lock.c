/* run_lock.c: the output directory's lock (see run_lock.h). */
#include "run_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct owner {
    long pid;
    char host[256];
    char since[64];
} owner;

/* The owner written in the file; pid 0 when it holds none. */
static owner read_owner(int fd)
{
    owner o = {0, "", ""};
    char buf[512];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return o;
    buf[n] = '\0';
    if (sscanf(buf, "pid %ld host %255s since %63s", &o.pid, o.host, o.since) < 2)
        o.pid = 0;
    return o;
}

static void write_owner(int fd)
{
    char host[256] = "?", since[64];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%S", localtime(&now));
    char text[600];
    int n = snprintf(text, sizeof text, "pid %ld host %s since %s\n", (long)getpid(), host, since);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)n, 0) == n)
        fsync(fd);
}

/* Removes the checkpoint-*.h5.tmp files a dead run left in DIR (it died
 * during a save; a live run never meets them, it holds the lock).
 * Returns how many. */
static int clear_unfinished(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *ent;
    char path[4400];
    while ((ent = readdir(d))) {
        size_t len = strlen(ent->d_name);
        if (strncmp(ent->d_name, "checkpoint-", 11) != 0 || len < 8 || strcmp(ent->d_name + len - 7, ".h5.tmp") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        n += remove(path) == 0;
    }
    closedir(d);
    return n;
}

/* Without flock: is the owner alive?  Known only on its own host. */
static int owner_alive(const owner *o, int *checkable)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    *checkable = strcmp(o->host, host) == 0;
    return !*checkable || kill((pid_t)o->pid, 0) == 0 || errno != ESRCH;
}

int run_lock_take(run_lock *l, const char *dir, errbuf *e)
{
    l->fd = -1;
    snprintf(l->path, sizeof l->path, "%s/shardtune.lock", dir);
    for (;;) {
        int fd = open(l->path, O_RDWR | O_CREAT, 0644);
        if (fd < 0)
            return err_set(e, "%s: cannot create the run's lock: %s", l->path, strerror(errno));
        int have_flock = 1;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK) {
                owner o = read_owner(fd);
                close(fd);
                return err_set(e, "%s: another run (pid %ld on %s, since %s) is training into this --output_dir: "
                                  "wait for it to end, or give another --output_dir",
                               l->path, o.pid, *o.host ? o.host : "?", *o.since ? o.since : "?");
            }
            have_flock = 0; /* ENOLCK, EOPNOTSUPP: the file system has none */
        }
        /* the file may have been removed and made anew while we waited:
         * the lock must be on the file that has the name */
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(l->path, &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev) {
            owner o = read_owner(fd);
            if (o.pid) {
                int checkable = 1;
                if (!have_flock && owner_alive(&o, &checkable)) {
                    close(fd);
                    return err_set(e, "%s: held by pid %ld on %s (since %s)%s: if no run is training there, remove "
                                      "the file", l->path, o.pid, o.host, o.since,
                                   checkable ? ", which is running" : ", not checkable from this host");
                }
                int n = clear_unfinished(dir);
                log_info("%s: stale lock of pid %ld on %s (since %s), whose run is gone: cleared%s", l->path, o.pid,
                         o.host, o.since, n ? ", with the unfinished checkpoint .tmp file(s) it left" : "");
            }
            write_owner(fd);
            l->fd = fd;
            return 0;
        }
        close(fd);
    }
}

void run_lock_release(run_lock *l)
{
    if (l->fd < 0)
        return;
    unlink(l->path); /* first: a run waiting for the flock then finds no file of that name, and retries */
    close(l->fd);
    l->fd = -1;
}
