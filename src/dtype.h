/* dtype.h: storage formats of frozen weights and their conversion to fp32.
 * Frozen weights stay in the format the model file has (f32, bf16, f16; NF4
 * later) inside the flat FSDP buffers and become fp32 only when a unit is
 * gathered for compute on the CPU backend. */
#ifndef SHARDTUNE_DTYPE_H
#define SHARDTUNE_DTYPE_H

#include <stddef.h>

typedef enum storage_dtype { DT_F32, DT_BF16, DT_F16, DT_N_STORAGE } storage_dtype;

size_t storage_dtype_size(storage_dtype d);
const char *storage_dtype_name(storage_dtype d);
/* n_elems little-endian values at `in` (any alignment) to fp32, exactly. */
void storage_to_f32(storage_dtype d, const void *in, float *out, size_t n_elems);

#endif
