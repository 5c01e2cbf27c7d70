/* fuzz_csv: the CSV reader (dataset_parse_csv) on arbitrary bytes.
 *
 * Every input is parsed under several options, because they take different paths: no label
 * column, a "label" column, and tiny max_columns (1, 2, 3) that trip the column cap at
 * every position of the header. libFuzzer's buffer is exactly size bytes and not
 * NUL-terminated, so ASan catches any read past len (the header promises none).
 * Mixed mode (text columns and missing cells, what training reads) runs too.
 * On success the Dataset's documented shape is checked: rows and feature columns >= 1,
 * columns within the cap, names non-empty and distinct, values finite (NaN only for a
 * missing or text cell in mixed mode), labels 0/1 and present only when a label column was
 * asked for. A mixed-mode data set then goes where training takes it: a schema is learnt
 * from all its rows (schema_learn) and the same rows must encode through it
 * (schema_encode_dataset) into finite columns. On failure the message must be a
 * NUL-terminated line starting with the source name, and an err_size of 0 must leave the
 * buffer alone.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/dataset.h"
#include "aescore/schema.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *label;
    size_t max_columns;
    bool mixed;
} runs[] = {
    {NULL, 0, false},    {"label", 0, false}, {NULL, 1, false},
    {"label", 2, false}, {NULL, 3, false},    {"a", 3, false},
    {NULL, 0, true},     {"label", 0, true},  {NULL, 2, true},
};

static void check_dataset(const Dataset *ds, const char *label, size_t max_columns, bool mixed)
{
    size_t cap = max_columns ? max_columns : DATASET_DEFAULT_MAX_COLUMNS;

    FUZZ_CHECK(ds->n_rows >= 1 && ds->n_cols >= 1);
    FUZZ_CHECK(ds->n_cols + (ds->label != NULL) <= cap);
    if (label == NULL) /* a named label column may be absent: then no labels either */
        FUZZ_CHECK(ds->label == NULL);
    for (size_t j = 0; j < ds->n_cols; j++) {
        FUZZ_CHECK(ds->names[j] != NULL && ds->names[j][0] != '\0');
        if (label != NULL)
            FUZZ_CHECK(strcmp(ds->names[j], label) != 0);
        for (size_t k = 0; k < j; k++)
            FUZZ_CHECK(strcmp(ds->names[j], ds->names[k]) != 0);
    }
    if (!mixed)
        FUZZ_CHECK(ds->is_text == NULL && ds->text == NULL);
    if (ds->is_text != NULL)
        FUZZ_CHECK(ds->text != NULL);
    for (size_t i = 0; i < ds->n_rows * ds->n_cols; i++) {
        bool text_col = ds->is_text != NULL && ds->is_text[i % ds->n_cols];

        if (text_col) {
            FUZZ_CHECK(isnan(ds->x[i]));
            if (ds->text[i] != NULL)
                FUZZ_CHECK(strlen(ds->text[i]) <= DATASET_TEXT_MAX);
        } else {
            FUZZ_CHECK(isfinite(ds->x[i]) || (mixed && isnan(ds->x[i])));
        }
    }
    if (ds->label != NULL)
        for (size_t i = 0; i < ds->n_rows; i++)
            FUZZ_CHECK(ds->label[i] <= 1);
}

/* Learns a schema from every row of ds, as training does, and encodes ds through it. */
static void check_schema(const Dataset *ds, size_t min_category_rows)
{
    SchemaOptions sopts = {.min_category_rows = min_category_rows};
    size_t *rows = malloc(ds->n_rows * sizeof(*rows));
    Schema *sc = NULL;
    Dataset *enc = NULL;
    char err[256];
    int r;

    FUZZ_CHECK(rows != NULL);
    for (size_t i = 0; i < ds->n_rows; i++)
        rows[i] = i;
    r = schema_learn(ds, rows, ds->n_rows, &sopts, &sc, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == SCHEMA_E_INPUT || r == -ENOMEM);
    free(rows);
    if (r != 0)
        return;
    FUZZ_CHECK(schema_validate(sc) == 0);
    r = schema_encode_dataset(sc, ds, &enc, err, sizeof(err));
    if (r != 0 && r != -ENOMEM) {
        /* the rows the schema was learnt from must fit it */
        fprintf(stderr, "schema_encode_dataset refused its own training rows: %d %s\n", r, err);
        abort();
    }
    if (r == 0) {
        FUZZ_CHECK(enc->n_rows == ds->n_rows && enc->n_cols == sc->n_columns);
        FUZZ_CHECK((enc->label != NULL) == (ds->label != NULL));
        for (size_t i = 0; i < enc->n_rows * enc->n_cols; i++)
            FUZZ_CHECK(isfinite(enc->x[i]));
        dataset_free(enc);
    }
    schema_free(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;

    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        DatasetOptions opts = {.label_column = runs[r].label,
                               .max_columns = runs[r].max_columns,
                               .mixed = runs[r].mixed};
        Dataset *ds = NULL;
        char err[256];
        int rc;

        memset(err, 'x', sizeof(err));
        rc = dataset_parse_csv(text, size, "fuzz.csv", &opts, &ds, err, sizeof(err));
        FUZZ_CHECK(rc == 0 || rc == DATASET_E_FORMAT || rc == -ENOMEM);
        if (rc == 0) {
            FUZZ_CHECK(ds != NULL);
            check_dataset(ds, runs[r].label, runs[r].max_columns, runs[r].mixed);
            if (runs[r].mixed && runs[r].max_columns == 0) {
                check_schema(ds, 1);
                check_schema(ds, 0);
            }
            dataset_free(ds);
        } else {
            FUZZ_CHECK(ds == NULL);
            FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
            FUZZ_CHECK(strncmp(err, "fuzz.csv", 8) == 0);
            FUZZ_CHECK(strchr(err, '\n') == NULL);
        }
    }

    /* err_size 0 (documented as allowed): nothing may be written to err */
    {
        DatasetOptions opts = {.label_column = "label"};
        Dataset *ds = NULL;
        char err[8];

        memset(err, 'x', sizeof(err));
        if (dataset_parse_csv(text, size, "fuzz.csv", &opts, &ds, err, 0) == 0)
            dataset_free(ds);
        for (size_t i = 0; i < sizeof(err); i++)
            FUZZ_CHECK(err[i] == 'x');
    }
    return 0;
}
