/* checksum.c: see checksum.h. */
#include "checksum.h"

#include <string.h>

#include "rng.h"

uint64_t checksum_f32(uint64_t key, size_t first_index, const float *v, size_t n_elems)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n_elems; i++) {
        uint32_t w;
        memcpy(&w, &v[i], sizeof w);
        sum += rng_hash(key ^ w, first_index + i);
    }
    return sum;
}

uint64_t checksum_bytes(uint64_t key, size_t offset, const void *data, size_t n_bytes)
{
    const unsigned char *p = data;
    uint64_t sum = 0;
    for (size_t i = 0; i < n_bytes; i += 8) {
        uint64_t w = 0;
        memcpy(&w, p + i, n_bytes - i < 8 ? n_bytes - i : 8);
        sum += rng_hash(key ^ w, (offset + i) / 8);
    }
    return sum;
}

uint64_t checksum_fnv1a(uint64_t h, const void *data, size_t n_bytes)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n_bytes; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

uint64_t checksum_name(const char *s) { return checksum_fnv1a(CHECKSUM_FNV1A_BASIS, s, strlen(s)); }
