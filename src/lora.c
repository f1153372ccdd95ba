/* lora.c: LoRA target names and scale (see lora.h). */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const module_names[N_LINEARS] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"};
static const char *const module_paths[N_LINEARS] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

const char *lora_module_name(linear_id lin) { return module_names[lin]; }
const char *lora_module_path(linear_id lin) { return module_paths[lin]; }

float lora_scale(const lora_config *lc)
{
    return lc->use_rslora ? lc->alpha / sqrtf((float)lc->r) : lc->alpha / (float)lc->r;
}

int lora_parse_targets(const char *spec, unsigned *mask, errbuf *e)
{
    *mask = 0;
    if (strcmp(spec, "all-linear") == 0) {
        *mask = LORA_ALL_LINEAR;
        return 0;
    }
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        int found = -1;
        for (int i = 0; i < N_LINEARS; i++)
            if (strlen(module_names[i]) == len && strncmp(p, module_names[i], len) == 0)
                found = i;
        if (found < 0)
            return err_set(e, "--lora_target_modules: '%.*s' is not a linear layer of a Llama block "
                              "(use all-linear or q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)",
                           (int)len, p);
        *mask |= 1u << found;
        p = end ? end + 1 : p + len;
    }
    if (!*mask)
        return err_set(e, "--lora_target_modules: no module named");
    return 0;
}

void lora_peft_key(char *buf, size_t n_bytes, int layer, linear_id lin, char a_or_b)
{
    snprintf(buf, n_bytes, "base_model.model.model.layers.%d.%s.lora_%c.weight", layer, module_paths[lin],
             a_or_b);
}
