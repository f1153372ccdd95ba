/* fuzz_peft_config.c: libFuzzer target for a PEFT adapter's
 * adapter_config.json (io/peft_adapter.c, peft_adapter_read_config), and
 * for the resolution of its rules against a model (src/lora.c: target and
 * exclude names or regexes, layers, rank and alpha patterns,
 * modules_to_save), which is what makes the config mean something.
 *
 * Each input is written as adapter_config.json in a private directory and
 * read; an accepted config is resolved for a 4-layer model.  The sanitizers
 * and libFuzzer's limits catch crashes, undefined behaviour, hangs and
 * unbounded memory; the target checks that every refusal is one non-empty
 * line, that an accepted config has r > 0 and its rules, and that its
 * resolution gives no module r < 0 nor one outside its mask. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_file.h"
#include "lora.h"
#include "peft_adapter.h"

enum { N_LAYERS = 4 };

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_peft_config: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write("adapter_config.json", data, size);
    lora_config lc;
    errbuf e = {{0}};
    if (peft_adapter_read_config(fuzz_dir(), &lc, &e) != 0) {
        fuzz_check_error("fuzz_peft_config", "peft_adapter_read_config", &e);
        return 0;
    }
    check(lc.r > 0 && lc.rules && lc.rules->source && lc.save_source, "an accepted config has no r or rules");
    lora_module mods[N_LAYERS * N_LINEARS];
    unsigned mask = 0, save = 0;
    if (lora_resolve(&lc, N_LAYERS, mods, &mask, &e) != 0) {
        fuzz_check_error("fuzz_peft_config", "lora_resolve", &e);
    } else {
        for (int i = 0; i < N_LAYERS * N_LINEARS; i++)
            check(mods[i].r >= 0 && (!mods[i].r || (mask >> (i % N_LINEARS) & 1u)),
                  "a resolved module has r < 0 or is outside the mask");
    }
    if (lora_resolve_saved(&lc, N_LAYERS, &save, &e) != 0)
        fuzz_check_error("fuzz_peft_config", "lora_resolve_saved", &e);
    else
        check((save & ~(unsigned)(LORA_SAVE_EMBED | LORA_SAVE_LM_HEAD)) == 0, "modules_to_save beyond embed, lm_head");
    lora_config_free(&lc);
    return 0;
}
