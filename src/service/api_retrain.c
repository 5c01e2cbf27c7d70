/* api_retrain: POST /retrain (start a job), GET /retrain (status), DELETE /retrain (cancel).
 *
 * POST turns the body into a Dataset (JSON records through records.c, or CSV through
 * dataset_parse_csv with an optional "label" column), applies the params over
 * train_params_default (JSON "params" object, or query parameters for CSV), checks the row
 * count, and hands both to the trainer, which answers at once: the job runs on its thread.
 * When a model is served the data must have its schema, and CSV columns are put in the
 * served order so "values" clients keep their meaning after the swap.
 * Nothing here logs record values: dataset error messages go to the client only.
 */
#include "api.h"
#include "http_body.h"
#include "http_reply.h"
#include "records.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/dataset.h"
#include "aescore/train.h"

/* ---- params ---- */

typedef struct ParamValue {
    const cJSON *json; /* JSON form, or NULL */
    const char *text;  /* query-string form, or NULL */
} ParamValue;

/* A number from either form; false when it is not one. */
static bool param_number(const ParamValue *v, double *out)
{
    char *end = NULL;

    if (v->json != NULL) {
        if (!cJSON_IsNumber(v->json) || !isfinite(v->json->valuedouble))
            return false;
        *out = v->json->valuedouble;
        return true;
    }
    if (v->text[0] == '\0')
        return false;
    errno = 0;
    *out = strtod(v->text, &end);
    return errno == 0 && *end == '\0' && isfinite(*out);
}

static bool param_uint(const ParamValue *v, double max, uint64_t *out)
{
    double d;

    if (!param_number(v, &d) || d < 0 || d > max || d != floor(d))
        return false;
    *out = (uint64_t) d;
    return true;
}

static const char *param_string(const ParamValue *v)
{
    if (v->json != NULL)
        return cJSON_IsString(v->json) ? v->json->valuestring : NULL;
    return v->text;
}

/* "64,16,64", [64,16,64] or "auto" */
static bool param_hidden(const ParamValue *v, TrainParams *p)
{
    size_t n = 0;
    const char *s;

    if (v->json != NULL && cJSON_IsArray(v->json)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v->json)
        {
            ParamValue ev = {e, NULL};
            uint64_t u;
            if (n >= NN_MAX_LAYERS - 1 || !param_uint(&ev, NN_MAX_WIDTH, &u) || u == 0)
                return false;
            p->hidden[n++] = (size_t) u;
        }
        if (n == 0)
            return false;
        p->n_hidden = n;
        return true;
    }
    s = param_string(v);
    if (s == NULL)
        return false;
    if (strcmp(s, "auto") == 0) {
        p->n_hidden = 0;
        return true;
    }
    while (*s != '\0') {
        char *end;
        unsigned long long u;

        if (*s < '0' || *s > '9' || n >= NN_MAX_LAYERS - 1)
            return false;
        errno = 0;
        u = strtoull(s, &end, 10);
        if (errno != 0 || u == 0 || u > NN_MAX_WIDTH)
            return false;
        p->hidden[n++] = (size_t) u;
        s = end;
        if (*s == ',' && s[1] != '\0')
            s++;
        else if (*s != '\0')
            return false;
    }
    if (n == 0)
        return false;
    p->n_hidden = n;
    return true;
}

/* Sets one param; false when the name is unknown or the value unusable (*unknown says
 * which). Bounds beyond "fits the field" are train_params_check's job. */
static bool apply_param(TrainParams *p, const char *name, const ParamValue *v, bool *unknown)
{
    uint64_t u;
    double d;

    *unknown = false;
    if (strcmp(name, "epochs") == 0) {
        if (!param_uint(v, 1e9, &u))
            return false;
        p->epochs = (size_t) u;
    } else if (strcmp(name, "batch") == 0) {
        if (!param_uint(v, 1e9, &u))
            return false;
        p->batch = (size_t) u;
    } else if (strcmp(name, "patience") == 0) {
        if (!param_uint(v, 1e9, &u))
            return false;
        p->patience = (size_t) u;
    } else if (strcmp(name, "ensemble") == 0) {
        if (!param_uint(v, 1e9, &u))
            return false;
        p->ensemble = (size_t) u;
    } else if (strcmp(name, "seed") == 0) {
        if (v->text != NULL) {
            char *end;
            unsigned long long s;
            if (v->text[0] < '0' || v->text[0] > '9')
                return false;
            errno = 0;
            s = strtoull(v->text, &end, 10);
            if (errno != 0 || *end != '\0')
                return false;
            p->seed = s;
        } else {
            if (!param_uint(v, 9007199254740992.0, &u))
                return false;
            p->seed = u;
        }
    } else if (strcmp(name, "lr") == 0) {
        if (!param_number(v, &d) || !(d > 0) || d > 1e6)
            return false;
        p->lr = (float) d;
    } else if (strcmp(name, "weight_decay") == 0) {
        if (!param_number(v, &d) || d < 0 || d > 1e6)
            return false;
        p->weight_decay = (float) d;
    } else if (strcmp(name, "validation_split") == 0) {
        if (!param_number(v, &d) || d < 0 || d > 1)
            return false;
        p->validation_split = (float) d;
    } else if (strcmp(name, "threshold_quantile") == 0) {
        if (!param_number(v, &d) || d < 0 || d > 1)
            return false;
        p->threshold_method = THRESHOLD_QUANTILE;
        p->threshold_q = d;
    } else if (strcmp(name, "threshold") == 0) {
        if (!param_number(v, &d) || d < 0 || d > 1e30)
            return false;
        p->threshold_method = THRESHOLD_EXPLICIT;
        p->threshold_value = (float) d;
    } else if (strcmp(name, "activation") == 0) {
        const char *s = param_string(v);
        NnActivation act;
        if (s == NULL || nn_activation_parse(s, &act) < 0 || act == NN_LINEAR)
            return false;
        p->activation = act;
    } else if (strcmp(name, "hidden") == 0) {
        return param_hidden(v, p);
    } else {
        *unknown = true;
        return false;
    }
    return true;
}

static enum MHD_Result reply_param(HttpRequest *req, const char *name, bool unknown)
{
    JsonBuf d = JSON_BUF_INIT;
    enum MHD_Result r;

    json_buf_puts(&d, "\"param\":");
    json_buf_string(&d, name, strlen(name));
    r = http_reply_error(req, HTTP_E_INVALID_REQUEST, d.oom ? NULL : d.data,
                         unknown ? "unknown training parameter"
                                 : "training parameter has an invalid value");
    json_buf_deinit(&d);
    return r;
}

typedef struct QueryCtx {
    TrainParams *p;
    const char *bad; /* first bad key (MHD's string, valid for the request) */
    bool unknown;
} QueryCtx;

static enum MHD_Result query_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    QueryCtx *q = cls;
    ParamValue v = {NULL, value ? value : ""};

    (void) kind;
    if (!apply_param(q->p, key, &v, &q->unknown)) {
        q->bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

/* ---- data ---- */

static size_t normal_rows(const Dataset *ds)
{
    size_t n = 0;

    if (ds->label == NULL)
        return ds->n_rows;
    for (size_t i = 0; i < ds->n_rows; i++)
        n += ds->label[i] == 0;
    return n;
}

/* Puts ds's columns in the order order[0..n_cols-1] (old indexes), text cells included. */
static int reorder_columns(Dataset *ds, const size_t *order)
{
    size_t nc = ds->n_cols, cells = ds->n_rows * nc;
    char **names = malloc(nc * sizeof(*names));
    float *x = malloc((cells ? cells : 1) * sizeof(*x));
    unsigned char *is_text = ds->is_text != NULL ? malloc(nc) : NULL;
    const char **text = ds->text != NULL ? malloc(cells * sizeof(*text)) : NULL;

    if (names == NULL || x == NULL || (ds->is_text != NULL && is_text == NULL) ||
        (ds->text != NULL && text == NULL)) {
        free(names);
        free(x);
        free(is_text);
        free(text);
        return -ENOMEM;
    }
    for (size_t j = 0; j < nc; j++) {
        names[j] = ds->names[order[j]];
        if (is_text != NULL)
            is_text[j] = ds->is_text[order[j]];
    }
    for (size_t r = 0; r < ds->n_rows; r++)
        for (size_t j = 0; j < nc; j++) {
            x[r * nc + j] = ds->x[r * nc + order[j]];
            if (text != NULL)
                text[r * nc + j] = ds->text[r * nc + order[j]];
        }
    free(ds->names);
    free(ds->x);
    free(ds->is_text);
    free(ds->text);
    ds->names = names;
    ds->x = x;
    ds->is_text = is_text;
    ds->text = text;
    return 0;
}

static bool is_ignored(const Schema *sc, const char *name)
{
    for (size_t i = 0; i < sc->n_ignored; i++)
        if (strcmp(sc->ignored[i], name) == 0)
            return true;
    return false;
}

/* CSV columns against the served schema: every field required, nothing unknown (columns the
 * served model ignored may come along); fields put in served order, so clients sending
 * "values" arrays keep their meaning across the swap. */
static enum MHD_Result csv_to_schema(HttpRequest *req, const Model *m, Dataset **ds_io,
                                     bool *replied)
{
    const Schema *sc = m->schema;
    Dataset *ds = *ds_io;
    RecordIssues iss;
    size_t *order = NULL, next = 0;
    unsigned char *used = NULL;
    enum MHD_Result ret = MHD_YES;
    char *details;

    *replied = false;
    records_issues_init(&iss);
    for (size_t j = 0; j < ds->n_cols; j++)
        if (schema_field_index(sc, ds->names[j], strlen(ds->names[j])) < 0 &&
            !is_ignored(sc, ds->names[j]) && iss.n_unknown < RECORDS_MAX_NAMES) {
            json_buf_printf(&iss.unknown, "%s", iss.n_unknown ? "," : "");
            json_buf_string(&iss.unknown, ds->names[j], strlen(ds->names[j]));
            iss.n_unknown++;
        }
    order = calloc(ds->n_cols, sizeof(*order));
    used = calloc(ds->n_cols, 1);
    if (order == NULL || used == NULL)
        goto oom;
    for (size_t f = 0; f < sc->n_fields; f++) {
        size_t j = 0;

        while (j < ds->n_cols && strcmp(sc->fields[f].name, ds->names[j]) != 0)
            j++;
        if (j == ds->n_cols) {
            if (iss.n_missing < RECORDS_MAX_NAMES) {
                json_buf_printf(&iss.missing, "%s", iss.n_missing ? "," : "");
                json_buf_string(&iss.missing, sc->fields[f].name, strlen(sc->fields[f].name));
                iss.n_missing++;
            }
            continue;
        }
        order[next++] = j;
        used[j] = 1;
        /* text where the served model reads numbers: a broken export, not a new category */
        if (sc->fields[f].kind == SCHEMA_NUMERIC && ds->is_text != NULL && ds->is_text[j] &&
            iss.n_invalid < RECORDS_MAX_NAMES) {
            json_buf_printf(&iss.invalid, "%s", iss.n_invalid ? "," : "");
            json_buf_string(&iss.invalid, ds->names[j], strlen(ds->names[j]));
            iss.n_invalid++;
        }
    }
    if (iss.n_missing || iss.n_unknown || iss.n_invalid) {
        details = records_issues_details(&iss);
        ret = http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, details,
                               "the CSV columns do not match the served model's features");
        free(details);
        *replied = true;
        goto done;
    }
    for (size_t j = 0; j < ds->n_cols; j++) /* the ignored columns, after the fields */
        if (!used[j])
            order[next++] = j;
    if (reorder_columns(ds, order) < 0)
        goto oom;
    goto done;

oom:
    ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    *replied = true;
done:
    free(order);
    free(used);
    records_issues_deinit(&iss);
    return ret;
}

/* JSON {"records": [...], "params": {...}} -> dataset + params. */
static enum MHD_Result json_to_dataset(HttpRequest *req, const Model *m, TrainParams *p,
                                       Dataset **out, bool *replied)
{
    cJSON *root = NULL;
    const cJSON *records = NULL, *params = NULL, *rec;
    char **names = NULL;
    size_t n_names = 0, n_rows = 0, i;
    Dataset *ds = NULL;
    RecordIssues iss;
    enum MHD_Result ret = MHD_YES;

    *replied = true;
    records_issues_init(&iss);
    if (http_body_parse_json(req, &root, &ret) != HTTP_BODY_READY)
        return ret;
    if (!cJSON_IsObject(root)) {
        ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                               "the body must be {\"records\": [...], \"params\": {...}}");
        goto done;
    }
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        if (strcmp(c->string, "records") == 0) {
            records = c;
        } else if (strcmp(c->string, "params") == 0) {
            params = c;
        } else {
            ret = reply_param(req, c->string, true);
            goto done;
        }
    }
    if (!cJSON_IsArray(records)) {
        ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                               "\"records\" must be an array of records");
        goto done;
    }
    if (params != NULL) {
        if (!cJSON_IsObject(params)) {
            ret =
                http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "\"params\" must be an object");
            goto done;
        }
        for (const cJSON *c = params->child; c != NULL; c = c->next) {
            ParamValue v = {c, NULL};
            bool unknown;
            if (!apply_param(p, c->string, &v, &unknown)) {
                ret = reply_param(req, c->string, unknown);
                goto done;
            }
        }
    }
    cJSON_ArrayForEach(rec, records) n_rows++;
    if (n_rows < req->server->config->min_retrain_rows || n_rows == 0) {
        ret = http_reply_error(req, HTTP_E_TOO_FEW_ROWS, NULL,
                               "%zu records; retraining needs at least %zu", n_rows,
                               req->server->config->min_retrain_rows);
        goto done;
    }
    if (m != NULL) {
        /* the served model's fields, then the columns it ignored (they may come along) */
        const Schema *sc = m->schema;
        n_names = sc->n_fields + sc->n_ignored;
        names = calloc(n_names, sizeof(*names));
        if (names == NULL)
            goto oom;
        for (i = 0; i < sc->n_fields; i++)
            names[i] = sc->fields[i].name;
        for (i = 0; i < sc->n_ignored; i++)
            names[sc->n_fields + i] = sc->ignored[i];
    } else { /* no served schema: the first record's feature names define it */
        const cJSON *first = records->child;
        const cJSON *f =
            cJSON_IsObject(first) ? cJSON_GetObjectItemCaseSensitive(first, "features") : NULL;
        if (!cJSON_IsObject(f) || f->child == NULL) {
            ret = http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, "\"indices\":[0]",
                                   "without a served model, records must name their features");
            goto done;
        }
        for (const cJSON *c = f->child; c != NULL; c = c->next)
            n_names++;
        if (n_names > MODEL_MAX_FEATURES) {
            ret = http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, NULL, "too many features");
            goto done;
        }
        names = calloc(n_names, sizeof(*names));
        if (names == NULL)
            goto oom;
        i = 0;
        for (const cJSON *c = f->child; c != NULL; c = c->next)
            names[i++] = c->string; /* borrowed from the tree until dataset_new copies */
    }
    switch (records_to_dataset(records, names, n_names, m != NULL ? m->schema->n_fields : n_names,
                               &ds, &iss)) {
    case 0:
        break;
    case RECORDS_E_SCHEMA:
        break; /* reported below with the record indices */
    default:
        goto oom;
    }
    if (iss.n_indices > 0) {
        char *details = records_issues_details(&iss);
        ret = http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, details,
                               "%zu record(s) do not fit the schema; first: %s", iss.n_indices,
                               iss.message);
        free(details);
        goto done;
    }
    *out = ds;
    ds = NULL;
    *replied = false;
    goto done;

oom:
    ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
done:
    free(names); /* the strings are borrowed from the model or the tree */
    dataset_free(ds);
    records_issues_deinit(&iss);
    cJSON_Delete(root);
    return ret;
}

/* A replica follows the model file and never writes it: exactly one process trains. */
enum MHD_Result api_reply_not_trainer(HttpRequest *req)
{
    return http_reply_error(req, HTTP_E_NOT_TRAINER, NULL,
                            "this replica follows the model file; retrain on the trainer");
}

enum MHD_Result api_retrain_start(HttpRequest *req)
{
    HttpServer *s = req->server;
    TrainParams p;
    TrainerStatus st;
    Dataset *ds = NULL;
    Model *m = NULL;
    JsonBuf b = JSON_BUF_INIT;
    enum MHD_Result ret = MHD_NO;
    uint64_t job_id = 0;
    size_t rows;
    bool replied = false;
    char err[512];
    int r;

    if (s->config->role == CONFIG_ROLE_REPLICA)
        return api_reply_not_trainer(req);
    /* cheap early answer; trainer_start below is the authoritative check */
    trainer_get_status(s->trainer, &st);
    if (st.state == TRAINER_RUNNING)
        return http_reply_error(req, HTTP_E_TRAINING_IN_PROGRESS, NULL,
                                "job %llu is running; cancel it or wait",
                                (unsigned long long) st.job_id);
    train_params_default(&p);
    m = model_slot_acquire(s->slot, NULL);
    if (req->is_csv) {
        DatasetOptions opts = {.label_column = "label", .max_columns = 0, .mixed = true};
        QueryCtx q = {&p, NULL, false};

        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_param, &q);
        if (q.bad != NULL) {
            ret = reply_param(req, q.bad, q.unknown);
            goto out;
        }
        r = dataset_parse_csv(req->body ? req->body : "", req->body_len, "body", &opts, &ds, err,
                              sizeof(err));
        if (r == DATASET_E_FORMAT) {
            ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "%s", err);
            goto out;
        }
        if (r < 0) {
            ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "cannot read the CSV body");
            goto out;
        }
        if (m != NULL) {
            ret = csv_to_schema(req, m, &ds, &replied);
            if (replied)
                goto out;
        }
    } else {
        ret = json_to_dataset(req, m, &p, &ds, &replied);
        if (replied)
            goto out;
    }
    rows = normal_rows(ds);
    if (rows < s->config->min_retrain_rows) {
        ret = http_reply_error(req, HTTP_E_TOO_FEW_ROWS, NULL,
                               "%zu normal rows; retraining needs at least %zu", rows,
                               s->config->min_retrain_rows);
        goto out;
    }
    if (train_params_check(&p, err, sizeof(err)) != 0) {
        ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "%s", err);
        goto out;
    }
    rows = ds->n_rows;
    r = trainer_start(s->trainer, ds, &p, &job_id);
    ds = NULL; /* taken, also on failure */
    if (r == TRAINER_E_BUSY) {
        ret = http_reply_error(req, HTTP_E_TRAINING_IN_PROGRESS, NULL,
                               "a training job is running; cancel it or wait");
        goto out;
    }
    if (r != 0) {
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "cannot start training: %s",
                               strerror(r < 0 ? -r : EINVAL));
        goto out;
    }
    json_buf_printf(&b, "{\"job_id\":%llu,\"state\":\"running\",\"rows\":%zu}\n",
                    (unsigned long long) job_id, rows);
    ret = http_reply_json(req, 202, &b);

out:
    json_buf_deinit(&b);
    dataset_free(ds);
    model_unref(m);
    return ret;
}

static void put_time(JsonBuf *b, const char *key, double t)
{
    json_buf_printf(b, ",\"%s\":", key);
    if (t > 0)
        json_buf_double(b, t);
    else
        json_buf_puts(b, "null");
}

enum MHD_Result api_retrain_status(HttpRequest *req)
{
    TrainerStatus st;
    JsonBuf b = JSON_BUF_INIT;

    trainer_get_status(req->server->trainer, &st);
    json_buf_printf(&b,
                    "{\"job_id\":%llu,\"state\":\"%s\",\"rows\":%llu,\"epoch\":%llu,"
                    "\"epochs\":%llu,\"member\":%llu,\"members\":%llu,\"train_loss\":",
                    (unsigned long long) st.job_id, trainer_state_name(st.state),
                    (unsigned long long) st.rows, (unsigned long long) st.epoch,
                    (unsigned long long) st.epochs, (unsigned long long) st.member,
                    (unsigned long long) st.members);
    json_buf_double(&b, st.train_loss);
    json_buf_puts(&b, ",\"val_loss\":");
    json_buf_double(&b, st.val_loss);
    json_buf_puts(&b, ",\"rows_per_sec\":");
    json_buf_double(&b, st.rows_per_sec);
    json_buf_puts(&b, ",\"eta_seconds\":");
    json_buf_double(&b, st.eta_seconds);
    put_time(&b, "started", st.started);
    put_time(&b, "finished", st.finished);
    json_buf_puts(&b, ",\"model_version\":");
    if (st.model_version > 0)
        json_buf_printf(&b, "%llu", (unsigned long long) st.model_version);
    else
        json_buf_puts(&b, "null");
    json_buf_puts(&b, ",\"error\":");
    st.error[sizeof(st.error) - 1] = '\0';
    if (st.error[0] != '\0')
        json_buf_string(&b, st.error, strlen(st.error));
    else
        json_buf_puts(&b, "null");
    json_buf_puts(&b, "}\n");
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_retrain_cancel(HttpRequest *req)
{
    TrainerStatus st;
    JsonBuf b = JSON_BUF_INIT;

    if (req->server->config->role == CONFIG_ROLE_REPLICA)
        return api_reply_not_trainer(req);
    if (trainer_cancel(req->server->trainer) == TRAINER_E_IDLE)
        return http_reply_error(req, HTTP_E_NO_JOB, NULL, "no training job is running");
    trainer_get_status(req->server->trainer, &st);
    json_buf_printf(&b, "{\"job_id\":%llu,\"state\":\"cancelling\"}\n",
                    (unsigned long long) st.job_id);
    return http_reply_json(req, 202, &b);
}
