/* report_to.c: --report_to (see report_to.h). */
#include "report_to.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* transformers' INTEGRATION_TO_CALLBACK keys, less tensorboard: the
 * services a Hugging Face command line may name. */
static const char *const remote[] = {"azure_ml", "comet_ml", "mlflow",  "neptune",  "trackio", "wandb",   "codecarbon",
                                     "clearml",  "dagshub",  "flyte",   "dvclive",  "swanlab", "kubeflow"};

static int is_remote(const char *name)
{
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
        if (!strcmp(name, remote[i]))
            return 1;
    return 0;
}

int report_to_parse(const char *list, int *tensorboard, char *others, size_t others_size, errbuf *e)
{
    *tensorboard = 0;
    if (others_size)
        others[0] = '\0';
    char *copy = xstrdup(list);
    int n = 0, none = 0, rc = 0;
    /* strtok_r would skip empty entries; strsep keeps them, to refuse "a,,b" */
    for (char *p = copy, *name; rc == 0 && (name = strsep(&p, ",")) != NULL; n++) {
        if (!strcmp(name, "none"))
            none = 1;
        else if (!strcmp(name, "tensorboard") || !strcmp(name, "all"))
            *tensorboard = 1;
        else if (is_remote(name)) {
            size_t used = strlen(others);
            if (used + strlen(name) + 2 < others_size)
                snprintf(others + used, others_size - used, "%s%s", used ? "," : "", name);
        } else if (!*name)
            rc = err_set(e, "--report_to '%s': an empty entry", list);
        else {
            char known[512] = "none, all, tensorboard";
            for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
                snprintf(known + strlen(known), sizeof known - strlen(known), ", %s", remote[i]);
            rc = err_set(e, "--report_to: '%s' is not one of %s", name, known);
        }
    }
    if (rc == 0 && none && n > 1)
        rc = err_set(e, "--report_to '%s': none goes alone", list);
    free(copy);
    return rc;
}
