/* metrics: counters and histograms, rendered as Prometheus text.
 *
 * Counters touched on the request path are relaxed C11 atomics: they only need to be exact
 * eventually, not ordered with anything. A histogram is different: its buckets, _sum and
 * _count must come from one snapshot, or a scrape taken under load shows a _count above
 * the +Inf bucket, which Prometheus reads as a broken histogram. So each histogram has a
 * mutex, held for one observation (or one batch of scores) and for the copy a scrape takes;
 * _count is the sum of the buckets of that copy. Buckets are kept per bucket and made
 * cumulative when rendering. Status codes are folded into a fixed set
 * (plus "other") and endpoints are a fixed list, so the label cardinality is bounded no
 * matter what clients send.
 */
#include "aescore/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const unsigned status_codes[] = {200, 202, 400, 401, 404, 405, 409,
                                        413, 414, 415, 422, 500, 503};
#define N_CODES (sizeof(status_codes) / sizeof(status_codes[0]))

/* request durations: scoring is sub-millisecond, so start at 100 us */
static const double duration_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,    0.1,    0.25,  1,      5};
#define N_DURATION (sizeof(duration_bounds) / sizeof(duration_bounds[0]))

/* scores are mean squared errors over standardised features */
static const double score_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5,   1,      2.5,   5,    10,    25,   100};
#define N_SCORE (sizeof(score_bounds) / sizeof(score_bounds[0]))

typedef struct Histogram {
    pthread_mutex_t lock; /* buckets and sum change, and are copied, together */
    uint64_t buckets[20]; /* per bucket, the last one is +Inf */
    double sum;
} Histogram;

struct Metrics {
    const char *const *endpoints;
    size_t n_endpoints;
    atomic_uint_fast64_t *requests; /* [endpoint][code index, N_CODES = other] */
    Histogram duration;
    Histogram score;
    atomic_uint_fast64_t records, anomalies;
    atomic_uint_fast64_t imputed, unseen; /* fields imputed, categories never seen */
};

int metrics_new(Metrics **out, const char *const *endpoints, size_t n_endpoints)
{
    Metrics *m;

    if (n_endpoints == 0 || n_endpoints > 64)
        return -EINVAL;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    m->requests = calloc(n_endpoints * (N_CODES + 1), sizeof(*m->requests));
    if (m->requests == NULL) {
        free(m);
        return -ENOMEM;
    }
    m->endpoints = endpoints;
    m->n_endpoints = n_endpoints;
    pthread_mutex_init(&m->duration.lock, NULL);
    pthread_mutex_init(&m->score.lock, NULL);
    *out = m;
    return 0;
}

Metrics *metrics_free(Metrics *m)
{
    if (m != NULL) {
        pthread_mutex_destroy(&m->duration.lock);
        pthread_mutex_destroy(&m->score.lock);
        free(m->requests);
        free(m);
    }
    return NULL;
}

/* One observation; the caller holds h->lock. */
static void observe_locked(Histogram *h, const double *bounds, size_t n, double v)
{
    size_t i = 0;

    while (i < n && !(v <= bounds[i]))
        i++;
    h->buckets[i]++;
    if (isfinite(v))
        h->sum += v;
}

void metrics_observe_request(Metrics *m, size_t endpoint, unsigned status, double seconds)
{
    size_t c = 0;

    if (endpoint >= m->n_endpoints)
        endpoint = m->n_endpoints - 1;
    while (c < N_CODES && status_codes[c] != status)
        c++;
    atomic_fetch_add_explicit(&m->requests[endpoint * (N_CODES + 1) + c], 1, memory_order_relaxed);
    pthread_mutex_lock(&m->duration.lock);
    observe_locked(&m->duration, duration_bounds, N_DURATION, seconds);
    pthread_mutex_unlock(&m->duration.lock);
}

void metrics_observe_scores(Metrics *m, const float *scores, size_t n, float threshold)
{
    uint_fast64_t anomalies = 0;

    pthread_mutex_lock(&m->score.lock);
    for (size_t i = 0; i < n; i++) {
        observe_locked(&m->score, score_bounds, N_SCORE, scores[i]);
        anomalies += scores[i] > threshold;
    }
    pthread_mutex_unlock(&m->score.lock);
    atomic_fetch_add_explicit(&m->records, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->anomalies, anomalies, memory_order_relaxed);
}

void metrics_observe_encoding(Metrics *m, size_t imputed, size_t unseen)
{
    if (imputed > 0)
        atomic_fetch_add_explicit(&m->imputed, imputed, memory_order_relaxed);
    if (unseen > 0)
        atomic_fetch_add_explicit(&m->unseen, unseen, memory_order_relaxed);
}

static uint64_t load(const atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void print_histogram(FILE *f, const char *name, const char *help, Histogram *h,
                            const double *bounds, size_t n)
{
    uint64_t buckets[20], cum = 0;
    double sum;

    pthread_mutex_lock(&h->lock);
    memcpy(buckets, h->buckets, (n + 1) * sizeof(*buckets));
    sum = h->sum;
    pthread_mutex_unlock(&h->lock);
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < n; i++) {
        cum += buckets[i];
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long) cum);
    }
    cum += buckets[n];
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long) cum);
    fprintf(f, "%s_sum %.17g\n", name, sum);
    fprintf(f, "%s_count %llu\n", name, (unsigned long long) cum);
}

static void print_gauge(FILE *f, const char *name, const char *help, double v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    if (isnan(v))
        fprintf(f, "%s NaN\n", name);
    else
        fprintf(f, "%s %.17g\n", name, v);
}

static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    long page = sysconf(_SC_PAGESIZE);
    int n;

    if (f == NULL)
        return NAN;
    n = fscanf(f, "%llu %llu", &size, &rss);
    fclose(f);
    if (n != 2 || page <= 0)
        return NAN;
    return (double) rss * (double) page;
}

static void print_counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
            (unsigned long long) v);
}

static void render_requests(FILE *f, Metrics *m)
{
    fputs("# HELP aescore_http_requests_total HTTP requests by endpoint and status code.\n"
          "# TYPE aescore_http_requests_total counter\n",
          f);
    for (size_t e = 0; e < m->n_endpoints; e++)
        for (size_t c = 0; c <= N_CODES; c++) {
            uint64_t v = load(&m->requests[e * (N_CODES + 1) + c]);
            if (v == 0)
                continue;
            if (c < N_CODES)
                fprintf(f, "aescore_http_requests_total{endpoint=\"%s\",code=\"%u\"} %llu\n",
                        m->endpoints[e], status_codes[c], (unsigned long long) v);
            else
                fprintf(f, "aescore_http_requests_total{endpoint=\"%s\",code=\"other\"} %llu\n",
                        m->endpoints[e], (unsigned long long) v);
        }
    print_histogram(f, "aescore_http_request_duration_seconds",
                    "Time from the first byte of a request to its completion.", &m->duration,
                    duration_bounds, N_DURATION);
}

static void render_scores(FILE *f, Metrics *m)
{
    print_counter(f, "aescore_records_scored_total", "Records scored.", load(&m->records));
    print_counter(f, "aescore_anomalies_total", "Records scored above the threshold.",
                  load(&m->anomalies));
    print_counter(f, "aescore_imputed_fields_total",
                  "Missing fields of scored records filled in with the model's fill values.",
                  load(&m->imputed));
    print_counter(f, "aescore_unseen_categories_total",
                  "Categories of scored records the model never saw (a data-drift signal).",
                  load(&m->unseen));
    print_histogram(f, "aescore_score", "Anomaly scores (mean squared reconstruction error).",
                    &m->score, score_bounds, N_SCORE);
}

static void render_model(FILE *f, const MetricsGauges *g)
{
    print_gauge(f, "aescore_model_version", "Version of the served model (0 = none).",
                g->has_model ? (double) g->model_version : 0);
    print_gauge(f, "aescore_model_age_seconds", "Seconds since the served model was created.",
                g->has_model ? g->model_age_seconds : NAN);
    /* info-style: the id is a label so dashboards can tell replicas serving different files */
    fputs("# HELP aescore_model_info The served model's identity (content hash), the same on "
          "every replica serving the same file.\n"
          "# TYPE aescore_model_info gauge\n",
          f);
    if (g->model_id != NULL)
        fprintf(f, "aescore_model_info{model_id=\"%s\"} 1\n", g->model_id);
    print_counter(f, "aescore_model_watch_errors_total",
                  "Replaced model files that failed to load or validate (follow mode); the "
                  "served model was kept.",
                  g->watch_errors);
    print_gauge(f, "aescore_model_watch_last_error_timestamp_seconds",
                "Unix time of the last failed model file (follow mode); 0 = none.",
                g->watch_last_error_time);
}

static void render_training(FILE *f, const MetricsGauges *g)
{
    fprintf(f,
            "# HELP aescore_training_jobs_total Finished training jobs by outcome.\n"
            "# TYPE aescore_training_jobs_total counter\n"
            "aescore_training_jobs_total{outcome=\"succeeded\"} %llu\n"
            "aescore_training_jobs_total{outcome=\"failed\"} %llu\n"
            "aescore_training_jobs_total{outcome=\"cancelled\"} %llu\n"
            "aescore_training_jobs_total{outcome=\"held\"} %llu\n",
            (unsigned long long) g->jobs_succeeded, (unsigned long long) g->jobs_failed,
            (unsigned long long) g->jobs_cancelled,
            (unsigned long long) (g->held_gate + g->held_manual));
    print_counter(f, "aescore_model_promotions_total",
                  "Candidates served: by a job whose gates passed, or by POST /model/promote.",
                  g->promotions);
    fprintf(f,
            "# HELP aescore_model_holds_total Candidates held instead of served, by reason.\n"
            "# TYPE aescore_model_holds_total counter\n"
            "aescore_model_holds_total{reason=\"gate\"} %llu\n"
            "aescore_model_holds_total{reason=\"manual\"} %llu\n",
            (unsigned long long) g->held_gate, (unsigned long long) g->held_manual);
    print_counter(f, "aescore_model_rollbacks_total",
                  "Models served again by POST /model/rollback.", g->rollbacks);
    print_gauge(f, "aescore_training_in_progress", "1 while a training job runs.",
                g->training_running ? 1 : 0);
    print_gauge(f, "aescore_training_duration_seconds", "Duration of the last finished job.",
                g->training_last_duration);
    print_gauge(f, "aescore_training_last_loss", "Training loss of the last finished job.",
                g->training_last_loss);
}

static void render_connections(FILE *f, const MetricsGauges *g)
{
    print_counter(f, "aescore_connections_evicted_total",
                  "Idle connections closed to admit new ones at max_connections.",
                  g->connections_evicted);
    print_counter(f, "aescore_connections_refused_total",
                  "Connections refused with 503 at max_connections.", g->connections_refused);
    print_counter(f, "aescore_connections_timed_out_total",
                  "Connections cut for sending headers or a body too slowly.",
                  g->connections_timed_out);
    print_counter(f, "aescore_connections_abandoned_total",
                  "Requests dropped because the client half-closed before its body was complete.",
                  g->connections_abandoned);
    print_gauge(f, "process_resident_memory_bytes", "Resident memory size in bytes.",
                resident_bytes());
}

int metrics_render(Metrics *m, const MetricsGauges *g, char **out, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    if (f == NULL)
        return -ENOMEM;
    render_requests(f, m);
    render_scores(f, m);
    render_model(f, g);
    render_training(f, g);
    render_connections(f, g);
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    *len = size;
    return 0;
}
