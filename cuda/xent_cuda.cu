// xent_cuda.cu: lm_head + cross-entropy on the GPU, chunk by chunk over
// rows, so that only a chunk of logits ever exists (unless the caller asks
// for all of them): logits = h W^T (cuBLAS), one block per row for the
// max, the log-sum-exp, the loss and the gradient softmax - onehot (scaled),
// then dh = grad W (cuBLAS) and, for a trained lm_head (modules_to_save),
// dW += grad^T h chunk after chunk.  Row losses are summed on the host in
// row order, as on the CPU.  Also the trained embedding's gradient, the
// other vocabulary-sized op.
#include "cuda_internal.h"

#include <cmath>
#include <vector>

enum { THREADS = 256 };

// Rows of logits held at once when the caller keeps none: the scratch
// budget's worth.
static int chunk_rows(int n, int vocab)
{
    size_t rows = cuda_scratch_budget() / ((size_t)vocab * sizeof(float));
    rows = rows < 1 ? 1 : rows;
    return rows > (size_t)n ? n : (int)rows;
}

// grad may be the logits themselves: each thread writes only the columns
// it read, and the target's logit is read before the first barrier.
__global__ void k_xent_rows(double *row_loss, float *grad, const float *logits, const int32_t *targets, int vocab,
                            float grad_scale)
{
    const int r = blockIdx.x;
    const float *row = logits + (size_t)r * vocab;
    float *grow = grad ? grad + (size_t)r * vocab : nullptr;
    const int t = targets[r];
    if (t < 0) {
        if (threadIdx.x == 0)
            row_loss[r] = 0.0;
        if (grow)
            for (int c = threadIdx.x; c < vocab; c += blockDim.x)
                grow[c] = 0.0f;
        return;
    }
    const float target_logit = row[t];
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x)
        mx = fmaxf(mx, row[c]);
    mx = block_max(mx);
    double sum = 0.0;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x)
        sum += expf(row[c] - mx);
    sum = block_sum(sum);
    if (threadIdx.x == 0)
        row_loss[r] = mx + log(sum) - target_logit;
    if (!grow)
        return;
    const float g = (float)(grad_scale / sum);
    for (int c = threadIdx.x; c < vocab; c += blockDim.x)
        grow[c] = expf(row[c] - mx) * g - (c == t ? grad_scale : 0.0f);
}

static double cuda_lm_head_xent_dw(backend *be, float *dh, float *dw, float *logits, const float *h, const float *w,
                                   const int32_t *targets, int n, int dim, int vocab, float grad_scale)
{
    if (n <= 0)
        return 0.0;
    const int chunk = logits ? n : chunk_rows(n, vocab);
    float *scratch = logits ? nullptr : (float *)cuda_scratch(be, SCRATCH_XENT, (size_t)chunk * vocab * sizeof(float));
    float *grad_keep =
        dh && logits ? (float *)cuda_scratch(be, SCRATCH_XENT_GRAD, (size_t)n * vocab * sizeof(float)) : nullptr;
    double *row_loss = (double *)cuda_scratch(be, SCRATCH_ROW_LOSS, (size_t)n * sizeof(double));
    cudaStream_t st = impl_of(be)->stream;
    for (int r0 = 0; r0 < n; r0 += chunk) {
        const int rows = n - r0 < chunk ? n - r0 : chunk;
        float *lg = logits ? logits + (size_t)r0 * vocab : scratch;
        cuda_gemm(be, 0, 1, rows, vocab, dim, 1.0f, h + (size_t)r0 * dim, dim, 0, w, dim, 0, 0.0f, lg, vocab, 0, 1);
        float *grad = !dh ? nullptr : grad_keep ? grad_keep + (size_t)r0 * vocab : lg;
        CUDA_LAUNCH(k_xent_rows, rows, THREADS, st, row_loss + r0, grad, lg, targets + r0, vocab, grad_scale);
        if (dh)
            cuda_gemm(be, 0, 0, rows, dim, vocab, 1.0f, grad, vocab, 0, w, dim, 0, 0.0f, dh + (size_t)r0 * dim, dim, 0,
                      1);
        if (dh && dw)
            cuda_gemm(be, 1, 0, vocab, dim, rows, 1.0f, grad, vocab, 0, h + (size_t)r0 * dim, dim, 0, 1.0f, dw, dim, 0,
                      1);
    }
    std::vector<double> host((size_t)n);
    be->copy_to_host(be, host.data(), row_loss, (size_t)n * sizeof(double));
    double total = 0.0;
    for (int r = 0; r < n; r++)
        total += host[r];
    return total;
}

static double cuda_lm_head_xent(backend *be, float *dh, float *logits, const float *h, const float *w,
                                const int32_t *targets, int n, int dim, int vocab, float grad_scale)
{
    return cuda_lm_head_xent_dw(be, dh, nullptr, logits, h, w, targets, n, dim, vocab, grad_scale);
}

// One thread per column, positions in order: the sums of the CPU backend,
// with no atomics (a token repeated in the batch hits one row many times).
__global__ void k_embedding_bwd(float *dtable, const int32_t *ids, const float *dout, int n, int dim, int padding_idx)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= dim)
        return;
    for (int i = 0; i < n; i++)
        if (ids[i] != padding_idx)
            dtable[(size_t)ids[i] * dim + j] += dout[(size_t)i * dim + j];
}

static void cuda_embedding_bwd(backend *be, float *dtable, const int32_t *ids, const float *dout, int n, int dim,
                               int padding_idx)
{
    if (n <= 0)
        return;
    CUDA_LAUNCH(k_embedding_bwd, (dim + THREADS - 1) / THREADS, THREADS, impl_of(be)->stream, dtable, ids, dout, n,
                dim, padding_idx);
}

void cuda_install_xent(backend *be)
{
    be->lm_head_xent = cuda_lm_head_xent;
    be->lm_head_xent_dw = cuda_lm_head_xent_dw;
    be->embedding_bwd = cuda_embedding_bwd;
}
