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
 * Differential: every run is read again through the incremental reader
 * (dataset_read_stream) in reads of pseudo-random sizes drawn from the input itself (1 to
 * 64 bytes, and now and then a large one), so records split anywhere, inside quotes and
 * between CR and LF: it must give the same return code, the same message and the same
 * Dataset bit for bit as the whole-text parse. A run with max_rows compares the reservoir
 * sample both ways too.
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

typedef struct Chunks {
    const char *text;
    size_t len, pos;
    uint64_t rng;
} Chunks;

static long chunked_read(void *ctx, char *buf, size_t size)
{
    Chunks *c = ctx;
    size_t n;

    c->rng = c->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    n = (c->rng >> 33) % 16 == 0 ? 4096 : 1 + (c->rng >> 40) % 64;
    if (n > size)
        n = size;
    if (n > c->len - c->pos)
        n = c->len - c->pos;
    memcpy(buf, c->text + c->pos, n);
    c->pos += n;
    return (long) n;
}

static bool same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(a)) == 0;
}

static void check_same(const Dataset *a, const Dataset *b)
{
    FUZZ_CHECK(a->n_rows == b->n_rows && a->n_cols == b->n_cols && a->n_read == b->n_read);
    for (size_t j = 0; j < a->n_cols; j++)
        FUZZ_CHECK(strcmp(a->names[j], b->names[j]) == 0);
    for (size_t i = 0; i < a->n_rows * a->n_cols; i++)
        FUZZ_CHECK(same_float(a->x[i], b->x[i]));
    FUZZ_CHECK((a->label == NULL) == (b->label == NULL));
    if (a->label != NULL)
        FUZZ_CHECK(memcmp(a->label, b->label, a->n_rows) == 0);
    FUZZ_CHECK((a->is_text == NULL) == (b->is_text == NULL));
    if (a->is_text == NULL)
        return;
    FUZZ_CHECK(memcmp(a->is_text, b->is_text, a->n_cols) == 0);
    for (size_t i = 0; i < a->n_rows * a->n_cols; i++) {
        FUZZ_CHECK((a->text[i] == NULL) == (b->text[i] == NULL));
        if (a->text[i] != NULL)
            FUZZ_CHECK(strcmp(a->text[i], b->text[i]) == 0);
    }
}

/* The same input through the incremental reader, split by the input's own hash. */
static void check_stream(const char *text, size_t size, const DatasetOptions *opts, int rc,
                         const Dataset *whole, const char *err)
{
    Chunks c = {.text = text, .len = size, .rng = 0x9e3779b97f4a7c15ULL ^ size};
    Dataset *ds = NULL;
    char err2[256];
    int rc2;

    for (size_t i = 0; i < size && i < 64; i++)
        c.rng = c.rng * 31 + (unsigned char) text[i];
    memset(err2, 'x', sizeof(err2));
    rc2 = dataset_read_stream(chunked_read, &c, "fuzz.csv", opts, &ds, err2, sizeof(err2));
    if (rc2 != rc || (rc != 0 && strcmp(err, err2) != 0)) {
        fprintf(stderr, "whole %d '%s', streamed %d '%s'\n", rc, rc ? err : "", rc2,
                rc2 ? err2 : "");
        abort();
    }
    if (rc == 0) {
        check_same(whole, ds);
        dataset_free(ds);
    }
}

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
        if (rc != -ENOMEM)
            check_stream(text, size, &opts, rc, ds, err);
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

    /* a reservoir sample of 2 rows of each kind, whole and streamed */
    {
        DatasetOptions opts = {.label_column = "label", .mixed = true, .max_rows = 2, .seed = size};
        Dataset *ds = NULL;
        char err[256];
        int rc = dataset_parse_csv(text, size, "fuzz.csv", &opts, &ds, err, sizeof(err));

        if (rc == 0)
            FUZZ_CHECK(ds->n_rows <= 4 && ds->n_read >= ds->n_rows);
        if (rc != -ENOMEM)
            check_stream(text, size, &opts, rc, ds, err);
        dataset_free(ds);
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
