/* dir_make.c: mkdir -p (see dir_make.h). */
#include "dir_make.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int dir_make(const char *dir, errbuf *e)
{
    char *p = xstrdup(dir);
    size_t len = strlen(p);
    int rc = 0;
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = err_set(e, "%s: cannot create directory: %s", p, strerror(errno));
        p[i] = saved;
    }
    free(p);
    struct stat sb;
    if (rc == 0 && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        rc = err_set(e, "%s: output path exists and is not a directory", dir);
    return rc;
}
