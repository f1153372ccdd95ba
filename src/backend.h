/* backend.h: the compute interface.  Model code calls only this; the CPU
 * backend (backend_cpu.c, fp32, oneDNN, OpenMP) is the reference and every
 * other backend is tested against it op by op.
 *
 * Conventions: tensors are row-major fp32 device pointers.  N is the number
 * of token positions (batch x sequence), D a row width.  "_bwd" ops
 * accumulate into nothing unless they say so: they overwrite their outputs.
 * Every allocation names a memory category so that current and peak bytes
 * per category are known on every rank. */
#ifndef SHARDTUNE_BACKEND_H
#define SHARDTUNE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

typedef enum mem_category {
    MEM_FROZEN,      /* base weights */
    MEM_TRAINABLE,   /* adapter parameters */
    MEM_GRADS,       /* adapter gradients */
    MEM_OPTIMIZER,   /* AdamW moments */
    MEM_ACTIVATIONS, /* saved activations and scratch of forward/backward */
    MEM_GATHERED,    /* gathered (unsharded) unit buffers */
    MEM_COMM,        /* communication buffers */
    MEM_N_CATEGORIES
} mem_category;

extern const char *const mem_category_names[MEM_N_CATEGORIES];

typedef struct backend backend;

struct backend {
    const char *name;
    size_t cur_bytes[MEM_N_CATEGORIES];       /* device memory */
    size_t peak_bytes[MEM_N_CATEGORIES];
    size_t peak_total_bytes;
    /* Device memory the backend's own allocator held at most (size classes,
     * cached blocks); 0 where that is peak_total_bytes itself (CPU). */
    size_t allocator_peak_bytes;
    size_t host_cur_bytes[MEM_N_CATEGORIES];  /* offloaded to host memory */
    size_t host_peak_bytes[MEM_N_CATEGORIES];
    /* How the model keeps each layer's input (the residual stream, which
     * checkpointing saves for every layer): DT_F32, or DT_BF16 where the
     * backend computes in bf16, which halves that memory.  The model widens
     * a layer's input to fp32 to compute with it. */
    storage_dtype activation_dtype;
    /* How a gathered unit keeps the decoder layers' linear weights (the
     * frozen W of x W^T): DT_F32, or DT_BF16 where every product rounds its
     * inputs to bf16 anyway (the CPU backend's bf16 mode): rounded once per
     * gather rather than once per product, in half the memory.  Norms,
     * embeddings and lm_head stay fp32. */
    storage_dtype weight_dtype;
    void *impl;

    /* ---- memory ---- */
    void *(*alloc)(backend *be, size_t n_bytes, mem_category cat); /* zeroed */
    /* Host memory the device can reach (pinned, for CUDA): where
     * fsdp_offload_params keeps shards and the optimizer.  The CPU backend
     * has only host memory; it accounts these bytes apart all the same. */
    void *(*alloc_host)(backend *be, size_t n_bytes, mem_category cat);
    void (*free)(backend *be, void *p); /* either kind */
    void (*zero)(backend *be, void *p, size_t n_bytes);
    void (*copy_to_device)(backend *be, void *dst, const void *host_src, size_t n_bytes);
    void (*copy_to_host)(backend *be, void *host_dst, const void *src, size_t n_bytes);
    void (*copy)(backend *be, void *dst, const void *src, size_t n_bytes);
    void (*synchronize)(backend *be);

    /* ---- linear algebra ----
     * C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major;
     * op(X) = X or X^T as trans_x says; lda/ldb/ldc are row strides. */
    void (*matmul)(backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

    /* Where weight_dtype is DT_BF16 (NULL elsewhere): C = [A | A2] op(W) +
     * beta C for a frozen weight W kept as bf16 (row stride ldw; op(W) =
     * W^T with trans_w), A [m, k] and A2 [m, k2] side by side (k2 0: A
     * alone; else op(W) has k + k2 rows: an adapter's share beside the
     * weight, see lora_fuse_bf16). */
    void (*matmul_bf16_weight)(backend *be, int trans_w, int m, int n, int k, const float *a, int lda, int k2,
                               const float *a2, int lda2, const uint16_t *w, int ldw, float beta, float *c, int ldc);
    /* Writes LoRA's s B [out, r] and A [r, in] (either may be NULL: not
     * written), rounded to bf16, beside the bf16 weight W [out, in] of a
     * buffer [out + r, in + r] (row stride ldw): s B as the last r columns
     * of W's rows, A as the last r rows.  Then [x | xa] [W | s B]^T =
     * x W^T + s xa B^T and [dy | dxa] [W ; A] = dy W + dxa A are one
     * product each. */
    void (*lora_fuse_bf16)(backend *be, uint16_t *w, int ldw, int out, int in, int r, const float *a,
                           const float *b, float scale);

    /* ---- elementwise and reductions over flat ranges ---- */
    /* out = fp32 of n_elems stored values (frozen weights as gathered) */
    void (*to_f32)(backend *be, float *out, const void *in, storage_dtype dt, size_t n_elems);
    /* out = n_elems values of in stored as dt, rounding to nearest even (the
     * inverse of to_f32; F32 and BF16 on every backend) */
    void (*from_f32)(backend *be, void *out, const float *in, storage_dtype dt, size_t n_elems);
    /* out (row stride ld_out) = rows x cols stored values (packed) rounded
     * to bf16 as from_f32 rounds (frozen weights as gathered, where
     * weight_dtype is DT_BF16; NULL elsewhere) */
    void (*to_bf16)(backend *be, uint16_t *out, size_t ld_out, const void *in, storage_dtype dt, size_t rows,
                    size_t cols);
    void (*add)(backend *be, float *y, const float *x, size_t n_elems);        /* y += x */
    void (*scale)(backend *be, float *x, size_t n_elems, float s);             /* x *= s */
    double (*sum_squares)(backend *be, const float *x, size_t n_elems);

    /* ---- model ops ---- */
    /* out[i,:] = table[ids[i],:] */
    void (*embedding_fwd)(backend *be, float *out, const int32_t *ids, const float *table, int n,
                          int dim);
    /* out = w * x / sqrt(mean(x^2) + eps); rstd[i] saved for backward. */
    void (*rmsnorm_fwd)(backend *be, float *out, float *rstd, const float *x, const float *w, int n,
                        int dim, float eps);
    /* dx += d(out)/dx applied to dout (accumulates: dx usually holds the
     * residual gradient already).  The weight is frozen: no dw. */
    void (*rmsnorm_bwd)(backend *be, float *dx, const float *dout, const float *x, const float *w,
                        const float *rstd, int n, int dim);
    /* Rotate-half RoPE in place on x[n, n_heads, head_dim] at positions pos[n];
     * inv_freq has head_dim/2 entries.  inverse=1 applies the transpose
     * (the backward of the rotation). */
    void (*rope)(backend *be, float *x, const int32_t *pos, const float *inv_freq, int n,
                 int n_heads, int head_dim, int inverse);
    /* Causal attention with grouped-query heads over batch x seq positions.
     * q [B,T,Hq,hd], k/v [B,T,Hkv,hd], out [B,T,Hq,hd], lse [B,Hq,T].
     * seg (nullable, [B,T]): a key is visible only within the same segment,
     * a run of equal ids (the documents of a packed row, then padding). */
    void (*attention_fwd)(backend *be, float *out, float *lse, const float *q, const float *k,
                          const float *v, const int32_t *seg, int batch, int seq, int n_heads,
                          int n_kv_heads, int head_dim);
    /* Overwrites dq, dk, dv. */
    void (*attention_bwd)(backend *be, float *dq, float *dk, float *dv, const float *dout,
                          const float *out, const float *lse, const float *q, const float *k,
                          const float *v, const int32_t *seg, int batch, int seq, int n_heads,
                          int n_kv_heads, int head_dim);
    /* Attention of n_q new queries (absolute positions q_pos0 ..) over a
     * key/value cache of n_kv rows [n_kv, Hkv, hd] (generation). */
    void (*attention_decode)(backend *be, float *out, const float *q, const float *k_cache, const float *v_cache,
                             int n_q, int q_pos0, int n_kv, int n_heads, int n_kv_heads, int head_dim);
    /* out = silu(gate) * up */
    void (*swiglu_fwd)(backend *be, float *out, const float *gate, const float *up, size_t n_elems);
    void (*swiglu_bwd)(backend *be, float *dgate, float *dup, const float *dout, const float *gate,
                       const float *up, size_t n_elems);
    /* LoRA dropout: out = x * keep / (1-p), keep from rng_hash(key, index) so
     * that the same key regenerates the same mask in backward. */
    void (*dropout)(backend *be, float *out, const float *x, size_t n_elems, float p, uint64_t key);
    /* Fused lm_head + cross-entropy, chunk by chunk over rows so the full
     * logits tensor need not exist: returns the sum of -log p(target) over
     * rows whose target != -100.  When dh is not NULL it is overwritten with
     * grad_scale * d(sum)/dh.  When logits is not NULL the logits [n, vocab]
     * are written there too (evaluation and tests). */
    double (*lm_head_xent)(backend *be, float *dh, float *logits, const float *h, const float *w,
                           const int32_t *targets, int n, int dim, int vocab, float grad_scale);
    /* PEFT's modules_to_save (model.c), NULL on a backend that cannot train
     * whole modules yet.  lm_head_xent_dw: lm_head_xent that also
     * ACCUMULATES dw [vocab, dim] += grad_scale * d(sum)/dw.  embedding_bwd:
     * dtable[ids[i],:] += dout[i,:] in position order, except rows of
     * padding_idx (-1: none), whose gradient torch's nn.Embedding leaves 0. */
    double (*lm_head_xent_dw)(backend *be, float *dh, float *dw, float *logits, const float *h, const float *w,
                              const int32_t *targets, int n, int dim, int vocab, float grad_scale);
    void (*embedding_bwd)(backend *be, float *dtable, const int32_t *ids, const float *dout, int n, int dim,
                          int padding_idx);
    /* DoRA (model.c).  dora_norm: norm[i] = ||w[i,:]||_2 over the rows of w
     * [rows, cols] and, when g is not NULL, g[i] = m[i] / norm[i] (the
     * magnitude over the norm).  scale_cols: y (= or += as accumulate)
     * (g[j] + g_offset) * x[i,j] for x, y [n, d] (y may be x).  col_dot:
     * out[j] += (sum_i a[i,j] * b[i,j]) / div[j] (the gradient of m). */
    void (*dora_norm)(backend *be, float *norm, float *g, const float *m, const float *w, int rows, int cols);
    void (*scale_cols)(backend *be, float *y, const float *x, const float *g, float g_offset, int n, int d,
                       int accumulate);
    void (*col_dot)(backend *be, float *out, const float *a, const float *b, const float *div, int n, int d);
    /* AdamW (PyTorch semantics) on a flat range, step counted from 1. */
    void (*adamw)(backend *be, float *param, const float *grad, float *m, float *v, size_t n_elems,
                  float lr, float beta1, float beta2, float eps, float weight_decay, int step);

    void (*destroy)(backend *be);
};

/* Accounting shared by all backends (backend.c). */
void backend_account_alloc(backend *be, size_t n_bytes, mem_category cat, int on_host);
void backend_account_free(backend *be, size_t n_bytes, mem_category cat, int on_host);

/* bf16: the CUDA backend's bf16 semantics (see backend_cpu.c); only where
 * backend_cpu_bf16_usable says so, which otherwise points *why_not at the
 * reason (no bf16 instructions, or SHARDTUNE_CPU_BF16=0). */
backend *backend_cpu_create(int n_threads, int bf16);
int backend_cpu_bf16_usable(const char **why_not);
/* Computes nothing, counts allocations: for `shardtune plan`.  _cuda: the
 * CUDA backend's layout (backend_cuda_create with the same bf16): its
 * activation_dtype and the scratch its ops keep (see backend_null.c). */
backend *backend_null_create(void);
backend *backend_null_create_cuda(int bf16);
/* The CPU backend's layout in its bf16 mode (backend_cpu_create with bf16):
 * bf16 residual stream and linear weights. */
backend *backend_null_create_cpu_bf16(void);
/* 1 when p is a live device allocation of the counting backend be, 0 for
 * its host allocations and any other memory (staging, as NCCL decides it). */
int backend_null_on_device(backend *be, const void *p);

/* Times every op of inner, waiting for each (SHARDTUNE_PROFILE=1; see
 * backend_profile.c).  The wrapper owns inner. */
backend *backend_profile_wrap(backend *inner);
/* Prints calls, seconds and share per op on rank 0; nothing when be is not
 * a profiling wrapper. */
void backend_profile_report(backend *be);

#endif
