/* cpu_vec.h: the CPU backend's elementwise loops that cost the most after
 * the matrix products (cpu_vec.c): the exponentials of the softmaxes
 * (cross-entropy, attention) and of SwiGLU's sigmoid, and the masked
 * softmax rows of attention.  libm's expf is a
 * call per element that no compiler vectorises; these use one polynomial
 * exp (Cephes' expf: about 1 ulp, 0 below e^-87, NaN kept) that does. */
#ifndef SHARDTUNE_CPU_VEC_H
#define SHARDTUNE_CPU_VEC_H

#include <stddef.h>

/* y[i] = exp(x[i] - shift) (y may be x); returns the sum of the y[i]. */
float vec_exp_shifted(float *y, const float *x, float shift, size_t n_elems);
/* The sum of exp(x[i] - shift), nothing stored. */
float vec_exp_shifted_sum(const float *x, float shift, size_t n_elems);
/* The softmax of x[lo, hi) in place, x[0, lo) and x[hi, n) set to 0 (the
 * keys a query does not see); returns the log-sum-exp of x[lo, hi). */
float vec_softmax_range(float *x, size_t lo, size_t hi, size_t n_elems);
/* Softmax backward from the scores: over [lo, hi), p = exp(s - lse) into
 * s and p (dp - d) into dp; both 0 outside. */
void vec_softmax_grad_range(float *s, float *dp, float lse, float d, size_t lo, size_t hi, size_t n_elems);
/* out = silu(gate) * up */
void vec_swiglu_fwd(float *out, const float *gate, const float *up, size_t n_elems);
/* dup = dout * silu(gate), dgate = dout * up * s * (1 + gate * (1 - s)), s = sigmoid(gate) */
void vec_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n_elems);

#endif
