/* drift: rolling bin counts and PSI (see drift.h). */
#include "drift.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/util.h"

#define DECILE_EDGES (SCHEMA_DECILE_BINS - 1) /* of a numeric field, and of the scores */

/* How a record's fields are binned: the numeric ones all at once (its values copied out,
 * then each edge rank compared across the fields, a loop the compiler vectorises, rather
 * than nine compares a field through its own profile; still schema_decile_bin's count of
 * edges <= x), the categorical ones by schema_bin. */
typedef struct Binning {
    size_t n_numeric;
    size_t *column; /* n_numeric: the field's input column */
    size_t *first;  /* n_numeric: where the field's bins start in a block's counts */
    float *edges;   /* DECILE_EDGES * n_numeric: [k * n_numeric + i] is field i's k-th edge */
    float *values;  /* n_numeric: one record's, scratch under the lock */
    int32_t *bins;
    size_t n_categorical;
    size_t *categorical; /* their field indexes */
} Binning;

struct Drift {
    pthread_mutex_t lock;
    size_t window, block_size;
    /* the layout of the model counted: its id, and where each field's bins start in a
     * block's counts (fields first when it has a profile, the score's deciles last) */
    char model_id[MODEL_ID_LEN + 1];
    size_t n_fields; /* 0: the model has no training distribution */
    size_t *offset;  /* n_fields + 1 */
    size_t n_bins;
    uint32_t *counts; /* DRIFT_BLOCKS * n_bins */
    Binning binning;
    float score_edges[DECILE_EDGES]; /* the validation score deciles */
    uint64_t block_records[DRIFT_BLOCKS];
    double block_since[DRIFT_BLOCKS]; /* unix time of the block's first record */
    size_t current;
};

static void binning_free(Binning *bn)
{
    free(bn->column);
    free(bn->first);
    free(bn->edges);
    free(bn->values);
    free(bn->bins);
    free(bn->categorical);
    memset(bn, 0, sizeof(*bn));
}

/* The binning of the first n_fields fields of s, their bins starting at offset. 0 or
 * -ENOMEM. */
static int binning_new(Binning *bn, const Schema *s, size_t n_fields, const size_t *offset)
{
    size_t n = 0, i = 0, j = 0;

    memset(bn, 0, sizeof(*bn));
    for (size_t f = 0; f < n_fields; f++)
        n += s->fields[f].kind == SCHEMA_NUMERIC;
    bn->n_numeric = n;
    bn->n_categorical = n_fields - n;
    bn->column = malloc((n + 1) * sizeof(*bn->column));
    bn->first = malloc((n + 1) * sizeof(*bn->first));
    bn->edges = malloc((DECILE_EDGES * n + 1) * sizeof(*bn->edges));
    bn->values = malloc((n + 1) * sizeof(*bn->values));
    bn->bins = malloc((n + 1) * sizeof(*bn->bins));
    bn->categorical = malloc((n_fields - n + 1) * sizeof(*bn->categorical));
    if (bn->column == NULL || bn->first == NULL || bn->edges == NULL || bn->values == NULL ||
        bn->bins == NULL || bn->categorical == NULL) {
        binning_free(bn);
        return -ENOMEM;
    }
    for (size_t f = 0; f < n_fields; f++) {
        const SchemaField *fd = &s->fields[f];

        if (fd->kind == SCHEMA_CATEGORICAL) {
            bn->categorical[j++] = f;
            continue;
        }
        bn->column[i] = fd->column;
        bn->first[i] = offset[f];
        for (size_t k = 0; k < DECILE_EDGES; k++)
            bn->edges[k * n + i] = fd->profile[k];
        i++;
    }
    return 0;
}

/* Adds one to the bin of each field of m for the encoded row x, into a block's counts c. */
static void binning_count(const Binning *bn, const Model *m, const size_t *offset, const float *x,
                          uint32_t *c)
{
    size_t n = bn->n_numeric;
    const float *restrict edges = bn->edges;
    float *restrict values = bn->values;
    int32_t *restrict bins = bn->bins;

    for (size_t i = 0; i < n; i++)
        values[i] = x[bn->column[i]];
    for (size_t i = 0; i < n; i++) {
        int32_t b = 0; /* as wide as a float: the compares vectorise lane for lane */

        for (size_t k = 0; k < DECILE_EDGES; k++)
            b += edges[k * n + i] <= values[i];
        bins[i] = b;
    }
    for (size_t i = 0; i < n; i++)
        c[bn->first[i] + bins[i]]++;
    for (size_t j = 0; j < bn->n_categorical; j++) {
        size_t f = bn->categorical[j];

        c[offset[f] + schema_bin(&m->schema->fields[f], x)]++;
    }
}

int drift_new(Drift **out, size_t window)
{
    Drift *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    d->window = window;
    d->block_size = window / DRIFT_BLOCKS > 0 ? window / DRIFT_BLOCKS : 1;
    *out = d;
    return 0;
}

Drift *drift_free(Drift *d)
{
    if (d == NULL)
        return NULL;
    pthread_mutex_destroy(&d->lock);
    binning_free(&d->binning);
    free(d->offset);
    free(d->counts);
    free(d);
    return NULL;
}

/* The bins of m: each field's (when its file has a training distribution), then the
 * score's deciles; *offset (n_fields + 1, the caller frees) where each starts. NULL: no
 * memory. */
static size_t *layout(const Model *m, size_t *n_fields, size_t *n_bins)
{
    const Schema *s = m->schema;
    size_t *offset;

    *n_fields = s != NULL && schema_has_profile(s) ? s->n_fields : 0;
    *n_bins = 0;
    offset = malloc((*n_fields + 1) * sizeof(*offset));
    for (size_t f = 0; offset != NULL && f <= *n_fields; f++) {
        offset[f] = *n_bins;
        *n_bins += f < *n_fields ? schema_bins(&s->fields[f]) : SCHEMA_DECILE_BINS;
    }
    return offset;
}

/* Under d->lock: counts laid out for m (a new model restarts them). false: no memory. */
static bool use_model(Drift *d, const Model *m)
{
    size_t n_fields, n_bins, *offset;
    uint32_t *counts;
    Binning binning;

    if (d->counts != NULL && strcmp(d->model_id, m->meta.id) == 0)
        return true;
    offset = layout(m, &n_fields, &n_bins);
    counts = offset != NULL ? calloc(DRIFT_BLOCKS * n_bins, sizeof(*counts)) : NULL;
    if (counts == NULL || binning_new(&binning, m->schema, n_fields, offset) != 0) {
        free(counts);
        free(offset);
        return false;
    }
    binning_free(&d->binning);
    free(d->offset);
    free(d->counts);
    d->binning = binning;
    d->offset = offset;
    d->counts = counts;
    d->n_fields = n_fields;
    d->n_bins = n_bins;
    memcpy(d->model_id, m->meta.id, sizeof(d->model_id));
    for (size_t k = 0; k < DECILE_EDGES; k++)
        d->score_edges[k] = m->percentiles[(k + 1) * (MODEL_PERCENTILES - 1) / 10];
    memset(d->block_records, 0, sizeof(d->block_records));
    d->current = 0;
    return true;
}

void drift_observe(Drift *d, const Model *m, const float *x, size_t n, const float *scores)
{
    if (d == NULL || d->window == 0 || n == 0)
        return;
    pthread_mutex_lock(&d->lock);
    if (!use_model(d, m))
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint32_t *c = d->counts + d->current * d->n_bins;
        const float *row = x + i * m->n_features;

        if (d->block_records[d->current] == d->block_size) {
            d->current = (d->current + 1) % DRIFT_BLOCKS;
            c = d->counts + d->current * d->n_bins;
            memset(c, 0, d->n_bins * sizeof(*c));
            d->block_records[d->current] = 0;
        }
        if (d->block_records[d->current] == 0)
            d->block_since[d->current] = util_now_wall();
        binning_count(&d->binning, m, d->offset, row, c);
        c[d->offset[d->n_fields] + schema_decile_bin(d->score_edges, scores[i])]++;
        d->block_records[d->current]++;
    }
out:
    pthread_mutex_unlock(&d->lock);
}

/* The window for m: its bins' counts summed over the blocks, the records and the oldest
 * block's start; all zero while d counts another model (or none yet). */
typedef struct Window {
    uint64_t *sum, records;
    double since;
    size_t n_fields;
    size_t *offset; /* layout(m) */
} Window;

static void window_free(Window *w)
{
    free(w->sum);
    free(w->offset);
    w->sum = NULL;
    w->offset = NULL;
}

static int window_of(Drift *d, const Model *m, Window *w)
{
    size_t n_bins;
    bool same;

    memset(w, 0, sizeof(*w));
    w->offset = layout(m, &w->n_fields, &n_bins);
    w->sum = w->offset != NULL ? calloc(n_bins, sizeof(*w->sum)) : NULL;
    if (w->sum == NULL) {
        window_free(w);
        return -ENOMEM;
    }
    pthread_mutex_lock(&d->lock);
    /* the counts are m's when they were kept for its id (a content hash: the same layout) */
    same = d->counts != NULL && strcmp(d->model_id, m->meta.id) == 0 && d->n_bins == n_bins;
    for (size_t b = 0; same && b < DRIFT_BLOCKS; b++) {
        if (d->block_records[b] == 0)
            continue;
        if (w->records == 0 || d->block_since[b] < w->since)
            w->since = d->block_since[b];
        w->records += d->block_records[b];
        for (size_t k = 0; k < n_bins; k++)
            w->sum[k] += d->counts[b * n_bins + k];
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static double floored(double share)
{
    return share > DRIFT_FLOOR ? share : DRIFT_FLOOR;
}

/* PSI of n bins of recent counts (of total) against the expected shares. */
static double psi(const uint64_t *counts, const double *expected, size_t n, uint64_t total)
{
    double sum = 0;

    for (size_t k = 0; k < n; k++) {
        double a = floored((double) counts[k] / (double) total), e = floored(expected[k]);

        sum += (a - e) * log(a / e);
    }
    return sum;
}

/* The expected shares of field f of m (f == n_fields: the score, a tenth per decile). */
static void expected_shares(const Model *m, const Window *w, size_t f, double *out, size_t *n)
{
    *n = f < w->n_fields ? schema_bins(&m->schema->fields[f]) : SCHEMA_DECILE_BINS;
    for (size_t k = 0; k < *n; k++)
        out[k] = f < w->n_fields ? schema_expected_share(&m->schema->fields[f], k)
                                 : 1.0 / SCHEMA_DECILE_BINS;
}

static double field_psi(const Model *m, const Window *w, size_t f)
{
    double e[SCHEMA_MAX_CATEGORIES + 1];
    size_t n;

    expected_shares(m, w, f, e, &n);
    return psi(w->sum + w->offset[f], e, n, w->records);
}

static const char *band(double p)
{
    return p < 0.1 ? "stable" : p <= 0.25 ? "watch" : "shift";
}

/* The bins of field f (f == n_fields: the score) as a JSON array. */
static void put_bins(JsonBuf *b, const Model *m, const Window *w, size_t f)
{
    const SchemaField *fd = f < w->n_fields ? &m->schema->fields[f] : NULL;
    double e[SCHEMA_MAX_CATEGORIES + 1];
    size_t n;

    expected_shares(m, w, f, e, &n);
    json_buf_puts(b, "[");
    for (size_t k = 0; k < n; k++) {
        json_buf_puts(b, k > 0 ? ",{" : "{");
        if (fd != NULL && fd->kind == SCHEMA_CATEGORICAL) {
            const char *name = k < fd->n_categories ? fd->categories[k]
                               : k < fd->n_columns  ? SCHEMA_OTHER
                                                    : "*unseen*";
            json_buf_puts(b, "\"category\":");
            json_buf_string(b, name, strlen(name));
        } else if (k == 0) {
            json_buf_puts(b, "\"edge\":null"); /* the first bin has no lower edge */
        } else {
            json_buf_puts(b, "\"edge\":");
            json_buf_float(b, fd != NULL ? fd->profile[k - 1]
                                         : m->percentiles[k * (MODEL_PERCENTILES - 1) / 10]);
        }
        json_buf_puts(b, ",\"expected\":");
        json_buf_float(b, e[k]); /* shares are stored as floats */
        json_buf_printf(b, ",\"recent\":%llu}", (unsigned long long) w->sum[w->offset[f] + k]);
    }
    json_buf_puts(b, "]");
}

static void put_psi(JsonBuf *b, const Window *w, double p)
{
    if (w->records == 0)
        json_buf_puts(b, "null");
    else
        json_buf_double(b, p);
}

static int by_psi_desc(const void *a, const void *b, void *ctx)
{
    const double *p = ctx;
    double x = p[*(const size_t *) a], y = p[*(const size_t *) b];

    return x < y ? 1 : x > y ? -1 : (*(const size_t *) a > *(const size_t *) b) * 2 - 1;
}

/* The features array, by descending PSI (field order while the window is empty). */
static int put_features(JsonBuf *b, const Model *m, const Window *w)
{
    double *p = calloc(w->n_fields + 1, sizeof(*p));
    size_t *order = malloc((w->n_fields + 1) * sizeof(*order));

    if (p == NULL || order == NULL) {
        free(p);
        free(order);
        return -ENOMEM;
    }
    for (size_t f = 0; f < w->n_fields; f++) {
        p[f] = w->records > 0 ? field_psi(m, w, f) : 0;
        order[f] = f;
    }
    qsort_r(order, w->n_fields, sizeof(*order), by_psi_desc, p);
    json_buf_puts(b, "[");
    for (size_t i = 0; i < w->n_fields; i++) {
        const SchemaField *fd = &m->schema->fields[order[i]];

        json_buf_puts(b, i > 0 ? ",{\"name\":" : "{\"name\":");
        json_buf_string(b, fd->name, strlen(fd->name));
        json_buf_printf(
            b, ",\"kind\":\"%s\",\"psi\":", fd->kind == SCHEMA_NUMERIC ? "numeric" : "categorical");
        put_psi(b, w, p[order[i]]);
        json_buf_printf(b, ",\"band\":%s%s%s,\"bins\":", w->records ? "\"" : "",
                        w->records ? band(p[order[i]]) : "null", w->records ? "\"" : "");
        put_bins(b, m, w, order[i]);
        json_buf_puts(b, "}");
    }
    json_buf_puts(b, "]");
    free(p);
    free(order);
    return 0;
}

int drift_report(Drift *d, const Model *m, JsonBuf *b)
{
    Window w;
    int r = window_of(d, m, &w);
    double score_psi;

    if (r != 0)
        return r;
    score_psi = w.records > 0 ? field_psi(m, &w, w.n_fields) : 0;
    json_buf_printf(b, "{\"model_id\":\"%s\",\"window\":{\"records\":%llu,\"capacity\":%zu,",
                    m->meta.id, (unsigned long long) w.records, d->window);
    json_buf_puts(b, "\"since\":");
    put_psi(b, &w, w.since); /* null while empty, like the PSI figures */
    json_buf_puts(b, "},\"floor\":");
    json_buf_double(b, DRIFT_FLOOR);
    json_buf_puts(b, ",\"score_psi\":");
    put_psi(b, &w, score_psi);
    json_buf_puts(b, ",\"score\":{\"psi\":");
    put_psi(b, &w, score_psi);
    json_buf_puts(b, ",\"bins\":");
    put_bins(b, m, &w, w.n_fields);
    json_buf_puts(b, "},\"features\":");
    r = put_features(b, m, &w);
    if (r == 0 && w.n_fields == 0)
        json_buf_puts(b, ",\"note\":\"the model file has no training distribution (format 2 "
                         "or older): retrain to measure drift per field\"");
    json_buf_puts(b, "}\n");
    window_free(&w);
    return r != 0 ? r : b->oom ? -ENOMEM : 0;
}

/* name as a Prometheus label value: \\, \" and \n escaped. */
static void put_label(JsonBuf *b, const char *name)
{
    for (const char *c = name; *c != '\0'; c++) {
        if (*c == '\\' || *c == '"')
            json_buf_put(b, "\\", 1);
        if (*c == '\n')
            json_buf_puts(b, "\\n");
        else
            json_buf_put(b, c, 1);
    }
}

int drift_metrics(Drift *d, const Model *m, char **text, size_t *len)
{
    JsonBuf b = JSON_BUF_INIT;
    Window w;
    char *grown;
    int r = window_of(d, m, &w);

    if (r != 0 || w.records == 0) {
        window_free(&w);
        return r;
    }
    json_buf_puts(&b, "# HELP aescore_score_psi Population stability index of the recent scores "
                      "against the validation scores (deciles).\n# TYPE aescore_score_psi gauge\n"
                      "aescore_score_psi ");
    json_buf_double(&b, field_psi(m, &w, w.n_fields));
    json_buf_puts(&b, "\n# HELP aescore_feature_psi Population stability index of each field's "
                      "recent values against its training distribution.\n"
                      "# TYPE aescore_feature_psi gauge\n");
    for (size_t f = 0; f < w.n_fields; f++) {
        json_buf_puts(&b, "aescore_feature_psi{feature=\"");
        put_label(&b, m->schema->fields[f].name);
        json_buf_puts(&b, "\"} ");
        json_buf_double(&b, field_psi(m, &w, f));
        json_buf_puts(&b, "\n");
    }
    window_free(&w);
    grown = b.oom ? NULL : realloc(*text, *len + b.len + 1);
    if (grown == NULL) {
        json_buf_deinit(&b);
        return -ENOMEM;
    }
    memcpy(grown + *len, b.data, b.len);
    *len += b.len;
    grown[*len] = '\0';
    *text = grown;
    json_buf_deinit(&b);
    return 0;
}
