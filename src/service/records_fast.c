/* records_fast: the allocation-free reader of scoring bodies (see records_fast.h for the
 * subset it takes and its promise: the same answers as the cJSON path of records.c, or a
 * decline).
 *
 * Each reader takes *pp and end, returns false to decline, and on success leaves *pp after
 * what it read. Numbers go through decimal_scan in the JSON grammar, the one reader of
 * numbers, which gives the correctly rounded double cJSON stores. Why the path
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
    id->kind = RECORD_ID_NUMBER; /* one beyond a double's range is refused: the cJSON path */
    return fast_number(pp, end, &id->number) && isfinite(id->number);
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
