/* records: the only place where a JSON record becomes a float[] in a model's feature order.
 *
 * A record is {"id"?: string|number, "features": {name: number, ...}} or
 * {"id"?, "values": [number, ...]} in schema order (plus "label": 0|1 when retraining).
 * Everything that can be wrong is collected rather than stopped at, so one 422 names every
 * missing, unknown, repeated and invalid feature at once (capped at RECORDS_MAX_NAMES each).
 * x doubles as the "seen" set: it starts as NaN and a parsed value is always finite, so a
 * second value for a slot is a repeat and a NaN left at the end is a missing feature. That
 * keeps single-record scoring free of allocations. Lookups are case-sensitive and never use
 * valueint (it saturates); every number must be finite as a double AND as a float
 * (1e39 is a finite double but an infinite float).
 */
#include "http_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void records_issues_init(RecordIssues *iss)
{
    memset(iss, 0, sizeof(*iss));
}

void records_issues_deinit(RecordIssues *iss)
{
    http_buf_deinit(&iss->missing);
    http_buf_deinit(&iss->unknown);
    http_buf_deinit(&iss->invalid);
    http_buf_deinit(&iss->repeated);
    http_buf_deinit(&iss->indices);
    records_issues_init(iss);
}

/* Adds name to a list unless it is there already or the list is full. */
static void add_name(HttpBuf *list, size_t *count, const char *name, size_t len)
{
    HttpBuf q = HTTP_BUF_INIT;

    if (*count >= RECORDS_MAX_NAMES)
        return;
    http_buf_json_string(&q, name, len);
    if (q.oom) {
        list->oom = true;
        return;
    }
    if (list->data != NULL) {
        for (const char *p = strstr(list->data, q.data); p != NULL; p = strstr(p + 1, q.data))
            if ((p == list->data || p[-1] == ',') && (p[q.len] == ',' || p[q.len] == '\0')) {
                http_buf_deinit(&q);
                return;
            }
    }
    if (*count > 0)
        http_buf_put(list, ",", 1);
    http_buf_put(list, q.data, q.len);
    (*count)++;
    http_buf_deinit(&q);
}

static void note(RecordIssues *iss, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(RecordIssues *iss, const char *fmt, ...)
{
    va_list ap;

    iss->hits++;
    if (iss->message[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(iss->message, sizeof(iss->message), fmt, ap);
    va_end(ap);
}

static void put_list(HttpBuf *b, const char *key, const HttpBuf *list)
{
    http_buf_printf(b, "\"%s\":[", key);
    if (list->data != NULL)
        http_buf_put(b, list->data, list->len);
    http_buf_put(b, "]", 1);
}

char *records_issues_details(RecordIssues *iss)
{
    HttpBuf b = HTTP_BUF_INIT;
    size_t len;

    if (iss->missing.oom || iss->unknown.oom || iss->invalid.oom || iss->repeated.oom ||
        iss->indices.oom)
        return NULL;
    put_list(&b, "missing", &iss->missing);
    http_buf_put(&b, ",", 1);
    put_list(&b, "unknown", &iss->unknown);
    http_buf_put(&b, ",", 1);
    put_list(&b, "invalid", &iss->invalid);
    if (iss->n_repeated > 0) {
        http_buf_put(&b, ",", 1);
        put_list(&b, "repeated", &iss->repeated);
    }
    if (iss->n_indices > 0) {
        http_buf_put(&b, ",", 1);
        put_list(&b, "indices", &iss->indices);
    }
    return http_buf_steal(&b, &len);
}

/* Index of name in names, trying *hint first: clients usually send features in schema
 * order, which makes a record O(n) instead of O(n^2) string compares. */
static long find_name(char *const *names, size_t n, const char *name, size_t *hint)
{
    if (*hint < n && strcmp(names[*hint], name) == 0)
        return (long) (*hint)++;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) {
            *hint = i + 1;
            return (long) i;
        }
    return -1;
}

/* A finite number that is also finite as a float. */
static bool number_value(const cJSON *v, float *out)
{
    double d;

    if (!cJSON_IsNumber(v))
        return false;
    d = v->valuedouble;
    if (!isfinite(d) || fabs(d) > FLT_MAX)
        return false;
    *out = (float) d;
    return true;
}

static void read_features(const cJSON *obj, char *const *names, size_t n, float *x,
                          RecordIssues *iss)
{
    size_t hint = 0;

    for (const cJSON *f = obj->child; f != NULL; f = f->next) {
        long i = find_name(names, n, f->string, &hint);
        float v;

        if (i < 0) {
            add_name(&iss->unknown, &iss->n_unknown, f->string, strlen(f->string));
            note(iss, "unknown feature \"%s\"", f->string);
        } else if (!isnan(x[i])) {
            add_name(&iss->repeated, &iss->n_repeated, f->string, strlen(f->string));
            note(iss, "feature \"%s\" given more than once", f->string);
        } else if (!number_value(f, &v)) {
            add_name(&iss->invalid, &iss->n_invalid, f->string, strlen(f->string));
            note(iss, "feature \"%s\" is not a finite number", f->string);
            x[i] = 0; /* present, so not also reported missing */
        } else {
            x[i] = v;
        }
    }
}

static void read_values(const cJSON *arr, char *const *names, size_t n, float *x, RecordIssues *iss)
{
    size_t count = 0;
    char label[32];

    for (const cJSON *v = arr->child; v != NULL; v = v->next)
        count++;
    if (count != n) {
        add_name(&iss->invalid, &iss->n_invalid, "values", 6);
        note(iss, "\"values\" has %zu numbers; the model has %zu features", count, n);
        return;
    }
    count = 0;
    for (const cJSON *v = arr->child; v != NULL; v = v->next, count++) {
        float f;

        if (number_value(v, &f)) {
            x[count] = f;
            continue;
        }
        x[count] = 0;
        add_name(&iss->invalid, &iss->n_invalid, names[count], strlen(names[count]));
        snprintf(label, sizeof(label), "values[%zu]", count);
        note(iss, "%s is not a finite number", label);
    }
}

int records_read(const cJSON *rec, char *const *names, size_t n, unsigned flags, float *x,
                 int *label, RecordIssues *iss)
{
    const cJSON *features = NULL, *values = NULL;
    size_t hits = iss->hits;

    if (label != NULL)
        *label = -1;
    if (!cJSON_IsObject(rec)) {
        note(iss, "%s", "a record must be a JSON object");
        return RECORDS_E_SCHEMA;
    }
    for (const cJSON *m = rec->child; m != NULL; m = m->next) {
        if (strcmp(m->string, "features") == 0) {
            features = m;
        } else if (strcmp(m->string, "values") == 0) {
            values = m;
        } else if (strcmp(m->string, "id") == 0) {
            if (!cJSON_IsString(m) && !cJSON_IsNumber(m) && !cJSON_IsNull(m)) {
                add_name(&iss->invalid, &iss->n_invalid, "id", 2);
                note(iss, "%s", "\"id\" must be a string or a number");
            }
        } else if (strcmp(m->string, "label") == 0 && (flags & RECORDS_ALLOW_LABEL)) {
            if (!cJSON_IsNumber(m) || (m->valuedouble != 0 && m->valuedouble != 1)) {
                add_name(&iss->invalid, &iss->n_invalid, "label", 5);
                note(iss, "%s", "\"label\" must be 0 or 1");
            } else if (label != NULL) {
                *label = m->valuedouble == 1 ? 1 : 0;
            }
        } else {
            add_name(&iss->invalid, &iss->n_invalid, m->string, strlen(m->string));
            note(iss, "unexpected member \"%s\" in a record", m->string);
        }
    }
    if ((features == NULL) == (values == NULL)) {
        note(iss, "%s",
             "a record needs exactly one of \"features\" (an object) or "
             "\"values\" (an array)");
        return RECORDS_E_SCHEMA;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
    if (features != NULL) {
        if (!cJSON_IsObject(features)) {
            add_name(&iss->invalid, &iss->n_invalid, "features", 8);
            note(iss, "%s", "\"features\" must be an object of name: number");
            return RECORDS_E_SCHEMA;
        }
        read_features(features, names, n, x, iss);
        for (size_t i = 0; i < n; i++)
            if (isnan(x[i])) {
                add_name(&iss->missing, &iss->n_missing, names[i], strlen(names[i]));
                note(iss, "missing feature \"%s\"", names[i]);
            }
    } else {
        if (!cJSON_IsArray(values)) {
            add_name(&iss->invalid, &iss->n_invalid, "values", 6);
            note(iss, "%s", "\"values\" must be an array of numbers");
            return RECORDS_E_SCHEMA;
        }
        read_values(values, names, n, x, iss);
    }
    if (iss->hits != hits)
        return RECORDS_E_SCHEMA;
    return 0;
}

int records_read_model(const cJSON *rec, const Model *m, float *x, RecordIssues *iss)
{
    return records_read(rec, m->names, m->n_features, 0, x, NULL, iss);
}

int records_id(const cJSON *rec, HttpBuf *out)
{
    const cJSON *id = cJSON_IsObject(rec) ? cJSON_GetObjectItemCaseSensitive(rec, "id") : NULL;

    if (id == NULL || cJSON_IsNull(id)) {
        http_buf_puts(out, "null");
    } else if (cJSON_IsString(id)) {
        http_buf_json_string(out, id->valuestring, strlen(id->valuestring));
    } else if (cJSON_IsNumber(id)) {
        double v = id->valuedouble;
        /* integers print as integers (an id of 7 must come back as 7, not 7.0000000000) */
        if (isfinite(v) && v == trunc(v) && fabs(v) < 9007199254740992.0)
            http_buf_printf(out, "%.0f", v);
        else
            http_buf_json_double(out, v);
    } else {
        return RECORDS_E_SCHEMA;
    }
    return out->oom ? -ENOMEM : 0;
}
