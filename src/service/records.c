/* records: the only place where a JSON record becomes a float[] in a model's feature order.
 *
 * A record is {"id"?: string|number, "features": {name: value, ...}} or
 * {"id"?, "values": [value, ...]} in field order (plus "label": 0|1 when retraining). For
 * scoring, values follow the model's schema (schema.h): a number for a numeric field (a
 * number in a string only with lenient_numbers), a string for a categorical one, null or
 * absent for a missing value, imputed when the record misses at most max_missing_percent of
 * its fields; the reply names the imputed fields and the unseen categories.
 * Everything that can be wrong is collected rather than stopped at, so one 422 names every
 * missing, unknown, repeated and invalid feature at once (capped at RECORDS_MAX_NAMES each).
 * x doubles as the "seen" set: it starts as NaN and a parsed value is always finite, so a
 * second value for a slot is a repeat and a NaN left at the end is a missing feature. That
 * keeps single-record scoring free of allocations. Lookups are case-sensitive and never use
 * valueint (it saturates); every number must be finite as a double AND as a float
 * (1e39 is a finite double but an infinite float).
 */
#include "records.h"
#include "records_fast.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void records_issues_init(RecordIssues *iss)
{
    memset(iss, 0, sizeof(*iss));
}

void records_issues_deinit(RecordIssues *iss)
{
    json_buf_deinit(&iss->missing);
    json_buf_deinit(&iss->unknown);
    json_buf_deinit(&iss->invalid);
    json_buf_deinit(&iss->repeated);
    json_buf_deinit(&iss->indices);
    records_issues_init(iss);
}

/* Adds name to a list unless it is there already or the list is full. */
static void add_name(JsonBuf *list, size_t *count, const char *name, size_t len)
{
    JsonBuf q = JSON_BUF_INIT;

    if (*count >= RECORDS_MAX_NAMES)
        return;
    json_buf_string(&q, name, len);
    if (q.oom) {
        list->oom = true;
        return;
    }
    if (list->data != NULL) {
        for (const char *p = strstr(list->data, q.data); p != NULL; p = strstr(p + 1, q.data))
            if ((p == list->data || p[-1] == ',') && (p[q.len] == ',' || p[q.len] == '\0')) {
                json_buf_deinit(&q);
                return;
            }
    }
    if (*count > 0)
        json_buf_put(list, ",", 1);
    json_buf_put(list, q.data, q.len);
    (*count)++;
    json_buf_deinit(&q);
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

static void put_list(JsonBuf *b, const char *key, const JsonBuf *list)
{
    json_buf_printf(b, "\"%s\":[", key);
    if (list->data != NULL)
        json_buf_put(b, list->data, list->len);
    json_buf_put(b, "]", 1);
}

char *records_issues_details(RecordIssues *iss)
{
    JsonBuf b = JSON_BUF_INIT;
    size_t len;

    if (iss->missing.oom || iss->unknown.oom || iss->invalid.oom || iss->repeated.oom ||
        iss->indices.oom)
        return NULL;
    put_list(&b, "missing", &iss->missing);
    json_buf_put(&b, ",", 1);
    put_list(&b, "unknown", &iss->unknown);
    json_buf_put(&b, ",", 1);
    put_list(&b, "invalid", &iss->invalid);
    if (iss->n_repeated > 0) {
        json_buf_put(&b, ",", 1);
        put_list(&b, "repeated", &iss->repeated);
    }
    if (iss->n_indices > 0) {
        json_buf_put(&b, ",", 1);
        put_list(&b, "indices", &iss->indices);
    }
    return json_buf_steal(&b, &len);
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

void records_notes_init(RecordNotes *notes)
{
    memset(notes, 0, sizeof(*notes));
}

void records_notes_deinit(RecordNotes *notes)
{
    json_buf_deinit(&notes->imputed);
    json_buf_deinit(&notes->unseen);
    records_notes_init(notes);
}

/* One field's value from JSON, checked against the field's kind. false: invalid (noted). */
static bool field_value(const cJSON *v, const SchemaField *fd, const RecordPolicy *policy,
                        SchemaValue *out, RecordIssues *iss)
{
    float f;

    if (cJSON_IsNull(v)) {
        *out = (SchemaValue){.type = SCHEMA_MISSING};
        return true;
    }
    if (fd->kind == SCHEMA_CATEGORICAL) {
        if (cJSON_IsString(v)) {
            *out = (SchemaValue){
                .type = SCHEMA_TEXT, .text = v->valuestring, .len = strlen(v->valuestring)};
            return true;
        }
        note(iss, "field \"%s\" takes a category (a string)", fd->name);
    } else if (number_value(v, &f)) {
        *out = (SchemaValue){.type = SCHEMA_NUMBER, .number = f};
        return true;
    } else if (cJSON_IsString(v) && policy->lenient_numbers) {
        char *end;
        double d = strtod(v->valuestring, &end);

        if (end != v->valuestring && *end == '\0' && isfinite(d) && fabs(d) <= FLT_MAX) {
            *out = (SchemaValue){.type = SCHEMA_NUMBER, .number = (float) d};
            return true;
        }
        note(iss, "field \"%s\" is not a finite number", fd->name);
    } else if (cJSON_IsString(v)) {
        note(iss, "field \"%s\" is a number sent as a string (lenient_numbers is off)", fd->name);
    } else {
        note(iss, "field \"%s\" is not a finite number", fd->name);
    }
    add_name(&iss->invalid, &iss->n_invalid, fd->name, strlen(fd->name));
    *out = (SchemaValue){.type = SCHEMA_NUMBER}; /* present, so not also reported missing */
    return false;
}

/* The record's data member, "features" or "values", or NULL (noted in iss) when it is not
 * an object holding exactly one of them. Checks "id" (a string, a number or null); reads
 * "label" (0 or 1) into *label when label is not NULL (training records), else it is an
 * unexpected member like any other. *is_values tells which member was found. */
static const cJSON *record_data(const cJSON *rec, int *label, bool *is_values, RecordIssues *iss)
{
    const cJSON *features = NULL, *values = NULL;

    if (label != NULL)
        *label = -1;
    if (!cJSON_IsObject(rec)) {
        note(iss, "%s", "a record must be a JSON object");
        return NULL;
    }
    for (const cJSON *mb = rec->child; mb != NULL; mb = mb->next) {
        if (strcmp(mb->string, "features") == 0) {
            features = mb;
        } else if (strcmp(mb->string, "values") == 0) {
            values = mb;
        } else if (strcmp(mb->string, "id") == 0) {
            if (!cJSON_IsString(mb) && !cJSON_IsNumber(mb) && !cJSON_IsNull(mb)) {
                add_name(&iss->invalid, &iss->n_invalid, "id", 2);
                note(iss, "%s", "\"id\" must be a string or a number");
            }
        } else if (strcmp(mb->string, "label") == 0 && label != NULL) {
            if (cJSON_IsNumber(mb) && (mb->valuedouble == 0 || mb->valuedouble == 1)) {
                *label = mb->valuedouble == 1;
            } else {
                add_name(&iss->invalid, &iss->n_invalid, "label", 5);
                note(iss, "%s", "\"label\" must be 0 or 1");
            }
        } else {
            add_name(&iss->invalid, &iss->n_invalid, mb->string, strlen(mb->string));
            note(iss, "unexpected member \"%s\" in a record", mb->string);
        }
    }
    if ((features == NULL) == (values == NULL)) {
        note(iss, "%s",
             "a record needs exactly one of \"features\" (an object) or \"values\" (an array)");
        return NULL;
    }
    *is_values = values != NULL;
    return values != NULL ? values : features;
}

int records_read_model(const cJSON *rec, const Model *m, const RecordPolicy *policy, float *x,
                       RecordNotes *notes, RecordIssues *iss)
{
    const Schema *s = m->schema;
    const cJSON *data, *features, *values;
    bool is_values = false;
    size_t n = s->n_fields, hits = iss->hits, missing = 0, hint = 0;
    SchemaValue *v = malloc(n * sizeof(*v));
    unsigned char *seen = calloc(n, 1);
    int r = RECORDS_E_SCHEMA;

    if (v == NULL || seen == NULL) {
        r = -ENOMEM;
        goto out;
    }
    data = record_data(rec, NULL, &is_values, iss);
    if (data == NULL)
        goto out;
    features = is_values ? NULL : data;
    values = is_values ? data : NULL;
    for (size_t f = 0; f < n; f++)
        v[f] = (SchemaValue){.type = SCHEMA_MISSING};
    if (features != NULL) {
        if (!cJSON_IsObject(features)) {
            add_name(&iss->invalid, &iss->n_invalid, "features", 8);
            note(iss, "%s", "\"features\" must be an object of name: value");
            goto out;
        }
        for (const cJSON *c = features->child; c != NULL; c = c->next) {
            size_t len = strlen(c->string);
            long f = hint < n && strcmp(s->fields[hint].name, c->string) == 0
                         ? (long) hint
                         : schema_field_index(s, c->string, len);

            if (f < 0) {
                add_name(&iss->unknown, &iss->n_unknown, c->string, len);
                note(iss, "unknown feature \"%s\"", c->string);
            } else if (seen[f]) {
                add_name(&iss->repeated, &iss->n_repeated, c->string, len);
                note(iss, "feature \"%s\" given more than once", c->string);
            } else {
                seen[f] = 1;
                hint = (size_t) f + 1;
                field_value(c, &s->fields[f], policy, &v[f], iss);
            }
        }
    } else {
        size_t count = 0;

        if (!cJSON_IsArray(values)) {
            add_name(&iss->invalid, &iss->n_invalid, "values", 6);
            note(iss, "%s", "\"values\" must be an array with one value per field");
            goto out;
        }
        for (const cJSON *c = values->child; c != NULL; c = c->next)
            count++;
        if (count != n) {
            add_name(&iss->invalid, &iss->n_invalid, "values", 6);
            note(iss, "\"values\" has %zu values; the model has %zu fields", count, n);
            goto out;
        }
        count = 0;
        for (const cJSON *c = values->child; c != NULL; c = c->next, count++)
            field_value(c, &s->fields[count], policy, &v[count], iss);
    }
    for (size_t f = 0; f < n; f++)
        missing += v[f].type == SCHEMA_MISSING;
    if (missing * 100 > (size_t) policy->max_missing_percent * n) {
        for (size_t f = 0; f < n; f++)
            if (v[f].type == SCHEMA_MISSING) {
                add_name(&iss->missing, &iss->n_missing, s->fields[f].name,
                         strlen(s->fields[f].name));
                note(iss,
                     "missing feature \"%s\" (%zu of %zu missing; at most %u%% may be "
                     "imputed)",
                     s->fields[f].name, missing, n, policy->max_missing_percent);
            }
    }
    if (iss->hits != hits)
        goto out;

    schema_encode(s, v, x, NULL); /* every value was checked against its field above */
    for (size_t f = 0; notes != NULL && f < n; f++) {
        const SchemaField *fd = &s->fields[f];

        if (v[f].type == SCHEMA_MISSING)
            add_name(&notes->imputed, &notes->n_imputed, fd->name, strlen(fd->name));
        else if (fd->kind == SCHEMA_CATEGORICAL &&
                 schema_category_index(fd, v[f].text, v[f].len) < 0)
            add_name(&notes->unseen, &notes->n_unseen, fd->name, strlen(fd->name));
    }
    r = notes != NULL && (notes->imputed.oom || notes->unseen.oom) ? -ENOMEM : 0;
out:
    free(v);
    free(seen);
    return r;
}

void records_put_notes(JsonBuf *out, const RecordNotes *notes)
{
    if (notes->n_imputed > 0) {
        json_buf_puts(out, ",\"imputed\":[");
        json_buf_put(out, notes->imputed.data, notes->imputed.len);
        json_buf_put(out, "]", 1);
    }
    if (notes->n_unseen > 0) {
        json_buf_puts(out, ",\"unseen\":[");
        json_buf_put(out, notes->unseen.data, notes->unseen.len);
        json_buf_put(out, "]", 1);
    }
}

static void put_id_number(JsonBuf *out, double v)
{
    /* integers print as integers (an id of 7 must come back as 7, not 7.0000000000) */
    if (isfinite(v) && v == trunc(v) && fabs(v) < 9007199254740992.0)
        json_buf_printf(out, "%.0f", v);
    else
        json_buf_double(out, v);
}

int records_id(const cJSON *rec, JsonBuf *out)
{
    const cJSON *id = cJSON_IsObject(rec) ? cJSON_GetObjectItemCaseSensitive(rec, "id") : NULL;

    if (id == NULL || cJSON_IsNull(id)) {
        json_buf_puts(out, "null");
    } else if (cJSON_IsString(id)) {
        json_buf_string(out, id->valuestring, strlen(id->valuestring));
    } else if (cJSON_IsNumber(id)) {
        put_id_number(out, id->valuedouble);
    } else {
        return RECORDS_E_SCHEMA;
    }
    return out->oom ? -ENOMEM : 0;
}

/* ---- the fast path (records_fast.h) ----
 * Each reader takes *pp and end, returns false to decline, and on success leaves *pp after
 * what it read. Why it exists (scripts/bench.sh, POST /score with 50 named features): the
 * server's CPU per request fell from 43 to 23 us and its callgrind instructions from 290k
 * to 159k; a 1,000-record batch from 16.2 to 3.7 ms of CPU, 6 x the rate at which cJSON
 * alone parses the same body. */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* '"' printable ASCII without escapes '"' -> text[len] */
/* After a member or element at *pp (whitespace skipped): 1 and past a ',' when another
 * follows, 0 on the closing character (left in place), -1 for anything else. */
static int next_member(const char **pp, const char *end, char close)
{
    const char *p = *pp;

    if (p < end && *p == ',') {
        *pp = skip_ws(p + 1, end);
        return 1;
    }
    return p < end && *p == close ? 0 : -1;
}

static bool fast_string(const char **pp, const char *end, const char **text, size_t *len)
{
    const char *p = *pp, *start;

    if (p >= end || *p != '"')
        return false;
    start = ++p;
    while (p < end && *p != '"') {
        unsigned char c = (unsigned char) *p;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return false;
        p++;
    }
    if (p >= end)
        return false;
    *text = start;
    *len = (size_t) (p - start);
    *pp = p + 1;
    return true;
}

static bool text_is(const char *text, size_t len, const char *word)
{
    return strncmp(word, text, len) == 0 && word[len] == '\0';
}

/* A number in strict JSON grammar, as the double strtod gives for its characters (which is
 * what cJSON stores). Up to 19 digits with a decimal exponent within +-22 take Clinger's
 * exact shortcut: mantissa and power of ten are both exact doubles, so one correctly
 * rounded multiply or divide equals the correctly rounded strtod. The rest go to strtod.
 * cJSON reads at most 63 characters of a number; longer ones are declined. */
static bool fast_number(const char **pp, const char *end, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = *pp, *start = p;
    uint64_t mant = 0;
    long exp10 = 0;
    bool neg = false, exact = true;

#define DIGIT(c) ((c) >= '0' && (c) <= '9')
#define TAKE(c)                                                                                    \
    do {                                                                                           \
        if (mant > (UINT64_C(1) << 53))                                                            \
            exact = false;                                                                         \
        else                                                                                       \
            mant = mant * 10 + (uint64_t) ((c) - '0');                                             \
    } while (0)
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || !DIGIT(*p))
        return false;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && DIGIT(*p)) {
            TAKE(*p);
            if (!exact)
                break;
            p++;
        }
        while (p < end && DIGIT(*p))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !DIGIT(*p))
            return false;
        while (p < end && DIGIT(*p)) {
            if (exact) {
                TAKE(*p);
                exp10--;
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        long e = 0;
        bool eneg = false;

        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !DIGIT(*p))
            return false;
        while (p < end && DIGIT(*p)) {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
#undef TAKE
#undef DIGIT
    if (p - start > 63)
        return false;
    if (exact && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double) mant;
        d = exp10 < 0 ? d / pow10[-exp10] : d * pow10[exp10];
        *out = neg ? -d : d;
    } else {
        char buf[64], *e;
        size_t n = (size_t) (p - start);

        memcpy(buf, start, n);
        buf[n] = '\0';
        *out = strtod(buf, &e);
        if (e != buf + n)
            return false;
    }
    *pp = p;
    return true;
}

/* A feature value: as number_value, finite as a double and as a float. */
static bool fast_value(const char **pp, const char *end, float *out)
{
    double d;

    if (!fast_number(pp, end, &d) || !isfinite(d) || fabs(d) > FLT_MAX)
        return false;
    *out = (float) d;
    return true;
}

static bool fast_features(const char **pp, const char *end, const Model *m, float *x)
{
    const char *p = skip_ws(*pp, end), *key;
    size_t n = m->n_features, hint = 0, len;

    if (p >= end || *p != '{')
        return false;
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return false; /* every feature missing */
    for (;;) {
        long i = -1;

        if (!fast_string(&p, end, &key, &len))
            return false;
        /* schema order first, as find_name does */
        if (hint < n && text_is(key, len, m->names[hint])) {
            i = (long) hint++;
        } else {
            for (size_t j = 0; j < n; j++)
                if (text_is(key, len, m->names[j])) {
                    i = (long) j;
                    hint = j + 1;
                    break;
                }
        }
        if (i < 0 || !isnan(x[i])) /* unknown or repeated: the 422 is the cJSON path's */
            return false;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        p = skip_ws(p + 1, end);
        if (!fast_value(&p, end, &x[i]))
            return false;
        p = skip_ws(p, end);
        int more = next_member(&p, end, '}');
        if (more > 0)
            continue;
        if (more == 0)
            break;
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]))
            return false;
    *pp = p + 1;
    return true;
}

static bool fast_values(const char **pp, const char *end, size_t n, float *x)
{
    const char *p = skip_ws(*pp, end);
    size_t count = 0;

    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (count == n || !fast_value(&p, end, &x[count]))
            return false;
        count++;
        p = skip_ws(p, end);
        int more = next_member(&p, end, ']');
        if (more > 0)
            continue;
        if (more == 0)
            break;
        return false;
    }
    if (count != n)
        return false;
    *pp = p + 1;
    return true;
}

static bool fast_id(const char **pp, const char *end, RecordId *id)
{
    const char *p = *pp;

    if (p < end && *p == 'n') {
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            return false;
        id->kind = RECORD_ID_NULL;
        *pp = p + 4;
        return true;
    }
    if (p < end && *p == '"') {
        id->kind = RECORD_ID_STRING;
        return fast_string(pp, end, &id->text, &id->len);
    }
    id->kind = RECORD_ID_NUMBER;
    return fast_number(pp, end, &id->number);
}

static bool fast_record(const char **pp, const char *end, const Model *m, float *x, RecordId *id)
{
    const char *p = skip_ws(*pp, end), *key;
    bool have_data = false;
    size_t len;

    id->kind = RECORD_ID_ABSENT;
    if (p >= end || *p != '{')
        return false;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (!fast_string(&p, end, &key, &len))
            return false;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        p = skip_ws(p + 1, end);
        if (text_is(key, len, "features") && !have_data) {
            if (!fast_features(&p, end, m, x))
                return false;
            have_data = true;
        } else if (text_is(key, len, "values") && !have_data) {
            if (!fast_values(&p, end, m->n_features, x))
                return false;
            have_data = true;
        } else if (text_is(key, len, "id") && id->kind == RECORD_ID_ABSENT) {
            if (!fast_id(&p, end, id))
                return false;
        } else {
            return false; /* another member, or one given twice */
        }
        p = skip_ws(p, end);
        int more = next_member(&p, end, '}');
        if (more > 0)
            continue;
        if (more == 0)
            break;
        return false;
    }
    if (!have_data)
        return false;
    *pp = p + 1;
    return true;
}

bool records_fast_single(const char *body, size_t len, const Model *m, float *x, RecordId *id)
{
    const char *p = body, *end = body + len;

    if (body == NULL || !schema_is_plain(m->schema) || !fast_record(&p, end, m, x, id))
        return false;
    return skip_ws(p, end) == end;
}

bool records_fast_batch(const char *body, size_t len, const Model *m, size_t max, float **xs,
                        RecordId **ids, size_t *count)
{
    const char *p = body, *end = body + len, *key;
    size_t f = m->n_features, n = 0, cap = 0, klen;
    float *x = NULL;
    RecordId *id = NULL;

    if (body == NULL || !schema_is_plain(m->schema))
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return false;
    p = skip_ws(p + 1, end);
    if (!fast_string(&p, end, &key, &klen) || !text_is(key, klen, "records"))
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return false;
    p = skip_ws(p + 1, end);
    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (n == cap) {
            size_t c = cap ? 2 * cap : 256;
            float *nx;
            RecordId *nid;

            if (n == max)
                goto decline; /* the cJSON path names the limit */
            if (c > max)
                c = max;
            nx = realloc(x, c * f * sizeof(*x)); /* c <= max_batch, f <= MODEL_MAX_FEATURES */
            if (nx == NULL)
                goto decline;
            x = nx;
            nid = realloc(id, c * sizeof(*id));
            if (nid == NULL)
                goto decline;
            id = nid;
            cap = c;
        }
        if (!fast_record(&p, end, m, x + n * f, &id[n]))
            goto decline;
        n++;
        p = skip_ws(p, end);
        int more = next_member(&p, end, ']');
        if (more > 0)
            continue;
        if (more == 0)
            break;
        goto decline;
    }
    p = skip_ws(p + 1, end);
    if (p >= end || *p != '}' || skip_ws(p + 1, end) != end)
        goto decline;
    *xs = x;
    *ids = id;
    *count = n;
    return true;

decline:
    free(x);
    free(id);
    return false;
}

void records_put_id(JsonBuf *out, const RecordId *id)
{
    switch (id->kind) {
    case RECORD_ID_ABSENT:
    case RECORD_ID_NULL:
        json_buf_puts(out, "null");
        break;
    case RECORD_ID_STRING:
        json_buf_string(out, id->text, id->len);
        break;
    case RECORD_ID_NUMBER:
        put_id_number(out, id->number);
        break;
    }
}

/* ---- training records (POST /retrain with JSON) ---- */

enum { CELL_ABSENT = 0, CELL_NUMBER, CELL_TEXT };

/* Indexes one record's cells by column into cells[n] (NULL = absent). false: it does not
 * fit (noted in iss). */
static bool index_record(const cJSON *rec, char *const *names, size_t n, size_t n_values,
                         const cJSON **cells, int *label, RecordIssues *iss)
{
    const cJSON *data, *features = NULL, *values = NULL;
    size_t hits = iss->hits, hint = 0;
    bool is_values = false;

    for (size_t c = 0; c < n; c++)
        cells[c] = NULL;
    data = record_data(rec, label, &is_values, iss);
    if (data == NULL)
        return false;
    if (is_values ? !cJSON_IsArray(data) : !cJSON_IsObject(data)) {
        add_name(&iss->invalid, &iss->n_invalid, is_values ? "values" : "features",
                 is_values ? 6 : 8);
        note(iss, "%s",
             is_values ? "\"values\" must be an array" : "\"features\" must be an object");
        return false;
    }
    features = is_values ? NULL : data;
    values = is_values ? data : NULL;
    if (values != NULL) {
        size_t count = 0;
        for (const cJSON *v = values->child; v != NULL; v = v->next, count++)
            if (count < n_values)
                cells[count] = v;
        if (count != n_values) {
            add_name(&iss->invalid, &iss->n_invalid, "values", 6);
            note(iss, "\"values\" has %zu values; there are %zu fields", count, n_values);
        }
        return iss->hits == hits;
    }
    for (const cJSON *f = features->child; f != NULL; f = f->next) {
        long c = find_name(names, n, f->string, &hint);
        if (c < 0) {
            add_name(&iss->unknown, &iss->n_unknown, f->string, strlen(f->string));
            note(iss, "unknown feature \"%s\"", f->string);
        } else if (cells[c] != NULL) {
            add_name(&iss->repeated, &iss->n_repeated, f->string, strlen(f->string));
            note(iss, "feature \"%s\" given more than once", f->string);
        } else {
            cells[c] = f;
        }
    }
    return iss->hits == hits;
}

/* A cell's kind: absent/null, a number finite as a float, a string, or -1 for anything
 * else (noted). */
static int cell_kind(const cJSON *v, const char *name, RecordIssues *iss)
{
    float f;

    if (v == NULL || cJSON_IsNull(v))
        return CELL_ABSENT;
    if (cJSON_IsString(v) && v->valuestring[0] != '\0' &&
        strlen(v->valuestring) <= DATASET_TEXT_MAX)
        return CELL_TEXT;
    if (number_value(v, &f))
        return CELL_NUMBER;
    add_name(&iss->invalid, &iss->n_invalid, name, strlen(name));
    note(iss, "feature \"%s\" is neither a finite number, a string nor null", name);
    return -1;
}

int records_to_dataset(const cJSON *records, char *const *names, size_t n, size_t n_values,
                       Dataset **out, RecordIssues *iss)
{
    const cJSON **cells = calloc(n ? n : 1, sizeof(*cells));
    unsigned char *is_text = calloc(n ? n : 1, 1);
    size_t n_rows = 0, text_bytes = 1, row = 0;
    bool any_text = false, any_label = false;
    Dataset *ds = NULL;
    const cJSON *rec;
    char *w;
    int label, r = -ENOMEM;

    if (cells == NULL || is_text == NULL)
        goto out;
    /* pass 1: check every record, find the text columns and the bytes their cells take */
    cJSON_ArrayForEach(rec, records)
    {
        bool ok = index_record(rec, names, n, n_values, cells, &label, iss);

        for (size_t c = 0; ok && c < n; c++) {
            int k = cell_kind(cells[c], names[c], iss);
            ok = k >= 0;
            if (k == CELL_TEXT) {
                is_text[c] = 1;
                any_text = true;
            }
            if (k != CELL_ABSENT)
                text_bytes += 32 + (k == CELL_TEXT ? strlen(cells[c]->valuestring) : 0);
        }
        if (!ok && iss->n_indices < RECORDS_MAX_NAMES) {
            json_buf_printf(&iss->indices, "%s%zu", iss->n_indices ? "," : "", n_rows);
            iss->n_indices++;
        }
        any_label = any_label || label == 1;
        n_rows++;
    }
    r = RECORDS_E_SCHEMA;
    if (iss->n_indices > 0)
        goto out;
    r = -ENOMEM;
    if (dataset_new(&ds, n_rows, n, (const char *const *) names) < 0)
        goto out;
    if (any_label && (ds->label = calloc(n_rows, 1)) == NULL)
        goto out;
    if (any_text) {
        ds->is_text = is_text;
        is_text = NULL;
        ds->text = calloc(n_rows * n, sizeof(*ds->text));
        ds->text_arena = malloc(text_bytes);
        if (ds->text == NULL || ds->text_arena == NULL)
            goto out;
    }
    /* pass 2: fill; in a text column a number becomes its text */
    w = ds->text_arena;
    cJSON_ArrayForEach(rec, records)
    {
        index_record(rec, names, n, n_values, cells, &label, iss);
        if (ds->label != NULL)
            ds->label[row] = label == 1;
        for (size_t c = 0; c < n; c++) {
            const cJSON *v = cells[c];
            float *x = &ds->x[row * n + c];
            size_t room = text_bytes - (size_t) (w - ds->text_arena);
            int len;

            *x = NAN;
            if (v == NULL || cJSON_IsNull(v))
                continue;
            if (ds->is_text == NULL || !ds->is_text[c]) {
                *x = (float) v->valuedouble;
                continue;
            }
            if (cJSON_IsString(v))
                len = snprintf(w, room, "%s", v->valuestring);
            else
                len = snprintf(w, room, "%.9g", v->valuedouble);
            ds->text[row * n + c] = w;
            w += len + 1; /* pass 1 counted 32 bytes per cell beyond its text: room enough */
        }
        row++;
    }
    *out = ds;
    ds = NULL;
    r = 0;
out:
    dataset_free(ds);
    free(cells);
    free(is_text);
    return r;
}
