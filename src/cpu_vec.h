/* cpu_vec.h: the CPU backend's elementwise loops that cost the most after
 * the matrix products (cpu_vec.c): the exponentials of the softmaxes
 * (cross-entropy, attention) and of SwiGLU's sigmoid, attention's masked
 * softmax rows, RMSNorm's and RoPE's rows.  libm's expf is a call per
 * element that no compiler vectorises; these use one polynomial exp
 * (Cephes' expf: about 1 ulp, 0 below e^-87, NaN kept) that does.  The
 * rest are here to be built for the vector units (target_clones): the
 * project builds at -O2 for any x86-64. */
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
/* RMSNorm of a row: out = w (x r), r = (mean x^2 + eps)^-1/2 returned, the
 * sum of squares in double (accurate at any width). */
float vec_rmsnorm_row(float *out, const float *x, const float *w, float eps, size_t n_elems);
/* Its backward for the row with output gradient g: y = w x r gives
 * dx += r w g - x r^3/n sum(w g x) (the sum in double). */
void vec_rmsnorm_bwd_row(float *dx, const float *g, const float *x, const float *w, float r, size_t n_elems);
/* RoPE of one head's vector (halves rotated as pairs (x[j], x[j+half])) by
 * angles with cosines cs and sines sn. */
void vec_rope_rotate(float *x, const float *cs, const float *sn, size_t half);
/* out = silu(gate) * up */
void vec_swiglu_fwd(float *out, const float *gate, const float *up, size_t n_elems);
/* dup = dout * silu(gate), dgate = dout * up * s * (1 + gate * (1 - s)), s = sigmoid(gate) */
void vec_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n_elems);

#endif
