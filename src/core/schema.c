/* schema: learning record fields from training rows and encoding records into input columns
 * (see schema.h for the rules).
 *
 * Categories are counted by sorting the column's cells (pointers) with strcmp and walking
 * the runs: deterministic, and O(n log n) in the rows. Kept categories are ordered by count,
 * most frequent first, ties by name, so the same data always gives the same columns.
 */
#include "aescore/schema.h"

#include "aescore/decimal.h"
#include "aescore/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

typedef struct Count {
    const char *text;
    size_t n;
} Count;

static int cmp_count(const void *a, const void *b)
{
    const Count *x = a, *y = b;

    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->text, y->text);
}

Schema *schema_free(Schema *s)
{
    if (s == NULL)
        return NULL;
    for (size_t f = 0; s->fields != NULL && f < s->n_fields; f++) {
        free(s->fields[f].name);
        for (size_t k = 0; k < s->fields[f].n_categories; k++)
            free(s->fields[f].categories[k]);
        free(s->fields[f].categories);
        free(s->fields[f].profile);
    }
    free(s->fields);
    for (size_t i = 0; s->ignored != NULL && i < s->n_ignored; i++)
        free(s->ignored[i]);
    free(s->ignored);
    free(s);
    return NULL;
}

static void place_columns(Schema *s)
{
    size_t col = 0;

    for (size_t f = 0; f < s->n_fields; f++) {
        SchemaField *fd = &s->fields[f];

        fd->column = col;
        fd->n_columns = fd->kind == SCHEMA_NUMERIC ? 1 : fd->n_categories + fd->has_other;
        col += fd->n_columns;
    }
    s->n_columns = col;
}

static Schema *schema_alloc(size_t n_fields, size_t n_ignored)
{
    Schema *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->fields = calloc(n_fields ? n_fields : 1, sizeof(*s->fields));
    s->ignored = calloc(n_ignored ? n_ignored : 1, sizeof(*s->ignored));
    if (s->fields == NULL || s->ignored == NULL)
        return schema_free(s);
    return s;
}

int schema_new_numeric(Schema **out, size_t n, const char *const *names, const float *fill)
{
    Schema *s = schema_alloc(n, 0);

    if (s == NULL)
        return -ENOMEM;
    for (size_t f = 0; f < n; f++) {
        s->fields[f].kind = SCHEMA_NUMERIC;
        s->fields[f].fill = fill[f];
        s->fields[f].name = strdup(names[f]);
        s->n_fields++;
        if (s->fields[f].name == NULL) {
            schema_free(s);
            return -ENOMEM;
        }
    }
    place_columns(s);
    *out = s;
    return 0;
}

static bool listed(const SchemaOptions *opts, const char *name)
{
    for (size_t i = 0; opts != NULL && i < opts->n_ignore; i++)
        if (strcmp(opts->ignore[i], name) == 0)
            return true;
    return false;
}

/* The deciles of the n sorted present values v and the share of the n_rows rows in each
 * decile bin, the n_rows - n missing ones at the fill's. 0 or -ENOMEM. */
static int numeric_profile(SchemaField *fd, const float *v, size_t n, size_t n_rows)
{
    const size_t n_edges = SCHEMA_DECILE_BINS - 1;
    float *edges = malloc((n_edges + SCHEMA_DECILE_BINS) * sizeof(*edges)), *share;

    if (edges == NULL)
        return -ENOMEM;
    share = edges + n_edges;
    for (size_t k = 1; k <= n_edges; k++)
        edges[k - 1] = v[k * n / SCHEMA_DECILE_BINS];
    fd->profile = edges;
    memset(share, 0, SCHEMA_DECILE_BINS * sizeof(*share));
    for (size_t i = 0; i < n; i++)
        share[schema_decile_bin(edges, v[i])] += 1.0f;
    share[schema_decile_bin(edges, fd->fill)] += (float) (n_rows - n);
    for (size_t b = 0; b < SCHEMA_DECILE_BINS; b++)
        share[b] /= (float) n_rows;
    return 0;
}

/* Numeric field: the median of the present values over the rows. false: none present. */
static int learn_numeric(const Dataset *ds, size_t c, const size_t *rows, size_t n_rows,
                         SchemaField *fd, bool *usable)
{
    float *v = malloc((n_rows ? n_rows : 1) * sizeof(*v));
    size_t n = 0;

    if (v == NULL)
        return -ENOMEM;
    for (size_t r = 0; r < n_rows; r++) {
        float x = ds->x[rows[r] * ds->n_cols + c];
        if (!isnan(x))
            v[n++] = x;
    }
    *usable = n > 0;
    fd->kind = SCHEMA_NUMERIC;
    if (n > 0) {
        qsort(v, n, sizeof(*v), util_cmp_float);
        fd->fill = n % 2 ? v[n / 2] : (float) (((double) v[n / 2 - 1] + v[n / 2]) / 2);
        if (numeric_profile(fd, v, n, n_rows) != 0) {
            free(v);
            return -ENOMEM;
        }
    }
    free(v);
    return 0;
}

/* Categorical field from a text column. *usable false: nothing present, or a distinct value
 * in every row (an id or a name: it cannot describe what is normal). */
static int learn_categorical(const Dataset *ds, size_t c, const size_t *rows, size_t n_rows,
                             size_t min_rows, SchemaField *fd, bool *usable)
{
    const char **v = malloc((n_rows ? n_rows : 1) * sizeof(*v));
    Count *counts = malloc((n_rows ? n_rows : 1) * sizeof(*counts));
    size_t n = 0, n_distinct = 0, kept = 0;
    int r = -ENOMEM;

    *usable = false;
    if (v == NULL || counts == NULL)
        goto out;
    for (size_t i = 0; i < n_rows; i++) {
        const char *t = ds->text[rows[i] * ds->n_cols + c];
        if (t != NULL)
            v[n++] = t;
    }
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(v[j], v[i]) == 0)
            j++;
        counts[n_distinct++] = (Count){v[i], j - i};
        i = j;
    }
    r = 0;
    if (n == 0 || (n_distinct == n && n > 1))
        goto out;
    qsort(counts, n_distinct, sizeof(*counts), cmp_count);
    while (kept < n_distinct && kept < SCHEMA_MAX_CATEGORIES - 1 && counts[kept].n >= min_rows)
        kept++;
    fd->kind = SCHEMA_CATEGORICAL;
    fd->has_other = kept < n_distinct;
    fd->categories = calloc(kept ? kept : 1, sizeof(*fd->categories));
    r = -ENOMEM;
    if (fd->categories == NULL)
        goto out;
    for (; fd->n_categories < kept; fd->n_categories++)
        if ((fd->categories[fd->n_categories] = strdup(counts[fd->n_categories].text)) == NULL)
            goto out;
    /* impute the most frequent value: category 0, or "other" (column 0 too) when no
     * category was frequent enough to be kept */
    fd->fill = 0.0f;
    fd->profile = calloc(kept + fd->has_other, sizeof(*fd->profile));
    if (fd->profile == NULL)
        goto out;
    /* the shares: each kept category, the rest in other, missing cells at the fill (0) */
    for (size_t k = 0; k < n_distinct; k++) /* rows first, one division each: all rows in
                                               one column is a share of exactly 1 */
        fd->profile[k < kept ? k : kept] += (float) counts[k].n;
    fd->profile[0] += (float) (n_rows - n);
    for (size_t k = 0; k < kept + fd->has_other; k++)
        fd->profile[k] /= (float) n_rows;
    *usable = true;
    r = 0;
out:
    free(v);
    free(counts);
    return r;
}

int schema_learn(const Dataset *ds, const size_t *rows, size_t n_rows, const SchemaOptions *opts,
                 Schema **out, char *err, size_t err_size)
{
    size_t min_rows = opts != NULL && opts->min_category_rows > 0 ? opts->min_category_rows
                                                                  : SCHEMA_DEFAULT_MIN_ROWS;
    Schema *s = schema_alloc(ds->n_cols, ds->n_cols);
    int r = 0;

    if (s == NULL)
        return -ENOMEM;
    for (size_t i = 0; opts != NULL && i < opts->n_ignore; i++) {
        bool found = false;
        for (size_t c = 0; c < ds->n_cols; c++)
            found = found || strcmp(ds->names[c], opts->ignore[i]) == 0;
        if (!found) {
            util_set_err(err, err_size, "no column '%s' to ignore", opts->ignore[i]);
            r = SCHEMA_E_INPUT;
            goto fail;
        }
    }
    for (size_t c = 0; c < ds->n_cols; c++) {
        SchemaField *fd = &s->fields[s->n_fields];
        bool usable = false;

        if (!listed(opts, ds->names[c])) {
            if (ds->is_text != NULL && ds->is_text[c])
                r = learn_categorical(ds, c, rows, n_rows, min_rows, fd, &usable);
            else
                r = learn_numeric(ds, c, rows, n_rows, fd, &usable);
            if (r < 0)
                goto fail;
        }
        if (usable) {
            if ((fd->name = strdup(ds->names[c])) == NULL)
                goto nomem;
            s->n_fields++;
        } else {
            for (size_t k = 0; k < fd->n_categories; k++)
                free(fd->categories[k]);
            free(fd->categories);
            memset(fd, 0, sizeof(*fd));
            if ((s->ignored[s->n_ignored] = strdup(ds->names[c])) == NULL)
                goto nomem;
            s->n_ignored++;
        }
    }
    if (s->n_fields == 0) {
        util_set_err(err, err_size, "%s",
                     "no usable column: every column is ignored, empty or unique");
        r = SCHEMA_E_INPUT;
        goto fail;
    }
    place_columns(s);
    *out = s;
    return 0;
nomem:
    r = -ENOMEM;
fail:
    schema_free(s);
    return r;
}

char *schema_column_name(const Schema *s, size_t c)
{
    for (size_t f = 0; f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];
        size_t k = c - fd->column;
        char *name;

        if (c < fd->column || k >= fd->n_columns)
            continue;
        if (fd->kind == SCHEMA_NUMERIC)
            return strdup(fd->name);
        const char *cat = k < fd->n_categories ? fd->categories[k] : SCHEMA_OTHER;
        size_t len = strlen(fd->name) + 1 + strlen(cat) + 1;
        if ((name = malloc(len)) != NULL)
            snprintf(name, len, "%s=%s", fd->name, cat);
        return name;
    }
    return NULL;
}

/* word (NUL-terminated) is name[len]. Bytes inline, not strncmp: the scoring path looks up
 * every field and category of every record here, and they are short. Never reads past word's NUL.
 */
static bool name_is(const char *word, const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (word[i] != name[i] || word[i] == '\0')
            return false;
    return word[len] == '\0';
}

long schema_field_index(const Schema *s, const char *name, size_t len)
{
    for (size_t f = 0; f < s->n_fields; f++)
        if (name_is(s->fields[f].name, name, len))
            return (long) f;
    return -1;
}

void schema_field_errors(const Schema *s, const float *column_err, float *field_err)
{
    if (s->n_columns == s->n_fields) { /* one column per field, field f's is column f */
        if (field_err != column_err)
            memcpy(field_err, column_err, s->n_fields * sizeof(*field_err));
        return;
    }
    for (size_t f = 0; f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];
        float sum = 0;

        for (size_t c = 0; c < fd->n_columns; c++)
            sum += column_err[fd->column + c];
        field_err[f] = sum;
    }
}

size_t schema_worst_fields(const float *err, size_t n, size_t k, size_t *idx)
{
    size_t have = 0;

    if (k > n)
        k = n;
    /* insertion into the k kept so far; most fields lose to the k-th at the first compare */
    for (size_t i = 0; i < n && k > 0; i++) {
        size_t j;

        if (have == k && !(err[i] > err[idx[k - 1]]))
            continue;
        j = have < k ? have++ : k - 1;
        for (; j > 0 && err[i] > err[idx[j - 1]]; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
    }
    return have;
}

bool schema_is_plain(const Schema *s)
{
    for (size_t f = 0; f < s->n_fields; f++)
        if (s->fields[f].kind != SCHEMA_NUMERIC)
            return false;
    return true;
}

long schema_category_index(const SchemaField *fd, const char *text, size_t len)
{
    for (size_t k = 0; k < fd->n_categories; k++)
        if (name_is(fd->categories[k], text, len))
            return (long) k;
    return -1;
}

int schema_encode(const Schema *s, const SchemaValue *values, float *x, SchemaEncodeInfo *info)
{
    SchemaEncodeInfo local = {0};

    for (size_t f = 0; f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];
        const SchemaValue *v = &values[f];
        float *col = x + fd->column;

        if (fd->kind == SCHEMA_NUMERIC && v->type == SCHEMA_NUMBER) { /* the common case first */
            col[0] = (float) v->number;
            continue;
        }
        if (fd->kind == SCHEMA_NUMERIC) {
            if (v->type == SCHEMA_TEXT)
                return -EINVAL;
            local.n_imputed++;
            col[0] = fd->fill;
            continue;
        }
        if (v->type == SCHEMA_NUMBER)
            return -EINVAL;
        memset(col, 0, fd->n_columns * sizeof(*col));
        long k = (long) fd->fill;
        if (v->type == SCHEMA_MISSING) {
            local.n_imputed++;
        } else if ((k = schema_category_index(fd, v->text, v->len)) < 0) {
            local.n_unseen++;
            k = fd->has_other ? (long) fd->n_categories : -1;
        }
        if (k >= 0)
            col[k] = 1.0f;
    }
    if (info != NULL)
        *info = local;
    return 0;
}

void schema_decode(const Schema *s, const float *x, SchemaValue *values)
{
    for (size_t f = 0; f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];
        const float *col = x + fd->column;

        values[f] = (SchemaValue){.type = SCHEMA_TEXT, .text = "", .len = 0};
        if (fd->kind == SCHEMA_NUMERIC) {
            values[f] = (SchemaValue){.type = SCHEMA_NUMBER, .number = col[0]};
            continue;
        }
        for (size_t k = 0; k < fd->n_categories; k++)
            if (col[k] == 1.0f) {
                values[f].text = fd->categories[k];
                values[f].len = strlen(fd->categories[k]);
                break;
            }
    }
}

/* ---- one schema against another ---- */

static int push_name(const char ***list, size_t *n, const char *name)
{
    const char **grown = realloc(*list, (*n + 1) * sizeof(**list));

    if (grown == NULL)
        return -ENOMEM;
    grown[(*n)++] = name;
    *list = grown;
    return 0;
}

static int diff_categories(const SchemaField *a, const SchemaField *b, SchemaDiff *d)
{
    SchemaCategoryDiff c = {.field = a->name};
    int r = 0;

    for (size_t k = 0; r == 0 && k < b->n_categories; k++)
        if (schema_category_index(a, b->categories[k], strlen(b->categories[k])) < 0)
            r = push_name(&c.added, &c.n_added, b->categories[k]);
    for (size_t k = 0; r == 0 && k < a->n_categories; k++)
        if (schema_category_index(b, a->categories[k], strlen(a->categories[k])) < 0)
            r = push_name(&c.vanished, &c.n_vanished, a->categories[k]);
    if (r == 0 && c.n_added + c.n_vanished > 0) {
        SchemaCategoryDiff *grown = realloc(d->categories, (d->n_categories + 1) * sizeof(c));
        if (grown == NULL) {
            r = -ENOMEM;
        } else {
            d->categories = grown;
            d->categories[d->n_categories++] = c;
            return 0;
        }
    }
    free(c.added);
    free(c.vanished);
    return r;
}

int schema_diff(const Schema *a, const Schema *b, SchemaDiff *d)
{
    int r = 0;

    *d = (SchemaDiff){0};
    for (size_t f = 0; r == 0 && f < a->n_fields; f++) {
        const SchemaField *fa = &a->fields[f];
        long g = schema_field_index(b, fa->name, strlen(fa->name));

        if (g < 0)
            r = push_name(&d->dropped, &d->n_dropped, fa->name);
        else if (b->fields[g].kind != fa->kind)
            r = push_name(&d->retyped, &d->n_retyped, fa->name);
        else if (fa->kind == SCHEMA_CATEGORICAL)
            r = diff_categories(fa, &b->fields[g], d);
    }
    for (size_t f = 0; r == 0 && f < b->n_fields; f++)
        if (schema_field_index(a, b->fields[f].name, strlen(b->fields[f].name)) < 0)
            r = push_name(&d->added, &d->n_added, b->fields[f].name);
    if (r != 0)
        schema_diff_deinit(d);
    return r;
}

void schema_diff_deinit(SchemaDiff *d)
{
    for (size_t i = 0; i < d->n_categories; i++) {
        free(d->categories[i].added);
        free(d->categories[i].vanished);
    }
    free(d->categories);
    free(d->dropped);
    free(d->added);
    free(d->retyped);
    *d = (SchemaDiff){0};
}

/* ---- a Dataset's columns against a schema ---- */

static bool is_ignored(const Schema *s, const char *name)
{
    for (size_t i = 0; i < s->n_ignored; i++)
        if (strcmp(s->ignored[i], name) == 0)
            return true;
    return false;
}

void schema_mismatch_deinit(SchemaMismatch *mm)
{
    free(mm->missing);
    free(mm->unknown);
    free(mm->retyped);
    memset(mm, 0, sizeof(*mm));
}

/* Finds field f's column among names[0..n_cols-1] into col[f] and fills *mm (always).
 * is_text (may be NULL) flags text columns; column skip (or SIZE_MAX) may be unknown. 0:
 * every field has a column and every column is a field or ignored (retyped may still list
 * fields); SCHEMA_E_INPUT: *mm says why; -ENOMEM (*mm empty). */
static int match_names(const Schema *s, char *const *names, size_t n_cols,
                       const unsigned char *is_text, size_t skip, size_t *col, SchemaMismatch *mm)
{
    int r = 0;

    memset(mm, 0, sizeof(*mm));
    for (size_t c = 0; r == 0 && c < n_cols; c++)
        if (c != skip && schema_field_index(s, names[c], strlen(names[c])) < 0 &&
            !is_ignored(s, names[c]))
            r = push_name(&mm->unknown, &mm->n_unknown, names[c]);
    for (size_t f = 0; r == 0 && f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];

        col[f] = SIZE_MAX;
        for (size_t c = 0; c < n_cols && col[f] == SIZE_MAX; c++)
            if (strcmp(names[c], fd->name) == 0)
                col[f] = c;
        if (col[f] == SIZE_MAX)
            r = push_name(&mm->missing, &mm->n_missing, fd->name);
        else if (fd->kind == SCHEMA_NUMERIC && is_text != NULL && is_text[col[f]])
            r = push_name(&mm->retyped, &mm->n_retyped, fd->name);
    }
    if (r < 0) {
        schema_mismatch_deinit(mm);
        return r;
    }
    return mm->n_missing > 0 || mm->n_unknown > 0 ? SCHEMA_E_INPUT : 0;
}

static int match_columns(const Schema *s, const Dataset *ds, size_t *col, SchemaMismatch *mm)
{
    return match_names(s, ds->names, ds->n_cols, ds->is_text, SIZE_MAX, col, mm);
}

/* "1: ..." for the first problem of a failed match. */
static void describe_mismatch(const SchemaMismatch *mm, char *err, size_t err_size)
{
    if (mm->n_unknown > 0)
        util_set_err(err, err_size, "1: column '%s' is not a field of the model", mm->unknown[0]);
    else if (mm->n_missing > 0)
        util_set_err(err, err_size, "1: the model's field '%s' has no column", mm->missing[0]);
}

int schema_match_names(const Schema *s, const char *const *names, size_t n_cols, size_t skip,
                       size_t *col, char *err, size_t err_size)
{
    SchemaMismatch mm;
    int r = match_names(s, (char *const *) names, n_cols, NULL, skip, col, &mm);

    if (r == SCHEMA_E_INPUT)
        describe_mismatch(&mm, err, err_size);
    else if (r < 0)
        util_set_err(err, err_size, "%s", "out of memory");
    schema_mismatch_deinit(&mm);
    return r;
}

/* Puts ds's columns in the order order[0..n_cols-1] (old indexes), text cells included. */
static int reorder_columns(Dataset *ds, const size_t *order)
{
    size_t nc = ds->n_cols, cells = ds->n_rows * nc;
    char **names = malloc((nc ? nc : 1) * sizeof(*names));
    float *x = malloc((cells ? cells : 1) * sizeof(*x));
    unsigned char *is_text = ds->is_text != NULL ? malloc(nc ? nc : 1) : NULL;
    const char **text = ds->text != NULL ? malloc((cells ? cells : 1) * sizeof(*text)) : NULL;

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

int schema_align_dataset(const Schema *s, Dataset *ds, SchemaMismatch *mm)
{
    size_t *order = calloc(ds->n_cols + s->n_fields + 1, sizeof(*order));
    unsigned char *used = calloc(ds->n_cols + 1, 1);
    size_t next = 0;
    int r = -ENOMEM;

    memset(mm, 0, sizeof(*mm));
    if (order == NULL || used == NULL)
        goto out;
    r = match_columns(s, ds, order, mm); /* order[f] = the column of field f */
    if (r == 0 && mm->n_retyped > 0)
        r = SCHEMA_E_INPUT; /* text where the model reads numbers: a broken export */
    if (r != 0)
        goto out;
    next = s->n_fields;
    for (size_t f = 0; f < s->n_fields; f++)
        used[order[f]] = 1;
    for (size_t c = 0; c < ds->n_cols; c++) /* the ignored columns, after the fields */
        if (!used[c])
            order[next++] = c;
    r = reorder_columns(ds, order);
out:
    free(order);
    free(used);
    return r;
}

/* Row row of ds as the schema's values; col[f] is field f's column. A text cell in a
 * numeric field is a number when it reads as one: one bad cell makes the whole column
 * text, and its numbers are still numbers. */
static void row_values(const Schema *s, const Dataset *ds, const size_t *col, size_t row,
                       SchemaValue *values)
{
    for (size_t f = 0; f < s->n_fields; f++) {
        size_t c = col[f];
        bool text_col = ds->is_text != NULL && ds->is_text[c];
        const char *t = text_col ? ds->text[row * ds->n_cols + c] : NULL;
        float x = ds->x[row * ds->n_cols + c];
        double d;

        if (!text_col)
            values[f] = isnan(x) ? (SchemaValue){.type = SCHEMA_MISSING}
                                 : (SchemaValue){.type = SCHEMA_NUMBER, .number = x};
        else if (t == NULL)
            values[f] = (SchemaValue){.type = SCHEMA_MISSING};
        else if (s->fields[f].kind == SCHEMA_NUMERIC &&
                 decimal_parse(t, strlen(t), DECIMAL_TEXT, &d) == 0)
            values[f] = (SchemaValue){.type = SCHEMA_NUMBER, .number = d};
        else
            values[f] = (SchemaValue){.type = SCHEMA_TEXT, .text = t, .len = strlen(t)};
    }
}

/* "LINE: field 'x': ..." for the first value of the wrong kind in a row that failed. */
static void describe_bad_row(const Schema *s, const SchemaValue *values, size_t line, char *err,
                             size_t err_size)
{
    for (size_t f = 0; f < s->n_fields; f++)
        if ((s->fields[f].kind == SCHEMA_NUMERIC) != (values[f].type != SCHEMA_TEXT) &&
            values[f].type != SCHEMA_MISSING) {
            util_set_err(err, err_size, "%zu: field '%s': %s", line, s->fields[f].name,
                         s->fields[f].kind == SCHEMA_NUMERIC
                             ? "text where the model expects a number"
                             : "a number where the model expects a category");
            return;
        }
}

/* A reader's cell (dataset.h) as field fd's value: as row_values reads a Dataset's cell,
 * except that a number in a categorical field is its own spelling (a row alone cannot
 * tell whether its column is a text column, which row_values asks). */
static SchemaValue cell_value(const SchemaField *fd, const DatasetCell *cell)
{
    double d;

    switch (cell->kind) {
    case DATASET_CELL_NUMBER:
        if (fd->kind == SCHEMA_CATEGORICAL && cell->text != NULL)
            return (SchemaValue){.type = SCHEMA_TEXT, .text = cell->text, .len = cell->len};
        return (SchemaValue){.type = SCHEMA_NUMBER, .number = cell->number};
    case DATASET_CELL_TEXT:
        if (fd->kind == SCHEMA_NUMERIC &&
            decimal_parse(cell->text, cell->len, DECIMAL_TEXT, &d) == 0)
            return (SchemaValue){.type = SCHEMA_NUMBER, .number = d};
        return (SchemaValue){.type = SCHEMA_TEXT, .text = cell->text, .len = cell->len};
    default:
        return (SchemaValue){.type = SCHEMA_MISSING};
    }
}

int schema_encode_cells(const Schema *s, const size_t *col, const DatasetCell *cells, size_t line,
                        SchemaValue *values, float *x, SchemaEncodeInfo *info, char *err,
                        size_t err_size)
{
    for (size_t f = 0; f < s->n_fields; f++)
        values[f] = cell_value(&s->fields[f], &cells[col[f]]);
    if (schema_encode(s, values, x, info) == 0)
        return 0;
    describe_bad_row(s, values, line, err, err_size);
    return SCHEMA_E_INPUT;
}

/* A new Dataset of the schema's input columns for ds's rows (labels copied). */
static int new_encoded(const Schema *s, const Dataset *ds, Dataset **out)
{
    char **names = calloc(s->n_columns + 1, sizeof(*names));
    Dataset *enc = NULL;
    int r = -ENOMEM;

    if (names == NULL)
        return -ENOMEM;
    for (size_t c = 0; c < s->n_columns; c++)
        if ((names[c] = schema_column_name(s, c)) == NULL)
            goto out;
    r = dataset_new(&enc, ds->n_rows, s->n_columns, (const char *const *) names);
    if (r == 0 && ds->label != NULL) {
        r = -ENOMEM;
        if ((enc->label = malloc(ds->n_rows ? ds->n_rows : 1)) == NULL)
            goto out;
        memcpy(enc->label, ds->label, ds->n_rows);
        r = 0;
    }
    if (r == 0) {
        *out = enc;
        enc = NULL;
    }
out:
    for (size_t c = 0; c < s->n_columns; c++)
        free(names[c]);
    free(names);
    dataset_free(enc);
    return r;
}

int schema_encode_dataset(const Schema *s, const Dataset *ds, Dataset **out, char *err,
                          size_t err_size)
{
    size_t *col = malloc((s->n_fields + 1) * sizeof(*col));
    SchemaValue *values = malloc((s->n_fields + 1) * sizeof(*values));
    SchemaMismatch mm = {0};
    Dataset *enc = NULL;
    int r = -ENOMEM;

    if (col == NULL || values == NULL)
        goto out;
    r = match_columns(s, ds, col, &mm);
    if (r == SCHEMA_E_INPUT)
        describe_mismatch(&mm, err, err_size);
    if (r == 0)
        r = new_encoded(s, ds, &enc);
    for (size_t row = 0; r == 0 && row < ds->n_rows; row++) {
        row_values(s, ds, col, row, values);
        if (schema_encode(s, values, enc->x + row * s->n_columns, NULL) != 0) {
            describe_bad_row(s, values, row + 2, err, err_size);
            r = SCHEMA_E_INPUT;
        }
    }
    if (r == 0) {
        *out = enc;
        enc = NULL;
    }
out:
    if (r == -ENOMEM)
        util_set_err(err, err_size, "%s", "out of memory");
    schema_mismatch_deinit(&mm);
    free(col);
    free(values);
    dataset_free(enc);
    return r;
}

/* Ascending edges (a float column may hold +-inf: a value past FLT_MAX); shares in [0, 1]
 * that add up to 1. */
static bool profile_valid(const SchemaField *fd)
{
    size_t n_edges = fd->kind == SCHEMA_NUMERIC ? SCHEMA_DECILE_BINS - 1 : 0;
    double total = 0;

    for (size_t k = 0; k < n_edges; k++)
        if (isnan(fd->profile[k]) || (k > 0 && fd->profile[k] < fd->profile[k - 1]))
            return false;
    for (size_t k = n_edges; k < schema_profile_len(fd); k++) {
        if (!(fd->profile[k] >= 0.0f && fd->profile[k] <= 1.0f))
            return false;
        total += fd->profile[k];
    }
    return fabs(total - 1.0) < 1e-3;
}

int schema_validate(const Schema *s)
{
    size_t col = 0;

    if (s == NULL || s->n_fields == 0)
        return -EINVAL;
    for (size_t f = 0; f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];
        size_t want = fd->kind == SCHEMA_NUMERIC ? 1 : fd->n_categories + fd->has_other;

        if (fd->name == NULL || fd->name[0] == '\0' || fd->column != col || fd->n_columns != want ||
            want == 0 || !isfinite(fd->fill))
            return -EINVAL;
        if (fd->kind == SCHEMA_CATEGORICAL) {
            if (fd->n_categories + fd->has_other > SCHEMA_MAX_CATEGORIES || fd->fill < 0 ||
                fd->fill >= (float) want || fd->fill != floorf(fd->fill))
                return -EINVAL;
            for (size_t k = 0; k < fd->n_categories; k++) {
                if (fd->categories[k] == NULL || fd->categories[k][0] == '\0')
                    return -EINVAL;
                for (size_t j = 0; j < k; j++)
                    if (strcmp(fd->categories[j], fd->categories[k]) == 0)
                        return -EINVAL;
            }
        } else if (fd->kind != SCHEMA_NUMERIC) {
            return -EINVAL;
        }
        for (size_t g = 0; g < f; g++)
            if (strcmp(s->fields[g].name, fd->name) == 0)
                return -EINVAL;
        if (fd->profile != NULL && !profile_valid(fd))
            return -EINVAL;
        col += want;
    }
    return col == s->n_columns ? 0 : -EINVAL;
}

size_t schema_profile_len(const SchemaField *fd)
{
    return fd->kind == SCHEMA_NUMERIC ? 2 * SCHEMA_DECILE_BINS - 1 : fd->n_columns;
}

size_t schema_bins(const SchemaField *fd)
{
    return fd->kind == SCHEMA_NUMERIC ? SCHEMA_DECILE_BINS : fd->n_columns + 1;
}

double schema_expected_share(const SchemaField *fd, size_t bin)
{
    if (fd->kind == SCHEMA_NUMERIC)
        return fd->profile[SCHEMA_DECILE_BINS - 1 + bin];
    return bin < fd->n_columns ? fd->profile[bin] : 0.0;
}

bool schema_has_profile(const Schema *s)
{
    for (size_t f = 0; f < s->n_fields; f++)
        if (s->fields[f].profile == NULL)
            return false;
    return true;
}
