/* fuzz_accel_yaml.c: libFuzzer target for accelerate's config file
 * (accel_config_load_yaml, src/accel_config.c), the YAML a user passes with
 * --config_file or copies from someone else's job.
 *
 * Each input is written as the file and loaded over the defaults.  Besides
 * what the sanitizers and libFuzzer's limits catch, it checks the promises
 * of accel_config.h: a refusal is one non-empty line and leaves the config
 * untouched; a load gives a config whose every field is in its range
 * (accel_check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accel_check.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("accelerate.yaml", data, size);
    accel_config c, before;
    accel_config_defaults(&c);
    before = c;
    errbuf e = {{0}};
    if (accel_config_load_yaml(path, &c, &e) != 0) {
        fuzz_check_error("fuzz_accel_yaml", "accel_config_load_yaml", &e);
        if (memcmp(&c, &before, sizeof c) != 0)
            abort(); /* "Fails (c untouched)" */
        return 0;
    }
    accel_check(&c, "fuzz_accel_yaml");
    return 0;
}
