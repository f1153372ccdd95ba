/* backend.c: what every backend shares: memory accounting by category. */
#include "backend.h"

const char *const mem_category_names[MEM_N_CATEGORIES] = {
    "frozen_params", "trainable_params", "grads", "optimizer", "activations", "gathered_units",
    "comm_buffers",
};

void backend_account_alloc(backend *be, size_t n_bytes, mem_category cat, int on_host)
{
    size_t *cur = on_host ? be->host_cur_bytes : be->cur_bytes;
    size_t *peak = on_host ? be->host_peak_bytes : be->peak_bytes;
    cur[cat] += n_bytes;
    if (cur[cat] > peak[cat])
        peak[cat] = cur[cat];
    if (on_host)
        return;
    size_t total = 0;
    for (int c = 0; c < MEM_N_CATEGORIES; c++)
        total += be->cur_bytes[c];
    if (total > be->peak_total_bytes)
        be->peak_total_bytes = total;
}

void backend_account_free(backend *be, size_t n_bytes, mem_category cat, int on_host)
{
    (on_host ? be->host_cur_bytes : be->cur_bytes)[cat] -= n_bytes;
}
