/* api_health: the operational endpoints, GET /health, /health/live and /metrics.
 *
 * /health is readiness (a model is served and we are not stopping) and is what a load
 * balancer polls; /health/live only says the process answers. /metrics samples the gauges
 * that other modules own (slot, trainer) at scrape time and hands them to metrics.c.
 */
#include "api.h"
#include "drift.h"
#include "http_guard.h"
#include "http_reply.h"
#include "status_page.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "aescore/util.h"

/* Follow mode: a bad replacement file keeps the served model (still ready, still 200) but
 * must not go unnoticed, so /health names it. */
static void put_watch(JsonBuf *b, HttpServer *s)
{
    WatcherStatus st;

    json_buf_printf(b, ",\"role\":\"%s\"",
                    s->config->role == CONFIG_ROLE_REPLICA ? "replica" : "trainer");
    if (s->watcher == NULL)
        return;
    watcher_get_status(s->watcher, &st);
    json_buf_printf(b, ",\"watch\":{\"reloads\":%llu,\"errors\":%llu,\"last_error\":",
                    (unsigned long long) st.reloads, (unsigned long long) st.errors);
    if (st.errors > 0) {
        json_buf_string(b, st.error, strlen(st.error));
        json_buf_puts(b, ",\"last_error_time\":");
        json_buf_double(b, st.error_time);
    } else {
        json_buf_puts(b, "null,\"last_error_time\":null");
    }
    json_buf_puts(b, "}");
}

enum MHD_Result api_health(HttpRequest *req)
{
    HttpServer *s = req->server;
    JsonBuf b = JSON_BUF_INIT;
    uint64_t version = 0;
    Model *m;
    enum MHD_Result ret;

    if (atomic_load(&s->stopping))
        return http_reply_error(req, HTTP_E_STOPPING, NULL, "the daemon is shutting down");
    m = model_slot_acquire(s->slot, &version);
    if (m == NULL)
        return http_reply_error(req, HTTP_E_NO_MODEL, NULL, "no model is being served yet");
    json_buf_printf(&b, "{\"status\":\"ok\",\"model_version\":%llu,\"model_id\":\"%s\"",
                    (unsigned long long) version, m->meta.id);
    model_unref(m);
    put_watch(&b, s);
    json_buf_puts(&b, "}\n");
    ret = http_reply_json(req, 200, &b);
    return ret;
}

enum MHD_Result api_health_live(HttpRequest *req)
{
    JsonBuf b = JSON_BUF_INIT;

    json_buf_puts(&b, "{\"status\":\"ok\"}\n");
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_metrics(HttpRequest *req)
{
    HttpServer *s = req->server;
    MetricsGauges g = {0};
    TrainerStatus st;
    HttpGuardCounts counts;
    uint64_t version = 0;
    Model *m;
    char *text = NULL;
    size_t len = 0;
    int r;

    m = model_slot_acquire(s->slot, &version);
    if (m != NULL) {
        g.has_model = true;
        g.model_version = version;
        g.model_age_seconds = util_now_wall() - (double) m->meta.created;
        g.model_id = m->meta.id; /* m is held until metrics_render is done */
    }
    trainer_get_status(s->trainer, &st);
    g.jobs_succeeded = st.jobs_succeeded;
    g.jobs_failed = st.jobs_failed;
    g.jobs_cancelled = st.jobs_cancelled;
    g.promotions = st.promotions;
    g.held_gate = st.held_gate;
    g.held_manual = st.held_manual;
    g.rollbacks = st.rollbacks;
    g.training_last_duration = st.last_duration;
    g.training_last_loss =
        st.jobs_succeeded + st.jobs_failed + st.jobs_cancelled + st.held_gate + st.held_manual
            ? st.last_train_loss
            : NAN;
    g.training_running = st.state == TRAINER_RUNNING;
    if (s->watcher != NULL) {
        WatcherStatus ws;

        watcher_get_status(s->watcher, &ws);
        g.watch_errors = ws.errors;
        g.watch_last_error_time = ws.error_time;
    }
    http_guard_counts(s->guard, &counts);
    g.connections_evicted = counts.evicted;
    g.connections_refused = counts.refused;
    g.connections_timed_out = counts.timed_out;
    g.connections_abandoned = counts.abandoned;
    r = metrics_render(s->metrics, &g, &text, &len);
    if (r == 0 && m != NULL && drift_metrics(s->drift, m, &text, &len) != 0)
        r = -ENOMEM;
    model_unref(m);
    if (r < 0)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    return http_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

enum MHD_Result api_drift(HttpRequest *req)
{
    HttpServer *s = req->server;
    JsonBuf b = JSON_BUF_INIT;
    Model *m = model_slot_acquire(s->slot, NULL);
    int r;

    if (m == NULL)
        return http_reply_error(req, HTTP_E_NO_MODEL, NULL, "no model is being served yet");
    r = drift_report(s->drift, m, &b);
    model_unref(m);
    if (r != 0) {
        json_buf_deinit(&b);
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    }
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_status_page(HttpRequest *req)
{
    return http_reply_page(req, (const char *) status_page_html, status_page_len, status_page_csp);
}
