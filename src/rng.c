/* rng.c: splitmix64 streams (see rng.h). */
#include "rng.h"

static const uint64_t GOLDEN = 0x9E3779B97F4A7C15ull;
static const uint64_t STREAM_MIX = 0xD6E8FEB86659FD93ull;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_init(rng *r, uint64_t seed, uint64_t stream) { r->state = seed ^ ((stream + 1) * STREAM_MIX); }

uint64_t rng_next_u64(rng *r)
{
    r->state += GOLDEN;
    return mix64(r->state);
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

uint64_t rng_hash(uint64_t key, uint64_t counter) { return mix64(mix64(key + GOLDEN) ^ (counter * GOLDEN)); }
