/* test_sampler: the data-parallel split gives every rank count the same
 * global batches.  For N = 1..4 ranks with G = 12 / N accumulation, each
 * optimizer step's micro-batches over all ranks and passes are exactly those
 * of one rank with 12 accumulation steps, each run by one rank only; and the
 * epoch's permutation is a permutation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data.h"

static void check_split(size_t n_rows, int batch, uint64_t seed)
{
    sampler smp;
    sampler_init(&smp, n_rows, batch, seed);
    const size_t n_batches = sampler_n_batches(&smp);
    const size_t steps = n_batches / 12 ? n_batches / 12 : 1;
    for (int epoch = 0; epoch < 2; epoch++) {
        for (size_t step = 0; step < steps; step++) {
            /* one rank, 12 passes: the reference set of micro-batches */
            int ref[64] = {0};
            for (int t = 0; t < 12; t++) {
                long k = sampler_step_micro(step, 12, 1, 0, t, n_batches);
                if (k >= 0)
                    ref[k - (long)(step * 12)]++;
            }
            for (int world = 2; world <= 4; world++) {
                int seen[64] = {0};
                for (int rank = 0; rank < world; rank++)
                    for (int t = 0; t < 12 / world; t++) {
                        long k = sampler_step_micro(step, 12 / world, world, rank, t, n_batches);
                        if (k >= 0)
                            seen[k - (long)(step * 12)]++;
                    }
                assert_memory_equal(seen, ref, sizeof ref); /* same micro-batches, each once */
            }
        }
        /* the permutation of the epoch holds every row once */
        int *count = calloc(n_rows, sizeof *count);
        for (size_t k = 0; k < n_batches; k++) {
            const size_t *rows;
            int n = sampler_batch(&smp, epoch, k, &rows);
            for (int i = 0; i < n; i++)
                count[rows[i]]++;
        }
        for (size_t r = 0; r < n_rows; r++)
            assert_int_equal(count[r], 1);
        free(count);
    }
    sampler_free(&smp);
}

static void test_global_batches_do_not_depend_on_ranks(void **state)
{
    (void)state;
    check_split(48, 1, 1);
    check_split(50, 2, 7);
    check_split(37, 3, 42);
    check_split(5, 1, 3); /* fewer micro-batches than one step wants */
}

static void test_order_depends_on_seed_and_epoch(void **state)
{
    (void)state;
    sampler a, b;
    sampler_init(&a, 64, 64, 1);
    sampler_init(&b, 64, 64, 2);
    const size_t *ra, *rb;
    sampler_batch(&a, 0, 0, &ra);
    size_t first[64];
    memcpy(first, ra, sizeof first);
    sampler_batch(&b, 0, 0, &rb);
    assert_memory_not_equal(first, rb, sizeof first);
    sampler_batch(&a, 1, 0, &ra);
    assert_memory_not_equal(first, ra, sizeof first);
    sampler_batch(&a, 0, 0, &ra); /* the same epoch again: the same order */
    assert_memory_equal(first, ra, sizeof first);
    sampler_free(&a);
    sampler_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_batches_do_not_depend_on_ranks),
        cmocka_unit_test(test_order_depends_on_seed_and_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
