/* api_score: POST /score and POST /score/batch, the hot path.
 *
 * A request takes one counted reference to the served model, so a batch is scored by one
 * model version even while the trainer publishes. Single records are scored in a
 * per-thread buffer (input, per-feature errors, network scratch) that grows on demand and
 * lives until the pool thread exits, so scoring one record allocates nothing but the reply.
 * Replies are formatted with snprintf into one buffer, numbers as %.9g (they are floats)
 * and non-finite values as null.
 */
#include "api.h"
#include "drift.h"
#include "http_body.h"
#include "http_reply.h"
#include "records.h"
#include "records_fast.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/threshold.h"

/* A pool thread's scratch: data for one request's floats and field values, and apart from
 * it the keys of the model the thread last read records of (records_fast_keys), which
 * scoring never overwrites. Freed when the thread exits. */
typedef struct Scratch {
    FastKey *keys; /* keys_cap of them */
    size_t keys_cap;
    char keys_of[MODEL_ID_LEN + 1]; /* the model they were made for ("" none) */
    size_t cap;                     /* bytes of data */
    _Alignas(max_align_t) unsigned char data[];
} Scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_err;

static void scratch_free(void *p)
{
    Scratch *s = p;

    free(s->keys);
    free(s);
}

static void scratch_key_make(void)
{
    scratch_key_err = pthread_key_create(&scratch_key, scratch_free);
}

/* The calling thread's scratch with room for `need` bytes of data, or NULL. Growing keeps
 * the keys. */
static Scratch *thread_scratch_of(size_t need)
{
    Scratch *s;

    pthread_once(&scratch_once, scratch_key_make);
    if (scratch_key_err != 0 || need > SIZE_MAX - sizeof(*s))
        return NULL;
    s = pthread_getspecific(scratch_key);
    if (s == NULL || s->cap < need) {
        Scratch *p = realloc(s, sizeof(*p) + need);

        if (p == NULL)
            return NULL;
        if (s == NULL)
            *p = (Scratch){.keys = NULL};
        p->cap = need;
        if (pthread_setspecific(scratch_key, p) != 0) {
            scratch_free(p);
            return NULL;
        }
        s = p;
    }
    return s;
}

/* n floats owned by the calling thread, or NULL. */
static float *thread_scratch(size_t n)
{
    Scratch *s = n <= SIZE_MAX / sizeof(float) ? thread_scratch_of(n * sizeof(float)) : NULL;

    return s != NULL ? (float *) (void *) s->data : NULL;
}

/* The keys of m's schema in s, made again only when s last held another model's (the id
 * is a content hash: the same id, the same names). NULL: no memory. */
static const FastKey *scratch_keys(Scratch *s, const Model *m)
{
    size_t n_fields = m->schema->n_fields; /* <= MODEL_MAX_FEATURES */

    if (strcmp(s->keys_of, m->meta.id) == 0)
        return s->keys;
    if (n_fields > s->keys_cap) {
        FastKey *k = realloc(s->keys, n_fields * sizeof(*k));

        if (k == NULL)
            return NULL;
        s->keys = k;
        s->keys_cap = n_fields;
    }
    records_fast_keys(m->schema, s->keys);
    memcpy(s->keys_of, m->meta.id, sizeof(s->keys_of));
    return s->keys;
}

/* What reading m's records takes, from the calling thread's scratch: fr (m, policy, the
 * keys of m's schema, room for its field values), then n floats, returned (NULL: no
 * memory). */
static float *thread_scratch_record(const Model *m, const RecordPolicy *policy, size_t n,
                                    FastRecord *fr)
{
    size_t lead = m->schema->n_fields * sizeof(SchemaValue); /* n_fields <= MODEL_MAX_FEATURES */
    Scratch *s;

    _Static_assert(sizeof(SchemaValue) % sizeof(float) == 0, "floats follow the values");
    if (n > (SIZE_MAX - lead) / sizeof(float) ||
        (s = thread_scratch_of(lead + n * sizeof(float))) == NULL)
        return NULL;
    *fr = (FastRecord){.m = m,
                       .policy = policy,
                       .keys = scratch_keys(s, m),
                       .v = (SchemaValue *) (void *) s->data};
    return fr->keys != NULL ? (float *) (void *) (s->data + lead) : NULL;
}

static enum MHD_Result reply_schema(HttpRequest *req, RecordIssues *iss, const char *prefix)
{
    char *details = records_issues_details(iss);
    enum MHD_Result r;

    r = http_reply_error(req, HTTP_E_SCHEMA_MISMATCH, details, "%s%s", prefix,
                         iss->message[0] ? iss->message : "the record does not fit the model");
    free(details);
    return r;
}

/* The k fields with the largest errors (schema.h); err becomes the per-field errors. */
static void put_top_features(JsonBuf *b, const Model *m, float *err, unsigned k)
{
    const Schema *sc = m->schema;
    size_t idx[CONFIG_TOP_FEATURES_MAX], n;

    schema_field_errors(sc, err, err);
    n = schema_worst_fields(err, sc->n_fields, k, idx);
    json_buf_puts(b, ",\"top_features\":[");
    for (size_t j = 0; j < n; j++) {
        const SchemaField *fd = &sc->fields[idx[j]];

        if (j > 0)
            json_buf_put(b, ",", 1);
        json_buf_puts(b, "{\"name\":");
        json_buf_string(b, fd->name, strlen(fd->name));
        json_buf_puts(b, ",\"error\":");
        json_buf_float(b, err[idx[j]]);
        json_buf_put(b, "}", 1);
    }
    json_buf_put(b, "]", 1);
}

static RecordPolicy policy_of(const HttpServer *s)
{
    return (RecordPolicy){.max_missing_percent = s->config->max_missing_percent,
                          .lenient_numbers = s->config->lenient_numbers};
}

/* Scores x (n_features values in buf, followed by room for the errors and the network's
 * scratch) and queues the reply; the id comes from root (cJSON path) or id (fast path). */
static enum MHD_Result score_reply(HttpRequest *req, const Model *m, uint64_t version, float *buf,
                                   const cJSON *root, const RecordId *id, const RecordNotes *notes)
{
    HttpServer *s = req->server;
    unsigned k = s->config->top_features;
    size_t f = m->n_features;
    float *x = buf, *err = buf + f;
    JsonBuf b = JSON_BUF_INIT;
    ModelScore sc;
    enum MHD_Result ret;

    model_score(m, x, buf + 2 * f, k > 0 ? err : NULL, &sc);
    metrics_observe_scores(s->metrics, &sc.score, 1, sc.threshold);
    recent_add(s->recent, m, x, 1);
    drift_observe(s->drift, m, x, 1, &sc.score);

    json_buf_reserve(&b, 512);
    json_buf_puts(&b, "{\"id\":");
    if (root != NULL)
        records_id(root, &b);
    else
        records_put_id(&b, id);
    json_buf_puts(&b, ",\"score\":");
    json_buf_float(&b, sc.score);
    json_buf_puts(&b, ",\"threshold\":");
    json_buf_float(&b, sc.threshold);
    json_buf_puts(&b, sc.anomaly ? ",\"anomaly\":true,\"percentile\":"
                                 : ",\"anomaly\":false,\"percentile\":");
    json_buf_float(&b, sc.percentile);
    if (m->ref.kind != MODEL_REFERENCE_NONE) { /* the combined score's parts (model.h) */
        json_buf_puts(&b, ",\"parts\":{\"reconstruction\":");
        json_buf_float(&b, sc.reconstruction);
        json_buf_puts(&b, ",\"neighbours\":");
        json_buf_float(&b, sc.neighbours);
        json_buf_put(&b, "}", 1);
    }
    json_buf_puts(&b, ",\"model_version\":");
    json_buf_uint(&b, version);
    json_buf_puts(&b, ",\"model_id\":\"");
    json_buf_puts(&b, m->meta.id);
    json_buf_put(&b, "\"", 1);
    if (notes != NULL) {
        records_put_notes(&b, notes);
        metrics_observe_encoding(s->metrics, notes->n_imputed, notes->n_unseen);
    }
    if (k > 0)
        put_top_features(&b, m, err, k);
    json_buf_puts(&b, "}\n");
    ret = http_reply_json(req, 200, &b);
    json_buf_deinit(&b);
    return ret;
}

enum MHD_Result api_score(HttpRequest *req)
{
    HttpServer *s = req->server;
    cJSON *root = NULL;
    Model *m = NULL;
    uint64_t version = 0;
    RecordIssues iss;
    RecordNotes notes;
    RecordPolicy policy = policy_of(s);
    RecordId id;
    enum MHD_Result ret;
    float *buf;
    int r;

    /* the fast path: a well-formed record of the served schema, no allocation */
    records_notes_init(&notes);
    m = model_slot_acquire(s->slot, &version);
    if (m != NULL) {
        FastRecord fr;

        buf = thread_scratch_record(m, &policy, 2 * m->n_features + model_scratch_size(m), &fr);
        if (buf != NULL && records_fast_single(req->body, req->body_len, &fr, buf, &id, &notes)) {
            ret = score_reply(req, m, version, buf, NULL, &id, &notes);
            records_notes_deinit(&notes);
            model_unref(m);
            return ret;
        }
        records_notes_deinit(&notes);
        m = model_unref(m);
    }

    /* everything else, errors included */
    records_issues_init(&iss);
    if (http_body_parse_json(req, &root, &ret) != HTTP_BODY_READY)
        return ret;
    if (!cJSON_IsObject(root)) {
        ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                               "the body must be one record (a JSON object)");
        goto out;
    }
    m = model_slot_acquire(s->slot, &version);
    if (m == NULL) {
        ret = http_reply_error(req, HTTP_E_NO_MODEL, NULL, "no model is being served yet");
        goto out;
    }
    buf = thread_scratch(2 * m->n_features + model_scratch_size(m));
    if (buf == NULL) {
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    r = records_read_model(root, m, &policy, buf, &notes, &iss);
    if (r == RECORDS_E_SCHEMA) {
        ret = reply_schema(req, &iss, "");
        goto out;
    }
    if (r < 0) {
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    ret = score_reply(req, m, version, buf, root, NULL, &notes);

out:
    records_notes_deinit(&notes);
    records_issues_deinit(&iss);
    model_unref(m);
    cJSON_Delete(root);
    return ret;
}

int api_score_rows(HttpRequest *req, const Model *m, const float *x, size_t n, float *scores)
{
    HttpServer *s = req->server;
    float *scratch = thread_scratch(model_scratch_size(m));

    if (scratch == NULL)
        return -ENOMEM;
    model_score_batch(m, x, n, scratch, scores);
    metrics_observe_scores(s->metrics, scores, n, m->threshold);
    recent_add(s->recent, m, x, n);
    drift_observe(s->drift, m, x, n, scores);
    return 0;
}

int api_score_field_errors(const Model *m, const float *x, size_t n, float *err)
{
    size_t f = m->n_features, nf = m->schema->n_fields;
    float *buf = thread_scratch(f + model_scratch_size(m));
    ModelScore unused;

    if (buf == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        model_score(m, x + i * f, buf + f, buf, &unused);
        schema_field_errors(m->schema, buf, err + i * nf); /* as put_top_features sums them */
    }
    return 0;
}

/* Scores n records x[n * n_features] and queues the reply; the ids come from records (cJSON
 * path) or ids[n] (fast path). */
static enum MHD_Result batch_reply(HttpRequest *req, const Model *m, uint64_t version,
                                   const float *x, size_t n, const cJSON *records,
                                   const RecordId *ids, const RecordNotes *notes)
{
    HttpServer *s = req->server;
    JsonBuf b = JSON_BUF_INIT;
    const cJSON *rec = records != NULL ? records->child : NULL;
    float *scores = malloc(n * sizeof(*scores));
    size_t anomalies = 0;
    enum MHD_Result ret;

    if (scores == NULL || api_score_rows(req, m, x, n, scores) < 0) {
        free(scores);
        return http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        anomalies += scores[i] > m->threshold;

    json_buf_reserve(&b, 96 * n + 128);
    json_buf_printf(&b, "{\"model_version\":%llu,\"model_id\":\"%s\",\"threshold\":",
                    (unsigned long long) version, m->meta.id);
    json_buf_float(&b, m->threshold);
    json_buf_printf(&b, ",\"anomalies\":%zu,\"results\":[", anomalies);
    for (size_t i = 0; i < n; i++) {
        json_buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        if (rec != NULL) {
            records_id(rec, &b);
            rec = rec->next;
        } else {
            records_put_id(&b, &ids[i]);
        }
        json_buf_puts(&b, ",\"score\":");
        json_buf_float(&b, scores[i]);
        json_buf_puts(&b, scores[i] > m->threshold ? ",\"anomaly\":true,\"percentile\":"
                                                   : ",\"anomaly\":false,\"percentile\":");
        json_buf_float(&b, threshold_percentile(m->percentiles, MODEL_PERCENTILES, scores[i]));
        if (notes != NULL) {
            records_put_notes(&b, &notes[i]);
            metrics_observe_encoding(s->metrics, notes[i].n_imputed, notes[i].n_unseen);
        }
        json_buf_put(&b, "}", 1);
    }
    json_buf_puts(&b, "]}\n");
    ret = http_reply_json(req, 200, &b);
    json_buf_deinit(&b);
    free(scores);
    return ret;
}

/* The fast path: well-formed records of the served schema, parsed in one pass. True when it
 * answered (*ret holds the result). */
static bool fast_batch(HttpRequest *req, enum MHD_Result *ret)
{
    HttpServer *s = req->server;
    RecordPolicy policy = policy_of(s);
    uint64_t version = 0;
    Model *m = model_slot_acquire(s->slot, &version);
    FastRecord fr;
    FastBatch b;
    bool done = false;

    /* the field values live in the thread's scratch only while the batch is read: the reply
     * reuses that scratch for scoring */
    if (m != NULL && thread_scratch_record(m, &policy, 0, &fr) != NULL &&
        records_fast_batch(req->body, req->body_len, &fr, s->config->max_batch, &b)) {
        *ret = batch_reply(req, m, version, b.x, b.n, NULL, b.ids, b.notes);
        records_fast_batch_free(&b);
        done = true;
    }
    model_unref(m);
    return done;
}

/* {"records": [...]} with 1..max_batch records: *records and *n, or false with the 400
 * queued in *ret. */
static bool batch_records(HttpRequest *req, const cJSON *root, const cJSON **records, size_t *n,
                          enum MHD_Result *ret)
{
    size_t max = req->server->config->max_batch;
    const cJSON *rec;

    *records = NULL;
    if (!cJSON_IsObject(root)) {
        *ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "the body must be an object {\"records\": [...]}");
        return false;
    }
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        JsonBuf d = JSON_BUF_INIT;

        if (strcmp(c->string, "records") == 0) {
            *records = c;
            continue;
        }
        json_buf_puts(&d, "\"member\":");
        json_buf_string(&d, c->string, strlen(c->string));
        *ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, d.oom ? NULL : d.data,
                                "unexpected member in a batch body");
        json_buf_deinit(&d);
        return false;
    }
    if (!cJSON_IsArray(*records)) {
        *ret = http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "\"records\" must be an array of records");
        return false;
    }
    *n = 0;
    cJSON_ArrayForEach(rec, *records)(*n)++;
    if (*n == 0 || *n > max) {
        *ret = *n == 0 ? http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL, "\"records\" is empty")
                       : http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                          "a batch takes at most %zu records; this one has %zu",
                                          max, *n);
        return false;
    }
    return true;
}

/* Reads every record into x (n rows of the model's columns) and notes; a record that does
 * not fit is counted in iss. 0, or -ENOMEM. */
static int read_batch(const cJSON *records, const Model *m, const RecordPolicy *policy, float *x,
                      RecordNotes *notes, RecordIssues *iss)
{
    const cJSON *rec;
    size_t i = 0, f = m->n_features;

    cJSON_ArrayForEach(rec, records)
    {
        int r = records_read_model(rec, m, policy, x + i * f, &notes[i], iss);

        if (r < 0)
            return r;
        if (r == RECORDS_E_SCHEMA)
            records_issues_add_index(iss, i);
        i++;
    }
    return 0;
}

enum MHD_Result api_score_batch(HttpRequest *req)
{
    HttpServer *s = req->server;
    RecordPolicy policy = policy_of(s);
    const cJSON *records = NULL;
    cJSON *root = NULL;
    RecordNotes *notes = NULL;
    RecordIssues iss;
    uint64_t version = 0;
    Model *m = NULL;
    float *x = NULL;
    size_t n = 0;
    enum MHD_Result ret;
    char prefix[64];

    if (fast_batch(req, &ret))
        return ret;
    /* everything else, errors included */
    if (http_body_parse_json(req, &root, &ret) != HTTP_BODY_READY)
        return ret;
    records_issues_init(&iss);
    if (!batch_records(req, root, &records, &n, &ret))
        goto out;
    m = model_slot_acquire(s->slot, &version);
    if (m == NULL) {
        ret = http_reply_error(req, HTTP_E_NO_MODEL, NULL, "no model is being served yet");
        goto out;
    }
    x = malloc(n * m->n_features * sizeof(*x)); /* n <= max_batch, f <= MODEL_MAX_FEATURES */
    notes = calloc(n, sizeof(*notes));          /* zeroed = records_notes_init */
    if (x == NULL || notes == NULL || thread_scratch(model_scratch_size(m)) == NULL ||
        read_batch(records, m, &policy, x, notes, &iss) < 0) {
        ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    if (iss.n_bad > 0) {
        snprintf(prefix, sizeof(prefix), "%zu record(s) do not fit the model; first: ", iss.n_bad);
        ret = reply_schema(req, &iss, prefix);
        goto out;
    }
    ret = batch_reply(req, m, version, x, n, records, NULL, notes);

out:
    for (size_t k = 0; notes != NULL && k < n; k++)
        records_notes_deinit(&notes[k]);
    free(notes);
    records_issues_deinit(&iss);
    free(x);
    model_unref(m);
    cJSON_Delete(root);
    return ret;
}
