/* schema: the record fields a model takes, learnt from training data, and their encoding
 * into the network's input columns.
 *
 * A record has named fields. A numeric field is one input column; a missing value is
 * imputed with its fill value (the median of the normal training rows). A categorical
 * field (a text column in the training CSV) is one-hot expanded: one input column per
 * category seen in at least min_category_rows training rows, plus an "other" column when
 * rarer categories were folded into it; a missing value is imputed with the most frequent
 * category, and a category never seen maps to "other" when the field has it, else to all
 * zeros. Ignored columns (asked for, or text columns unique per row such as ids and names)
 * are listed but take no input column. A purely numeric data set gives one numeric field per
 * column, and then records and input columns coincide.
 *
 * Expanded input column names: a numeric field's own name; "field=category" for a
 * category, "field=*other*" for the other column.
 * Ownership: a Schema is immutable once built and owned by its Model.
 * Threads: reentrant; encoding only reads the schema.
 * Errors: 0, SCHEMA_E_INPUT (message in err), -ENOMEM, -EINVAL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aescore/dataset.h"

enum {
    SCHEMA_E_INPUT = 1, /* the data cannot give a schema (no usable column, too many ...) */
};

#define SCHEMA_MAX_CATEGORIES   256 /* per field, "other" included */
#define SCHEMA_DEFAULT_MIN_ROWS 10
#define SCHEMA_OTHER            "*other*"
#define SCHEMA_DECILE_BINS      10

typedef enum SchemaKind {
    SCHEMA_NUMERIC = 0,
    SCHEMA_CATEGORICAL = 1,
} SchemaKind;

typedef struct SchemaField {
    char *name;
    SchemaKind kind;
    size_t column;     /* first input column */
    size_t n_columns;  /* 1 for numeric; n_categories (+ 1 with other) for categorical */
    float fill;        /* numeric: imputed value; categorical: index of the imputed category */
    char **categories; /* categorical: n_categories strings, column + k is category k */
    size_t n_categories;
    bool has_other; /* categorical: column + n_categories is "other" */
    /* The training distribution (drift, DESIGN 3d), NULL in models that predate it (model
     * file version 2): numeric fields SCHEMA_DECILE_BINS - 1 ascending decile edges of the
     * normal training rows, then the share of those rows in each bin; categorical fields
     * the share of each input column (other included). Missing cells count as their fill. */
    float *profile;
} SchemaField;

typedef struct Schema {
    size_t n_fields;
    SchemaField *fields;
    size_t n_columns; /* input columns: the sum of the fields' n_columns */
    size_t n_ignored;
    char **ignored; /* names of the training columns that are not fields */
} Schema;

typedef struct SchemaOptions {
    size_t min_category_rows;  /* rarer categories fold into "other"; 0 = default */
    const char *const *ignore; /* column names to leave out */
    size_t n_ignore;
} SchemaOptions;

/* One raw field value of a record. */
typedef enum SchemaValueType {
    SCHEMA_MISSING = 0,
    SCHEMA_NUMBER,
    SCHEMA_TEXT,
} SchemaValueType;

typedef struct SchemaValue {
    SchemaValueType type;
    double number;    /* SCHEMA_NUMBER: finite */
    const char *text; /* SCHEMA_TEXT: len bytes, not necessarily NUL-terminated */
    size_t len;
} SchemaValue;

/* What encoding one record did besides filling the columns. */
typedef struct SchemaEncodeInfo {
    size_t n_imputed; /* fields that were missing and got their fill value */
    size_t n_unseen;  /* categorical fields whose category the model never saw */
} SchemaEncodeInfo;

/* Learns a schema from the rows rows[0..n_rows-1] of ds (the normal training rows): text
 * columns become categorical fields, numeric ones numeric fields; text columns with a
 * distinct value in every row, and opts->ignore, are ignored. *out owns a new Schema. */
int schema_learn(const Dataset *ds, const size_t *rows, size_t n_rows, const SchemaOptions *opts,
                 Schema **out, char *err, size_t err_size);

/* A schema of n numeric fields named names[0..n-1] with the given fill values (v1 model
 * files, and callers that have numbers only). */
int schema_new_numeric(Schema **out, size_t n, const char *const *names, const float *fill);

/* The name of input column c ("field", "field=category" or "field=*other*") into a new
 * string (caller frees), or NULL on allocation failure. */
char *schema_column_name(const Schema *s, size_t c);

/* Index of category text (len bytes) in a categorical field, or -1 (unseen). */
long schema_category_index(const SchemaField *fd, const char *text, size_t len);

/* True when every field is numeric and none is left out of the columns: records and input
 * columns then coincide (the fast scoring path relies on it). */
bool schema_is_plain(const Schema *s);

/* Index of the field called name (len bytes), or -1. */
long schema_field_index(const Schema *s, const char *name, size_t len);

/* Encodes one record: values[f] for every field f -> x[0..n_columns-1]. Returns 0 or
 * -EINVAL when a value has the wrong type for its field (a number for a categorical field,
 * text for a numeric one: the caller decides what text may become a number). */
int schema_encode(const Schema *s, const SchemaValue *values, float *x, SchemaEncodeInfo *info);

/* Encodes every row of ds (columns matched to fields by name, in any order; columns that
 * the schema ignores are skipped) into a new purely numeric Dataset of n_columns named
 * columns (labels copied). Errors (SCHEMA_E_INPUT) start with the file line they concern,
 * counting the header as line 1 and one line per row ("1: column 'x' is not a field of
 * the model", "7: field 'age': text where the model expects a number"). */
int schema_encode_dataset(const Schema *s, const Dataset *ds, Dataset **out, char *err,
                          size_t err_size);

/* ---- rows one at a time (dataset.h's reader), encoded as schema_encode_dataset does ----
 * schema_match_names finds field f's column among a CSV header's n_cols names into col[f]
 * (n_fields entries); column skip (an id column echoed beside the scores; SIZE_MAX for
 * none) may be unknown to the schema. Errors: SCHEMA_E_INPUT with schema_encode_dataset's
 * line 1 messages, -ENOMEM.
 * schema_encode_cells encodes one row's cells (header order) into x[0..n_columns-1], values
 * being scratch of n_fields; its errors are schema_encode_dataset's with the row's own file
 * line ("7: field 'age': text where the model expects a number"). One departure, as a row
 * alone cannot know whether its column is text: a number in a categorical field is taken as
 * its spelling (schema_encode_dataset refuses it when no cell of the column is text). */
int schema_match_names(const Schema *s, const char *const *names, size_t n_cols, size_t skip,
                       size_t *col, char *err, size_t err_size);
int schema_encode_cells(const Schema *s, const size_t *col, const DatasetCell *cells, size_t line,
                        SchemaValue *values, float *x, SchemaEncodeInfo *info, char *err,
                        size_t err_size);

/* How a Dataset's columns differ from a schema's fields. The names are borrowed from the
 * schema and the Dataset: valid while both live. */
typedef struct SchemaMismatch {
    const char **missing; /* fields with no column */
    size_t n_missing;
    const char **unknown; /* columns that are neither fields nor ignored by the schema */
    size_t n_unknown;
    const char **retyped; /* numeric fields whose column holds text */
    size_t n_retyped;
} SchemaMismatch;

/* Frees the lists of a SchemaMismatch (schema_align_dataset fills one). */
void schema_mismatch_deinit(SchemaMismatch *mm);

/* Aligns ds to a served schema in place, for training a successor with the same record
 * layout: every field must have a column of its kind (a numeric field's column may not be
 * text), no column may be unknown (columns the schema ignores may come along), and the
 * columns are put in field order followed by the ignored ones, so clients sending "values"
 * arrays keep their meaning across the swap. Returns 0, SCHEMA_E_INPUT (*mm names every
 * problem; ds unchanged) or -ENOMEM. *mm is filled either way (schema_mismatch_deinit). */
int schema_align_dataset(const Schema *s, Dataset *ds, SchemaMismatch *mm);

/* The inverse of schema_encode for a record x it encoded: a numeric field's value, a
 * categorical field's category; a category the schema did not know (encoded as "other" or
 * as zeros) becomes text of length 0, which no schema knows (categories are never empty),
 * so encoding the values again with another schema counts it as unseen there too. The
 * text is borrowed from s. */
void schema_decode(const Schema *s, const float *x, SchemaValue *values);

/* How schema b (a successor) differs from a: fields dropped, added or of another kind, and
 * per categorical field kept, the categories added and vanished. Names are borrowed from a
 * and b. 0 or -ENOMEM; schema_diff_deinit frees the lists. */
typedef struct SchemaCategoryDiff {
    const char *field;
    const char **added, **vanished;
    size_t n_added, n_vanished;
} SchemaCategoryDiff;

typedef struct SchemaDiff {
    const char **dropped, **added, **retyped;
    size_t n_dropped, n_added, n_retyped;
    SchemaCategoryDiff *categories; /* only fields whose categories changed */
    size_t n_categories;
} SchemaDiff;

int schema_diff(const Schema *a, const Schema *b, SchemaDiff *d);
void schema_diff_deinit(SchemaDiff *d);

/* ---- the fields that explain a score ----
 * field_err[f] = the error of field f from the per-column errors: a numeric field's own
 * column, a categorical field's sum over its one-hot columns (so an explanation names
 * "purpose", never "purpose=used_car"). field_err may be column_err itself (field f's
 * columns start at or after f). */
void schema_field_errors(const Schema *s, const float *column_err, float *field_err);
/* The min(k, n) largest of err[0..n-1] into idx (room for k), largest first, the first of
 * equals first; returns how many. One pass, err unchanged: for the small k asked, most
 * fields cost one compare. Errors are not NaN (a NaN never ranks). */
size_t schema_worst_fields(const float *err, size_t n, size_t k, size_t *idx);

/* Checks invariants a loader must guarantee: distinct non-empty names, column ranges that
 * tile [0, n_columns), finite fills, category indexes in range. 0 or -EINVAL. */
int schema_validate(const Schema *s);

/* ---- the training distribution (fd->profile) ----
 * Bins of a field: numeric SCHEMA_DECILE_BINS (bin of x = the number of edges <= x);
 * categorical one per input column plus a last one for an encoded row with none of them
 * set (a category unseen in training, in a field without "other"). */
size_t schema_profile_len(const SchemaField *fd); /* floats of fd->profile */
size_t schema_bins(const SchemaField *fd);
/* The bin of x among the SCHEMA_DECILE_BINS - 1 ascending edges: the number <= x. */
static inline size_t schema_decile_bin(const float *edges, float x)
{
    size_t b = 0;

    for (size_t k = 0; k < SCHEMA_DECILE_BINS - 1; k++) /* ascending: a count, no branch */
        b += edges[k] <= x;
    return b;
}

/* The bin of field fd in the encoded row x (all the schema's input columns). Inline: the
 * daemon bins every field of every record it scores. */
static inline size_t schema_bin(const SchemaField *fd, const float *x)
{
    size_t b = 0;

    if (fd->kind == SCHEMA_NUMERIC)
        return schema_decile_bin(fd->profile, x[fd->column]);
    while (b < fd->n_columns && x[fd->column + b] == 0.0f)
        b++;
    return b;
}
/* The training share of `bin` (fd->profile set); 0 for the unseen bin. */
double schema_expected_share(const SchemaField *fd, size_t bin);
/* True when every field has a profile. */
bool schema_has_profile(const Schema *s);

Schema *schema_free(Schema *s); /* accepts NULL; returns NULL */
