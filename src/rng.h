/* rng.h: the one random number generator of shardtune (splitmix64).
 *
 * Counter-friendly and trivially reimplemented in Python, so a reference
 * script can reproduce our data order and our LoRA initialisation. */
#ifndef SHARDTUNE_RNG_H
#define SHARDTUNE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rng {
    uint64_t state;
} rng;

/* A stream: seed mixed with a stream number, so that different purposes
 * (data order of epoch e, LoRA init, dropout) never share numbers. */
void rng_init(rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next_u64(rng *r);
/* Uniform in [0, 1) with 24 random bits (exact in float). */
float rng_next_uniform(rng *r);
/* Fisher-Yates: perm becomes a permutation of 0..n-1. */
void rng_permutation(rng *r, size_t *perm, size_t n);
/* The hash below is also compiled into GPU kernels (cuda/): one definition
 * for every backend, so their dropout masks are the same bits. */
#ifdef __CUDACC__
#define RNG_HOST_DEVICE __host__ __device__
#else
#define RNG_HOST_DEVICE
#endif

#define RNG_GOLDEN 0x9E3779B97F4A7C15ull

/* splitmix64's finaliser */
static inline RNG_HOST_DEVICE uint64_t rng_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Stateless hash of (key, counter): used for dropout masks so that a mask
 * can be regenerated in backward or under recomputation. */
static inline RNG_HOST_DEVICE uint64_t rng_hash(uint64_t key, uint64_t counter)
{
    return rng_mix64(rng_mix64(key + RNG_GOLDEN) ^ (counter * RNG_GOLDEN));
}

#endif
