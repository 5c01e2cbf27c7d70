/* Unit tests for model: one record scored alone equals the same record in a batch, the
 * per-feature errors equal a recomputation from the networks and add up to the score,
 * percentiles and flags agree with the threshold, validation rejects what must never be
 * served, references count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/model.h"
#include "aescore/threshold.h"
#include "aescore/train.h"
#include "train_fixture.h"

static Model *trained_with(size_t members, ModelReferenceKind reference)
{
    Dataset *ds = fixture_dataset(300, 30, 7, 21);
    TrainParams p;
    Model *m = NULL;
    char err[256];

    train_params_default(&p);
    p.epochs = 10;
    p.ensemble = members;
    p.reference = reference;
    p.reference_size = 100; /* fewer than the 270 training rows: a sample */
    assert_int_equal(train_model(ds, &p, 1700000000, NULL, NULL, NULL, &m, err, sizeof(err)), 0);
    dataset_free(ds);
    return m;
}

static Model *trained(size_t members)
{
    return trained_with(members, TRAIN_DEFAULT_REFERENCE);
}

/* The per-feature errors of raw record x recomputed outside model.c: standardise with the
 * model's scaler, reconstruct with each member's network, square the differences in the
 * standardised space and average over members, in double. want[m->n_features]. */
static void expected_feature_errors(const Model *m, const float *x, double *want)
{
    size_t f = m->n_features;
    float z[16];
    float *scratch = malloc(nn_scratch_size(&m->nn, 1) * sizeof(float));

    assert_true(f <= 16);
    assert_non_null(scratch);
    for (size_t i = 0; i < f; i++) {
        z[i] = (x[i] - m->mean[i]) / m->std[i];
        want[i] = 0;
    }
    for (size_t k = 0; k < m->n_members; k++) {
        const float *y = nn_forward(&m->nn, m->params + k * m->nn.n_params, z, 1, scratch);
        for (size_t i = 0; i < f; i++) {
            double d = (double) y[i] - (double) z[i];
            want[i] += d * d / (double) m->n_members;
        }
    }
    free(scratch);
}

static void test_single_and_batch_scores_are_identical(void **state)
{
    Model *m = trained(3);
    Dataset *ds = fixture_dataset(100, 37, 7, 22); /* 137 rows: more than one block */
    float *scores = malloc(ds->n_rows * sizeof(float));
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    float err[7];
    (void) state;

    model_score_batch(m, ds->x, ds->n_rows, scratch, scores);
    for (size_t r = 0; r < ds->n_rows; r++) {
        ModelScore s;
        model_score(m, ds->x + r * 7, scratch, err, &s);
        assert_memory_equal(&s.score, &scores[r], sizeof(float));
        assert_true(s.anomaly == (s.score > m->threshold));
        assert_true(s.threshold == m->threshold);
        assert_true(s.percentile >= 0 && s.percentile <= 100);
        double sum = 0;
        for (size_t i = 0; i < 7; i++)
            sum += err[i];
        /* top_features' errors add up to the reconstruction part, whatever the score */
        assert_true(fabs(sum / 7 - s.reconstruction) <= 1e-5 * (1 + s.reconstruction));
    }
    free(scores);
    free(scratch);
    dataset_free(ds);
    model_unref(m);
}

static void test_feature_errors_are_member_mean_squared_standardised_differences(void **state)
{
    Model *m = trained(3);
    Dataset *ds = fixture_dataset(40, 10, 7, 23); /* normal rows and anomalies */
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    float err[7];
    (void) state;

    for (size_t r = 0; r < ds->n_rows; r++) {
        ModelScore s;
        double want[7], want_score = 0;

        model_score(m, ds->x + r * 7, scratch, err, &s);
        expected_feature_errors(m, ds->x + r * 7, want);
        for (size_t i = 0; i < 7; i++) {
            if (fabs(err[i] - want[i]) > 1e-6 * want[i] + 1e-12)
                fail_msg("row %zu feature %zu: error %.9g, recomputed %.9g", r, i, (double) err[i],
                         want[i]);
            want_score += want[i] / 7;
        }
        /* and the reconstruction part is their mean */
        if (fabs(s.reconstruction - want_score) > 1e-6 * want_score + 1e-12)
            fail_msg("row %zu: mse %.9g, recomputed %.9g", r, (double) s.reconstruction,
                     want_score);
    }
    free(scratch);
    dataset_free(ds);
    model_unref(m);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* The neighbour part recomputed outside model.c, in double: standardise x, take the
 * distances to every reference row, average the MODEL_KNN_K smallest. */
static double expected_knn(const Model *m, const float *x)
{
    size_t f = m->n_features, n = m->ref.n;
    double *d = malloc(n * sizeof(*d)), z[16], s = 0;

    assert_true(f <= 16 && n >= MODEL_KNN_K);
    for (size_t i = 0; i < f; i++)
        z[i] = ((double) x[i] - m->mean[i]) / m->std[i];
    for (size_t j = 0; j < n; j++) {
        double t = 0;
        for (size_t i = 0; i < f; i++)
            t += (z[i] - m->ref.rows[j * f + i]) * (z[i] - m->ref.rows[j * f + i]);
        d[j] = sqrt(t);
    }
    qsort(d, n, sizeof(*d), cmp_double);
    for (size_t k = 0; k < MODEL_KNN_K; k++)
        s += d[k];
    free(d);
    return s / MODEL_KNN_K;
}

static void test_the_score_combines_the_standardised_logs_of_both_parts(void **state)
{
    Model *m = trained_with(2, MODEL_REFERENCE_ROWS);
    Dataset *ds = fixture_dataset(40, 10, 7, 24);
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    float *scores = malloc(ds->n_rows * sizeof(float));
    double above = 0;
    (void) state;

    assert_int_equal(m->ref.kind, MODEL_REFERENCE_ROWS);
    assert_int_equal(m->ref.n, 100);
    model_score_batch(m, ds->x, ds->n_rows, scratch, scores);
    for (size_t r = 0; r < ds->n_rows; r++) {
        ModelScore s;
        double knn = expected_knn(m, ds->x + r * 7), want;

        model_score(m, ds->x + r * 7, scratch, NULL, &s);
        if (fabs(s.neighbours - knn) > 1e-5 * (1 + knn))
            fail_msg("row %zu: knn %.9g, recomputed %.9g", r, (double) s.neighbours, knn);
        want = (log((double) s.reconstruction + MODEL_LOG_EPS) - m->ref.m1) / m->ref.s1 +
               (log(knn + MODEL_LOG_EPS) - m->ref.m2) / m->ref.s2;
        if (fabs(s.score - want) > 1e-4 * (1 + fabs(want)))
            fail_msg("row %zu: score %.9g, recomputed %.9g", r, (double) s.score, want);
        assert_memory_equal(&s.score, &scores[r], sizeof(float)); /* alone = in a batch */
        assert_true(s.anomaly == (s.score > m->threshold));
        above += ds->label[r] ? s.score : -s.score;
    }
    assert_true(above > 0); /* the anomalies score higher than the normal rows */
    /* threshold and table come from the same combined validation scores: the 0.99 quantile
     * is both; each part is standardised over them, so their median sits near 0 */
    assert_memory_equal(&m->threshold, &m->percentiles[990], sizeof(float));
    assert_true(fabs(m->percentiles[500]) < 1.5);
    free(scores);
    free(scratch);
    dataset_free(ds);
    model_unref(m);
}

static void test_without_a_reference_the_score_is_the_reconstruction_error(void **state)
{
    Model *m = trained_with(1, MODEL_REFERENCE_NONE);
    Dataset *ds = fixture_dataset(20, 5, 7, 25);
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    (void) state;

    assert_int_equal(m->ref.kind, MODEL_REFERENCE_NONE);
    assert_true(m->threshold >= 0);
    for (size_t r = 0; r < ds->n_rows; r++) {
        ModelScore s;
        model_score(m, ds->x + r * 7, scratch, NULL, &s);
        assert_memory_equal(&s.score, &s.reconstruction, sizeof(float));
        assert_true(s.neighbours == 0);
    }
    free(scratch);
    dataset_free(ds);
    model_unref(m);
}

static void test_centres_reference_holds_means_of_training_rows(void **state)
{
    Model *m = trained_with(1, MODEL_REFERENCE_CENTRES);
    (void) state;

    /* 270 training rows, 100 centres asked: at most 270 / 5, each a mean of >= 5 rows
     * (tests/unit/test_reference.c proves that from the rows) */
    assert_int_equal(m->ref.kind, MODEL_REFERENCE_CENTRES);
    assert_true(m->ref.n >= 1 && m->ref.n <= 270 / 5);
    model_unref(m);
}

static void test_percentile_grows_with_the_score(void **state)
{
    Model *m = trained(1);
    (void) state;

    double below = 0, prev = -1;
    for (size_t k = 0; k < MODEL_PERCENTILES; k += 50) {
        float s = m->percentiles[k];
        double pc = threshold_percentile(m->percentiles, MODEL_PERCENTILES, s);
        assert_true(pc >= prev);
        prev = pc;
        below = pc;
    }
    assert_true(below == 100.0);
    model_unref(m);
}

static void test_validate_rejects_what_must_not_be_served(void **state)
{
    Model *m = trained(1);
    (void) state;

    assert_int_equal(model_validate(m), 0);
    float saved = m->params[3];
    m->params[3] = NAN;
    assert_int_equal(model_validate(m), -EINVAL);
    m->params[3] = saved;
    m->std[1] = 0;
    assert_int_equal(model_validate(m), -EINVAL);
    m->std[1] = 1;
    m->percentiles[10] = m->percentiles[11] + 1;
    assert_int_equal(model_validate(m), -EINVAL);
    m->percentiles[10] = m->percentiles[11];
    m->threshold = INFINITY;
    assert_int_equal(model_validate(m), -EINVAL);
    m->threshold = 1;
    assert_int_equal(model_set_name(m, 2, "f0"), 0); /* a duplicate feature name */
    assert_int_equal(model_validate(m), -EINVAL);
    model_unref(m);
}

static void test_references_are_counted(void **state)
{
    Model *m = trained(1);
    (void) state;

    assert_ptr_equal(model_ref(m), m);
    assert_int_equal(atomic_load(&m->refs), 2);
    assert_null(model_unref(m));
    assert_int_equal(atomic_load(&m->refs), 1);
    assert_null(model_unref(m)); /* freed: the sanitizer build checks no leak, no reuse */
    assert_null(model_unref(NULL));
}

static void test_new_rejects_shapes_that_are_not_autoencoders(void **state)
{
    const size_t sizes[] = {4, 2, 3};
    const NnActivation acts[] = {NN_RELU, NN_LINEAR};
    Nn nn;
    Model *m = NULL;
    (void) state;

    assert_int_equal(nn_init(&nn, 2, sizes, acts), 0);
    assert_int_equal(model_new(&m, &nn, 1), -EINVAL);
    const size_t ae[] = {4, 2, 4};
    assert_int_equal(nn_init(&nn, 2, ae, acts), 0);
    assert_int_equal(model_new(&m, &nn, 0), -EINVAL);
    assert_int_equal(model_new(&m, &nn, MODEL_MAX_MEMBERS + 1), -EINVAL);
    assert_int_equal(model_new(&m, &nn, 2), 0);
    assert_int_equal(model_set_name(m, 4, "x"), -EINVAL);
    assert_int_equal(model_set_name(m, 0, ""), -EINVAL);
    model_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_and_batch_scores_are_identical),
        cmocka_unit_test(test_feature_errors_are_member_mean_squared_standardised_differences),
        cmocka_unit_test(test_the_score_combines_the_standardised_logs_of_both_parts),
        cmocka_unit_test(test_without_a_reference_the_score_is_the_reconstruction_error),
        cmocka_unit_test(test_centres_reference_holds_means_of_training_rows),
        cmocka_unit_test(test_percentile_grows_with_the_score),
        cmocka_unit_test(test_validate_rejects_what_must_not_be_served),
        cmocka_unit_test(test_references_are_counted),
        cmocka_unit_test(test_new_rejects_shapes_that_are_not_autoencoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
