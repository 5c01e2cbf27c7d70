/* Unit tests for threshold: numpy-linear quantiles, the F1-optimal threshold, the percentile
 * table and lookups into it. Every expected value is worked out by hand in the comments.
 */
#undef NDEBUG
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "aescore/threshold.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* cmocka 1.1's assert_float_equal narrows to float; these checks need double precision. */
#define assert_near(a, b, tol)                                                                     \
    assert_near_((double) (a), (double) (b), (double) (tol), __FILE__, __LINE__)

static void assert_near_(double a, double b, double tol, const char *file, int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%.17g != %.17g (tolerance %g)\n", a, b, tol);
        _fail(file, line);
    }
}

/* ------------------------------------------------------------------ threshold_quantile */

static void test_quantile_q_0_99_over_1_to_100_is_99_01(void **state)
{
    float x[100], q;

    (void) state;
    for (int i = 0; i < 100; i++)
        x[i] = (float) (100 - i); /* descending: the function must sort */
    /* numpy: position 0.99 * 99 = 98.01 between x(98) = 99 and x(99) = 100 -> 99.01 */
    assert_int_equal(threshold_quantile(x, 100, 0.99, &q), 0);
    assert_near(q, 99.01f, 1e-4);
}

static void test_quantile_interpolates_between_order_statistics(void **state)
{
    const float x[] = {4, 1, 3, 2};
    float q;

    (void) state;
    /* sorted 1 2 3 4, n - 1 = 3 */
    /* q = 0.25: position 0.75 -> 1 + 0.75 * (2 - 1) = 1.75 */
    assert_int_equal(threshold_quantile(x, 4, 0.25, &q), 0);
    assert_near(q, 1.75f, 1e-6);
    /* q = 0.5: position 1.5 -> 2.5 (the median of an even count) */
    assert_int_equal(threshold_quantile(x, 4, 0.5, &q), 0);
    assert_near(q, 2.5f, 1e-6);
    /* q = 0.9: position 2.7 -> 3 + 0.7 = 3.7 */
    assert_int_equal(threshold_quantile(x, 4, 0.9, &q), 0);
    assert_near(q, 3.7f, 1e-6);
}

static void test_quantile_q_1_is_the_maximum_exactly(void **state)
{
    const float x[] = {0.3f, 0.7f, 0.1f, 0.123456f};
    float q;

    (void) state;
    assert_int_equal(threshold_quantile(x, 4, 1.0, &q), 0);
    assert_true(q == 0.7f);
}

static void test_quantile_of_one_score_is_that_score(void **state)
{
    const float x[] = {7.25f};
    float q;

    (void) state;
    assert_int_equal(threshold_quantile(x, 1, 0.3, &q), 0);
    assert_true(q == 7.25f);
}

static void test_quantile_on_an_order_statistic_ignores_an_infinite_neighbour(void **state)
{
    /* a diverged model can score inf; q = 0.5 of 1 2 inf is position 1 exactly -> 2, where a
     * blind lerp would compute 2 + (inf - 2) * 0 = NaN */
    const float x[] = {INFINITY, 1, 2};
    float q;

    (void) state;
    assert_int_equal(threshold_quantile(x, 3, 0.5, &q), 0);
    assert_true(q == 2.0f);
}

static void test_quantile_leaves_its_input_alone(void **state)
{
    float x[] = {5, 3, 9, 1, 7};
    float copy[ARRAY_LEN(x)], q;

    (void) state;
    memcpy(copy, x, sizeof(x));
    assert_int_equal(threshold_quantile(x, ARRAY_LEN(x), 0.5, &q), 0);
    assert_memory_equal(x, copy, sizeof(x));
    assert_near(q, 5.0f, 0); /* sorted 1 3 5 7 9, position 2 */
}

static void test_quantile_rejects_bad_arguments(void **state)
{
    const float x[] = {1, 2, 3};
    const float with_nan[] = {1, NAN, 3};
    float q = -1;

    (void) state;
    assert_int_equal(threshold_quantile(x, 0, 0.5, &q), -EINVAL);
    assert_int_equal(threshold_quantile(x, 3, 0.0, &q), -EINVAL);
    assert_int_equal(threshold_quantile(x, 3, -0.1, &q), -EINVAL);
    assert_int_equal(threshold_quantile(x, 3, 1.5, &q), -EINVAL);
    assert_int_equal(threshold_quantile(x, 3, NAN, &q), -EINVAL);
    assert_int_equal(threshold_quantile(NULL, 3, 0.5, &q), -EINVAL);
    assert_int_equal(threshold_quantile(x, 3, 0.5, NULL), -EINVAL);
    assert_int_equal(threshold_quantile(with_nan, 3, 0.5, &q), -EINVAL);
    assert_true(q == -1); /* untouched on error */
}

/* ------------------------------------------------------------------------ threshold_f1 */

static void test_f1_threshold_separates_separable_classes_halfway(void **state)
{
    /* normals 0.1 0.2 0.3, anomalies 0.7 0.9, given shuffled.
     * cut      flagged                TP FP FN  F1 = 2TP/(2TP+FP+FN)
     * < 0.1    all                     2  3  0  4/7
     * > 0.15   0.2 .. 0.9              2  2  0  4/6
     * > 0.25   0.3 .. 0.9              2  1  0  4/5
     * > 0.5    0.7 0.9                 2  0  0  1     <- best, halfway between 0.3 and 0.7
     * > 0.8    0.9                     1  0  1  2/3 */
    const float s[] = {0.7f, 0.1f, 0.3f, 0.9f, 0.2f};
    const unsigned char y[] = {1, 0, 0, 1, 0};
    float t;

    (void) state;
    assert_int_equal(threshold_f1(s, y, 5, &t), 0);
    assert_near(t, 0.5f, 1e-6);
    assert_true(t > 0.3f && t < 0.7f);
}

static void test_f1_threshold_picks_the_best_cut_when_classes_overlap(void **state)
{
    /* ascending: 0.1(0) 0.2(0) 0.3(1) 0.4(0) 0.5(1) 0.6(1), 3 anomalies
     * > 0.05: TP3 FP3 -> 6/9   > 0.15: TP3 FP2 -> 6/8   > 0.25: TP3 FP1 -> 6/7 (best)
     * > 0.35: TP2 FP1 FN1 -> 4/6   > 0.45: TP2 FN1 -> 4/5   > 0.55: TP1 FN2 -> 2/4 */
    const float s[] = {0.5f, 0.1f, 0.6f, 0.3f, 0.2f, 0.4f};
    const unsigned char y[] = {1, 0, 1, 1, 0, 0};
    float t;

    (void) state;
    assert_int_equal(threshold_f1(s, y, 6, &t), 0);
    assert_near(t, 0.25f, 1e-6);
}

static void test_f1_tie_prefers_the_higher_threshold(void **state)
{
    /* ascending: 0.1(1) 0.2(0) 0.3(0) 0.4(1)
     * flag all (t = 0.05): TP2 FP2 -> 4/6 = 2/3     > 0.15: TP1 FP2 FN1 -> 2/5
     * > 0.25: TP1 FP1 FN1 -> 2/4                    > 0.35: TP1 FN1 -> 2/3
     * 2/3 twice: the higher threshold, 0.35, wins */
    const float s[] = {0.1f, 0.2f, 0.3f, 0.4f};
    const unsigned char y[] = {1, 0, 0, 1};
    float t;

    (void) state;
    assert_int_equal(threshold_f1(s, y, 4, &t), 0);
    assert_near(t, 0.35f, 1e-6);
}

static void test_f1_can_flag_everything_with_a_threshold_below_the_minimum(void **state)
{
    /* ascending: 0.1(1) 0.2(1) 0.3(0)
     * flag all: TP2 FP1 -> 4/5 (best)   > 0.15: TP1 FP1 FN1 -> 2/4   > 0.25: TP0 -> 0
     * no score below 0.1: halfway between 0 (scores are errors) and 0.1 -> 0.05 */
    const float s[] = {0.1f, 0.2f, 0.3f};
    const unsigned char y[] = {1, 1, 0};
    float t;

    (void) state;
    assert_int_equal(threshold_f1(s, y, 3, &t), 0);
    assert_near(t, 0.05f, 1e-7);
    assert_true(0.1f > t);
}

static void test_f1_keeps_equal_scores_on_one_side_of_the_cut(void **state)
{
    /* ascending: 0.2(0) 0.5(0) 0.5(1) 0.9(1); the two 0.5s cannot be separated by "> t"
     * flag all: TP2 FP2 -> 2/3   > 0.35: TP2 FP1 -> 4/5 (best)   > 0.7: TP1 FN1 -> 2/3
     * (splitting the tie would wrongly claim F1 = 1 at t = 0.5) */
    const float s[] = {0.5f, 0.9f, 0.2f, 0.5f};
    const unsigned char y[] = {1, 1, 0, 0};
    /* the same rows with the tied pair in the other order, in case the sort is stable */
    const float s_swapped[] = {0.5f, 0.9f, 0.2f, 0.5f};
    const unsigned char y_swapped[] = {0, 1, 0, 1};
    float t;

    (void) state;
    assert_int_equal(threshold_f1(s, y, 4, &t), 0);
    assert_near(t, 0.35f, 1e-6);
    assert_int_equal(threshold_f1(s_swapped, y_swapped, 4, &t), 0);
    assert_near(t, 0.35f, 1e-6);
}

static void test_f1_threshold_between_adjacent_floats_still_separates(void **state)
{
    /* no float lies strictly between two adjacent floats: the threshold must be the lower
     * one. The midpoint rounds to even, so try a pair with an even and one with an odd lower
     * mantissa: in the second the rounded midpoint is the upper score itself. */
    const float lo[] = {1.0f, nextafterf(1.0f, 2.0f)};
    float t;

    (void) state;
    for (size_t i = 0; i < ARRAY_LEN(lo); i++) {
        const float s[] = {lo[i], nextafterf(lo[i], 2.0f)};
        const unsigned char y[] = {0, 1};

        assert_int_equal(threshold_f1(s, y, 2, &t), 0);
        assert_false(s[0] > t);
        assert_true(s[1] > t);
    }
}

static void test_f1_single_class_is_reported_not_guessed(void **state)
{
    const float s[] = {0.1f, 0.2f, 0.3f};
    const unsigned char normal[] = {0, 0, 0};
    const unsigned char anomalous[] = {1, 1, 1};
    float t = -1;

    (void) state;
    assert_int_equal(threshold_f1(s, normal, 3, &t), THRESHOLD_E_SINGLE_CLASS);
    assert_int_equal(threshold_f1(s, anomalous, 3, &t), THRESHOLD_E_SINGLE_CLASS);
    assert_true(t == -1);
}

static void test_f1_rejects_bad_arguments(void **state)
{
    const float s[] = {0.1f, 0.2f};
    const float with_nan[] = {0.1f, NAN};
    const unsigned char y[] = {0, 1};
    const unsigned char not_binary[] = {0, 2};
    float t;

    (void) state;
    assert_int_equal(threshold_f1(s, y, 0, &t), -EINVAL);
    assert_int_equal(threshold_f1(NULL, y, 2, &t), -EINVAL);
    assert_int_equal(threshold_f1(s, NULL, 2, &t), -EINVAL);
    assert_int_equal(threshold_f1(s, y, 2, NULL), -EINVAL);
    assert_int_equal(threshold_f1(with_nan, y, 2, &t), -EINVAL);
    assert_int_equal(threshold_f1(s, not_binary, 2, &t), -EINVAL);
}

static void test_f1_leaves_its_input_alone(void **state)
{
    float s[] = {0.5f, 0.1f, 0.6f, 0.3f, 0.2f, 0.4f};
    unsigned char y[] = {1, 0, 1, 1, 0, 0};
    float s_copy[ARRAY_LEN(s)], t;
    unsigned char y_copy[ARRAY_LEN(y)];

    (void) state;
    memcpy(s_copy, s, sizeof(s));
    memcpy(y_copy, y, sizeof(y));
    assert_int_equal(threshold_f1(s, y, ARRAY_LEN(s), &t), 0);
    assert_memory_equal(s, s_copy, sizeof(s));
    assert_memory_equal(y, y_copy, sizeof(y));
}

/* ---------------------------------------------------------- threshold_percentile_table */

static void test_percentile_table_holds_evenly_spaced_quantiles(void **state)
{
    const float s[] = {3, 5, 1, 4, 2};
    float t5[5], t3[3], t9[9];

    (void) state;
    /* n_table 5: q = 0, .25, .5, .75, 1 -> positions 0..4 -> 1 2 3 4 5 */
    assert_int_equal(threshold_percentile_table(s, 5, t5, 5), 0);
    for (int k = 0; k < 5; k++)
        assert_near(t5[k], (float) (k + 1), 0);
    /* n_table 3: positions 0, 2, 4 -> 1 3 5 */
    assert_int_equal(threshold_percentile_table(s, 5, t3, 3), 0);
    assert_near(t3[0], 1, 0);
    assert_near(t3[1], 3, 0);
    assert_near(t3[2], 5, 0);
    /* n_table 9: positions k/8 * 4 = k/2 -> 1, 1.5, 2, ..., 5 */
    assert_int_equal(threshold_percentile_table(s, 5, t9, 9), 0);
    for (int k = 0; k < 9; k++)
        assert_near(t9[k], 1.0f + 0.5f * (float) k, 1e-6);
}

static void test_percentile_table_interpolates_between_two_scores(void **state)
{
    const float s[] = {10, 0};
    float t[5];

    (void) state;
    /* positions k/4 between 0 and 10 -> 0 2.5 5 7.5 10 */
    assert_int_equal(threshold_percentile_table(s, 2, t, 5), 0);
    assert_near(t[0], 0.0f, 0);
    assert_near(t[1], 2.5f, 1e-6);
    assert_near(t[2], 5.0f, 1e-6);
    assert_near(t[3], 7.5f, 1e-6);
    assert_near(t[4], 10.0f, 0);
}

static void test_percentile_table_rejects_bad_arguments(void **state)
{
    const float s[] = {1, 2};
    const float with_nan[] = {1, NAN};
    float t[3];

    (void) state;
    assert_int_equal(threshold_percentile_table(s, 2, t, 1), -EINVAL);
    assert_int_equal(threshold_percentile_table(s, 2, t, 0), -EINVAL);
    assert_int_equal(threshold_percentile_table(s, 0, t, 3), -EINVAL);
    assert_int_equal(threshold_percentile_table(NULL, 2, t, 3), -EINVAL);
    assert_int_equal(threshold_percentile_table(s, 2, NULL, 3), -EINVAL);
    assert_int_equal(threshold_percentile_table(with_nan, 2, t, 3), -EINVAL);
}

static void test_percentile_table_leaves_its_input_alone(void **state)
{
    float s[] = {9, 2, 7, 4};
    float copy[ARRAY_LEN(s)], t[11];

    (void) state;
    memcpy(copy, s, sizeof(s));
    assert_int_equal(threshold_percentile_table(s, ARRAY_LEN(s), t, 11), 0);
    assert_memory_equal(s, copy, sizeof(s));
}

/* ---------------------------------------------------------------- threshold_percentile */

static void test_percentile_lookup_below_above_exact_and_between(void **state)
{
    /* 5 entries: entry k is percentile 100 * k / 4 = 25k */
    const float t[] = {0, 10, 20, 30, 40};

    (void) state;
    assert_near(threshold_percentile(t, 5, -1.0f), 0.0, 0);     /* below table[0] */
    assert_near(threshold_percentile(t, 5, 0.0f), 0.0, 0);      /* = table[0], pos 0 */
    assert_near(threshold_percentile(t, 5, 5.0f), 12.5, 1e-9);  /* pos 0.5 */
    assert_near(threshold_percentile(t, 5, 20.0f), 50.0, 0);    /* exact, pos 2 */
    assert_near(threshold_percentile(t, 5, 25.0f), 62.5, 1e-9); /* pos 2.5 */
    assert_near(threshold_percentile(t, 5, 40.0f), 100.0, 0);   /* = last */
    assert_near(threshold_percentile(t, 5, 50.0f), 100.0, 0);   /* above */
}

static void test_percentile_lookup_counts_a_run_of_equal_entries_as_its_upper_end(void **state)
{
    /* table 1 2 2 2 3: entries 1..3 equal 2, so a score of 2 is at position 3 (75%): the
     * share of validation scores <= 2, not the first entry's 25% */
    const float t[] = {1, 2, 2, 2, 3};
    /* a run at the bottom: 0 0 0 1 2, a score of 0 sits at position 2 (50%) */
    const float low[] = {0, 0, 0, 1, 2};

    (void) state;
    assert_near(threshold_percentile(t, 5, 0.5f), 0.0, 0);
    assert_near(threshold_percentile(t, 5, 1.0f), 0.0, 0);
    assert_near(threshold_percentile(t, 5, 1.5f), 12.5, 1e-9); /* pos 0.5 */
    assert_near(threshold_percentile(t, 5, 2.0f), 75.0, 0);    /* pos 3 */
    assert_near(threshold_percentile(t, 5, 2.5f), 87.5, 1e-9); /* pos 3.5 */
    assert_near(threshold_percentile(t, 5, 3.0f), 100.0, 0);
    assert_near(threshold_percentile(low, 5, 0.0f), 50.0, 0);
    assert_near(threshold_percentile(low, 5, 0.5f), 62.5, 1e-9); /* pos 2.5 */
}

static void test_percentile_lookup_inverts_the_table_it_was_built_from(void **state)
{
    float s[100], t[1001];

    (void) state;
    for (int i = 0; i < 100; i++)
        s[i] = (float) (i + 1);
    assert_int_equal(threshold_percentile_table(s, 100, t, 1001), 0);
    /* the median of 1..100 is 50.5, entry 500, i.e. the 50th percentile */
    assert_near(t[500], 50.5f, 1e-5);
    assert_near(threshold_percentile(t, 1001, 50.5f), 50.0, 1e-9);
    /* q = 0.99 is 99.01 (see the quantile test), entry 990 */
    assert_near(threshold_percentile(t, 1001, t[990]), 99.0, 1e-9);
    assert_near(threshold_percentile(t, 1001, 1.0f), 0.0, 0);
    assert_near(threshold_percentile(t, 1001, 100.0f), 100.0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile_q_0_99_over_1_to_100_is_99_01),
        cmocka_unit_test(test_quantile_interpolates_between_order_statistics),
        cmocka_unit_test(test_quantile_q_1_is_the_maximum_exactly),
        cmocka_unit_test(test_quantile_of_one_score_is_that_score),
        cmocka_unit_test(test_quantile_on_an_order_statistic_ignores_an_infinite_neighbour),
        cmocka_unit_test(test_quantile_leaves_its_input_alone),
        cmocka_unit_test(test_quantile_rejects_bad_arguments),
        cmocka_unit_test(test_f1_threshold_separates_separable_classes_halfway),
        cmocka_unit_test(test_f1_threshold_picks_the_best_cut_when_classes_overlap),
        cmocka_unit_test(test_f1_tie_prefers_the_higher_threshold),
        cmocka_unit_test(test_f1_can_flag_everything_with_a_threshold_below_the_minimum),
        cmocka_unit_test(test_f1_keeps_equal_scores_on_one_side_of_the_cut),
        cmocka_unit_test(test_f1_threshold_between_adjacent_floats_still_separates),
        cmocka_unit_test(test_f1_single_class_is_reported_not_guessed),
        cmocka_unit_test(test_f1_rejects_bad_arguments),
        cmocka_unit_test(test_f1_leaves_its_input_alone),
        cmocka_unit_test(test_percentile_table_holds_evenly_spaced_quantiles),
        cmocka_unit_test(test_percentile_table_interpolates_between_two_scores),
        cmocka_unit_test(test_percentile_table_rejects_bad_arguments),
        cmocka_unit_test(test_percentile_table_leaves_its_input_alone),
        cmocka_unit_test(test_percentile_lookup_below_above_exact_and_between),
        cmocka_unit_test(test_percentile_lookup_counts_a_run_of_equal_entries_as_its_upper_end),
        cmocka_unit_test(test_percentile_lookup_inverts_the_table_it_was_built_from),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
