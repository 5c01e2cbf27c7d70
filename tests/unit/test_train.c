/* Unit tests for train: determinism, keep-best early stopping, cancellation, divergence,
 * the use of labels, thresholds and parameter bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <time.h>

#include "aescore/evaluate.h"
#include "aescore/train.h"
#include "train_fixture.h"

static TrainParams small_params(void)
{
    TrainParams p;

    train_params_default(&p);
    p.hidden[0] = 8;
    p.hidden[1] = 2;
    p.hidden[2] = 8;
    p.n_hidden = 3;
    p.activation = NN_TANH;
    p.epochs = 30;
    p.batch = 32;
    p.lr = 3e-3f;
    p.patience = 5;
    p.ensemble = 1;
    p.seed = 7;
    return p;
}

static Model *train_ok(const Dataset *ds, const TrainParams *p, TrainProgressFn fn, void *ctx)
{
    Model *m = NULL;
    char err[256] = "";
    int r = train_model(ds, p, 1700000000, NULL, fn, ctx, &m, err, sizeof(err));

    if (r != 0)
        fail_msg("train_model returned %d: %s", r, err);
    assert_non_null(m);
    return m;
}

static void test_same_seed_gives_identical_models(void **state)
{
    Dataset *ds = fixture_dataset(400, 0, 6, 1);
    TrainParams p = small_params();
    (void) state;

    p.ensemble = 2;
    Model *a = train_ok(ds, &p, NULL, NULL), *b = train_ok(ds, &p, NULL, NULL);
    assert_memory_equal(a->params, b->params, 2 * a->nn.n_params * sizeof(float));
    assert_memory_equal(a->percentiles, b->percentiles, MODEL_PERCENTILES * sizeof(float));
    assert_true(a->threshold == b->threshold);
    assert_string_equal(a->meta.id, b->meta.id);

    p.seed = 8;
    Model *c = train_ok(ds, &p, NULL, NULL);
    assert_memory_not_equal(a->params, c->params, a->nn.n_params * sizeof(float));
    assert_string_not_equal(a->meta.id, c->meta.id);
    model_unref(a);
    model_unref(b);
    model_unref(c);
    dataset_free(ds);
}

static double monotonic_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

typedef struct Trace {
    size_t calls;
    double val[1000];
    size_t epoch[1000];
    size_t train_rows; /* rows an epoch trains on: set by trace_start */
    double last;       /* CLOCK_MONOTONIC at the start, then at the previous callback */
} Trace;

/* Resets t for a run on ds with p's validation split. */
static void trace_start(Trace *t, const Dataset *ds, const TrainParams *p)
{
    size_t normal = 0;

    memset(t, 0, sizeof(*t));
    for (size_t r = 0; r < ds->n_rows; r++)
        normal += ds->label == NULL || ds->label[r] == 0;
    /* train.h: the validation share of the normal rows is held out (rounded) */
    t->train_rows = normal - (size_t) lround((double) normal * p->validation_split);
    t->last = monotonic_seconds();
}

static void record(const TrainProgress *pr, void *ctx)
{
    Trace *t = ctx;
    double now = monotonic_seconds();

    assert_true(t->calls < 1000);
    assert_int_equal(pr->member, 0);
    t->val[t->calls] = pr->val_loss;
    t->epoch[t->calls] = pr->epoch;
    t->calls++;
    assert_int_equal(pr->epoch, t->calls);
    assert_true(isfinite(pr->train_loss));
    /* The epoch ran between the previous callback (or the start) and this one, so the time
     * its rate implies for the rows it trained cannot exceed what this test measured (1 us
     * of slack for the clock's rounding to double). A rate in the wrong unit or over fewer
     * rows than the epoch trained would not fit. */
    assert_true(isfinite(pr->rows_per_sec) && pr->rows_per_sec > 0);
    double implied = (double) t->train_rows / pr->rows_per_sec;
    if (implied > now - t->last + 1e-6)
        fail_msg("epoch %zu: %g rows/s over %zu rows implies %g s, but only %g s passed", pr->epoch,
                 pr->rows_per_sec, t->train_rows, implied, now - t->last);
    t->last = now;
}

static void test_early_stopping_keeps_the_best_epoch(void **state)
{
    Dataset *ds = fixture_dataset(300, 0, 6, 2);
    TrainParams p = small_params();
    static Trace t;
    (void) state;

    p.epochs = 400;
    p.patience = 3;
    p.lr = 0.05f; /* noisy enough to stop early */
    trace_start(&t, ds, &p);
    Model *m = train_ok(ds, &p, record, &t);
    assert_true(t.calls > p.patience + 1); /* the best epoch is not simply the first */
    size_t best = 0;
    for (size_t i = 1; i < t.calls; i++)
        if (t.val[i] < t.val[best])
            best = i;
    assert_int_equal(m->meta.epochs_run, t.calls);
    assert_int_equal(m->meta.best_epoch, best + 1);
    assert_true(t.calls < p.epochs);                  /* it stopped early */
    assert_int_equal(t.calls, best + 1 + p.patience); /* exactly patience after the best */
    assert_true(fabs(m->meta.val_loss - t.val[best]) <= 1e-6 * (1 + t.val[best]));

    /* The kept weights are those of the best epoch: the same run cut off right there (same
     * seed, same trajectory) ends with the very same parameters. */
    p.epochs = best + 1;
    p.patience = 0;
    Model *cut = train_ok(ds, &p, NULL, NULL);
    assert_memory_equal(cut->params, m->params, m->nn.n_params * sizeof(float));
    model_unref(cut);
    model_unref(m);
    dataset_free(ds);
}

static void test_patience_zero_runs_every_epoch(void **state)
{
    Dataset *ds = fixture_dataset(200, 0, 5, 3);
    TrainParams p = small_params();
    static Trace t;
    (void) state;

    p.epochs = 12;
    p.patience = 0;
    p.lr = 0.05f;
    trace_start(&t, ds, &p);
    Model *m = train_ok(ds, &p, record, &t);
    assert_int_equal(t.calls, 12);
    assert_int_equal(m->meta.epochs_run, 12);
    model_unref(m);
    dataset_free(ds);
}

static void cancel_after_two(const TrainProgress *pr, void *ctx)
{
    if (pr->epoch == 2)
        atomic_store((atomic_bool *) ctx, true);
}

static void test_cancel_flag_stops_training(void **state)
{
    Dataset *ds = fixture_dataset(200, 0, 5, 4);
    TrainParams p = small_params();
    atomic_bool cancel;
    Model *m = NULL;
    char err[256];
    (void) state;

    atomic_init(&cancel, true);
    assert_int_equal(train_model(ds, &p, 0, &cancel, NULL, NULL, &m, err, sizeof(err)),
                     TRAIN_E_CANCELLED);
    assert_null(m);
    atomic_store(&cancel, false);
    assert_int_equal(
        train_model(ds, &p, 0, &cancel, cancel_after_two, &cancel, &m, err, sizeof(err)),
        TRAIN_E_CANCELLED);
    assert_null(m);
    assert_string_equal(err, "cancelled");
    dataset_free(ds);
}

static void test_huge_learning_rate_is_reported_as_divergence(void **state)
{
    Dataset *ds = fixture_dataset(200, 0, 5, 5);
    TrainParams p = small_params();
    Model *m = NULL;
    char err[256];
    (void) state;

    p.activation = NN_RELU;
    p.lr = 1e6f; /* the largest rate train_params_check lets through */
    assert_int_equal(train_model(ds, &p, 0, NULL, NULL, NULL, &m, err, sizeof(err)),
                     TRAIN_E_DIVERGED);
    assert_null(m);
    assert_non_null(strstr(err, "diverged"));
    dataset_free(ds);
}

static void test_anomalies_are_left_out_of_training(void **state)
{
    Dataset *ds = fixture_dataset(250, 40, 6, 6);
    TrainParams p = small_params();
    (void) state;

    Model *m = train_ok(ds, &p, NULL, NULL);
    assert_int_equal(m->meta.rows, 250);
    /* the plane is learnt: anomalies score well above normal rows */
    float *scores = malloc(ds->n_rows * sizeof(float));
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    EvalReport rep;
    model_score_batch(m, ds->x, ds->n_rows, scratch, scores);
    assert_int_equal(evaluate(scores, ds->label, ds->n_rows, m->threshold, &rep), 0);
    assert_true(rep.roc_auc > 0.95);
    free(scores);
    free(scratch);
    model_unref(m);
    dataset_free(ds);
}

static void test_too_few_rows_is_an_input_error(void **state)
{
    Dataset *ds = fixture_dataset(TRAIN_MIN_ROWS - 1, 50, 4, 7);
    TrainParams p = small_params();
    Model *m = NULL;
    char err[256];
    (void) state;

    assert_int_equal(train_model(ds, &p, 0, NULL, NULL, NULL, &m, err, sizeof(err)), TRAIN_E_INPUT);
    assert_string_equal(err, "9 normal rows: at least 10 are needed");
    dataset_free(ds);
}

static void test_quantile_threshold_matches_the_percentile_table(void **state)
{
    Dataset *ds = fixture_dataset(500, 0, 6, 8);
    TrainParams p = small_params();
    (void) state;

    p.threshold_q = 0.9;
    Model *m = train_ok(ds, &p, NULL, NULL);
    /* both are quantiles of the same validation scores: q 0.9 is table entry 900 */
    assert_true(m->threshold == m->percentiles[900]);
    assert_true(fabsf(m->meta.threshold_q - 0.9f) < 1e-7f);
    for (size_t k = 1; k < MODEL_PERCENTILES; k++)
        assert_true(m->percentiles[k] >= m->percentiles[k - 1]);
    model_unref(m);
    dataset_free(ds);
}

static void test_f1_threshold_separates_labelled_anomalies(void **state)
{
    Dataset *ds = fixture_dataset(400, 40, 6, 9);
    TrainParams p = small_params();
    float *scores, *scratch;
    EvalReport rep;
    (void) state;

    p.threshold_method = THRESHOLD_F1;
    Model *m = train_ok(ds, &p, NULL, NULL);
    scores = malloc(ds->n_rows * sizeof(float));
    scratch = malloc(model_scratch_size(m) * sizeof(float));
    model_score_batch(m, ds->x, ds->n_rows, scratch, scores);
    assert_int_equal(evaluate(scores, ds->label, ds->n_rows, m->threshold, &rep), 0);
    assert_true(rep.f1 > 0.9);
    assert_true(m->meta.threshold_q == 0);
    free(scores);
    free(scratch);
    model_unref(m);

    /* without anomalies F1 is undefined: a clear input error */
    Dataset *normal_only = fixture_dataset(100, 0, 6, 10);
    char err[256];
    assert_int_equal(train_model(normal_only, &p, 0, NULL, NULL, NULL, &m, err, sizeof(err)),
                     TRAIN_E_INPUT);
    assert_non_null(strstr(err, "threshold-f1"));
    dataset_free(normal_only);
    dataset_free(ds);
}

static void test_explicit_threshold_is_kept(void **state)
{
    Dataset *ds = fixture_dataset(100, 0, 4, 11);
    TrainParams p = small_params();
    (void) state;

    p.threshold_method = THRESHOLD_EXPLICIT;
    p.threshold_value = 0.75f;
    Model *m = train_ok(ds, &p, NULL, NULL);
    assert_true(m->threshold == 0.75f);
    model_unref(m);
    dataset_free(ds);
}

static void test_constant_column_gets_unit_std(void **state)
{
    Dataset *ds = fixture_dataset(100, 0, 4, 12);
    TrainParams p = small_params();
    (void) state;

    for (size_t r = 0; r < ds->n_rows; r++)
        ds->x[r * 4 + 2] = 42.0f;
    Model *m = train_ok(ds, &p, NULL, NULL);
    assert_true(m->std[2] == 1.0f);
    assert_true(m->mean[2] == 42.0f);
    assert_int_equal(model_validate(m), 0);
    model_unref(m);
    dataset_free(ds);
}

static void test_params_out_of_bounds_are_rejected(void **state)
{
    char err[256];
    TrainParams p;
    (void) state;

#define REJECTS(field, value, message)                                                             \
    do {                                                                                           \
        p = small_params();                                                                        \
        p.field = value;                                                                           \
        assert_int_equal(train_params_check(&p, err, sizeof(err)), TRAIN_PARAMS_E_VALUE);          \
        assert_string_equal(err, message);                                                         \
    } while (0)
    REJECTS(epochs, 0, "epochs: must be 1..100000");
    REJECTS(batch, 0, "batch: must be 1..65536");
    REJECTS(lr, -1.0f, "lr: must be in (0, 1e+06]");
    REJECTS(lr, 2e6f, "lr: must be in (0, 1e+06]");
    REJECTS(lr, NAN, "lr: must be in (0, 1e+06]");
    REJECTS(validation_split, 1.0f, "validation_split: must be in (0, 1)");
    REJECTS(ensemble, 0, "ensemble: must be 1..16");
    REJECTS(threshold_q, 1.0, "threshold_quantile: must be in (0, 1)");
    REJECTS(hidden[1], 0, "hidden: at most 15 layers of sizes 1..4096");
#undef REJECTS
    p = small_params();
    assert_int_equal(train_params_check(&p, err, sizeof(err)), 0);
}

/* The estimate counts the network train_model builds, and the budget refuses at the
 * limit + 1 with both figures in the message. */
static void test_the_budget_counts_the_network_trained(void **state)
{
    Dataset *ds = fixture_dataset(400, 0, 6, 1);
    TrainParams p = small_params();
    TrainEstimate e;
    TrainBudget b = {0, 0};
    char err[512];
    uint64_t data_bytes = 400 * 6 * sizeof(float);
    (void) state;

    p.ensemble = 3;
    assert_int_equal(train_estimate(ds, &p, &e, err, sizeof(err)), 0);
    /* 6 -> 8 -> 2 -> 8 -> 6: (6*8+8) + (8*2+2) + (2*8+8) + (8*6+6) = 152, times 3 members */
    assert_int_equal(e.inputs, 6);
    assert_int_equal(e.parameters, 3 * 152);
    Model *m = train_ok(ds, &p, NULL, NULL);
    assert_int_equal(e.parameters, m->nn.n_params * m->n_members);
    model_unref(m);
    /* at least the data, the standardised copy and the four copies of the parameters */
    assert_true(e.memory >= 2 * data_bytes + 4 * 152 * sizeof(float));
    assert_true(e.memory < 64 * data_bytes);

    assert_int_equal(train_check_budget(ds, &p, &b, &e, err, sizeof(err)), 0);
    b.max_parameters = 456;
    assert_int_equal(train_check_budget(ds, &p, &b, &e, err, sizeof(err)), 0);
    b.max_parameters = 455;
    assert_int_equal(train_check_budget(ds, &p, &b, &e, err, sizeof(err)), TRAIN_E_BUDGET);
    assert_non_null(strstr(err, "would have 456 parameters, over max_train_parameters = 455"));
    b.max_parameters = 0;
    b.max_memory = e.memory;
    assert_int_equal(train_check_budget(ds, &p, &b, &e, err, sizeof(err)), 0);
    b.max_memory = e.memory - 1;
    assert_int_equal(train_check_budget(ds, &p, &b, &e, err, sizeof(err)), TRAIN_E_BUDGET);
    assert_non_null(strstr(err, "MiB at its peak, over max_train_memory = "));
    /* bad params are refused as train_model refuses them */
    p.epochs = 0;
    assert_int_equal(train_estimate(ds, &p, &e, err, sizeof(err)), TRAIN_E_INPUT);
    dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_gives_identical_models),
        cmocka_unit_test(test_early_stopping_keeps_the_best_epoch),
        cmocka_unit_test(test_patience_zero_runs_every_epoch),
        cmocka_unit_test(test_cancel_flag_stops_training),
        cmocka_unit_test(test_huge_learning_rate_is_reported_as_divergence),
        cmocka_unit_test(test_anomalies_are_left_out_of_training),
        cmocka_unit_test(test_too_few_rows_is_an_input_error),
        cmocka_unit_test(test_quantile_threshold_matches_the_percentile_table),
        cmocka_unit_test(test_f1_threshold_separates_labelled_anomalies),
        cmocka_unit_test(test_explicit_threshold_is_kept),
        cmocka_unit_test(test_constant_column_gets_unit_std),
        cmocka_unit_test(test_params_out_of_bounds_are_rejected),
        cmocka_unit_test(test_the_budget_counts_the_network_trained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
