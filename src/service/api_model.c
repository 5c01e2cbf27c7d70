/* api_model: GET /model, GET /models, POST /model/reload, /model/rollback, /model/promote.
 *
 * GET describes the served model from one counted reference. Reload and rollback go
 * through the trainer, the only writer of the model file, so the file and the slot never
 * disagree; both keep the served model when they fail and say why.
 */
#include "api.h"
#include "http_body.h"
#include "http_reply.h"

#include <string.h>

static void put_version(JsonBuf *b, ModelSlot *slot, uint64_t version)
{
    Model *m = model_slot_acquire(slot, NULL);

    json_buf_printf(b, "{\"model_version\":%llu,\"model_id\":", (unsigned long long) version);
    if (m != NULL)
        json_buf_printf(b, "\"%s\"", m->meta.id);
    else
        json_buf_puts(b, "null");
    json_buf_puts(b, "}\n");
    model_unref(m);
}

/* One object per field: {"name","kind":"numeric","mean","std","fill"} or
 * {"name","kind":"categorical","categories":[...],"other":bool,"fill":"<category>"}. */
static void put_schema_fields(JsonBuf *b, const Model *m)
{
    const Schema *sc = m->schema;

    for (size_t f = 0; f < sc->n_fields; f++) {
        const SchemaField *fd = &sc->fields[f];

        json_buf_puts(b, f > 0 ? ",{\"name\":" : "{\"name\":");
        json_buf_string(b, fd->name, strlen(fd->name));
        if (fd->kind == SCHEMA_NUMERIC) {
            json_buf_puts(b, ",\"kind\":\"numeric\",\"mean\":");
            json_buf_float(b, m->mean[fd->column]);
            json_buf_puts(b, ",\"std\":");
            json_buf_float(b, m->std[fd->column]);
            json_buf_puts(b, ",\"fill\":");
            json_buf_float(b, fd->fill);
            json_buf_put(b, "}", 1);
            continue;
        }
        const char *fill =
            (size_t) fd->fill < fd->n_categories ? fd->categories[(size_t) fd->fill] : SCHEMA_OTHER;
        json_buf_puts(b, ",\"kind\":\"categorical\",\"categories\":[");
        for (size_t k = 0; k < fd->n_categories; k++) {
            if (k > 0)
                json_buf_put(b, ",", 1);
            json_buf_string(b, fd->categories[k], strlen(fd->categories[k]));
        }
        json_buf_printf(b, "],\"other\":%s,\"fill\":", fd->has_other ? "true" : "false");
        json_buf_string(b, fill, strlen(fill));
        json_buf_put(b, "}", 1);
    }
}

/* How the score is made (model.h "The score"): {"parts":["reconstruction"],"reference":
 * "none"}, or with the neighbour term its reference and the validation moments of each
 * log part, "reconstruction":{"mean":m1,"std":s1} and "neighbours":{"mean":m2,"std":s2}. */
static void put_score(JsonBuf *b, const Model *m)
{
    const ModelReference *ref = &m->ref;

    if (ref->kind == MODEL_REFERENCE_NONE) {
        json_buf_puts(b, "{\"parts\":[\"reconstruction\"],\"reference\":\"none\"}");
        return;
    }
    json_buf_printf(b,
                    "{\"parts\":[\"reconstruction\",\"neighbours\"],\"reference\":\"%s\","
                    "\"reference_rows\":%zu,\"k\":%zu,\"reconstruction\":{\"mean\":",
                    model_reference_name(ref->kind), ref->n, model_knn_k(m));
    json_buf_float(b, ref->m1);
    json_buf_puts(b, ",\"std\":");
    json_buf_float(b, ref->s1);
    json_buf_puts(b, "},\"neighbours\":{\"mean\":");
    json_buf_float(b, ref->m2);
    json_buf_puts(b, ",\"std\":");
    json_buf_float(b, ref->s2);
    json_buf_puts(b, "}}");
}

enum MHD_Result api_model_get(HttpRequest *req)
{
    HttpServer *s = req->server;
    JsonBuf b = JSON_BUF_INIT;
    uint64_t version = 0;
    Model *m;
    const ModelMeta *meta;

    m = model_slot_acquire(s->slot, &version);
    if (m == NULL)
        return http_reply_error(req, HTTP_E_NO_MODEL, NULL, "no model is being served yet");
    meta = &m->meta;
    json_buf_printf(&b, "{\"model_version\":%llu,\"model_id\":\"%s\",\"created\":%lld,",
                    (unsigned long long) version, meta->id, (long long) meta->created);
    /* "features" are the record's fields, what clients send; "schema" says how each is read
     * and what a missing value becomes; "input" counts the network's columns */
    json_buf_printf(&b, "\"n_features\":%zu,\"features\":[", m->schema->n_fields);
    for (size_t f = 0; f < m->schema->n_fields; f++) {
        if (f > 0)
            json_buf_put(&b, ",", 1);
        json_buf_string(&b, m->schema->fields[f].name, strlen(m->schema->fields[f].name));
    }
    json_buf_puts(&b, "],\"schema\":[");
    put_schema_fields(&b, m);
    json_buf_puts(&b, "],\"ignored\":[");
    for (size_t i = 0; i < m->schema->n_ignored; i++) {
        if (i > 0)
            json_buf_put(&b, ",", 1);
        json_buf_string(&b, m->schema->ignored[i], strlen(m->schema->ignored[i]));
    }
    json_buf_printf(&b, "],\"input\":%zu,\"layers\":[", m->nn.sizes[0]);
    for (size_t l = 0; l < m->nn.n_layers; l++)
        json_buf_printf(&b, "%s{\"units\":%zu,\"activation\":\"%s\"}", l ? "," : "",
                        m->nn.sizes[l + 1], nn_activation_name(m->nn.act[l]));
    json_buf_printf(&b, "],\"parameters\":%zu,\"ensemble\":%zu,\"threshold\":", m->nn.n_params,
                    m->n_members);
    json_buf_float(&b, m->threshold);
    json_buf_printf(&b,
                    ",\"training\":{\"rows\":%llu,\"seed\":%llu,\"epochs_run\":%u,"
                    "\"best_epoch\":%u,\"train_loss\":",
                    (unsigned long long) meta->rows, (unsigned long long) meta->seed,
                    meta->epochs_run, meta->best_epoch);
    json_buf_float(&b, meta->train_loss);
    json_buf_puts(&b, ",\"val_loss\":");
    json_buf_float(&b, meta->val_loss);
    json_buf_puts(&b, ",\"threshold_quantile\":");
    if (meta->threshold_q > 0)
        json_buf_float(&b, meta->threshold_q);
    else
        json_buf_puts(&b, "null");
    json_buf_puts(&b, "},\"score\":");
    put_score(&b, m);
    json_buf_puts(&b, "}\n");
    model_unref(m);
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_model_reload(HttpRequest *req)
{
    HttpServer *s = req->server;
    JsonBuf b = JSON_BUF_INIT;
    uint64_t version = 0;
    char err[512] = "";
    int r;

    r = trainer_reload(s->trainer, &version, err, sizeof(err));
    if (r != 0) /* TRAINER_E_MODEL, the only failure */
        return http_reply_error(req, HTTP_E_MODEL_INVALID, NULL,
                                "the model file was not loaded (the served model is kept): %s",
                                err);
    put_version(&b, s->slot, version);
    return http_reply_json(req, 200, &b);
}

/* The optional body {"model_id": "..."} of promote and rollback: *id (NULL without a body,
 * else borrowed from *root, which the caller deletes). False when an error was queued. */
static bool model_id_body(HttpRequest *req, cJSON **root, const char **id, enum MHD_Result *ret)
{
    const cJSON *c;

    *root = NULL;
    *id = NULL;
    if (req->body_len == 0)
        return true;
    if (http_body_parse_json(req, root, ret) != HTTP_BODY_READY)
        return false;
    c = cJSON_IsObject(*root) ? (*root)->child : NULL;
    if (c == NULL || c->next != NULL || strcmp(c->string, "model_id") != 0 || !cJSON_IsString(c)) {
        *ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "the body must be empty or {\"model_id\": \"...\"}");
        return false;
    }
    *id = c->valuestring;
    return true;
}

/* Rollback and promote: the same shape of request and reply. */
static enum MHD_Result serve_model(HttpRequest *req, bool promote)
{
    HttpServer *s = req->server;
    JsonBuf b = JSON_BUF_INIT;
    uint64_t version = 0;
    char err[512] = "";
    cJSON *root;
    const char *id;
    enum MHD_Result ret;
    int r;

    if (s->config->role == CONFIG_ROLE_REPLICA)
        return api_reply_not_trainer(req); /* it would rewrite the shared model file */
    if (!model_id_body(req, &root, &id, &ret))
        return ret;
    r = promote ? trainer_promote(s->trainer, id, &version, err, sizeof(err))
                : trainer_rollback(s->trainer, id, &version, err, sizeof(err));
    cJSON_Delete(root);
    switch (r) {
    case 0:
        put_version(&b, s->slot, version);
        return http_reply_json(req, 200, &b);
    case TRAINER_E_NO_PREVIOUS:
        return http_reply_error(req, HTTP_E_NO_PREVIOUS_MODEL, NULL, "%s", err);
    case TRAINER_E_NO_CANDIDATE:
        return http_reply_error(req, HTTP_E_NO_CANDIDATE, NULL, "%s", err);
    case TRAINER_E_UNKNOWN:
        return http_reply_error(req, HTTP_E_UNKNOWN_MODEL, NULL, "%s", err);
    default: /* TRAINER_E_SAVE */
        return http_reply_error(req, HTTP_E_INTERNAL, NULL,
                                "%s failed (the served model is kept): %s",
                                promote ? "promotion" : "rollback", err);
    }
}

enum MHD_Result api_model_rollback(HttpRequest *req)
{
    return serve_model(req, false);
}

enum MHD_Result api_model_promote(HttpRequest *req)
{
    return serve_model(req, true);
}

enum MHD_Result api_models(HttpRequest *req)
{
    JsonBuf b = JSON_BUF_INIT;
    TrainerModel *list = NULL;
    const char *serving = NULL;
    size_t n = 0;

    if (trainer_models(req->server->trainer, &list, &n) != 0)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (list[i].state == TRAINER_MODEL_SERVING)
            serving = list[i].id;
    if (serving != NULL)
        json_buf_printf(&b, "{\"serving\":\"%s\"", serving);
    else
        json_buf_puts(&b, "{\"serving\":null");
    json_buf_puts(&b, ",\"models\":[");
    for (size_t i = 0; i < n; i++) {
        const TrainerModel *tm = &list[i];
        json_buf_printf(&b, "%s{\"model_id\":\"%s\",\"created\":%lld,\"source\":", i ? "," : "",
                        tm->id, (long long) tm->created);
        json_buf_string(&b, tm->source, strlen(tm->source));
        json_buf_printf(&b, ",\"state\":\"%s\",\"rows\":%llu,\"threshold\":",
                        trainer_model_state_name(tm->state), (unsigned long long) tm->rows);
        json_buf_float(&b, tm->threshold);
        json_buf_printf(&b, ",\"gates\":%s}", tm->gates != NULL ? tm->gates : "null");
    }
    json_buf_puts(&b, "]}\n");
    trainer_models_free(list, n);
    return http_reply_json(req, 200, &b);
}
