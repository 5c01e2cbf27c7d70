/* Unit tests for evaluate: ROC AUC (Mann-Whitney, ties = 1/2), average precision
 * (scikit-learn's average_precision_score) and the confusion matrix at a threshold.
 * Expected values are worked out by hand in the comments; a randomized test checks both
 * curves against O(n^2) definitions.
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

#include "aescore/evaluate.h"

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

static void test_roc_and_pr_auc_match_the_scikit_learn_doc_example(void **state)
{
    /* y = [0 0 1 1], s = [0.1 0.4 0.35 0.8]
     * ROC: positive-negative pairs (0.35,0.1)=1 (0.35,0.4)=0 (0.8,0.1)=1 (0.8,0.4)=1 -> 3/4
     * AP, descending: 0.8(1): P=1, R=1/2 -> 1/2 * 1; 0.4(0): R unchanged;
     *   0.35(1): P=2/3, R=1 -> 1/2 * 2/3 = 1/3; total 5/6 = 0.8333... */
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const unsigned char y[] = {0, 0, 1, 1};
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(s, y, 4, 0.5f, &r), 0);
    assert_near(r.roc_auc, 0.75, 1e-12);
    assert_near(r.pr_auc, 5.0 / 6.0, 1e-12);
}

static void test_roc_auc_counts_a_tied_pair_as_one_half(void **state)
{
    /* y = [0 0 1 1], s = [0.1 0.5 0.5 0.9]
     * pairs (0.5,0.1)=1 (0.5,0.5)=1/2 (0.9,0.1)=1 (0.9,0.5)=1 -> 3.5/4 = 0.875
     * AP: 0.9(1): P=1, R=1/2 -> 1/2; the 0.5 group is one step: TP=2 FP=1, P=2/3, R=1
     *   -> 1/2 * 2/3; total 5/6 */
    const float s[] = {0.5f, 0.9f, 0.1f, 0.5f};
    const unsigned char y[] = {0, 1, 0, 1};
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(s, y, 4, 0.5f, &r), 0);
    assert_near(r.roc_auc, 0.875, 1e-12);
    assert_near(r.pr_auc, 5.0 / 6.0, 1e-12);
}

static void test_perfect_ranking_scores_one(void **state)
{
    /* every anomaly above every normal: AUC 1; AP: precision 1 at every recall step -> 1 */
    const float s[] = {0.1f, 0.2f, 0.8f, 0.9f, 0.3f};
    const unsigned char y[] = {0, 0, 1, 1, 0};
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(s, y, 5, 0.5f, &r), 0);
    assert_near(r.roc_auc, 1.0, 0);
    assert_near(r.pr_auc, 1.0, 0);
}

static void test_inverted_ranking_scores_zero(void **state)
{
    /* every anomaly below every normal: AUC 0
     * AP, descending: 0.9(0) 0.8(0) add nothing; 0.2(1): TP1 FP2, P=1/3, R=1/2 -> 1/6;
     *   0.1(1): TP2 FP2, P=1/2, R=1 -> 1/4; total 5/12 */
    const float s[] = {0.9f, 0.8f, 0.2f, 0.1f};
    const unsigned char y[] = {0, 0, 1, 1};
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(s, y, 4, 0.5f, &r), 0);
    assert_near(r.roc_auc, 0.0, 0);
    assert_near(r.pr_auc, 5.0 / 12.0, 1e-12);
}

static void test_all_tied_scores_give_auc_one_half(void **state)
{
    /* one group: every pair is a tie -> 1/2; AP is one step to R=1 at P = 1 anomaly / 4 */
    const float s[] = {0.3f, 0.3f, 0.3f, 0.3f};
    const unsigned char y[] = {0, 1, 0, 0};
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(s, y, 4, 0.5f, &r), 0);
    assert_near(r.roc_auc, 0.5, 0);
    assert_near(r.pr_auc, 0.25, 0);
}

static void test_single_class_returns_the_code_and_leaves_the_report_alone(void **state)
{
    const float s[] = {0.1f, 0.2f, 0.3f};
    const unsigned char normal[] = {0, 0, 0};
    const unsigned char anomalous[] = {1, 1, 1};
    EvalReport r, before;

    (void) state;
    memset(&r, 0x5a, sizeof(r));
    before = r;
    assert_int_equal(evaluate(s, normal, 3, 0.15f, &r), EVALUATE_E_SINGLE_CLASS);
    assert_int_equal(evaluate(s, anomalous, 3, 0.15f, &r), EVALUATE_E_SINGLE_CLASS);
    /* no NaN AUC written: the report is exactly as it was */
    assert_memory_equal(&r, &before, sizeof(r));
}

static void test_rejects_empty_and_malformed_input(void **state)
{
    const float s[] = {0.1f, 0.2f};
    const float with_nan[] = {0.1f, NAN};
    const unsigned char y[] = {0, 1};
    const unsigned char not_binary[] = {0, 2};
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(s, y, 0, 0.5f, &r), -EINVAL);
    assert_int_equal(evaluate(NULL, y, 2, 0.5f, &r), -EINVAL);
    assert_int_equal(evaluate(s, NULL, 2, 0.5f, &r), -EINVAL);
    assert_int_equal(evaluate(s, y, 2, 0.5f, NULL), -EINVAL);
    assert_int_equal(evaluate(with_nan, y, 2, 0.5f, &r), -EINVAL);
    assert_int_equal(evaluate(s, not_binary, 2, 0.5f, &r), -EINVAL);
    assert_int_equal(evaluate(s, y, 2, NAN, &r), -EINVAL);
}

/* 0.1(0) 0.2(0) 0.3(1) 0.4(0) 0.5(1) 0.6(1), shuffled */
static const float mixed_s[] = {0.4f, 0.1f, 0.6f, 0.3f, 0.5f, 0.2f};
static const unsigned char mixed_y[] = {0, 0, 1, 1, 1, 0};

static void test_counts_and_rates_at_a_threshold_between_scores(void **state)
{
    /* t = 0.35 flags 0.4(0) 0.5(1) 0.6(1): TP2 FP1; not flagged 0.1 0.2 (TN2), 0.3(1) (FN1)
     * precision 2/3, recall 2/3, F1 = 4/(4+1+1) = 2/3, accuracy (2+2)/6 = 2/3 */
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(mixed_s, mixed_y, 6, 0.35f, &r), 0);
    assert_int_equal(r.rows, 6);
    assert_int_equal(r.anomalies, 3);
    assert_int_equal(r.tp, 2);
    assert_int_equal(r.fp, 1);
    assert_int_equal(r.tn, 2);
    assert_int_equal(r.fn, 1);
    assert_near(r.precision, 2.0 / 3.0, 1e-12);
    assert_near(r.recall, 2.0 / 3.0, 1e-12);
    assert_near(r.f1, 2.0 / 3.0, 1e-12);
    assert_near(r.accuracy, 4.0 / 6.0, 1e-12);
    assert_true(r.threshold == 0.35f);
}

static void test_a_score_equal_to_the_threshold_is_not_flagged(void **state)
{
    /* t = 0.4: "score > t" flags 0.5(1) 0.6(1) only: TP2 FP0 FN1 TN3
     * precision 1, recall 2/3, F1 = 4/(4+0+1) = 0.8, accuracy 5/6 */
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(mixed_s, mixed_y, 6, 0.4f, &r), 0);
    assert_int_equal(r.tp, 2);
    assert_int_equal(r.fp, 0);
    assert_int_equal(r.tn, 3);
    assert_int_equal(r.fn, 1);
    assert_near(r.precision, 1.0, 0);
    assert_near(r.recall, 2.0 / 3.0, 1e-12);
    assert_near(r.f1, 0.8, 1e-12);
    assert_near(r.accuracy, 5.0 / 6.0, 1e-12);
}

static void test_precision_is_zero_when_nothing_is_flagged(void **state)
{
    /* t = 1 flags nothing: TP0 FP0 TN3 FN3 -> precision 0 (not 0/0), recall 0, F1 0,
     * accuracy 1/2; the AUCs do not depend on the threshold */
    EvalReport r;

    (void) state;
    assert_int_equal(evaluate(mixed_s, mixed_y, 6, 1.0f, &r), 0);
    assert_int_equal(r.tp + r.fp, 0);
    assert_int_equal(r.tn, 3);
    assert_int_equal(r.fn, 3);
    assert_near(r.precision, 0.0, 0);
    assert_near(r.recall, 0.0, 0);
    assert_near(r.f1, 0.0, 0);
    assert_near(r.accuracy, 0.5, 0);
    /* ROC: anomalies 0.3 0.5 0.6 vs normals 0.1 0.2 0.4: wins 2 + 3 + 3 = 8 of 9 */
    assert_near(r.roc_auc, 8.0 / 9.0, 1e-12);
    /* AP: 0.6(1) P1 R1/3; 0.5(1) P1 R2/3; 0.4(0); 0.3(1) P3/4 R1
     *   -> 1/3 + 1/3 + 1/3 * 3/4 = 11/12 */
    assert_near(r.pr_auc, 11.0 / 12.0, 1e-12);
}

static void test_evaluate_leaves_its_input_alone(void **state)
{
    float s[ARRAY_LEN(mixed_s)];
    unsigned char y[ARRAY_LEN(mixed_y)];
    EvalReport r;

    (void) state;
    memcpy(s, mixed_s, sizeof(s));
    memcpy(y, mixed_y, sizeof(y));
    assert_int_equal(evaluate(s, y, ARRAY_LEN(s), 0.35f, &r), 0);
    assert_memory_equal(s, mixed_s, sizeof(s));
    assert_memory_equal(y, mixed_y, sizeof(y));
}

/* ------------------------------------------------------------------- randomized check */

static uint64_t rng_next(uint64_t *x)
{
    /* xorshift64*: deterministic across libcs, unlike rand() */
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1DULL;
}

static double rng_uniform(uint64_t *x)
{
    return (double) (rng_next(x) >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* The definition: the share of (anomaly, normal) pairs ranked right, ties counting 1/2. */
static double pairwise_roc_auc(const float *s, const unsigned char *y, size_t n)
{
    double wins = 0, pairs = 0;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (!y[i] || y[j])
                continue;
            pairs += 1;
            wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
        }
    }
    return wins / pairs;
}

/* AP as a sum over distinct scores t of (R(>= t) - R(> t)) * P(>= t); the terms do not
 * depend on the order in which the distinct scores are visited, so no sort is needed. */
static double brute_average_precision(const float *s, const unsigned char *y, size_t n)
{
    double ap = 0, pos = 0;

    for (size_t i = 0; i < n; i++)
        pos += y[i];
    for (size_t i = 0; i < n; i++) {
        double tp_ge = 0, fp_ge = 0, tp_gt = 0;
        int first = 1;

        for (size_t j = 0; j < i; j++)
            if (s[j] == s[i])
                first = 0;
        if (!first)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (s[j] >= s[i]) {
                tp_ge += y[j];
                fp_ge += !y[j];
            }
            if (s[j] > s[i])
                tp_gt += y[j];
        }
        ap += (tp_ge - tp_gt) / pos * (tp_ge / (tp_ge + fp_ge));
    }
    return ap;
}

static void test_random_rounded_scores_agree_with_the_pairwise_definitions(void **state)
{
    enum { N = 400, TRIALS = 8 };
    static float s[N];
    static unsigned char y[N];
    uint64_t seed = 0x9E3779B97F4A7C15ULL;

    (void) state;
    for (int trial = 0; trial < TRIALS; trial++) {
        size_t n = 200 + (size_t) (rng_next(&seed) % (N - 200 + 1));
        double p_anomaly = 0.05 + 0.5 * rng_uniform(&seed);
        size_t pos = 0;
        EvalReport r;

        for (size_t i = 0; i < n; i++) {
            /* two decimals: about 100 distinct values, so many cross-class ties */
            y[i] = rng_uniform(&seed) < p_anomaly;
            s[i] = (float) (round((rng_uniform(&seed) + 0.3 * y[i]) * 100.0) / 100.0);
            pos += y[i];
        }
        if (pos == 0 || pos == n) {
            y[0] = !y[0];
        }
        assert_int_equal(evaluate(s, y, n, 0.5f, &r), 0);
        assert_near(r.roc_auc, pairwise_roc_auc(s, y, n), 1e-12);
        assert_near(r.pr_auc, brute_average_precision(s, y, n), 1e-12);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roc_and_pr_auc_match_the_scikit_learn_doc_example),
        cmocka_unit_test(test_roc_auc_counts_a_tied_pair_as_one_half),
        cmocka_unit_test(test_perfect_ranking_scores_one),
        cmocka_unit_test(test_inverted_ranking_scores_zero),
        cmocka_unit_test(test_all_tied_scores_give_auc_one_half),
        cmocka_unit_test(test_single_class_returns_the_code_and_leaves_the_report_alone),
        cmocka_unit_test(test_rejects_empty_and_malformed_input),
        cmocka_unit_test(test_counts_and_rates_at_a_threshold_between_scores),
        cmocka_unit_test(test_a_score_equal_to_the_threshold_is_not_flagged),
        cmocka_unit_test(test_precision_is_zero_when_nothing_is_flagged),
        cmocka_unit_test(test_evaluate_leaves_its_input_alone),
        cmocka_unit_test(test_random_rounded_scores_agree_with_the_pairwise_definitions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
