/* mma.h of the CPU emulation of CUDA: the WMMA API (nvcuda::wmma) for
 * m16n16k16 tiles of bf16 with fp32 accumulators, as the flash-attention
 * kernels use it.  Every lane holds the whole tile (the real API spreads it
 * over the warp in an unspecified way, which the kernels never rely on:
 * they touch fragments only through load, store, fill and mma).  Loads and
 * stores are collective, as the real ones: every lane of the warp arrives
 * before any lane reads or writes (__syncwarp), so a load followed by a
 * store to the same tile reads the old values on every lane.  Loads and
 * stores follow the documented layouts and check the documented rules:
 * pointers 256-bit aligned, ldm a multiple of 8 (16-bit) or 4 (32-bit). */
#ifndef SHARDTUNE_CUDA_EMU_MMA_H
#define SHARDTUNE_CUDA_EMU_MMA_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "cuda_bf16.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    static const int num_elements = 256;
    float x[256]; /* row-major 16 x 16, whatever the element type */
};

inline void emu_wmma_check(const void *p, unsigned ldm, unsigned multiple)
{
    __syncwarp();
    if ((uintptr_t)p % 32 != 0 || ldm % multiple != 0) {
        fprintf(stderr, "cuda emulator: WMMA load/store with a pointer not 256-bit aligned or ldm %u not a "
                        "multiple of %u\n", ldm, multiple);
        abort();
    }
}

template <typename T, typename L> inline void emu_load16(float *x, const T *p, unsigned ldm, bool col)
{
    emu_wmma_check(p, ldm, 8);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            x[r * 16 + c] = __bfloat162float(col ? p[c * ldm + r] : p[r * ldm + c]);
}

template <typename Use, typename Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout> &f, const __nv_bfloat16 *p, unsigned ldm)
{
    emu_load16<__nv_bfloat16, Layout>(f.x, p, ldm, std::is_same<Layout, col_major>::value);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm, layout_t l)
{
    emu_wmma_check(p, ldm, 4);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.x[r * 16 + c] = l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c];
}

inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l)
{
    emu_wmma_check(p, ldm, 4);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            (l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[r * 16 + c];
}

inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float v)
{
    for (int i = 0; i < 256; i++)
        f.x[i] = v;
}

template <typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c)
{
    float out[256];
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 16; n++) {
            float acc = c.x[r * 16 + n];
            for (int k = 0; k < 16; k++)
                acc += a.x[r * 16 + k] * b.x[k * 16 + n];
            out[r * 16 + n] = acc;
        }
    for (int i = 0; i < 256; i++)
        d.x[i] = out[i];
}

} // namespace wmma
} // namespace nvcuda

#endif
