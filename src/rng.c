/* rng.c: splitmix64 streams (see rng.h). */
#include "rng.h"

static const uint64_t STREAM_MIX = 0xD6E8FEB86659FD93ull;

void rng_init(rng *r, uint64_t seed, uint64_t stream) { r->state = seed ^ ((stream + 1) * STREAM_MIX); }

uint64_t rng_next_u64(rng *r)
{
    r->state += RNG_GOLDEN;
    return rng_mix64(r->state);
}

float rng_next_uniform(rng *r) { return (float)(rng_next_u64(r) >> 40) * (1.0f / 16777216.0f); }

void rng_permutation(rng *r, size_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next_u64(r) % (uint64_t)i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
