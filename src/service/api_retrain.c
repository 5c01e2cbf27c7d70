/* api_retrain: POST /retrain (start a job), GET /retrain (status), DELETE /retrain (cancel).
 *
 * Handlers only: a JSON body becomes rows through records_training_set (records.c) and its
 * "params" through train_params.h's table; a CSV body through dataset_parse_csv, aligned to
 * the served schema by schema_align_dataset, with its params as query parameters (the same
 * table). Then the row count and the params are checked and both go to the trainer, which
 * answers at once: the job runs on its thread. Nothing here logs record values: data error
 * messages go to the client only.
 */
#include "api.h"
#include "http_body.h"
#include "http_reply.h"
#include "records.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/dataset.h"
#include "aescore/schema.h"
#include "aescore/train.h"
#include "aescore/train_params.h"

/* ---- params: train_params.h's table, from JSON or the query string ---- */

/* 400 naming the parameter; message NULL: an unknown one. */
static enum MHD_Result reply_param(HttpRequest *req, const char *name, const char *message)
{
    JsonBuf d = JSON_BUF_INIT;
    enum MHD_Result r;

    json_buf_puts(&d, "\"param\":");
    json_buf_string(&d, name, strlen(name));
    if (message == NULL)
        r = http_reply_error(req, HTTP_E_INVALID_REQUEST, d.oom ? NULL : d.data,
                             "unknown training parameter");
    else
        r = http_reply_error(req, HTTP_E_INVALID_REQUEST, d.oom ? NULL : d.data,
                             "training parameter \"%s\": %s", name, message);
    json_buf_deinit(&d);
    return r;
}

/* A JSON value in the form train_params_set takes. A string is text only for the
 * parameters whose values are words: "10" is not a number of epochs. */
static TrainValue json_value(const cJSON *c, const TrainParamDef *def, double *list)
{
    TrainValue v = {.form = TRAIN_VALUE_OTHER};
    bool words = def->type == TRAIN_PARAM_ACTIVATION || def->type == TRAIN_PARAM_HIDDEN ||
                 def->type == TRAIN_PARAM_COLUMNS || def->type == TRAIN_PARAM_REFERENCE;
    const cJSON *e;

    if (cJSON_IsNumber(c))
        return (TrainValue){.form = TRAIN_VALUE_NUMBER, .number = c->valuedouble};
    if (cJSON_IsBool(c))
        return (TrainValue){.form = TRAIN_VALUE_BOOL, .flag = cJSON_IsTrue(c)};
    if (cJSON_IsString(c) && words)
        return (TrainValue){.form = TRAIN_VALUE_TEXT, .text = c->valuestring};
    if (!cJSON_IsArray(c))
        return v;
    v = (TrainValue){.form = TRAIN_VALUE_LIST, .list = list};
    cJSON_ArrayForEach(e, c)
    {
        if (!cJSON_IsNumber(e) || v.n_list == NN_MAX_LAYERS)
            return (TrainValue){.form = TRAIN_VALUE_OTHER};
        list[v.n_list++] = e->valuedouble;
    }
    return v;
}

/* The "params" object onto p; on a bad one *bad names it and msg says why ("" unknown). */
static bool apply_json_params(const cJSON *params, TrainParams *p, const char **bad, char *msg,
                              size_t msg_size)
{
    double list[NN_MAX_LAYERS];

    for (const cJSON *c = params->child; c != NULL; c = c->next) {
        const TrainParamDef *def = train_param_find(c->string);
        TrainValue v;

        *bad = c->string;
        msg[0] = '\0';
        if (def == NULL)
            return false;
        v = json_value(c, def, list);
        if (train_params_set(p, def, &v, msg, msg_size) != 0)
            return false;
    }
    return true;
}

typedef struct QueryCtx {
    TrainParams *p;
    const char *bad; /* first bad key (MHD's string, valid for the request) */
    char msg[256];   /* why; "" for an unknown key */
} QueryCtx;

/* The one job option beside the training parameters (DESIGN section 3b): accept a model
 * whose fields differ from the served one's. A query parameter, or a member of a JSON body. */
#define JOB_ALLOW_SCHEMA_CHANGE "allow_schema_change"

static enum MHD_Result query_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    QueryCtx *q = cls;
    const TrainParamDef *def = train_param_find(key);
    TrainValue v = {.form = TRAIN_VALUE_TEXT, .text = value != NULL ? value : ""};

    (void) kind;
    q->msg[0] = '\0';
    if (strcmp(key, JOB_ALLOW_SCHEMA_CHANGE) == 0)
        return MHD_YES; /* a job option, read by read_job */
    if (def != NULL && train_params_set(q->p, def, &v, q->msg, sizeof(q->msg)) == 0)
        return MHD_YES;
    q->bad = key;
    return MHD_NO;
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

/* 422 naming what of the served schema a CSV body lacks, adds or sends as text. */
static enum MHD_Result reply_mismatch(HttpRequest *req, const SchemaMismatch *mm)
{
    RecordIssues iss;
    char *details;
    enum MHD_Result ret;

    records_issues_init(&iss);
    records_issues_from_mismatch(&iss, mm);
    details = records_issues_details(&iss);
    ret = http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, details,
                           "the CSV columns do not match the served model's features");
    free(details);
    records_issues_deinit(&iss);
    return ret;
}

/* text/csv: params from the query, rows from the body (aligned to the served schema). */
static enum MHD_Result csv_body(HttpRequest *req, const Model *m, TrainParams *p, Dataset **out,
                                bool *replied)
{
    DatasetOptions opts = {.label_column = "label", .max_columns = 0, .mixed = true};
    QueryCtx q = {.p = p};
    SchemaMismatch mm = {0};
    Dataset *ds = NULL;
    enum MHD_Result ret = MHD_YES;
    char err[512];
    int r;

    *replied = true;
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_param, &q);
    if (q.bad != NULL)
        return reply_param(req, q.bad, q.msg[0] != '\0' ? q.msg : NULL);
    /* the body is in memory already (its cap came first); max_rows caps the rows kept, by
     * the reservoir the CLI draws from a file: same rows and seed, same sample */
    opts.max_rows = p->max_rows;
    opts.seed = p->seed;
    r = dataset_parse_csv(req->body ? req->body : "", req->body_len, "body", &opts, &ds, err,
                          sizeof(err));
    if (r == DATASET_E_FORMAT)
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "%s", err);
    if (r < 0)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "cannot read the CSV body");
    r = m != NULL ? schema_align_dataset(m->schema, ds, &mm) : 0;
    if (r == SCHEMA_E_INPUT)
        ret = reply_mismatch(req, &mm);
    else if (r < 0)
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    schema_mismatch_deinit(&mm);
    if (r == 0) {
        *out = ds;
        ds = NULL;
        *replied = false;
    }
    dataset_free(ds);
    return ret;
}

/* {"records": [...], "params": {...}}: the members, checked and split. */
static enum MHD_Result json_members(HttpRequest *req, const cJSON *root, const cJSON **records,
                                    TrainParams *p, bool *allow, bool *replied)
{
    const cJSON *params = NULL;
    const char *bad = NULL;
    char msg[256];

    *replied = true;
    *records = NULL;
    if (!cJSON_IsObject(root))
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "the body must be {\"records\": [...], \"params\": {...}}");
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        if (strcmp(c->string, "records") == 0)
            *records = c;
        else if (strcmp(c->string, "params") == 0)
            params = c;
        else if (strcmp(c->string, JOB_ALLOW_SCHEMA_CHANGE) == 0 && cJSON_IsBool(c))
            *allow = cJSON_IsTrue(c);
        else
            return reply_param(
                req, c->string,
                strcmp(c->string, JOB_ALLOW_SCHEMA_CHANGE) == 0 ? "must be true or false" : NULL);
    }
    if (!cJSON_IsArray(*records))
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "\"records\" must be an array of records");
    if (params != NULL && !cJSON_IsObject(params))
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "\"params\" must be an object");
    if (params != NULL && !apply_json_params(params, p, &bad, msg, sizeof(msg)))
        return reply_param(req, bad, msg[0] != '\0' ? msg : NULL);
    *replied = false;
    return MHD_YES;
}

/* The reply for records_training_set's outcome r (not 0). */
static enum MHD_Result reply_records(HttpRequest *req, int r, RecordIssues *iss)
{
    char *details;
    enum MHD_Result ret;

    switch (r) {
    case RECORDS_E_NO_NAMES:
        return http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, "\"indices\":[0]",
                                "without a served model, records must name their features");
    case RECORDS_E_TOO_WIDE:
        return http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, NULL, "too many features");
    case RECORDS_E_SCHEMA:
        details = records_issues_details(iss);
        ret = http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, details,
                               "%zu record(s) do not fit the schema; first: %s", iss->n_bad,
                               iss->message);
        free(details);
        return ret;
    default:
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    }
}

/* application/json: params from the body's "params", rows from its "records". */
static enum MHD_Result json_body(HttpRequest *req, const Model *m, TrainParams *p, bool *allow,
                                 Dataset **out, bool *replied)
{
    size_t min_rows = req->server->config->min_retrain_rows;
    const cJSON *records = NULL;
    cJSON *root = NULL;
    RecordIssues iss;
    enum MHD_Result ret = MHD_YES;
    int n_rows, r;

    *replied = true;
    if (http_body_parse_json(req, &root, &ret) != HTTP_BODY_READY)
        return ret;
    records_issues_init(&iss);
    ret = json_members(req, root, &records, p, allow, replied);
    if (*replied)
        goto done;
    *replied = true;
    n_rows = cJSON_GetArraySize(records);
    if (n_rows == 0 || (size_t) n_rows < min_rows) {
        ret = http_reply_error(req, HTTP_E_TOO_FEW_ROWS, NULL,
                               "%d records; retraining needs at least %zu", n_rows, min_rows);
        goto done;
    }
    r = records_training_set(records, m != NULL ? m->schema : NULL, out, &iss);
    if (r != 0) {
        ret = reply_records(req, r, &iss);
        goto done;
    }
    if (p->max_rows > 0 && dataset_sample_rows(out, p->max_rows, p->seed) != 0) {
        *out = dataset_free(*out);
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
        goto done;
    }
    *replied = false;
done:
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

/* The job's data and parameters from either kind of body; *replied when an error went out. */
/* allow_schema_change from the query: *allow, or false when it is not a boolean. */
static bool query_allow(HttpRequest *req, bool *allow)
{
    const char *v =
        MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, JOB_ALLOW_SCHEMA_CHANGE);

    if (v == NULL)
        return true;
    *allow = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
    return *allow || strcmp(v, "false") == 0 || strcmp(v, "0") == 0;
}

/* 422 over_budget when the job ds, p would pass the daemon's training budget, naming the
 * estimate and the limits: {"estimate":{"parameters","memory_bytes"},"limit":{...}}. Else
 * *replied stays false. The estimate allocates nothing of the network's size. */
static enum MHD_Result check_budget(HttpRequest *req, const Dataset *ds, const TrainParams *p,
                                    bool *replied)
{
    const Config *c = req->server->config;
    TrainBudget budget = {c->max_train_parameters, c->max_train_memory};
    TrainEstimate e;
    char err[512], details[256];
    int r = train_check_budget(ds, p, &budget, &e, err, sizeof(err));

    *replied = r != 0;
    if (r == 0)
        return MHD_YES;
    if (r == -ENOMEM)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    if (r != TRAIN_E_BUDGET)
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "%s", err);
    snprintf(details, sizeof(details),
             "\"estimate\":{\"parameters\":%" PRIu64 ",\"memory_bytes\":%" PRIu64 "},"
             "\"limit\":{\"parameters\":%" PRIu64 ",\"memory_bytes\":%" PRIu64 "}",
             e.parameters, e.memory, budget.max_parameters, budget.max_memory);
    return http_reply_error(req, HTTP_E_OVER_BUDGET, details, "%s", err);
}

static enum MHD_Result read_job(HttpRequest *req, TrainParams *p, bool *allow, Dataset **ds,
                                bool *replied)
{
    size_t min_rows = req->server->config->min_retrain_rows, rows;
    Model *m = model_slot_acquire(req->server->slot, NULL);
    enum MHD_Result ret;
    char err[512];

    train_params_default(p);
    *allow = false;
    if (!query_allow(req, allow)) {
        model_unref(m);
        *replied = true;
        return reply_param(req, JOB_ALLOW_SCHEMA_CHANGE, "must be true or false");
    }
    ret = req->is_csv ? csv_body(req, m, p, ds, replied) : json_body(req, m, p, allow, ds, replied);
    model_unref(m);
    if (*replied)
        return ret;
    *replied = true;
    rows = normal_rows(*ds);
    if (rows < min_rows)
        ret = http_reply_error(req, HTTP_E_TOO_FEW_ROWS, NULL,
                               "%zu normal rows; retraining needs at least %zu", rows, min_rows);
    else if (train_params_check(p, err, sizeof(err)) != 0)
        ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "%s", err);
    else
        ret = check_budget(req, *ds, p, replied);
    if (*replied)
        *ds = dataset_free(*ds);
    return ret;
}

enum MHD_Result api_retrain_start(HttpRequest *req)
{
    HttpServer *s = req->server;
    TrainParams p;
    TrainerStatus st;
    Dataset *ds = NULL;
    JsonBuf b = JSON_BUF_INIT;
    enum MHD_Result ret;
    uint64_t job_id = 0;
    size_t rows, rows_read;
    bool replied = false, allow = false;
    int r;

    if (s->config->role == CONFIG_ROLE_REPLICA)
        return api_reply_not_trainer(req);
    /* cheap early answer; trainer_start below is the authoritative check */
    trainer_get_status(s->trainer, &st);
    if (st.state == TRAINER_RUNNING)
        return http_reply_error(req, HTTP_E_TRAINING_IN_PROGRESS, NULL,
                                "job %llu is running; cancel it or wait",
                                (unsigned long long) st.job_id);
    ret = read_job(req, &p, &allow, &ds, &replied);
    if (replied)
        return ret;
    rows = ds->n_rows;
    rows_read = ds->n_read;
    r = trainer_start(s->trainer, ds, &p, allow, &job_id); /* ds taken, also on failure */
    if (r == TRAINER_E_BUSY)
        return http_reply_error(req, HTTP_E_TRAINING_IN_PROGRESS, NULL,
                                "a training job is running; cancel it or wait");
    if (r != 0)
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "cannot start training: %s",
                                strerror(r < 0 ? -r : EINVAL));
    json_buf_printf(&b, "{\"job_id\":%llu,\"state\":\"running\",\"rows\":%zu,\"rows_read\":%zu}\n",
                    (unsigned long long) job_id, rows, rows_read);
    return http_reply_json(req, 202, &b);
}

static void put_time(JsonBuf *b, const char *key, double t)
{
    json_buf_printf(b, ",\"%s\":", key);
    if (t > 0)
        json_buf_double(b, t);
    else
        json_buf_puts(b, "null");
}

/* A string member, or null when s is empty. */
static void put_text(JsonBuf *b, const char *key, const char *s)
{
    json_buf_printf(b, ",\"%s\":", key);
    if (s[0] != '\0')
        json_buf_string(b, s, strlen(s));
    else
        json_buf_puts(b, "null");
}

/* How the job ended: error {code, message}, the candidate, why it is held, the gates. */
static void put_job_outcome(JsonBuf *b, TrainerStatus *st)
{
    st->error[sizeof(st->error) - 1] = st->reason[sizeof(st->reason) - 1] = '\0';
    st->evidence[sizeof(st->evidence) - 1] = '\0';
    json_buf_puts(b, ",\"error\":");
    if (st->error[0] != '\0') {
        json_buf_printf(b, "{\"code\":\"%s\",\"message\":", st->error_code);
        json_buf_string(b, st->error, strlen(st->error));
        json_buf_puts(b, "}");
    } else {
        json_buf_puts(b, "null");
    }
    put_text(b, "candidate", st->candidate);
    put_text(b, "reason", st->reason);
    json_buf_printf(b, ",\"gates\":%s", st->evidence[0] != '\0' ? st->evidence : "null");
}

/* The job's loss curve (DESIGN 3d): "history": [{"member", "epoch", "train_loss", "val_loss"},
 * ...]. */
static int put_losses(JsonBuf *b, Trainer *t)
{
    TrainerLoss *l;
    size_t n;

    if (trainer_losses(t, &l, &n) != 0)
        return -ENOMEM;
    json_buf_puts(b, ",\"history\":[");
    for (size_t i = 0; i < n; i++) {
        json_buf_printf(b, "%s{\"member\":%u,\"epoch\":%u,\"train_loss\":", i ? "," : "",
                        l[i].member, l[i].epoch);
        json_buf_float(b, l[i].train_loss);
        json_buf_puts(b, ",\"val_loss\":");
        json_buf_float(b, l[i].val_loss);
        json_buf_puts(b, "}");
    }
    json_buf_puts(b, "]");
    free(l);
    return 0;
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
    put_job_outcome(&b, &st);
    if (put_losses(&b, req->server->trainer) != 0) {
        json_buf_deinit(&b);
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    }
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
