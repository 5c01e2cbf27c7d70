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

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/decimal.h"

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

void records_issues_add_index(RecordIssues *iss, size_t index)
{
    if (iss->n_indices < RECORDS_MAX_NAMES) {
        json_buf_printf(&iss->indices, "%s%zu", iss->n_indices ? "," : "", index);
        iss->n_indices++;
    }
    iss->n_bad++;
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

void records_issues_from_mismatch(RecordIssues *iss, const SchemaMismatch *mm)
{
    for (size_t i = 0; i < mm->n_missing; i++)
        add_name(&iss->missing, &iss->n_missing, mm->missing[i], strlen(mm->missing[i]));
    for (size_t i = 0; i < mm->n_unknown; i++)
        add_name(&iss->unknown, &iss->n_unknown, mm->unknown[i], strlen(mm->unknown[i]));
    for (size_t i = 0; i < mm->n_retyped; i++)
        add_name(&iss->invalid, &iss->n_invalid, mm->retyped[i], strlen(mm->retyped[i]));
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

/* A number sent as a string (lenient_numbers), read as a CSV cell is. */
static bool lenient_number(const char *s, double *out)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return decimal_parse(s, n, DECIMAL_TEXT, out) == 0;
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
        double d;

        /* read as a CSV cell is: blanks around it, then the DECIMAL_TEXT grammar */
        if (lenient_number(v->valuestring, &d) && fabs(d) <= FLT_MAX) {
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
            /* a number beyond a double's range would come back as null: not the same id */
            if ((!cJSON_IsString(mb) && !cJSON_IsNumber(mb) && !cJSON_IsNull(mb)) ||
                (cJSON_IsNumber(mb) && !isfinite(mb->valuedouble))) {
                add_name(&iss->invalid, &iss->n_invalid, "id", 2);
                note(iss, "%s", "\"id\" must be a string or a number that fits a double");
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

/* "features": {name: value, ...} -> v[field], each field at most once. */
static void read_features(const cJSON *features, const Schema *s, const RecordPolicy *policy,
                          SchemaValue *v, unsigned char *seen, RecordIssues *iss)
{
    size_t n = s->n_fields, hint = 0;

    for (const cJSON *c = features->child; c != NULL; c = c->next) {
        size_t len = strlen(c->string);
        /* schema order first: clients usually send fields in it */
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
}

/* "values": [v0, v1, ...] in field order -> v[field]; false when the count is wrong. */
static bool read_values(const cJSON *values, const Schema *s, const RecordPolicy *policy,
                        SchemaValue *v, RecordIssues *iss)
{
    size_t count = 0, n = s->n_fields;

    for (const cJSON *c = values->child; c != NULL; c = c->next)
        count++;
    if (count != n) {
        add_name(&iss->invalid, &iss->n_invalid, "values", 6);
        note(iss, "\"values\" has %zu values; the model has %zu fields", count, n);
        return false;
    }
    count = 0;
    for (const cJSON *c = values->child; c != NULL; c = c->next, count++)
        field_value(c, &s->fields[count], policy, &v[count], iss);
    return true;
}

/* How many fields of v are missing. */
static size_t missing_fields(const Schema *s, const SchemaValue *v)
{
    size_t missing = 0;

    for (size_t f = 0; f < s->n_fields; f++)
        missing += v[f].type == SCHEMA_MISSING;
    return missing;
}

/* Whether the policy lets `missing` of n fields be imputed. */
static bool missing_within(const RecordPolicy *policy, size_t missing, size_t n)
{
    return missing * 100 <= (size_t) policy->max_missing_percent * n;
}

bool records_missing_allowed(const Schema *s, const RecordPolicy *policy, const SchemaValue *v)
{
    return missing_within(policy, missing_fields(s, v), s->n_fields);
}

/* More missing fields than max_missing_percent allows: each of them is reported. */
static void check_missing(const Schema *s, const RecordPolicy *policy, const SchemaValue *v,
                          RecordIssues *iss)
{
    size_t n = s->n_fields, missing = missing_fields(s, v);

    if (missing_within(policy, missing, n))
        return;
    for (size_t f = 0; f < n; f++)
        if (v[f].type == SCHEMA_MISSING) {
            add_name(&iss->missing, &iss->n_missing, s->fields[f].name, strlen(s->fields[f].name));
            note(iss, "missing feature \"%s\" (%zu of %zu missing; at most %u%% may be imputed)",
                 s->fields[f].name, missing, n, policy->max_missing_percent);
        }
}

int records_encode(const Schema *s, const SchemaValue *v, float *x, RecordNotes *notes)
{
    SchemaEncodeInfo info;

    schema_encode(s, v, x, &info); /* every value was checked against its field */
    if (notes == NULL || info.n_imputed + info.n_unseen == 0)
        return 0;
    for (size_t f = 0; f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];

        if (v[f].type == SCHEMA_MISSING)
            add_name(&notes->imputed, &notes->n_imputed, fd->name, strlen(fd->name));
        else if (fd->kind == SCHEMA_CATEGORICAL &&
                 schema_category_index(fd, v[f].text, v[f].len) < 0)
            add_name(&notes->unseen, &notes->n_unseen, fd->name, strlen(fd->name));
    }
    return notes->imputed.oom || notes->unseen.oom ? -ENOMEM : 0;
}

int records_read_model(const cJSON *rec, const Model *m, const RecordPolicy *policy, float *x,
                       RecordNotes *notes, RecordIssues *iss)
{
    const Schema *s = m->schema;
    const cJSON *data;
    bool is_values = false;
    size_t n = s->n_fields, hits = iss->hits;
    SchemaValue *v = malloc(n * sizeof(*v));
    unsigned char *seen = calloc(n, 1);
    int r = RECORDS_E_SCHEMA;

    if (v == NULL || seen == NULL) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t f = 0; f < n; f++)
        v[f] = (SchemaValue){.type = SCHEMA_MISSING};
    data = record_data(rec, NULL, &is_values, iss);
    if (data == NULL)
        goto out;
    if (is_values ? !cJSON_IsArray(data) : !cJSON_IsObject(data)) {
        add_name(&iss->invalid, &iss->n_invalid, is_values ? "values" : "features",
                 is_values ? 6 : 8);
        note(iss, "%s",
             is_values ? "\"values\" must be an array with one value per field"
                       : "\"features\" must be an object of name: value");
        goto out;
    }
    if (is_values && !read_values(data, s, policy, v, iss))
        goto out;
    if (!is_values)
        read_features(data, s, policy, v, seen, iss);
    check_missing(s, policy, v, iss);
    if (iss->hits == hits)
        r = records_encode(s, v, x, notes);
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

void records_put_id_number(JsonBuf *out, double v)
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
    } else if (cJSON_IsNumber(id) && isfinite(id->valuedouble)) {
        records_put_id_number(out, id->valuedouble);
    } else {
        return RECORDS_E_SCHEMA;
    }
    return out->oom ? -ENOMEM : 0;
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

/* The training set's columns: the served model's fields then the columns it ignored (they
 * may come along), or without one the first record's feature names. n_values: how many
 * of them a "values" array fills. The strings are borrowed from the schema or the tree. */
static int training_names(const cJSON *records, const Schema *served, const char ***names,
                          size_t *n, size_t *n_values)
{
    const cJSON *first = records->child, *f;
    size_t i = 0;

    if (served != NULL) {
        *n = served->n_fields + served->n_ignored;
        *n_values = served->n_fields;
        if ((*names = calloc(*n + 1, sizeof(**names))) == NULL)
            return -ENOMEM;
        for (size_t k = 0; k < served->n_fields; k++)
            (*names)[i++] = served->fields[k].name;
        for (size_t k = 0; k < served->n_ignored; k++)
            (*names)[i++] = served->ignored[k];
        return 0;
    }
    f = cJSON_IsObject(first) ? cJSON_GetObjectItemCaseSensitive(first, "features") : NULL;
    if (!cJSON_IsObject(f) || f->child == NULL)
        return RECORDS_E_NO_NAMES;
    *n = 0;
    for (const cJSON *c = f->child; c != NULL; c = c->next)
        (*n)++;
    if (*n > MODEL_MAX_FEATURES)
        return RECORDS_E_TOO_WIDE;
    *n_values = *n;
    if ((*names = calloc(*n + 1, sizeof(**names))) == NULL)
        return -ENOMEM;
    for (const cJSON *c = f->child; c != NULL; c = c->next)
        (*names)[i++] = c->string;
    return 0;
}

/* Pass 1: every record checked (bad ones counted in iss), text columns marked. */
static void check_training_records(const cJSON *records, char *const *names, size_t n,
                                   size_t n_values, const cJSON **cells, unsigned char *is_text,
                                   RecordIssues *iss)
{
    const cJSON *rec;
    size_t i = 0;
    int label;

    cJSON_ArrayForEach(rec, records)
    {
        bool ok = index_record(rec, names, n, n_values, cells, &label, iss);

        for (size_t c = 0; ok && c < n; c++) {
            int k = cell_kind(cells[c], names[c], iss);
            ok = k >= 0;
            is_text[c] |= k == CELL_TEXT;
        }
        if (!ok)
            records_issues_add_index(iss, i);
        i++;
    }
}

/* One checked cell for the builder; a number in a text column is spelt as "%.9g" of the
 * double cJSON read (spelling must hold DATASET_TEXT_MAX bytes). */
static DatasetCell training_cell(const cJSON *v, bool text_column, char *spelling)
{
    DatasetCell cell = {.kind = DATASET_CELL_MISSING};
    int n;

    if (v == NULL || cJSON_IsNull(v))
        return cell;
    if (cJSON_IsString(v))
        return (DatasetCell){DATASET_CELL_TEXT, 0, v->valuestring, strlen(v->valuestring)};
    cell = (DatasetCell){.kind = DATASET_CELL_NUMBER, .number = (float) v->valuedouble};
    if (text_column) {
        n = snprintf(spelling, DATASET_TEXT_MAX, "%.9g", v->valuedouble);
        cell.text = spelling;
        cell.len = n > 0 ? (size_t) n : 0;
    }
    return cell;
}

/* Pass 2: the checked records into the builder. */
static int build_training_rows(const cJSON *records, char *const *names, size_t n, size_t n_values,
                               const cJSON **cells, const unsigned char *is_text, DatasetBuilder *b,
                               RecordIssues *iss)
{
    char spelling[DATASET_TEXT_MAX];
    const cJSON *rec;
    int label, r = 0;

    cJSON_ArrayForEach(rec, records)
    {
        index_record(rec, names, n, n_values, cells, &label, iss);
        for (size_t c = 0; r == 0 && c < n; c++) {
            DatasetCell cell = training_cell(cells[c], is_text[c], spelling);
            r = dataset_builder_add(b, &cell);
        }
        if (r == 0)
            r = dataset_builder_end_row(b, label);
        if (r != 0)
            return r;
    }
    return 0;
}

int records_training_set(const cJSON *records, const Schema *served, Dataset **out,
                         RecordIssues *iss)
{
    DatasetBuilderOptions opts = {.mixed = true};
    DatasetBuilder *b = NULL;
    const char **names = NULL;
    const cJSON **cells = NULL;
    unsigned char *is_text = NULL;
    size_t n = 0, n_values = 0;
    int r = training_names(records, served, &names, &n, &n_values);

    if (r != 0)
        return r;
    r = -ENOMEM;
    cells = calloc(n + 1, sizeof(*cells));
    is_text = calloc(n + 1, 1);
    if (cells == NULL || is_text == NULL)
        goto out;
    check_training_records(records, (char *const *) names, n, n_values, cells, is_text, iss);
    r = RECORDS_E_SCHEMA;
    if (iss->n_bad > 0)
        goto out;
    r = dataset_builder_new(&b, n, names, &opts);
    if (r == 0)
        r = build_training_rows(records, (char *const *) names, n, n_values, cells, is_text, b,
                                iss);
    if (r == 0) {
        r = dataset_builder_finish(b, out);
        b = NULL;
    }
out:
    dataset_builder_free(b);
    free(names);
    free(cells);
    free(is_text);
    return r < 0 ? -ENOMEM : r;
}
