/* flops.h: the FLOP count behind the progress line's TFLOP/s and MFU.
 *
 * Model FLOPs per trained token are bench/lora_flops.py's count (its
 * docstring derives it): 4 per frozen linear weight (forward and input
 * gradient; lm_head included), 6 per trained parameter, and causal attention
 * 6 * layers * seq * (heads * head_dim).  MFU divides the achieved rate by
 * a measured peak: on the CPU backend, the best of three timed 1024^3 fp32
 * products of its own GEMM path (gemm.h), in its precision, on each rank, all ranks at once
 * (an achievable peak, below the datasheet's); other backends have none yet
 * (MFU not shown). */
#ifndef SHARDTUNE_FLOPS_H
#define SHARDTUNE_FLOPS_H

#include <stddef.h>

#include "hf_config.h"

/* For rows of seq tokens, with n_trainable trained parameters. */
double model_flops_per_token(const llama_config *cfg, double seq, double n_trainable);

/* This rank's best matrix-product rate, FLOP/s (about 0.1 s), in fp32 or
 * (bf16) with inputs rounded to bf16: the backend's own precision. */
double cpu_gemm_peak(int bf16);

#endif
