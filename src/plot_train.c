/* plot_train.c: train's loss plots (plot_train.h). */
#include "plot_train.h"

#include <stdio.h>
#include <string.h>

#include "plot_cmd.h"
#include "plot_data.h"
#include "plot_draw.h"

int plot_train_args(const run_config *c, int world, errbuf *e)
{
    plot_args a = {.have = 1, .learning_rate = c->learning_rate, .lora_alpha = c->lora_alpha, .lora_r = c->lora_r,
                   .batch_size = c->per_device_train_batch_size, .grad_accum = c->gradient_accumulation_steps,
                   .world_size = world, .max_seq_len = c->max_seq_len, .use_dora = c->use_dora,
                   .use_4bit = c->use_4bit_quantization};
    /* the model's name is its directory's: trailing slashes dropped */
    char model[sizeof a.model];
    snprintf(model, sizeof model, "%s", c->model_name_or_path);
    for (size_t n = strlen(model); n > 1 && model[n - 1] == '/'; n--)
        model[n - 1] = '\0';
    const char *base = strrchr(model, '/');
    snprintf(a.model, sizeof a.model, "%s", base ? base + 1 : model);
    snprintf(a.scheduler, sizeof a.scheduler, "%s", c->lr_scheduler_type);
    return plot_args_write(c->output_dir, &a, e);
}

void plot_train_draw(const char *output_dir, int final)
{
    if (!plot_available()) {
        if (final)
            log_info("note: plots need cairo (libcairo2-dev): none written");
        return;
    }
    errbuf e;
    if (plot_write_dir(output_dir, &e) != 0)
        log_info("note: no loss plot: %s", e.msg);
    else if (final)
        log_info("loss plot: %s/loss.png and %s/loss.svg", output_dir, output_dir);
}
