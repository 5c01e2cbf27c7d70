/* Unit tests for scaler: the robust moments checked against an independent computation (an
 * insertion sort, explicit winsorising and long double sums), the floor, constant columns,
 * row selection, and applying.
 */
#undef NDEBUG
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/nn.h"
#include "aescore/scaler.h"

#define assert_near(a, b, rel)                                                                     \
    assert_near_((double) (a), (double) (b), (double) (rel), __FILE__, __LINE__)

/* |a - b| within rel of |b| (or of 1e-30 for b = 0). */
static void assert_near_(double a, double b, double rel, const char *file, int line)
{
    if (!(fabs(a - b) <= rel * fmax(fabs(b), 1e-30))) {
        print_error("%.17g != %.17g (relative tolerance %g)\n", a, b, rel);
        _fail(file, line);
    }
}

/* The reference: scaler.h's definition computed the plain way, in long double. */
static void reference_moments(const float *col, size_t n, double *mean, double *std)
{
    float *v = malloc(n * sizeof(*v));
    long double sum = 0, sq = 0, psum = 0, psq = 0, mu, pmu, lo, hi, sd, psd;
    size_t lo_at, hi_at;

    assert_non_null(v);
    memcpy(v, col, n * sizeof(*v));
    for (size_t i = 1; i < n; i++) { /* insertion sort */
        float t = v[i];
        size_t j = i;

        for (; j > 0 && v[j - 1] > t; j--)
            v[j] = v[j - 1];
        v[j] = t;
    }
    /* SCALER_TAIL = 0.005 = 5 / 1000, in exact integer arithmetic */
    lo_at = 5 * (n - 1) / 1000;
    hi_at = (995 * (n - 1) + 999) / 1000;
    lo = v[lo_at];
    hi = v[hi_at];
    for (size_t i = 0; i < n; i++) {
        long double w = v[i] < lo ? lo : (v[i] > hi ? hi : v[i]);

        sum += w;
        psum += v[i];
    }
    mu = sum / n;
    pmu = psum / n;
    for (size_t i = 0; i < n; i++) {
        long double w = v[i] < lo ? lo : (v[i] > hi ? hi : v[i]);

        sq += (w - mu) * (w - mu);
        psq += (v[i] - pmu) * (v[i] - pmu);
    }
    sd = sqrtl(sq / n);
    psd = sqrtl(psq / n);
    if (sd < 0.5L * psd) /* SCALER_FLOOR */
        sd = 0.5L * psd;
    *mean = (double) mu;
    *std = sd > 1e-12L * (fabsl(mu) + 1) ? (double) sd : 1.0;
    free(v);
}

static float *column(const float *x, size_t n, size_t f, size_t i)
{
    float *c = malloc(n * sizeof(*c));

    assert_non_null(c);
    for (size_t r = 0; r < n; r++)
        c[r] = x[r * f + i];
    return c;
}

/* ------------------------------------------------------------------ scaler_fit */

static void test_fit_matches_an_independent_computation_of_the_robust_moments(void **state)
{
    enum { N = 2001, F = 5 };
    float *x = malloc(N * F * sizeof(*x)), *scratch = malloc(N * sizeof(float));
    float mean[F], std[F];
    uint64_t rng = 7;

    (void) state;
    assert_non_null(x);
    assert_non_null(scratch);
    for (size_t r = 0; r < N; r++) {
        float u = nn_rng_uniform(&rng);

        x[r * F + 0] = 100 * u - 50;                                  /* uniform */
        x[r * F + 1] = 1e6f + 3 * (nn_rng_uniform(&rng) - 0.5f);      /* far from 0 */
        x[r * F + 2] = r % 97 == 0 ? 1e5f : nn_rng_uniform(&rng);     /* outliers */
        x[r * F + 3] = -powf(10, 4 * nn_rng_uniform(&rng));           /* heavy tail */
        x[r * F + 4] = (float) (r % 7) - 3 + (r == 5 ? -1e7f : 0.0f); /* one huge */
    }
    assert_int_equal(scaler_fit(x, F, NULL, N, scratch, mean, std), 0);
    for (size_t i = 0; i < F; i++) {
        float *c = column(x, N, F, i);
        double ref_mean, ref_std;

        reference_moments(c, N, &ref_mean, &ref_std);
        /* float rounding of the result dominates: a few ulps at most */
        assert_near(mean[i], ref_mean, 1e-6);
        assert_near(std[i], ref_std, 1e-6);
        assert_true(std[i] > 0);
        free(c);
    }
    free(x);
    free(scratch);
}

static void test_fit_is_not_inflated_by_a_few_extreme_rows(void **state)
{
    enum { N = 1000 };
    float x[N], scratch[N], mean, std;

    (void) state;
    for (size_t r = 0; r < N; r++)
        x[r] = (float) (r % 10); /* 0..9: mean 4.5, sd 2.87 */
    for (size_t r = 0; r < 4; r++)
        x[r * 10] = 30.0f; /* four rows in a thousand: the plain sd would be 3.29 */
    assert_int_equal(scaler_fit(x, 1, NULL, N, scratch, &mean, &std), 0);
    /* sorted: 96 zeros, 100 each of 1..8, 100 nines, the four 30s at 996..999; the clamp is
     * [v[4], v[995]] = [0, 9], so the 30s count as nines: sum 4536, sum of squares 28824,
     * mean 4.536, sd sqrt(28.824 - 4.536^2) = 2.87206 (plain: mean 4.62, sd 3.2796) */
    assert_near(mean, 4.536, 1e-6);
    assert_near(std, sqrt(28.824 - 4.536 * 4.536), 1e-6);
}

static void test_fit_keeps_the_scale_at_the_floor_of_the_plain_sd(void **state)
{
    enum { N = 1000 };
    float x[N], scratch[N], mean, std;
    double sum = 0, sq = 0, plain_sd;

    (void) state;
    /* three rows in a thousand differ: rarer than the tail, so winsorising makes the column
     * constant and only the floor keeps its scale */
    for (size_t r = 0; r < N; r++)
        x[r] = r < 3 ? 10.0f : 0.0f;
    for (size_t r = 0; r < N; r++)
        sum += x[r];
    for (size_t r = 0; r < N; r++)
        sq += (x[r] - sum / N) * (x[r] - sum / N);
    plain_sd = sqrt(sq / N);
    assert_int_equal(scaler_fit(x, 1, NULL, N, scratch, &mean, &std), 0);
    assert_true(mean == 0.0f);
    assert_near(std, 0.5 * plain_sd, 1e-6);
}

static void test_fit_gives_a_constant_column_std_1(void **state)
{
    float x[3 * 2] = {5, -2, 5, -2, 5, -2}, scratch[3], mean[2], std[2];

    (void) state;
    assert_int_equal(scaler_fit(x, 2, NULL, 3, scratch, mean, std), 0);
    assert_true(mean[0] == 5.0f && mean[1] == -2.0f);
    assert_true(std[0] == 1.0f && std[1] == 1.0f);
}

static void test_fit_uses_exactly_the_rows_it_is_given(void **state)
{
    enum { N = 300, F = 3 };
    float x[N * F], packed[N * F], scratch[N], mean[F], std[F], mean2[F], std2[F];
    size_t rows[N / 2];
    uint64_t rng = 11;

    (void) state;
    for (size_t k = 0; k < N * F; k++)
        x[k] = 10 * nn_rng_uniform(&rng);
    for (size_t k = 0; k < N / 2; k++) {
        rows[k] = N - 1 - 2 * k; /* every other row, in descending order */
        memcpy(packed + k * F, x + rows[k] * F, F * sizeof(float));
    }
    assert_int_equal(scaler_fit(x, F, rows, N / 2, scratch, mean, std), 0);
    assert_int_equal(scaler_fit(packed, F, NULL, N / 2, scratch, mean2, std2), 0);
    assert_memory_equal(mean, mean2, sizeof(mean));
    assert_memory_equal(std, std2, sizeof(std));
}

static void test_fit_of_one_row_is_its_values_with_std_1(void **state)
{
    float x[2] = {3.5f, -1.0f}, scratch[1], mean[2], std[2];

    (void) state;
    assert_int_equal(scaler_fit(x, 2, NULL, 1, scratch, mean, std), 0);
    assert_true(mean[0] == 3.5f && mean[1] == -1.0f);
    assert_true(std[0] == 1.0f && std[1] == 1.0f);
}

static void test_fit_refuses_no_rows_or_no_columns(void **state)
{
    float x[1] = {1}, scratch[1], mean[1], std[1];

    (void) state;
    assert_int_equal(scaler_fit(x, 1, NULL, 0, scratch, mean, std), -EINVAL);
    assert_int_equal(scaler_fit(x, 0, NULL, 1, scratch, mean, std), -EINVAL);
}

/* ------------------------------------------------------------------ scaler_apply */

static void test_apply_standardises_in_float_and_in_place(void **state)
{
    const float mean[3] = {1.0f, -2.0f, 0.1f}, std[3] = {2.0f, 0.5f, 3.0f};
    const float x[3] = {5.0f, -2.0f, 0.7f};
    float z[3], y[3];

    (void) state;
    scaler_apply(mean, std, 3, x, z);
    for (size_t i = 0; i < 3; i++) {
        float want = (x[i] - mean[i]) / std[i];

        assert_memory_equal(&z[i], &want, sizeof(float));
    }
    assert_true(z[0] == 2.0f && z[1] == 0.0f);
    memcpy(y, x, sizeof(y));
    scaler_apply(mean, std, 3, y, y);
    assert_memory_equal(y, z, sizeof(z));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_matches_an_independent_computation_of_the_robust_moments),
        cmocka_unit_test(test_fit_is_not_inflated_by_a_few_extreme_rows),
        cmocka_unit_test(test_fit_keeps_the_scale_at_the_floor_of_the_plain_sd),
        cmocka_unit_test(test_fit_gives_a_constant_column_std_1),
        cmocka_unit_test(test_fit_uses_exactly_the_rows_it_is_given),
        cmocka_unit_test(test_fit_of_one_row_is_its_values_with_std_1),
        cmocka_unit_test(test_fit_refuses_no_rows_or_no_columns),
        cmocka_unit_test(test_apply_standardises_in_float_and_in_place),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
