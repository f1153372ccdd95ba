/* checksum.h: position-aware checksums that ranks compute on their own
 * pieces and add up: sum over i of rng_hash(key ^ word_i, i) (mod 2^64).
 * The total does not depend on how the data is split between ranks, so a
 * checkpoint written by 4 ranks verifies when read by 3, and it changes
 * when any word changes or moves. */
#ifndef SHARDTUNE_CHECKSUM_H
#define SHARDTUNE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* n_elems 4-byte values whose first has index first_index. */
uint64_t checksum_f32(uint64_t key, size_t first_index, const float *v, size_t n_elems);
/* n_bytes bytes starting at byte offset `offset` (a multiple of 8) of a
 * buffer, as 8-byte words; a short last word counts as zero-filled. */
uint64_t checksum_bytes(uint64_t key, size_t offset, const void *data, size_t n_bytes);
/* FNV-1a 64, continued from h (start with CHECKSUM_FNV1A_BASIS): the
 * order-sensitive hash of names, flags and configurations. */
#define CHECKSUM_FNV1A_BASIS 0xcbf29ce484222325ull
uint64_t checksum_fnv1a(uint64_t h, const void *data, size_t n_bytes);
/* FNV-1a of a string (keys for names). */
uint64_t checksum_name(const char *s);

#endif
