/* Unit tests for the neighbour reference: the blocked distance kernel against a naive loop
 * in double, the seeded row sample, and k-means centres that are each the mean of at least
 * REFERENCE_MIN_ROWS rows (checked from the rows themselves, not from the module's sums). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/nn_kernels.h" /* private to the core: tested here directly */
#include "aescore/reference.h"

static float *random_rows(size_t n, size_t f, uint64_t seed)
{
    float *x = malloc(n * f * sizeof(*x));

    assert_non_null(x);
    for (size_t i = 0; i < n * f; i++)
        x[i] = 4 * nn_rng_uniform(&seed) - 2;
    return x;
}

static float *packed(const float *x, size_t n, size_t f)
{
    float *t = malloc(NN_KNN_PANEL_FLOATS(n, f) * sizeof(*t));

    assert_non_null(t);
    nn_kernel_knn_pack(x, n, f, t);
    return t;
}

static double naive_dist2(const float *a, const float *b, size_t f)
{
    double s = 0;

    for (size_t i = 0; i < f; i++)
        s += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* The mean distance from q to its k nearest rows of ref, by sorting all n distances. */
static double naive_knn(const float *q, const float *ref, size_t n, size_t f, size_t k)
{
    double *d = malloc(n * sizeof(*d)), s = 0;

    assert_non_null(d);
    for (size_t j = 0; j < n; j++)
        d[j] = sqrt(naive_dist2(q, ref + j * f, f));
    qsort(d, n, sizeof(*d), cmp_double);
    for (size_t i = 0; i < k; i++)
        s += d[i];
    free(d);
    return s / (double) k;
}

/* Shapes around every edge of the tiling: query rows not a multiple of 4, references shorter
 * than a tile, not a multiple of 16, longer than one chunk. */
static void test_batched_knn_equals_a_naive_loop(void **state)
{
    static const size_t refs[] = {1, 5, 17, 300, 700};
    static const size_t dims[] = {1, 3, 23};
    static const size_t batch[] = {1, 6, 64};
    float *tmp = malloc(NN_KNN_TMP(64) * sizeof(float)), out[64];
    (void) state;

    assert_non_null(tmp);
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < 3; c++) {
                size_t n = refs[a], f = dims[b], rows = batch[c], k = n < 5 ? n : 5;
                float *ref = random_rows(n, f, 100 + a), *q = random_rows(rows, f, 200 + b);
                float *panels = packed(ref, n, f);

                nn_kernel_knn(q, rows, f, panels, n, k, tmp, out);
                for (size_t r = 0; r < rows; r++) {
                    double want = naive_knn(q + r * f, ref, n, f, k);
                    if (fabs(out[r] - want) > 1e-5 * (1 + want))
                        fail_msg("n %zu f %zu rows %zu row %zu: %.9g, naive %.9g", n, f, rows, r,
                                 (double) out[r], want);
                }
                /* one row alone gives the same bits as in its block (model_score = batch) */
                for (size_t r = 0; r < rows; r++) {
                    float one;
                    nn_kernel_knn(q + r * f, 1, f, panels, n, k, tmp, &one);
                    assert_memory_equal(&one, &out[r], sizeof(float));
                }
                free(ref);
                free(q);
                free(panels);
            }
    free(tmp);
}

static void test_nearest_is_the_naive_argmin(void **state)
{
    size_t n = 333, f = 7, rows = 50, nearest[50];
    float *ref = random_rows(n, f, 1), *q = random_rows(rows, f, 2), *panels = packed(ref, n, f);
    float *tmp = malloc(NN_KNN_TMP(rows) * sizeof(float)), d2[50];
    (void) state;

    nn_kernel_nearest(q, rows, f, panels, n, tmp, nearest, d2);
    for (size_t r = 0; r < rows; r++) {
        size_t best = 0;
        for (size_t j = 1; j < n; j++)
            if (naive_dist2(q + r * f, ref + j * f, f) < naive_dist2(q + r * f, ref + best * f, f))
                best = j;
        assert_int_equal(nearest[r], best);
        assert_true(fabs(d2[r] - naive_dist2(q + r * f, ref + best * f, f)) < 1e-5);
    }
    free(ref);
    free(q);
    free(panels);
    free(tmp);
}

static void test_the_sample_is_distinct_rows_and_follows_the_seed(void **state)
{
    size_t n = 200, f = 3, got = 0, again = 0;
    float *z = random_rows(n, f, 9), *a = NULL, *b = NULL, *c = NULL;
    (void) state;

    assert_int_equal(reference_sample(z, n, f, 50, 7, &a, &got), 0);
    assert_int_equal(got, 50);
    for (size_t i = 0; i < got; i++) {
        size_t found = 0;
        for (size_t j = 0; j < n; j++)
            found += memcmp(a + i * f, z + j * f, f * sizeof(float)) == 0;
        assert_int_equal(found, 1); /* a row of z */
        for (size_t j = 0; j < i; j++)
            assert_true(memcmp(a + i * f, a + j * f, f * sizeof(float)) != 0);
    }
    assert_int_equal(reference_sample(z, n, f, 50, 7, &b, &again), 0);
    assert_memory_equal(a, b, 50 * f * sizeof(float));
    free(b);
    assert_int_equal(reference_sample(z, n, f, 50, 8, &b, &again), 0);
    assert_true(memcmp(a, b, 50 * f * sizeof(float)) != 0);
    /* a cap above the rows keeps them all */
    assert_int_equal(reference_sample(z, n, f, 1000, 7, &c, &again), 0);
    assert_int_equal(again, n);
    assert_int_equal(reference_sample(z, n, f, 0, 7, &c, &again), -EINVAL);
    free(a);
    free(b);
    free(c);
    free(z);
}

/* Centres of n rows, k asked: each is the mean (in double, here) of the >= 5 rows assigned to
 * it, and every row is assigned to exactly one. */
static void check_centres(size_t n, size_t f, size_t k, uint64_t seed, size_t *n_centres)
{
    float *z = random_rows(n, f, seed), *c = NULL;
    size_t *assign = malloc(n * sizeof(*assign)), got = 0;
    double *mean = calloc(f, sizeof(*mean));

    assert_int_equal(reference_centres(z, n, f, k, seed, NULL, &c, &got, assign), 0);
    assert_true(got >= 1 && got <= k && got <= n / REFERENCE_MIN_ROWS);
    for (size_t j = 0; j < got; j++) {
        size_t rows = 0;
        memset(mean, 0, f * sizeof(*mean));
        for (size_t r = 0; r < n; r++) {
            assert_true(assign[r] < got);
            if (assign[r] != j)
                continue;
            rows++;
            for (size_t i = 0; i < f; i++)
                mean[i] += z[r * f + i];
        }
        if (rows < REFERENCE_MIN_ROWS)
            fail_msg("centre %zu of %zu is the mean of %zu rows", j, got, rows);
        for (size_t i = 0; i < f; i++)
            assert_true(fabs(mean[i] / (double) rows - c[j * f + i]) < 1e-5);
    }
    *n_centres = got;
    free(z);
    free(c);
    free(assign);
    free(mean);
}

static void test_every_centre_is_the_mean_of_at_least_5_rows(void **state)
{
    size_t got;
    (void) state;

    /* as many centres as the rows allow: many clusters fall under 5 rows and are dropped */
    check_centres(500, 4, 100, 3, &got);
    assert_true(got < 100);
    check_centres(1000, 10, 32, 4, &got);
    check_centres(7, 2, 50, 5, &got); /* 7 rows: one centre */
    assert_int_equal(got, 1);
}

static void test_centres_need_5_rows_and_stop_when_cancelled(void **state)
{
    float *z = random_rows(100, 2, 1), *c = NULL;
    size_t got = 0;
    atomic_bool cancel = true;
    (void) state;

    assert_int_equal(reference_centres(z, 4, 2, 3, 1, NULL, &c, &got, NULL), -EINVAL);
    assert_int_equal(reference_centres(z, 100, 2, 10, 1, &cancel, &c, &got, NULL), -ECANCELED);
    assert_null(c);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_knn_equals_a_naive_loop),
        cmocka_unit_test(test_nearest_is_the_naive_argmin),
        cmocka_unit_test(test_the_sample_is_distinct_rows_and_follows_the_seed),
        cmocka_unit_test(test_every_centre_is_the_mean_of_at_least_5_rows),
        cmocka_unit_test(test_centres_need_5_rows_and_stop_when_cancelled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
