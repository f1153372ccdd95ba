// dequant4_cuda.cu: QLoRA's 4-bit weights widened to fp32 on the device:
// the CUDA backend's to_f32 of a whole tensor in src/weight4.h's layout
// (packed codes, first value in the high nibble, then the block state:
// nested u8 codes[n_blocks], f32 nested_absmax[groups of 256 blocks], f32
// offset; or plain f32 absmax[n_blocks]; blocks of 64).
//
// The result is the CPU's bit for bit (src/quant4.c, src/weight4.c):
//   absmax  = fl32(fl32(dyn[code] * nested_absmax) + offset)   (nested)
//   value_i = fl32(table[code_i] * absmax)
// The two roundings of the nested absmax are explicit (__fmul_rn,
// __fadd_rn): nvcc would otherwise contract them into one fused
// multiply-add, which rounds once and changes the absmax of many blocks.
// The code values are the CPU's own (quant4_value, quant4_dynamic_value),
// copied to the device once, never retyped here.
//
// The widened weight then goes through the backend's ordinary cuBLAS
// products, as a widened bf16 weight does: gathered units are fp32 compute
// buffers on this backend (under --bf16 the products round their inputs,
// this weight included, to bf16).
#include "cuda_internal.h"

extern "C" {
#include "log.h"
#include "quant4.h"
#include "weight4.h"
}

enum { THREADS = 256 };

// The device table: NF4's 16 values, FP4's 16, then the signed dynamic
// 8-bit map's 256 (fp32).  Made on the first 4-bit widening and kept until
// the backend is destroyed (MEM_ACTIVATIONS, as the ops' scratch;
// backend_null.c counts it the same way for plans).
enum { TABLE_NF4 = 0, TABLE_FP4 = 16, TABLE_DYN = 32, TABLE_N = 32 + 256 };

static const float *code_tables(backend *be)
{
    cuda_impl *im = impl_of(be);
    if (!im->quant4_tables) {
        float host[TABLE_N];
        for (unsigned c = 0; c < 16; c++) {
            host[TABLE_NF4 + c] = quant4_value(QUANT4_NF4, c);
            host[TABLE_FP4 + c] = quant4_value(QUANT4_FP4, c);
        }
        for (unsigned q = 0; q < 256; q++)
            host[TABLE_DYN + q] = quant4_dynamic_value(q);
        im->quant4_tables = static_cast<float *>(be->alloc(be, sizeof host, MEM_ACTIVATIONS));
        be->copy_to_device(be, im->quant4_tables, host, sizeof host);
    }
    return im->quant4_tables;
}

// The block state sits at any byte offset of a gathered unit: fp32 read
// byte by byte, little-endian.
__device__ inline float load_f32_le(const unsigned char *p)
{
    return __uint_as_float((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

// One thread per packed byte (values 2i and 2i + 1, always in the same
// block: blocks are 64 values, so a warp shares one block and its dyn
// lookup).  Each thread unnests its block's absmax itself: a byte and a
// cached float, cheaper than a second pass.  The 16 values, which
// neighbouring threads index differently, are read from shared memory.
__global__ void k_dequant4(float *out, const unsigned char *in, const float *table, const float *dyn, size_t n,
                           size_t packed, size_t n_blocks, size_t n_groups, int nested)
{
    __shared__ float values[16];
    if (threadIdx.x < 16)
        values[threadIdx.x] = table[threadIdx.x];
    __syncthreads();
    const unsigned char *state = in + packed;              // nested: u8 codes[n_blocks]; plain: f32 absmax
    const unsigned char *nested_absmax = state + n_blocks; // nested: f32 per group of 256 blocks, then offset
    const float offset = nested ? load_f32_le(nested_absmax + 4 * n_groups) : 0.0f;
    GRID_STRIDE(i, packed)
    {
        const size_t b = 2 * i / WEIGHT4_BLOCKSIZE, group = b / QUANT4_NESTED_BLOCKSIZE;
        float absmax;
        if (nested) {
            const float scaled = __fmul_rn(dyn[state[b]], load_f32_le(nested_absmax + 4 * group));
            absmax = __fadd_rn(scaled, offset);
        } else {
            absmax = load_f32_le(state + 4 * b);
        }
        const unsigned byte = in[i];
        out[2 * i] = __fmul_rn(values[byte >> 4], absmax);
        if (2 * i + 1 < n)
            out[2 * i + 1] = __fmul_rn(values[byte & 15], absmax);
    }
}

void cuda_dequant4(backend *be, float *out, const void *in, storage_dtype dt, size_t n_elems)
{
    if (!weight4_is(dt))
        die(EXIT_FAILURE_RUN, "cuda backend: cannot widen %s values to fp32", storage_dtype_name(dt));
    const int fp4 = dt == DT_FP4 || dt == DT_FP4_PLAIN, nested = dt == DT_NF4 || dt == DT_FP4;
    const float *tables = code_tables(be);
    const size_t packed = quant4_packed_bytes(n_elems), n_blocks = quant4_n_blocks(n_elems, WEIGHT4_BLOCKSIZE);
    CUDA_LAUNCH(k_dequant4, cuda_grid_for(packed, THREADS), THREADS, impl_of(be)->stream, out,
                static_cast<const unsigned char *>(in), tables + (fp4 ? TABLE_FP4 : TABLE_NF4), tables + TABLE_DYN,
                n_elems, packed, n_blocks, quant4_n_nested_blocks(n_blocks), nested);
}
