/* metrics: the exposition, and histograms that stay consistent under concurrent updates
 * (Prometheus rejects a histogram whose _count differs from its +Inf bucket). Also run
 * under ThreadSanitizer (suite concurrency). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aescore/metrics.h"

static const char *const endpoints[] = {"/score", "other"};

/* The value of the line that starts with prefix (exactly), or NAN. */
static double value_of(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

static char *render(Metrics *m)
{
    MetricsGauges g = {.training_last_loss = NAN};
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(metrics_render(m, &g, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

static void test_render_counts_requests_and_scores(void **state)
{
    Metrics *m = NULL;
    const float scores[] = {0.0005f, 0.3f, 7.0f, 1000.0f};
    char *text;
    (void) state;

    assert_int_equal(metrics_new(&m, endpoints, 2), 0);
    metrics_observe_request(m, 0, 200, 0.0002);
    metrics_observe_request(m, 0, 422, 0.003);
    metrics_observe_request(m, 7, 599, 0.5); /* out of range: the last endpoint, code other */
    metrics_observe_scores(m, scores, 4, 5.0f);
    text = render(m);
    assert_true(value_of(text, "aescore_http_requests_total{endpoint=\"/score\",code=\"200\"}") ==
                1);
    assert_true(value_of(text, "aescore_http_requests_total{endpoint=\"/score\",code=\"422\"}") ==
                1);
    assert_true(value_of(text, "aescore_http_requests_total{endpoint=\"other\",code=\"other\"}") ==
                1);
    assert_true(value_of(text, "aescore_http_request_duration_seconds_count") == 3);
    assert_true(value_of(text, "aescore_http_request_duration_seconds_bucket{le=\"0.00025\"}") ==
                1);
    assert_true(value_of(text, "aescore_records_scored_total") == 4);
    assert_true(value_of(text, "aescore_anomalies_total") == 2);
    assert_true(value_of(text, "aescore_score_bucket{le=\"0.001\"}") == 1);
    assert_true(value_of(text, "aescore_score_bucket{le=\"100\"}") == 3);
    assert_true(value_of(text, "aescore_score_bucket{le=\"+Inf\"}") == 4);
    assert_true(fabs(value_of(text, "aescore_score_sum") - (0.0005 + 0.3 + 7.0 + 1000.0)) < 1e-3);
    free(text);
    metrics_free(m);
}

typedef struct Load {
    Metrics *m;
    atomic_bool stop;
} Load;

static const float batch[8] = {0.001f, 0.01f, 0.1f, 1.0f, 10.0f, 0.002f, 0.3f, 50.0f};

static void *observe_until_stopped(void *arg)
{
    Load *l = arg;

    while (!atomic_load(&l->stop)) {
        metrics_observe_request(l->m, 0, 200, 0.0004);
        metrics_observe_scores(l->m, batch, 8, 1.0f);
    }
    return NULL;
}

/* Under four writers, every scrape shows _count equal to the +Inf bucket, cumulative
 * buckets that never decrease, and a _sum that fits the counts of that scrape. */
static void test_histograms_are_one_snapshot_under_load(void **state)
{
    Load l = {0};
    pthread_t threads[4];
    double per_batch = 0;
    (void) state;

    for (int i = 0; i < 8; i++)
        per_batch += (double) batch[i];
    assert_int_equal(metrics_new(&l.m, endpoints, 2), 0);
    atomic_init(&l.stop, false);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, observe_until_stopped, &l), 0);
    for (int scrape = 0; scrape < 300; scrape++) {
        char *text = render(l.m);
        double inf = value_of(text, "aescore_score_bucket{le=\"+Inf\"}");
        double count = value_of(text, "aescore_score_count");
        double sum = value_of(text, "aescore_score_sum");
        double dcount = value_of(text, "aescore_http_request_duration_seconds_count");
        double dinf = value_of(text, "aescore_http_request_duration_seconds_bucket{le=\"+Inf\"}");

        assert_true(count == inf);
        assert_true(dcount == dinf);
        /* each batch of 8 adds per_batch to the sum: the sum belongs to the same snapshot */
        assert_true(fmod(count, 8) == 0);
        assert_true(fabs(sum - count / 8 * per_batch) <= 1e-9 * (sum + 1));
        assert_true(value_of(text, "aescore_score_bucket{le=\"0.001\"}") <=
                    value_of(text, "aescore_score_bucket{le=\"0.0025\"}"));
        free(text);
    }
    atomic_store(&l.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    metrics_free(l.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_counts_requests_and_scores),
        cmocka_unit_test(test_histograms_are_one_snapshot_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
