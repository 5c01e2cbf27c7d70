/* schema: learning record fields from training rows and encoding records into input columns
 * (see schema.h for the rules).
 *
 * Categories are counted by sorting the column's cells (pointers) with strcmp and walking
 * the runs: deterministic, and O(n log n) in the rows. Kept categories are ordered by count,
 * most frequent first, ties by name, so the same data always gives the same columns.
 */
#include "aescore/schema.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *) a, y = *(const float *) b;

    return (x > y) - (x < y);
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

int schema_copy(const Schema *src, Schema **out)
{
    Schema *s = schema_alloc(src->n_fields, src->n_ignored);

    if (s == NULL)
        return -ENOMEM;
    for (size_t f = 0; f < src->n_fields; f++) {
        const SchemaField *a = &src->fields[f];
        SchemaField *b = &s->fields[f];

        *b = *a;
        b->name = NULL;
        b->categories = NULL;
        b->n_categories = 0;
        s->n_fields++;
        b->name = strdup(a->name);
        if (b->name == NULL)
            goto nomem;
        if (a->n_categories > 0) {
            b->categories = calloc(a->n_categories, sizeof(*b->categories));
            if (b->categories == NULL)
                goto nomem;
            for (; b->n_categories < a->n_categories; b->n_categories++)
                if ((b->categories[b->n_categories] = strdup(a->categories[b->n_categories])) ==
                    NULL)
                    goto nomem;
        }
    }
    for (; s->n_ignored < src->n_ignored; s->n_ignored++)
        if ((s->ignored[s->n_ignored] = strdup(src->ignored[s->n_ignored])) == NULL)
            goto nomem;
    s->n_columns = src->n_columns;
    *out = s;
    return 0;
nomem:
    schema_free(s);
    return -ENOMEM;
}

static bool listed(const SchemaOptions *opts, const char *name)
{
    for (size_t i = 0; opts != NULL && i < opts->n_ignore; i++)
        if (strcmp(opts->ignore[i], name) == 0)
            return true;
    return false;
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
    if (n > 0) {
        qsort(v, n, sizeof(*v), cmp_float);
        fd->fill = n % 2 ? v[n / 2] : (float) (((double) v[n / 2 - 1] + v[n / 2]) / 2);
    }
    fd->kind = SCHEMA_NUMERIC;
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
            set_err(err, err_size, "no column '%s' to ignore", opts->ignore[i]);
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
        set_err(err, err_size, "%s", "no usable column: every column is ignored, empty or unique");
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

long schema_field_index(const Schema *s, const char *name, size_t len)
{
    for (size_t f = 0; f < s->n_fields; f++)
        if (strncmp(s->fields[f].name, name, len) == 0 && s->fields[f].name[len] == '\0')
            return (long) f;
    return -1;
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
        if (strncmp(fd->categories[k], text, len) == 0 && fd->categories[k][len] == '\0')
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

        if (fd->kind == SCHEMA_NUMERIC) {
            if (v->type == SCHEMA_TEXT)
                return -EINVAL;
            if (v->type == SCHEMA_MISSING)
                local.n_imputed++;
            col[0] = v->type == SCHEMA_NUMBER ? (float) v->number : fd->fill;
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

int schema_encode_dataset(const Schema *s, const Dataset *ds, Dataset **out, char *err,
                          size_t err_size)
{
    long *col = malloc(s->n_fields * sizeof(*col));
    SchemaValue *values = malloc(s->n_fields * sizeof(*values));
    char **names = calloc(s->n_columns, sizeof(*names));
    Dataset *enc = NULL;
    int r = -ENOMEM;

    if (col == NULL || values == NULL || names == NULL)
        goto out;
    r = SCHEMA_E_INPUT;
    for (size_t c = 0; c < ds->n_cols; c++) {
        bool known = schema_field_index(s, ds->names[c], strlen(ds->names[c])) >= 0;
        for (size_t i = 0; !known && i < s->n_ignored; i++)
            known = strcmp(s->ignored[i], ds->names[c]) == 0;
        if (!known) {
            set_err(err, err_size, "1: column '%s' is not a field of the model", ds->names[c]);
            goto out;
        }
    }
    for (size_t f = 0; f < s->n_fields; f++) {
        col[f] = -1;
        for (size_t c = 0; c < ds->n_cols; c++)
            if (strcmp(ds->names[c], s->fields[f].name) == 0)
                col[f] = (long) c;
        if (col[f] < 0) {
            set_err(err, err_size, "1: the model's field '%s' has no column", s->fields[f].name);
            goto out;
        }
    }
    r = -ENOMEM;
    for (size_t c = 0; c < s->n_columns; c++)
        if ((names[c] = schema_column_name(s, c)) == NULL)
            goto out;
    r = dataset_new(&enc, ds->n_rows, s->n_columns, (const char *const *) names);
    if (r < 0)
        goto out;
    if (ds->label != NULL) {
        if ((enc->label = malloc(ds->n_rows ? ds->n_rows : 1)) == NULL)
            goto out;
        memcpy(enc->label, ds->label, ds->n_rows);
    }
    for (size_t row = 0; row < ds->n_rows; row++) {
        for (size_t f = 0; f < s->n_fields; f++) {
            size_t c = (size_t) col[f];
            bool text_col = ds->is_text != NULL && ds->is_text[c];
            const char *t = text_col ? ds->text[row * ds->n_cols + c] : NULL;
            float x = ds->x[row * ds->n_cols + c];

            if (!text_col)
                values[f] = isnan(x) ? (SchemaValue){.type = SCHEMA_MISSING}
                                     : (SchemaValue){.type = SCHEMA_NUMBER, .number = x};
            else if (t == NULL)
                values[f] = (SchemaValue){.type = SCHEMA_MISSING};
            else
                values[f] = (SchemaValue){.type = SCHEMA_TEXT, .text = t, .len = strlen(t)};
            /* One bad cell makes the whole column text: its numbers are still numbers. */
            if (values[f].type == SCHEMA_TEXT && s->fields[f].kind == SCHEMA_NUMERIC) {
                char *end;
                double d = strtod(t, &end);

                if (end != t && *end == '\0' && isfinite(d))
                    values[f] = (SchemaValue){.type = SCHEMA_NUMBER, .number = d};
            }
        }
        if (schema_encode(s, values, enc->x + row * s->n_columns, NULL) != 0) {
            for (size_t f = 0; f < s->n_fields; f++)
                if ((s->fields[f].kind == SCHEMA_NUMERIC) != (values[f].type != SCHEMA_TEXT) &&
                    values[f].type != SCHEMA_MISSING) {
                    if (err_size > 0)
                        snprintf(err, err_size, "%zu: field '%s': %s", row + 2, s->fields[f].name,
                                 s->fields[f].kind == SCHEMA_NUMERIC
                                     ? "text where the model expects a number"
                                     : "a number where the model expects a category");
                    break;
                }
            r = SCHEMA_E_INPUT;
            goto out;
        }
    }
    *out = enc;
    enc = NULL;
    r = 0;
out:
    if (r == -ENOMEM)
        set_err(err, err_size, "%s", "out of memory");
    for (size_t c = 0; names != NULL && c < s->n_columns; c++)
        free(names[c]);
    free(names);
    free(col);
    free(values);
    dataset_free(enc);
    return r;
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
        col += want;
    }
    return col == s->n_columns ? 0 : -EINVAL;
}
