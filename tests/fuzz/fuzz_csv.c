/* fuzz_csv: the CSV reader (dataset_parse_csv) on arbitrary bytes.
 *
 * Every input is parsed under several options, because they take different paths: no label
 * column, a "label" column, and tiny max_columns (1, 2, 3) that trip the column cap at
 * every position of the header. libFuzzer's buffer is exactly size bytes and not
 * NUL-terminated, so ASan catches any read past len (the header promises none).
 * On success the Dataset's documented shape is checked: rows and feature columns >= 1,
 * columns within the cap, names non-empty and distinct, values finite, labels 0/1 and
 * present only when a label column was asked for. On failure the message must be a
 * NUL-terminated line starting with the source name, and an err_size of 0 must leave the
 * buffer alone.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/dataset.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *label;
    size_t max_columns;
} runs[] = {
    {NULL, 0}, {"label", 0}, {NULL, 1}, {"label", 2}, {NULL, 3}, {"a", 3},
};

static void check_dataset(const Dataset *ds, const char *label, size_t max_columns)
{
    size_t cap = max_columns ? max_columns : DATASET_DEFAULT_MAX_COLUMNS;

    CHECK(ds->n_rows >= 1 && ds->n_cols >= 1);
    CHECK(ds->n_cols + (ds->label != NULL) <= cap);
    if (label == NULL) /* a named label column may be absent: then no labels either */
        CHECK(ds->label == NULL);
    for (size_t j = 0; j < ds->n_cols; j++) {
        CHECK(ds->names[j] != NULL && ds->names[j][0] != '\0');
        if (label != NULL)
            CHECK(strcmp(ds->names[j], label) != 0);
        for (size_t k = 0; k < j; k++)
            CHECK(strcmp(ds->names[j], ds->names[k]) != 0);
    }
    for (size_t i = 0; i < ds->n_rows * ds->n_cols; i++)
        CHECK(isfinite(ds->x[i]));
    if (ds->label != NULL)
        for (size_t i = 0; i < ds->n_rows; i++)
            CHECK(ds->label[i] <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;

    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        DatasetOptions opts = {.label_column = runs[r].label, .max_columns = runs[r].max_columns};
        Dataset *ds = NULL;
        char err[256];
        int rc;

        memset(err, 'x', sizeof(err));
        rc = dataset_parse_csv(text, size, "fuzz.csv", &opts, &ds, err, sizeof(err));
        CHECK(rc == 0 || rc == DATASET_E_FORMAT || rc == -ENOMEM);
        if (rc == 0) {
            CHECK(ds != NULL);
            check_dataset(ds, runs[r].label, runs[r].max_columns);
            dataset_free(ds);
        } else {
            CHECK(ds == NULL);
            CHECK(memchr(err, '\0', sizeof(err)) != NULL);
            CHECK(strncmp(err, "fuzz.csv", 8) == 0);
            CHECK(strchr(err, '\n') == NULL);
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
            CHECK(err[i] == 'x');
    }
    return 0;
}
