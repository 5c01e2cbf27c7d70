/* api_model: GET /model, POST /model/reload, POST /model/rollback.
 *
 * GET describes the served model from one counted reference. Reload and rollback go
 * through the trainer, the only writer of the model file, so the file and the slot never
 * disagree; both keep the served model when they fail and say why.
 */
#include "http_internal.h"

#include <string.h>

static void put_version(HttpBuf *b, ModelSlot *slot, uint64_t version)
{
    Model *m = model_slot_acquire(slot, NULL);

    http_buf_printf(b, "{\"model_version\":%llu,\"model_id\":", (unsigned long long) version);
    if (m != NULL)
        http_buf_printf(b, "\"%s\"", m->meta.id);
    else
        http_buf_puts(b, "null");
    http_buf_puts(b, "}\n");
    model_unref(m);
}

enum MHD_Result api_model_get(HttpRequest *req)
{
    HttpServer *s = req->server;
    HttpBuf b = HTTP_BUF_INIT;
    uint64_t version = 0;
    Model *m;
    const ModelMeta *meta;

    m = model_slot_acquire(s->slot, &version);
    if (m == NULL)
        return http_reply_error(req, HTTP_E_NO_MODEL, NULL, "no model is being served yet");
    meta = &m->meta;
    http_buf_printf(&b, "{\"model_version\":%llu,\"model_id\":\"%s\",\"created\":%lld,",
                    (unsigned long long) version, meta->id, (long long) meta->created);
    http_buf_printf(&b, "\"n_features\":%zu,\"features\":[", m->n_features);
    for (size_t i = 0; i < m->n_features; i++) {
        if (i > 0)
            http_buf_put(&b, ",", 1);
        http_buf_json_string(&b, m->names[i], strlen(m->names[i]));
    }
    http_buf_printf(&b, "],\"input\":%zu,\"layers\":[", m->nn.sizes[0]);
    for (size_t l = 0; l < m->nn.n_layers; l++)
        http_buf_printf(&b, "%s{\"units\":%zu,\"activation\":\"%s\"}", l ? "," : "",
                        m->nn.sizes[l + 1], nn_activation_name(m->nn.act[l]));
    http_buf_printf(&b, "],\"parameters\":%zu,\"ensemble\":%zu,\"threshold\":", m->nn.n_params,
                    m->n_members);
    http_buf_json_float(&b, m->threshold);
    http_buf_printf(&b,
                    ",\"training\":{\"rows\":%llu,\"seed\":%llu,\"epochs_run\":%u,"
                    "\"best_epoch\":%u,\"train_loss\":",
                    (unsigned long long) meta->rows, (unsigned long long) meta->seed,
                    meta->epochs_run, meta->best_epoch);
    http_buf_json_float(&b, meta->train_loss);
    http_buf_puts(&b, ",\"val_loss\":");
    http_buf_json_float(&b, meta->val_loss);
    http_buf_puts(&b, ",\"threshold_quantile\":");
    if (meta->threshold_q > 0)
        http_buf_json_float(&b, meta->threshold_q);
    else
        http_buf_puts(&b, "null");
    http_buf_puts(&b, "}}\n");
    model_unref(m);
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_model_reload(HttpRequest *req)
{
    HttpServer *s = req->server;
    HttpBuf b = HTTP_BUF_INIT;
    uint64_t version = 0;
    char err[512] = "";
    int r;

    r = trainer_reload(s->trainer, &version, err, sizeof(err));
    if (r == TRAINER_E_MODEL)
        return http_reply_error(req, HTTP_E_MODEL_INVALID, NULL,
                                "the model file was not loaded (the served model is kept): %s",
                                err);
    if (r != 0)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "reload failed: %s",
                                err[0] ? err : strerror(r < 0 ? -r : r));
    put_version(&b, s->slot, version);
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_model_rollback(HttpRequest *req)
{
    HttpServer *s = req->server;
    HttpBuf b = HTTP_BUF_INIT;
    uint64_t version = 0;
    char err[512] = "";
    int r;

    if (s->config->role == CONFIG_ROLE_REPLICA)
        return api_reply_not_trainer(req); /* a rollback rewrites the shared model file */
    r = trainer_rollback(s->trainer, &version, err, sizeof(err));
    if (r == MODEL_SLOT_E_NO_PREVIOUS)
        return http_reply_error(req, HTTP_E_NO_PREVIOUS_MODEL, NULL,
                                "there is no previous model to roll back to");
    if (r != 0)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL,
                                "rollback failed (the served model is kept): %s",
                                err[0] ? err : strerror(r < 0 ? -r : r));
    put_version(&b, s->slot, version);
    return http_reply_json(req, 200, &b);
}
