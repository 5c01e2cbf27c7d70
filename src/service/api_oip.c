/* api_oip: the Open Inference Protocol (KServe v2 REST) beside the native API (DESIGN
 * section 3c), on the same scorer.
 *
 * GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}][/ready] and
 * POST /v2/models/{name}[/versions/{v}]/infer. {name} is the model_name key; {v} is the
 * served model_version or the served model_id (a model_id kept in the history but not
 * served is known, and not ready: this daemon serves one model at a time, and
 * POST /model/rollback serves a kept one).
 * Inputs: one tensor "record" [N, F] of FP32/FP64 (flat row-major or nested) when every
 * field is numeric, or one tensor per field named after it, [N]: FP32, FP64, INT* or UINT*
 * for a numeric field, BYTES for a categorical one. Each value becomes the float the
 * native reader makes of the same JSON number ((float) of cJSON's double) and the rows go
 * through api_score_rows, the scorer of /score/batch, and json_buf_float, its formatter:
 * the scores are the same bit for bit. Outputs: instance_score, is_outlier, threshold,
 * percentile, and feature_score when asked for. Errors are {"error": "..."} (http_reply.c).
 */
#include "api.h"
#include "http_body.h"
#include "http_reply.h"
#include "records_fast.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/threshold.h"

#define OIP_PLATFORM "aescore-autoencoder"

/* ---- paths ---- */

/* The segment at *p up to the next '/' or the end: its length (0 when empty). */
static size_t segment(const char *p)
{
    return strcspn(p, "/");
}

int api_oip_path(const char *path, const char *model_name, const char **route_path, char *version)
{
    static const char models[] = "/v2/models/", versions[] = "/versions/";
    const char *p = path, *tail, *name;
    size_t n, vlen = 0;
    const char *v = NULL;

    if (strcmp(p, "/v2") == 0 || strcmp(p, "/v2/health/live") == 0 ||
        strcmp(p, "/v2/health/ready") == 0) {
        tail = p;
        goto simple;
    }
    if (strncmp(p, models, sizeof(models) - 1) != 0)
        return -ENOENT;
    name = p + sizeof(models) - 1;
    n = segment(name);
    tail = name + n;
    if (strncmp(tail, versions, sizeof(versions) - 1) == 0) {
        v = tail + sizeof(versions) - 1;
        vlen = segment(v);
        tail = v + vlen;
        if (vlen == 0)
            return -ENOENT;
    }
    if (n == 0 || (*tail != '\0' && strcmp(tail, "/ready") != 0 && strcmp(tail, "/infer") != 0))
        return -ENOENT;
    if (strlen(model_name) != n || strncmp(name, model_name, n) != 0 || vlen >= API_OIP_VERSION_MAX)
        return -ESRCH;
    memcpy(version, v != NULL ? v : "", vlen);
    version[vlen] = '\0';
    *route_path = *tail == '\0'                 ? API_OIP_MODEL
                  : strcmp(tail, "/ready") == 0 ? API_OIP_MODEL "/ready"
                                                : API_OIP_MODEL "/infer";
    return 0;

simple:
    version[0] = '\0';
    *route_path = tail;
    return 0;
}

/* ---- the model a request names ---- */

/* Is id kept in the history (and so a version this server knows, not served)? */
static bool is_kept(HttpServer *s, const char *id)
{
    TrainerModel *list = NULL;
    size_t n = 0;
    bool kept = false;

    if (trainer_models(s->trainer, &list, &n) != 0)
        return false;
    for (size_t i = 0; i < n && !kept; i++)
        kept = strcmp(list[i].id, id) == 0;
    trainer_models_free(list, n);
    return kept;
}

/* The served model, if the request's {v} (when it has one) names it: *m (the caller
 * unrefs) and *version; else false with the reply queued in *ret: 404 for a version never
 * heard of, 400 not ready for a kept version not served, and without a model 400 not ready
 * to a probe (the protocol's "not ready" is a 4xx), 503 no_model to the rest, as the native
 * API answers. A probe also says not ready while the daemon stops; requests go on being
 * served during the drain. */
static bool served_model(HttpRequest *req, bool probe, Model **m, uint64_t *version,
                         enum MHD_Result *ret)
{
    HttpServer *s = req->server;
    const char *v = req->oip_version;
    char text[API_OIP_VERSION_MAX];

    *m = NULL;
    if (probe && atomic_load(&s->stopping)) {
        *ret = http_reply_error(req, HTTP_E_NOT_READY, NULL, "the server is shutting down");
        return false;
    }
    *m = model_slot_acquire(s->slot, version);
    if (*m == NULL) {
        *ret = http_reply_error(req, probe ? HTTP_E_NOT_READY : HTTP_E_NO_MODEL, NULL,
                                "no model is being served yet");
        return false;
    }
    snprintf(text, sizeof(text), "%llu", (unsigned long long) *version);
    if (v[0] == '\0' || strcmp(v, text) == 0 || strcmp(v, (*m)->meta.id) == 0)
        return true;
    *m = model_unref(*m);
    if (is_kept(s, v))
        *ret = http_reply_error(req, HTTP_E_NOT_READY, NULL,
                                "version %s is kept but not served (version %s is; "
                                "POST /model/rollback {\"model_id\": \"%s\"} serves it)",
                                v, text, v);
    else
        *ret = http_reply_error(req, HTTP_E_NOT_FOUND, NULL, "unknown version %s of model %s", v,
                                s->config->model_name);
    return false;
}

/* ---- health and metadata ---- */

/* A 200 with a fixed JSON body. */
static enum MHD_Result reply_text(HttpRequest *req, const char *json)
{
    JsonBuf b = JSON_BUF_INIT;

    json_buf_puts(&b, json);
    return http_reply_json(req, 200, &b);
}

enum MHD_Result api_oip_server(HttpRequest *req)
{
    return reply_text(req, "{\"name\":\"aescored\",\"version\":\"" AESCORE_VERSION
                           "\",\"extensions\":[]}\n");
}

/* Compatible clients look only at the status; the body says the same for people. */
enum MHD_Result api_oip_live(HttpRequest *req)
{
    return reply_text(req, "{\"live\":true}\n");
}

enum MHD_Result api_oip_ready(HttpRequest *req)
{
    uint64_t version;
    Model *m;
    enum MHD_Result ret;

    if (!served_model(req, true, &m, &version, &ret))
        return ret;
    model_unref(m);
    return reply_text(req, "{\"ready\":true}\n");
}

enum MHD_Result api_oip_model_ready(HttpRequest *req)
{
    JsonBuf b = JSON_BUF_INIT;
    uint64_t version;
    Model *m;
    enum MHD_Result ret;

    if (!served_model(req, true, &m, &version, &ret))
        return ret;
    json_buf_puts(&b, "{\"name\":");
    json_buf_string(&b, req->server->config->model_name, strlen(req->server->config->model_name));
    json_buf_printf(&b, ",\"version\":\"%llu\",\"ready\":true}\n", (unsigned long long) version);
    model_unref(m);
    return http_reply_json(req, 200, &b);
}

/* Every field numeric (one column each), and none called "record": then the inputs may be
 * one [N, F] tensor "record". */
static bool takes_record(const Model *m)
{
    const Schema *sc = m->schema;

    for (size_t f = 0; f < sc->n_fields; f++)
        if (sc->fields[f].kind != SCHEMA_NUMERIC || strcmp(sc->fields[f].name, "record") == 0)
            return false;
    return true;
}

static void put_tensor_meta(JsonBuf *b, const char *name, const char *datatype, const char *shape)
{
    json_buf_puts(b, "{\"name\":");
    json_buf_string(b, name, strlen(name));
    json_buf_printf(b, ",\"datatype\":\"%s\",\"shape\":%s}", datatype, shape);
}

/* inputs: "record" when the model takes it, else one tensor per field; then outputs. */
static void put_model_tensors(JsonBuf *b, const Model *m)
{
    const Schema *sc = m->schema;
    char shape[48];

    json_buf_puts(b, ",\"inputs\":[");
    if (takes_record(m)) {
        snprintf(shape, sizeof(shape), "[-1,%zu]", sc->n_fields);
        put_tensor_meta(b, "record", "FP64", shape);
    }
    for (size_t f = 0; !takes_record(m) && f < sc->n_fields; f++) {
        if (f > 0)
            json_buf_put(b, ",", 1);
        put_tensor_meta(b, sc->fields[f].name,
                        sc->fields[f].kind == SCHEMA_NUMERIC ? "FP64" : "BYTES", "[-1]");
    }
    json_buf_puts(b, "],\"outputs\":[");
    put_tensor_meta(b, "instance_score", "FP64", "[-1]");
    json_buf_put(b, ",", 1);
    put_tensor_meta(b, "is_outlier", "BOOL", "[-1]");
    json_buf_put(b, ",", 1);
    put_tensor_meta(b, "threshold", "FP64", "[1]");
    json_buf_put(b, ",", 1);
    put_tensor_meta(b, "percentile", "FP64", "[-1]");
    json_buf_put(b, ",", 1);
    snprintf(shape, sizeof(shape), "[-1,%zu]", sc->n_fields);
    put_tensor_meta(b, "feature_score", "FP64", shape);
    json_buf_put(b, "]", 1);
}

enum MHD_Result api_oip_model(HttpRequest *req)
{
    const char *name = req->server->config->model_name;
    JsonBuf b = JSON_BUF_INIT;
    uint64_t version;
    Model *m;
    enum MHD_Result ret;

    if (!served_model(req, false, &m, &version, &ret))
        return ret;
    json_buf_puts(&b, "{\"name\":");
    json_buf_string(&b, name, strlen(name));
    json_buf_printf(&b, ",\"versions\":[\"%llu\"],\"platform\":\"" OIP_PLATFORM "\"",
                    (unsigned long long) version);
    put_model_tensors(&b, m);
    json_buf_printf(&b, ",\"parameters\":{\"model_id\":\"%s\",\"threshold\":", m->meta.id);
    json_buf_float(&b, m->threshold);
    json_buf_puts(&b, "}}\n");
    model_unref(m);
    return http_reply_json(req, 200, &b);
}

/* ---- inference ---- */

enum {
    OUT_INSTANCE_SCORE = 0,
    OUT_IS_OUTLIER,
    OUT_THRESHOLD,
    OUT_PERCENTILE,
    OUT_FEATURE_SCORE,
    OUT_COUNT_,
};
static const char *const output_names[OUT_COUNT_] = {"instance_score", "is_outlier", "threshold",
                                                     "percentile", "feature_score"};

/* The element types a tensor may have here. */
typedef enum OipType {
    OIP_FP,   /* FP32, FP64 */
    OIP_INT,  /* INT8..INT64, UINT8..UINT64: integers within lo..hi */
    OIP_TEXT, /* BYTES */
} OipType;

typedef struct OipDtype {
    const char *name;
    OipType type;
    double lo, hi;
} OipDtype;

static const OipDtype dtypes[] = {
    {"FP32", OIP_FP, 0, 0},
    {"FP64", OIP_FP, 0, 0},
    {"INT8", OIP_INT, -128, 127},
    {"INT16", OIP_INT, -32768, 32767},
    {"INT32", OIP_INT, -2147483648.0, 2147483647.0},
    {"INT64", OIP_INT, -9223372036854775808.0, 9223372036854775807.0},
    {"UINT8", OIP_INT, 0, 255},
    {"UINT16", OIP_INT, 0, 65535},
    {"UINT32", OIP_INT, 0, 4294967295.0},
    {"UINT64", OIP_INT, 0, 18446744073709551615.0},
    {"BYTES", OIP_TEXT, 0, 0},
};
#define N_DTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

/* A request read: the rows encoded for the model, what to answer and how. */
typedef struct OipRequest {
    const char *id; /* the request's "id" (id_len bytes), or NULL */
    size_t id_len;
    size_t n; /* rows */
    float *x; /* n * n_features, encoded */
    size_t n_unseen;
    unsigned char outputs[OUT_COUNT_]; /* in the order asked for */
    size_t n_outputs;
    char why[300]; /* a 400's message */
} OipRequest;

/* One input tensor of the request, checked: its elements, row-major, borrowed from the tree. */
typedef struct OipTensor {
    const char *name;
    const OipDtype *dtype;
    size_t dims[2], n_dims;
    const cJSON **elems; /* dims[0] * dims[1] (n_dims 2) or dims[0] */
    size_t n_elems;
    long field; /* -1: the "record" tensor */
} OipTensor;

static bool fail(OipRequest *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(OipRequest *r, const char *fmt, ...)
{
    va_list ap;

    if (r->why[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(r->why, sizeof(r->why), fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Is every member of object o one of the NULL-terminated names? */
static bool members_known(const cJSON *o, const char *const *names, OipRequest *r,
                          const char *where)
{
    for (const cJSON *c = o->child; c != NULL; c = c->next) {
        size_t k = 0;

        while (names[k] != NULL && strcmp(names[k], c->string) != 0)
            k++;
        if (names[k] == NULL)
            return fail(r, "unexpected member \"%.60s\" in %s", c->string, where);
    }
    return true;
}

/* "outputs": [{"name": ..., "parameters"?: {...}}, ...]; absent: all but feature_score. */
static bool read_outputs(const cJSON *outputs, OipRequest *r)
{
    static const char *const known[] = {"name", "parameters", NULL};
    bool seen[OUT_COUNT_] = {false};

    if (outputs == NULL) {
        for (unsigned k = 0; k < OUT_FEATURE_SCORE; k++)
            r->outputs[r->n_outputs++] = (unsigned char) k;
        return true;
    }
    if (!cJSON_IsArray(outputs) || outputs->child == NULL)
        return fail(r, "\"outputs\" must be a non-empty array of {\"name\": ...}");
    for (const cJSON *o = outputs->child; o != NULL; o = o->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        unsigned k = 0;

        if (!cJSON_IsObject(o) || !cJSON_IsString(name))
            return fail(r, "each of \"outputs\" must be an object with a \"name\"");
        if (!members_known(o, known, r, "a requested output"))
            return false;
        while (k < OUT_COUNT_ && strcmp(output_names[k], name->valuestring) != 0)
            k++;
        if (k == OUT_COUNT_)
            return fail(r,
                        "unknown output \"%.60s\" (instance_score, is_outlier, threshold, "
                        "percentile, feature_score)",
                        name->valuestring);
        if (seen[k])
            return fail(r, "output \"%s\" asked for twice", output_names[k]);
        seen[k] = true;
        r->outputs[r->n_outputs++] = (unsigned char) k;
    }
    return true;
}

/* "shape": one or two dimensions, each an integer 0..limit (no -1 in a request). */
static bool read_shape(const cJSON *shape, OipTensor *t, size_t limit, OipRequest *r)
{
    t->n_dims = 0;
    if (!cJSON_IsArray(shape))
        return fail(r, "input \"%.60s\": \"shape\" must be an array of integers", t->name);
    for (const cJSON *d = shape->child; d != NULL; d = d->next) {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;

        if (v < 0 || v != floor(v) || v > (double) limit)
            return fail(r,
                        "input \"%.60s\": each dimension of \"shape\" must be an integer "
                        "0..%zu",
                        t->name, limit);
        if (t->n_dims == 2)
            return fail(r, "input \"%.60s\": \"shape\" has more than two dimensions", t->name);
        t->dims[t->n_dims++] = (size_t) v;
    }
    if (t->n_dims == 0)
        return fail(r, "input \"%.60s\": \"shape\" is empty", t->name);
    return true;
}

/* "data" against the shape: flat row-major (every element in one array) or nested one array
 * per row; elements are never arrays. t->elems (caller frees) gets them in row-major order. */
static int read_data(const cJSON *data, OipTensor *t, OipRequest *r)
{
    size_t n = t->dims[0] * (t->n_dims == 2 ? t->dims[1] : 1), k = 0;
    bool nested = cJSON_IsArray(data) && data->child != NULL && cJSON_IsArray(data->child);

    size_t top = 0;

    if (!cJSON_IsArray(data))
        return fail(r, "input \"%.60s\": \"data\" must be an array", t->name), 1;
    /* the count the body holds before what the shape claims is allocated */
    for (const cJSON *c = data->child; c != NULL; c = c->next)
        top++;
    if (top != (nested ? t->dims[0] : n))
        return fail(r, "input \"%.60s\": \"data\" does not match shape", t->name), 1;
    t->elems = malloc((n ? n : 1) * sizeof(*t->elems));
    if (t->elems == NULL)
        return -ENOMEM;
    for (const cJSON *row = data->child; row != NULL; row = row->next) {
        size_t in_row = 0;

        if (nested != cJSON_IsArray(row) || (nested && t->n_dims != 2))
            return fail(r, "input \"%.60s\": \"data\" must be flat or one array per row", t->name),
                   1;
        for (const cJSON *e = nested ? row->child : row; e != NULL; e = nested ? e->next : NULL) {
            if (k == n || cJSON_IsArray(e) || cJSON_IsObject(e))
                return fail(r, "input \"%.60s\": \"data\" does not match shape", t->name), 1;
            t->elems[k++] = e;
            in_row++;
        }
        if (nested && in_row != t->dims[1])
            return fail(r, "input \"%.60s\": a row of \"data\" does not match shape", t->name), 1;
    }
    if (k != n)
        return fail(r, "input \"%.60s\": \"data\" has %zu elements; shape says %zu", t->name, k, n),
               1;
    t->n_elems = n;
    return 0;
}

static const OipDtype *find_dtype(const char *name)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return &dtypes[i];
    return NULL;
}

/* Which tensor it is ("record" or a field) and whether its datatype and shape fit that. */
static bool check_tensor(const Model *m, OipTensor *t, OipRequest *r)
{
    const Schema *sc = m->schema;
    const SchemaField *fd;

    if (strcmp(t->name, "record") == 0 && takes_record(m)) {
        t->field = -1;
        if (t->dtype->type != OIP_FP)
            return fail(r, "input \"record\" takes FP32 or FP64, not %s", t->dtype->name);
        if (t->n_dims != 2 || t->dims[1] != sc->n_fields)
            return fail(r, "input \"record\" must have shape [N, %zu]", sc->n_fields);
        return true;
    }
    t->field = schema_field_index(sc, t->name, strlen(t->name));
    if (t->field < 0)
        return fail(r, "unknown input \"%.60s\" (GET the model's metadata for its inputs)",
                    t->name);
    fd = &sc->fields[t->field];
    if (t->n_dims != 1)
        return fail(r, "input \"%.60s\" must have shape [N]", t->name);
    if (fd->kind == SCHEMA_CATEGORICAL && t->dtype->type != OIP_TEXT)
        return fail(r, "input \"%.60s\" is categorical: it takes BYTES", t->name);
    if (fd->kind == SCHEMA_NUMERIC && t->dtype->type == OIP_TEXT)
        return fail(r, "input \"%.60s\" is numeric: it takes FP32, FP64, INT* or UINT*", t->name);
    return true;
}

/* One element of "inputs", checked and flattened into t. 0, 1 (r->why says why) or -ENOMEM. */
static int read_tensor(const cJSON *in, const Model *m, size_t max_batch, OipTensor *t,
                       OipRequest *r)
{
    static const char *const known[] = {"name", "shape", "datatype", "parameters", "data", NULL};
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");

    if (!cJSON_IsObject(in) || !cJSON_IsString(name) || !cJSON_IsString(dtype))
        return fail(r, "each of \"inputs\" must be an object with \"name\", \"shape\", "
                       "\"datatype\" and \"data\""),
               1;
    t->name = name->valuestring;
    if (!members_known(in, known, r, "an input"))
        return 1;
    if (params != NULL && !cJSON_IsObject(params))
        return fail(r, "input \"%.60s\": \"parameters\" must be an object", t->name), 1;
    t->dtype = find_dtype(dtype->valuestring);
    if (t->dtype == NULL)
        return fail(r, "input \"%.60s\": datatype \"%.20s\" is not one this model takes", t->name,
                    dtype->valuestring),
               1;
    if (!read_shape(cJSON_GetObjectItemCaseSensitive(in, "shape"), t,
                    MODEL_MAX_FEATURES > max_batch ? MODEL_MAX_FEATURES : max_batch, r) ||
        !check_tensor(m, t, r))
        return 1;
    if (t->dims[0] == 0 || t->dims[0] > max_batch)
        return fail(r, "input \"%.60s\": %zu rows; a request takes 1..%zu", t->name, t->dims[0],
                    max_batch),
               1;
    return read_data(cJSON_GetObjectItemCaseSensitive(in, "data"), t, r);
}

/* One element as a field's value, checked against the tensor's datatype: a number finite as
 * a float (records.c's rule; an INT* one integral and within the type), or a string. */
static bool element_value(const cJSON *e, const OipTensor *t, size_t index, SchemaValue *v,
                          OipRequest *r)
{
    const OipDtype *dt = t->dtype;
    double d;

    if (dt->type == OIP_TEXT) {
        if (!cJSON_IsString(e))
            return fail(r, "input \"%.60s\" element %zu: BYTES takes strings", t->name, index);
        *v = (SchemaValue){
            .type = SCHEMA_TEXT, .text = e->valuestring, .len = strlen(e->valuestring)};
        return true;
    }
    d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    if (!isfinite(d) || fabs(d) > FLT_MAX)
        return fail(r, "input \"%.60s\" element %zu: not a finite %s number", t->name, index,
                    dt->name);
    if (dt->type == OIP_INT && (d != floor(d) || d < dt->lo || d > dt->hi))
        return fail(r, "input \"%.60s\" element %zu: not an %s", t->name, index, dt->name);
    *v = (SchemaValue){.type = SCHEMA_NUMBER, .number = (float) d};
    return true;
}

/* The rows from the checked tensors (record, or by_field[f] for every field) into r->x. */
static int encode_rows(const Model *m, const OipTensor *record, OipTensor *const *by_field,
                       OipRequest *r)
{
    const Schema *sc = m->schema;
    size_t nf = sc->n_fields, f;
    SchemaValue *v = malloc(nf * sizeof(*v));
    int ret = -ENOMEM;

    r->x = malloc(r->n * m->n_features * sizeof(*r->x));
    if (v == NULL || r->x == NULL)
        goto out;
    ret = 1;
    for (size_t i = 0; i < r->n; i++) {
        SchemaEncodeInfo info = {0};

        for (f = 0; f < nf; f++) {
            const OipTensor *t = record != NULL ? record : by_field[f];
            size_t k = record != NULL ? i * nf + f : i;

            if (!element_value(t->elems[k], t, k, &v[f], r))
                goto out;
        }
        schema_encode(sc, v, r->x + i * m->n_features, &info); /* every value checked above */
        r->n_unseen += info.n_unseen;
    }
    ret = 0;
out:
    free(v);
    return ret;
}

/* Which tensor is which: "record" alone, or each field exactly once; every one of N rows. */
static int assign_tensors(const Model *m, OipTensor *ts, size_t n, OipRequest *r)
{
    size_t nf = m->schema->n_fields;
    OipTensor **by_field = calloc(nf, sizeof(*by_field));
    const OipTensor *record = NULL;
    int ret = 1;

    if (by_field == NULL)
        return -ENOMEM;
    r->n = ts[0].dims[0];
    for (size_t i = 0; i < n; i++) {
        if (ts[i].dims[0] != r->n) {
            fail(r, "input \"%.60s\" has %zu rows; \"%.60s\" has %zu", ts[i].name, ts[i].dims[0],
                 ts[0].name, r->n);
            goto out;
        }
        if (ts[i].field < 0 ? record != NULL : by_field[ts[i].field] != NULL) {
            fail(r, "input \"%.60s\" given twice", ts[i].name);
            goto out;
        }
        if (ts[i].field < 0)
            record = &ts[i];
        else
            by_field[ts[i].field] = &ts[i];
    }
    if (record != NULL && n > 1) {
        fail(r, "input \"record\" holds every field: send it alone");
        goto out;
    }
    for (size_t f = 0; record == NULL && f < nf; f++)
        if (by_field[f] == NULL) {
            fail(r, "missing input \"%.60s\" (one tensor per field, or \"record\" [N, F])",
                 m->schema->fields[f].name);
            goto out;
        }
    ret = encode_rows(m, record, by_field, r);
out:
    free(by_field);
    return ret;
}

/* "inputs": every tensor read, then assigned and encoded into r. 0, 1 or -ENOMEM. */
static int read_inputs(const cJSON *inputs, const Model *m, size_t max_batch, OipRequest *r)
{
    OipTensor *ts;
    size_t n = 0, i = 0;
    int ret = 0;

    if (!cJSON_IsArray(inputs) || inputs->child == NULL)
        return fail(r, "\"inputs\" must be a non-empty array of tensors"), 1;
    for (const cJSON *in = inputs->child; in != NULL; in = in->next)
        n++;
    if (n > m->schema->n_fields)
        return fail(r, "%zu inputs; the model has %zu fields", n, m->schema->n_fields), 1;
    ts = calloc(n, sizeof(*ts));
    if (ts == NULL)
        return -ENOMEM;
    for (const cJSON *in = inputs->child; in != NULL && ret == 0; in = in->next)
        ret = read_tensor(in, m, max_batch, &ts[i++], r);
    if (ret == 0)
        ret = assign_tensors(m, ts, n, r);
    for (i = 0; i < n; i++)
        free(ts[i].elems);
    free(ts);
    return ret;
}

/* The whole body: {"id"?, "parameters"?, "inputs", "outputs"?}. 0, 1 or -ENOMEM. */
static int read_request(const cJSON *root, const Model *m, size_t max_batch, OipRequest *r)
{
    static const char *const known[] = {"id", "parameters", "inputs", "outputs", NULL};
    const cJSON *id, *params;

    if (!cJSON_IsObject(root))
        return fail(r, "the body must be an inference request (a JSON object)"), 1;
    if (!members_known(root, known, r, "the request"))
        return 1;
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (id != NULL && !cJSON_IsString(id))
        return fail(r, "\"id\" must be a string"), 1;
    if (params != NULL && !cJSON_IsObject(params))
        return fail(r, "\"parameters\" must be an object"), 1;
    r->id = id != NULL ? id->valuestring : NULL;
    r->id_len = id != NULL ? strlen(id->valuestring) : 0;
    if (!read_outputs(cJSON_GetObjectItemCaseSensitive(root, "outputs"), r))
        return 1;
    return read_inputs(cJSON_GetObjectItemCaseSensitive(root, "inputs"), m, max_batch, r);
}

/* {"name","datatype","shape":[n(,cols)],"data":[ */
static void put_output_head(JsonBuf *b, unsigned k, const char *datatype, size_t n, size_t cols)
{
    json_buf_printf(b, "{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[%zu", output_names[k],
                    datatype, n);
    if (cols > 0)
        json_buf_printf(b, ",%zu", cols);
    json_buf_puts(b, "],\"data\":[");
}

/* One output tensor; numbers as /score/batch writes them (json_buf_float). */
static void put_output(JsonBuf *b, unsigned k, const Model *m, const float *scores, size_t n,
                       const float *ferr)
{
    size_t nf = m->schema->n_fields;

    put_output_head(b, k, k == OUT_IS_OUTLIER ? "BOOL" : "FP64", k == OUT_THRESHOLD ? 1 : n,
                    k == OUT_FEATURE_SCORE ? nf : 0);
    if (k == OUT_THRESHOLD)
        json_buf_float(b, m->threshold);
    for (size_t i = 0; k != OUT_THRESHOLD && k != OUT_FEATURE_SCORE && i < n; i++) {
        if (i > 0)
            json_buf_put(b, ",", 1);
        if (k == OUT_INSTANCE_SCORE)
            json_buf_float(b, scores[i]);
        else if (k == OUT_IS_OUTLIER)
            json_buf_puts(b, scores[i] > m->threshold ? "true" : "false");
        else
            json_buf_float(b, threshold_percentile(m->percentiles, MODEL_PERCENTILES, scores[i]));
    }
    for (size_t i = 0; k == OUT_FEATURE_SCORE && i < n * nf; i++) {
        if (i > 0)
            json_buf_put(b, ",", 1);
        json_buf_float(b, ferr[i]);
    }
    json_buf_puts(b, "]}");
}

/* Scores the request's rows and queues the inference response. */
static enum MHD_Result infer_reply(HttpRequest *req, const Model *m, uint64_t version,
                                   const OipRequest *r)
{
    const char *name = req->server->config->model_name;
    size_t n = r->n, nf = m->schema->n_fields;
    bool want_ferr = memchr(r->outputs, OUT_FEATURE_SCORE, r->n_outputs) != NULL;
    float *scores = malloc(n * sizeof(*scores));
    float *ferr = want_ferr ? malloc(n * nf * sizeof(*ferr)) : NULL;
    JsonBuf b = JSON_BUF_INIT;
    enum MHD_Result ret;

    if (scores == NULL || (want_ferr && ferr == NULL) ||
        api_score_rows(req, m, r->x, n, scores) < 0 ||
        (want_ferr && api_score_field_errors(m, r->x, n, ferr) < 0)) {
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    metrics_observe_encoding(req->server->metrics, 0, r->n_unseen);
    json_buf_reserve(&b, 48 * n + (want_ferr ? 16 * n * nf : 0) + 512);
    json_buf_puts(&b, "{\"model_name\":");
    json_buf_string(&b, name, strlen(name));
    json_buf_printf(&b, ",\"model_version\":\"%llu\"", (unsigned long long) version);
    if (r->id != NULL) {
        json_buf_puts(&b, ",\"id\":");
        json_buf_string(&b, r->id, r->id_len);
    }
    json_buf_printf(&b, ",\"parameters\":{\"model_id\":\"%s\",\"threshold\":", m->meta.id);
    json_buf_float(&b, m->threshold);
    json_buf_puts(&b, ",\"score\":\"reconstruction_mse\"},\"outputs\":[");
    for (size_t i = 0; i < r->n_outputs; i++) {
        if (i > 0)
            json_buf_put(&b, ",", 1);
        put_output(&b, r->outputs[i], m, scores, n, ferr);
    }
    json_buf_puts(&b, "]}\n");
    ret = http_reply_json(req, 200, &b);
out:
    json_buf_deinit(&b);
    free(scores);
    free(ferr);
    return ret;
}

/* The fast path (records_fast.h): a "record" tensor of the common form, read in one pass
 * without a tree. False: decline, r untouched. */
static bool fast_request(HttpRequest *req, const Model *m, OipRequest *r)
{
    RecordsTensor t;
    bool seen[OUT_COUNT_] = {false};

    if (!records_fast_tensor(req->body, req->body_len, m, req->server->config->max_batch, &t))
        return false;
    for (size_t i = 0; i < t.n_outputs; i++) {
        unsigned k = 0;

        while (k < OUT_COUNT_ && !(strlen(output_names[k]) == t.outputs_len[i] &&
                                   memcmp(output_names[k], t.outputs[i], t.outputs_len[i]) == 0))
            k++;
        if (k == OUT_COUNT_ || seen[k]) { /* the cJSON path says which */
            free(t.x);
            return false;
        }
        seen[k] = true;
    }
    for (size_t i = 0; i < t.n_outputs; i++)
        for (unsigned k = 0; k < OUT_COUNT_; k++)
            if (strlen(output_names[k]) == t.outputs_len[i] &&
                memcmp(output_names[k], t.outputs[i], t.outputs_len[i]) == 0)
                r->outputs[r->n_outputs++] = (unsigned char) k;
    if (!t.has_outputs)
        read_outputs(NULL, r);
    r->x = t.x;
    r->n = t.n;
    if (t.id.kind == RECORD_ID_STRING) {
        r->id = t.id.text;
        r->id_len = t.id.len;
    }
    return true;
}

enum MHD_Result api_oip_infer(HttpRequest *req)
{
    OipRequest r = {0};
    cJSON *root = NULL;
    uint64_t version = 0;
    Model *m = NULL;
    enum MHD_Result ret;
    int rc;

    if (!served_model(req, false, &m, &version, &ret))
        return ret;
    if (fast_request(req, m, &r)) {
        ret = infer_reply(req, m, version, &r);
        goto out;
    }
    /* everything else, errors included */
    if (http_body_parse_json(req, &root, &ret) != HTTP_BODY_READY)
        goto out;
    rc = read_request(root, m, req->server->config->max_batch, &r);
    if (rc == 1)
        ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "%s", r.why);
    else if (rc < 0)
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    else
        ret = infer_reply(req, m, version, &r);
out:
    free(r.x);
    cJSON_Delete(root);
    model_unref(m);
    return ret;
}
