/* metrics: the daemon's counters and histograms, rendered as Prometheus text (format 0.0.4).
 *
 * Request counters are kept per endpoint (a small fixed set of label values given at
 * creation, never raw paths or record ids) and per status code. Counters are C11 atomics;
 * a histogram takes its own short lock, so that a scrape sees its buckets, _sum and _count
 * from one moment (_count always equals the +Inf bucket). Gauges that live elsewhere (the
 * served model, the trainer's counters) are passed in at render time, so this module knows
 * nothing about models.
 * Threads: metrics_observe_* and metrics_render may be called from any thread at once;
 * metrics_new/metrics_free from one thread while no other uses the object.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Metrics Metrics;

/* endpoints[n_endpoints]: label values for aescore_http_requests_total{endpoint=...}; the
 * strings must outlive the object. Returns 0, -EINVAL (n_endpoints 0 or > 64), -ENOMEM. */
int metrics_new(Metrics **out, const char *const *endpoints, size_t n_endpoints);

/* Accepts NULL; returns NULL. */
Metrics *metrics_free(Metrics *m);

/* One finished request: endpoint index (out of range counts as the last endpoint), HTTP
 * status, wall time in seconds. */
void metrics_observe_request(Metrics *m, size_t endpoint, unsigned status, double seconds);

/* n scored records: counts them, the anomalies among them, and the score histogram. */
void metrics_observe_scores(Metrics *m, const float *scores, size_t n, float threshold);

/* Fields imputed and categories never seen while reading scored records: a surge of
 * either is a data-drift signal. */
void metrics_observe_encoding(Metrics *m, size_t imputed, size_t unseen);

/* State owned by other modules, sampled by the caller at render time. */
typedef struct MetricsGauges {
    bool has_model;
    uint64_t model_version;
    double model_age_seconds; /* now - model created */
    uint64_t jobs_succeeded, jobs_failed, jobs_cancelled;
    /* the model lifecycle: candidates served, held by a gate or for manual promotion,
     * rollbacks */
    uint64_t promotions, held_gate, held_manual, rollbacks;
    double training_last_duration; /* seconds, 0 = none yet */
    double training_last_loss;     /* NaN = none yet */
    bool training_running;
    const char *model_id;         /* served model's id (hex, no escaping needed); NULL = none */
    uint64_t watch_errors;        /* follow mode: replaced files that failed to load */
    double watch_last_error_time; /* unix seconds of the last one, 0 = none */
    /* connection guard (http_guard.c): idle connections closed to admit new ones, new ones
     * refused with 503, connections cut for sending too slowly, requests dropped when the
     * client half-closed with its body incomplete */
    uint64_t connections_evicted, connections_refused, connections_timed_out;
    uint64_t connections_abandoned;
} MetricsGauges;

/* Renders every metric (plus process_resident_memory_bytes from /proc/self/statm) into a
 * new malloc'd NUL-terminated buffer (*out, *len; the caller frees it). 0 or -ENOMEM. */
int metrics_render(Metrics *m, const MetricsGauges *g, char **out, size_t *len);
