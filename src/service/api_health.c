/* api_health: the operational endpoints, GET /health, /health/live and /metrics.
 *
 * /health is readiness (a model is served and we are not stopping) and is what a load
 * balancer polls; /health/live only says the process answers. /metrics samples the gauges
 * that other modules own (slot, trainer) at scrape time and hands them to metrics.c.
 */
#include "http_internal.h"

#include <math.h>

enum MHD_Result api_health(HttpRequest *req)
{
    HttpServer *s = req->server;
    HttpBuf b = HTTP_BUF_INIT;
    uint64_t version = 0;
    Model *m;
    enum MHD_Result ret;

    if (atomic_load(&s->stopping))
        return http_reply_error(req, HTTP_E_STOPPING, NULL, "the daemon is shutting down");
    m = model_slot_acquire(s->slot, &version);
    if (m == NULL)
        return http_reply_error(req, HTTP_E_NO_MODEL, NULL, "no model is being served yet");
    http_buf_printf(&b, "{\"status\":\"ok\",\"model_version\":%llu,\"model_id\":\"%s\"}\n",
                    (unsigned long long) version, m->meta.id);
    model_unref(m);
    ret = http_reply_json(req, 200, &b);
    return ret;
}

enum MHD_Result api_health_live(HttpRequest *req)
{
    HttpBuf b = HTTP_BUF_INIT;

    http_buf_puts(&b, "{\"status\":\"ok\"}\n");
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_metrics(HttpRequest *req)
{
    HttpServer *s = req->server;
    MetricsGauges g = {0};
    TrainerStatus st;
    uint64_t version = 0;
    Model *m;
    char *text = NULL;
    size_t len = 0;

    m = model_slot_acquire(s->slot, &version);
    if (m != NULL) {
        g.has_model = true;
        g.model_version = version;
        g.model_age_seconds = http_now_unix() - (double) m->meta.created;
        m = model_unref(m);
    }
    trainer_get_status(s->trainer, &st);
    g.jobs_succeeded = st.jobs_succeeded;
    g.jobs_failed = st.jobs_failed;
    g.jobs_cancelled = st.jobs_cancelled;
    g.training_last_duration = st.last_duration;
    g.training_last_loss =
        st.jobs_succeeded + st.jobs_failed + st.jobs_cancelled ? st.last_train_loss : NAN;
    g.training_running = st.state == TRAINER_RUNNING;
    if (metrics_render(s->metrics, &g, &text, &len) < 0)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    return http_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
