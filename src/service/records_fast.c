/* records_fast: the allocation-free reader of scoring bodies (see records_fast.h for the
 * subset it takes and its promise: the same answers as the cJSON path of records.c, or a
 * decline).
 *
 * Each reader takes *pp and end, returns false to decline, and on success leaves *pp after
 * what it read. Numbers go through decimal.h in the JSON grammar, the one reader of numbers
 * (a feature's plain number through its inline decimal_json_plain, anything else through
 * decimal_scan), which gives the correctly rounded double cJSON stores. A record's fields are read
 * into SchemaValues (categories borrow the body's bytes) and finished by the two steps
 * records.h shares with the cJSON path. Why the path
 * exists (scripts/bench.sh, POST /score with 50 named features): the server's CPU per
 * request fell from 43 to 23 us and its callgrind instructions from 290k to 159k; a
 * 1,000-record batch from 16.2 to 3.7 ms of CPU, 6 x the rate at which cJSON alone parses
 * the same body.
 */
#include "records_fast.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/decimal.h"
#include "records.h"

static const char *skip_ws(const char *p, const char *end)
{
    /* one compare for the usual case, a byte above the space */
    while (p < end && (unsigned char) *p <= ' ' &&
           (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

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

/* A byte fast_string keeps in a string: one JSON carries as it is (json_buf.h). A table,
 * one load a byte: the key match tests every byte of every name. */
static inline bool plain_char(char c)
{
    return json_plain_byte[(unsigned char) c];
}

/* '"' plain bytes (no escapes) '"' -> text[len] */
static bool fast_string(const char **pp, const char *end, const char **text, size_t *len)
{
    const char *p = *pp, *start;

    if (p >= end || *p != '"')
        return false;
    start = ++p;
    while (p < end && *p != '"') {
        if (!plain_char(*p))
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

/* text[len] (from fast_string: no NUL in it) is the string word. Inline bytes, not
 * strncmp: names are short and a call per member costs more than the comparison; a
 * shorter word mismatches at its NUL, so nothing past it is read. */
static bool text_is(const char *text, size_t len, const char *word)
{
    for (size_t i = 0; i < len; i++)
        if (word[i] != text[i])
            return false;
    return word[len] == '\0';
}

/* A number in strict JSON grammar (RFC 8259), as the double cJSON stores for it (one that
 * overflows is +-inf there too, which no feature or id takes).
 * Numbers longer than 63 characters are declined (the cJSON path reads them). */
static bool fast_number(const char **pp, const char *end, double *out)
{
    size_t used;
    int r = decimal_scan(*pp, (size_t) (end - *pp), DECIMAL_JSON, out, &used);

    if ((r != 0 && r != DECIMAL_E_RANGE) || used > 63)
        return false;
    *pp += used;
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

/* One field's value as field_value in records.c reads it: null is missing; a categorical
 * field takes a string, a numeric one a number (a number sent as a string is declined: the
 * cJSON path applies lenient_numbers or names the error). */
static bool fast_field_value(const char **pp, const char *end, const SchemaField *fd,
                             SchemaValue *out)
{
    const char *p = *pp;
    size_t used;
    double d;
    float f;

    if (p < end && *p == 'n') {
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            return false;
        *out = (SchemaValue){.type = SCHEMA_MISSING};
        *pp = p + 4;
        return true;
    }
    if (fd->kind == SCHEMA_CATEGORICAL) {
        out->type = SCHEMA_TEXT;
        return fast_string(pp, end, &out->text, &out->len);
    }
    if (decimal_json_plain(p, end, &d, &used)) { /* below 10^19: finite as a float too */
        *out = (SchemaValue){.type = SCHEMA_NUMBER, .number = (float) d};
        *pp = p + used;
        return true;
    }
    if (!fast_value(pp, end, &f))
        return false;
    *out = (SchemaValue){.type = SCHEMA_NUMBER, .number = f};
    return true;
}

void records_fast_keys(const Schema *s, FastKey *keys)
{
    for (size_t f = 0; f < s->n_fields; f++) {
        const char *name = s->fields[f].name;
        size_t len = strlen(name);
        unsigned char bytes[16] = {0}, mask[16] = {0};
        bool plain = len < sizeof(bytes);

        for (size_t i = 0; plain && i < len; i++)
            plain = plain_char(name[i]);
        keys[f] = (FastKey){.len = 0};
        if (!plain)
            continue;
        memcpy(bytes, name, len);
        bytes[len] = '"';
        memset(mask, 0xff, len + 1);
        memcpy(keys[f].word, bytes, sizeof(bytes));
        memcpy(keys[f].mask, mask, sizeof(mask));
        keys[f].len = len + 1;
    }
}

/* Whether the next field's key (name and closing quote) is at p: two masked word compares
 * where 16 bytes remain, byte by byte otherwise. *used is its length. */
static bool key_at(const char *p, const char *end, const FastKey *k, const char *name, size_t *used)
{
    size_t i = 0;

    if (k->len != 0 && end - p >= 16) {
        uint64_t w[2];

        memcpy(w, p, sizeof(w));
        *used = k->len;
        return ((w[0] & k->mask[0]) ^ k->word[0]) == 0 && ((w[1] & k->mask[1]) ^ k->word[1]) == 0;
    }
    while (p + i < end && name[i] == p[i] && plain_char(p[i])) /* a NUL is not plain */
        i++;
    *used = i + 1;
    return name[i] == '\0' && p + i < end && p[i] == '"';
}

/* The member key at *pp as a field index, schema order first as read_features does: the
 * next field's key is compared in place (the common case), else the key is read by
 * fast_string and looked up. -1 declines: not a plain key, or no such field. */
static long fast_member_field(const char **pp, const char *end, const Schema *s,
                              const FastKey *keys, size_t *hint)
{
    const char *p = *pp + 1, *key;
    size_t len;
    long f;

    if (*pp >= end || **pp != '"')
        return -1;
    if (*hint < s->n_fields && key_at(p, end, &keys[*hint], s->fields[*hint].name, &len)) {
        *pp = p + len;
        return (long) (*hint)++;
    }
    if (!fast_string(pp, end, &key, &len))
        return -1;
    if ((f = schema_field_index(s, key, len)) >= 0)
        *hint = (size_t) f + 1;
    return f;
}

/* "features": {name: value, ...} into v[n_fields] (absent fields stay missing). Each
 * separator is looked for first where compact JSON has it (one compare), skip_ws only when
 * it is not there (the bench record read in a tenth less time than with skip_ws around each). */
static bool fast_features(const char **pp, const char *end, const Schema *s, const FastKey *keys,
                          SchemaValue *v)
{
    const char *p = skip_ws(*pp, end);
    uint64_t seen[MODEL_MAX_FEATURES / 64]; /* fields <= columns <= MODEL_MAX_FEATURES */
    size_t hint = 0;

    if (p >= end || *p != '{' || s->n_fields > MODEL_MAX_FEATURES)
        return false;
    memset(seen, 0, (s->n_fields + 63) / 64 * sizeof(*seen)); /* the words the fields use */
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        *pp = p + 1;
        return true;
    }
    for (;;) {
        long found = fast_member_field(&p, end, s, keys, &hint);
        size_t f = (size_t) found;

        /* unknown or repeated: the 422 is the cJSON path's */
        if (found < 0 || (seen[f / 64] >> (f % 64) & 1))
            return false;
        seen[f / 64] |= UINT64_C(1) << (f % 64);
        if (p < end && *p != ':')
            p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        p++;
        if (p < end && (unsigned char) *p <= ' ')
            p = skip_ws(p, end);
        if (!fast_field_value(&p, end, &s->fields[f], &v[f]))
            return false;
        if (p < end && *p == ',') {
            p++;
            if (p < end && (unsigned char) *p <= ' ')
                p = skip_ws(p, end);
            continue;
        }
        p = skip_ws(p, end);
        int more = next_member(&p, end, '}');
        if (more > 0)
            continue;
        if (more == 0)
            break;
        return false;
    }
    *pp = p + 1;
    return true;
}

/* '[' n elements ']', element i read by one(pp, end, ctx, i); the OIP tensor's rows and a
 * record's "values" alike. Inline, so `one` is a known call at both sites. */
typedef bool FastElement(const char **pp, const char *end, void *ctx, size_t i);

static inline bool fast_array(const char **pp, const char *end, size_t n, FastElement *one,
                              void *ctx)
{
    const char *p = skip_ws(*pp, end);
    size_t count = 0;

    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (count == n || !one(&p, end, ctx, count))
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

typedef struct FieldValues {
    const Schema *s;
    SchemaValue *v;
} FieldValues;

static bool field_element(const char **pp, const char *end, void *ctx, size_t i)
{
    FieldValues *fv = ctx;

    return fast_field_value(pp, end, &fv->s->fields[i], &fv->v[i]);
}

static bool float_element(const char **pp, const char *end, void *ctx, size_t i)
{
    return fast_value(pp, end, (float *) ctx + i);
}

/* "values": [v0, ...], one per field in field order, into v[n_fields]. */
static bool fast_field_values(const char **pp, const char *end, const Schema *s, SchemaValue *v)
{
    FieldValues fv = {s, v};

    return fast_array(pp, end, s->n_fields, field_element, &fv);
}

/* [n numbers] into x (the tensor's data). */
static bool fast_values(const char **pp, const char *end, size_t n, float *x)
{
    return fast_array(pp, end, n, float_element, x);
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
    id->kind = RECORD_ID_NUMBER; /* one beyond a double's range is refused: the cJSON path */
    return fast_number(pp, end, &id->number) && isfinite(id->number);
}

/* One record's members: its data into r->v, its id into *id. */
static bool fast_members(const char **pp, const char *end, const FastRecord *r, RecordId *id)
{
    const char *p = *pp, *key;
    bool have_data = false;
    size_t len;

    for (;;) {
        if (!fast_string(&p, end, &key, &len))
            return false;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        p = skip_ws(p + 1, end);
        if (text_is(key, len, "features") && !have_data) {
            if (!fast_features(&p, end, r->m->schema, r->keys, r->v))
                return false;
            have_data = true;
        } else if (text_is(key, len, "values") && !have_data) {
            if (!fast_field_values(&p, end, r->m->schema, r->v))
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
    *pp = p + 1;
    return have_data;
}

/* One record at *pp into x[n_features], as records_read_model reads it. */
static bool fast_record(const char **pp, const char *end, const FastRecord *r, float *x,
                        RecordId *id, RecordNotes *notes)
{
    const Schema *s = r->m->schema;
    const char *p = skip_ws(*pp, end);

    id->kind = RECORD_ID_ABSENT;
    if (p >= end || *p != '{')
        return false;
    for (size_t f = 0; f < s->n_fields; f++)
        r->v[f] = (SchemaValue){.type = SCHEMA_MISSING};
    p = skip_ws(p + 1, end);
    if (!fast_members(&p, end, r, id) || !records_missing_allowed(s, r->policy, r->v) ||
        records_encode(s, r->v, x, notes) != 0)
        return false;
    *pp = p;
    return true;
}

bool records_fast_single(const char *body, size_t len, const FastRecord *r, float *x, RecordId *id,
                         RecordNotes *notes)
{
    const char *p = body, *end = body + len;

    if (body == NULL || !fast_record(&p, end, r, x, id, notes))
        return false;
    return skip_ws(p, end) == end;
}

/* Room for c records in the batch's arrays (new notes zeroed). */
static bool batch_grow(FastBatch *b, size_t c, size_t f)
{
    float *nx = realloc(b->x, c * f * sizeof(*nx)); /* c <= max_batch, f <= MODEL_MAX_FEATURES */
    RecordId *nid;
    RecordNotes *nn;

    if (nx == NULL)
        return false;
    b->x = nx;
    if ((nid = realloc(b->ids, c * sizeof(*nid))) == NULL)
        return false;
    b->ids = nid;
    if ((nn = realloc(b->notes, c * sizeof(*nn))) == NULL)
        return false;
    memset(nn + b->cap, 0, (c - b->cap) * sizeof(*nn)); /* zeroed = records_notes_init */
    b->notes = nn;
    b->cap = c;
    return true;
}

void records_fast_batch_free(FastBatch *b)
{
    for (size_t i = 0; b->notes != NULL && i < b->cap; i++)
        records_notes_deinit(&b->notes[i]);
    free(b->notes);
    free(b->ids);
    free(b->x);
    memset(b, 0, sizeof(*b));
}

/* '{' ws "records" ws ':' ws '[' ws: the cursor then on the first record. */
static bool batch_open(const char **pp, const char *end)
{
    const char *p = skip_ws(*pp, end), *key;
    size_t klen;

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
    *pp = skip_ws(p + 1, end);
    return true;
}

bool records_fast_batch(const char *body, size_t len, const FastRecord *r, size_t max, FastBatch *b)
{
    const char *p = body, *end = body + len;
    size_t f = r->m->n_features;

    memset(b, 0, sizeof(*b));
    if (body == NULL || !batch_open(&p, end))
        return false;
    for (;;) {
        if (b->n == b->cap) {
            size_t c = b->cap ? 2 * b->cap : 256;

            if (b->n == max)
                goto decline; /* the cJSON path names the limit */
            if (!batch_grow(b, c > max ? max : c, f))
                goto decline;
        }
        if (!fast_record(&p, end, r, b->x + b->n * f, &b->ids[b->n], &b->notes[b->n]))
            goto decline;
        b->n++;
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
    return true;

decline:
    records_fast_batch_free(b);
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
        records_put_id_number(out, id->number);
        break;
    }
}

/* ---- the Open Inference Protocol's "record" tensor ---- */

/* '"' key '"' ':' with the cursor then on the value. */
static bool fast_key(const char **pp, const char *end, const char **key, size_t *len)
{
    const char *p = *pp;

    if (!fast_string(&p, end, key, len))
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return false;
    *pp = skip_ws(p + 1, end);
    return true;
}

/* A dimension of "shape": a number that is an integer 1..limit (api_oip.c's read_shape takes
 * 0 too, and then refuses it). */
static bool fast_dim(const char **pp, const char *end, size_t limit, size_t *out)
{
    double d;

    if (!fast_number(pp, end, &d) || !(d >= 1) || d != floor(d) || d > (double) limit)
        return false;
    *out = (size_t) d;
    return true;
}

/* "shape": [N, F] with 1 <= N <= max and F the model's fields. */
static bool fast_shape(const char **pp, const char *end, const Model *m, size_t max, size_t *n)
{
    const char *p = *pp;
    size_t f;

    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    if (!fast_dim(&p, end, max, n))
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p != ',')
        return false;
    p = skip_ws(p + 1, end);
    if (!fast_dim(&p, end, MODEL_MAX_FEATURES, &f) || f != m->n_features)
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p != ']')
        return false;
    *pp = p + 1;
    return true;
}

/* "data": n * f numbers, flat or one array of f per row, into x. */
static bool fast_data(const char **pp, const char *end, size_t n, size_t f, float *x)
{
    const char *p = *pp;
    bool nested;

    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    nested = p < end && *p == '[';
    if (!nested) {
        if (!fast_values(pp, end, n * f, x))
            return false;
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (!fast_values(&p, end, f, x + i * f))
            return false;
        p = skip_ws(p, end);
        if (next_member(&p, end, ']') != (i + 1 < n ? 1 : 0))
            return false;
    }
    *pp = p + 1;
    return true;
}

/* The one tensor {"name": "record", "datatype": "FP32"|"FP64", "shape", "data"} into out. */
static bool fast_tensor(const char **pp, const char *end, const Model *m, size_t max,
                        RecordsTensor *out)
{
    const char *p = skip_ws(*pp, end), *key, *text;
    size_t len, tlen;
    unsigned seen = 0; /* 1 name, 2 datatype, 4 shape, 8 data */

    if (p >= end || *p != '{')
        return false;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (!fast_key(&p, end, &key, &len))
            return false;
        if (text_is(key, len, "name") && !(seen & 1)) {
            if (!fast_string(&p, end, &text, &tlen) || !text_is(text, tlen, "record"))
                return false;
            seen |= 1;
        } else if (text_is(key, len, "datatype") && !(seen & 2)) {
            if (!fast_string(&p, end, &text, &tlen) ||
                !(text_is(text, tlen, "FP64") || text_is(text, tlen, "FP32")))
                return false;
            seen |= 2;
        } else if (text_is(key, len, "shape") && !(seen & 4)) {
            if (!fast_shape(&p, end, m, max, &out->n))
                return false;
            seen |= 4;
        } else if (text_is(key, len, "data") && (seen & 12) == 4) {
            /* a number and its comma take two bytes: no shape claims more than the body has */
            if (out->n * m->n_features > (size_t) (end - p) / 2 + 1)
                return false;
            out->x = malloc(out->n * m->n_features * sizeof(*out->x));
            if (out->x == NULL || !fast_data(&p, end, out->n, m->n_features, out->x))
                return false;
            seen |= 8;
        } else {
            return false;
        }
        p = skip_ws(p, end);
        int more = next_member(&p, end, '}');
        if (more == 0)
            break;
        if (more < 0)
            return false;
    }
    *pp = p + 1;
    return seen == 15;
}

/* "inputs": [one tensor]. */
static bool fast_inputs(const char **pp, const char *end, const Model *m, size_t max,
                        RecordsTensor *out)
{
    const char *p = *pp;

    if (p >= end || *p != '[' || !fast_tensor((p++, &p), end, m, max, out))
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p != ']')
        return false;
    *pp = p + 1;
    return true;
}

/* "outputs": [{"name": string}, ...] (names left to the caller). */
static bool fast_outputs(const char **pp, const char *end, RecordsTensor *out)
{
    const char *p = *pp, *key;
    size_t len;

    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    for (;;) {
        size_t k = out->n_outputs;

        if (k == RECORDS_FAST_OUTPUTS || p >= end || *p != '{')
            return false;
        p = skip_ws(p + 1, end);
        if (!fast_key(&p, end, &key, &len) || !text_is(key, len, "name") ||
            !fast_string(&p, end, &out->outputs[k], &out->outputs_len[k]))
            return false;
        out->n_outputs++;
        p = skip_ws(p, end);
        if (p >= end || *p != '}')
            return false;
        p = skip_ws(p + 1, end);
        int more = next_member(&p, end, ']');
        if (more == 0)
            break;
        if (more < 0)
            return false;
    }
    *pp = p + 1;
    return true;
}

/* One member of the request body at *pp (its key read): false to decline. */
static bool fast_request_member(const char **pp, const char *end, const char *key, size_t len,
                                const Model *m, size_t max, RecordsTensor *out, unsigned *seen)
{
    if (text_is(key, len, "id") && !(*seen & 1)) {
        *seen |= 1;
        out->id.kind = RECORD_ID_STRING;
        return fast_string(pp, end, &out->id.text, &out->id.len);
    }
    if (text_is(key, len, "inputs") && !(*seen & 2)) {
        *seen |= 2;
        return fast_inputs(pp, end, m, max, out);
    }
    if (text_is(key, len, "outputs") && !(*seen & 4)) {
        *seen |= 4;
        out->has_outputs = true;
        return fast_outputs(pp, end, out);
    }
    return false;
}

bool records_fast_tensor(const char *body, size_t len, const Model *m, size_t max,
                         RecordsTensor *out)
{
    const char *p = body, *end = body + len, *key;
    unsigned seen = 0; /* 1 id, 2 inputs, 4 outputs */
    size_t klen;

    memset(out, 0, sizeof(*out));
    /* a field called "record" makes "record" that field's tensor (api_oip.c) */
    if (body == NULL || !schema_is_plain(m->schema) ||
        schema_field_index(m->schema, "record", 6) >= 0)
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        goto decline;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (!fast_key(&p, end, &key, &klen) ||
            !fast_request_member(&p, end, key, klen, m, max, out, &seen))
            goto decline;
        p = skip_ws(p, end);
        int more = next_member(&p, end, '}');
        if (more == 0)
            break;
        if (more < 0)
            goto decline;
    }
    if ((seen & 2) && skip_ws(p + 1, end) == end)
        return true;
decline:
    free(out->x);
    memset(out, 0, sizeof(*out));
    return false;
}
