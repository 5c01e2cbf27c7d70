/* dataset: a CSV file with a header row -> feature names, a row-major float matrix and an
 * optional 0/1 label column.
 *
 * Threads: no shared state; each Dataset belongs to one thread at a time.
 * Errors: 0 on success, DATASET_E_FORMAT when the text is not a valid data set (the message
 * names "source:line:column: reason"), -ENOMEM, or a negative errno from reading the file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum {
    DATASET_E_FORMAT = 1, /* the input is not a valid data set; see the message */
};

#define DATASET_DEFAULT_MAX_COLUMNS 4096

#define DATASET_TEXT_MAX 1024 /* longest text cell, in bytes (mixed mode) */

typedef struct Dataset {
    size_t n_rows;
    size_t n_cols;        /* feature columns; the label column is not counted */
    char **names;         /* n_cols NUL-terminated feature names, in file order */
    float *x;             /* n_rows * n_cols values, row-major; NaN = missing or text */
    unsigned char *label; /* n_rows values of 0 or 1, or NULL when there is no label column */
    /* Mixed mode only (all NULL otherwise, and when every column is numeric): */
    unsigned char *is_text; /* n_cols flags: the column holds text */
    const char **text;      /* n_rows * n_cols: a text column's cell, NULL when missing */
    char *text_arena;       /* owns the strings text points to */
} Dataset;

typedef struct DatasetOptions {
    const char *label_column; /* name of the label column; NULL or absent: no labels */
    size_t max_columns;       /* more columns than this is an error; 0 = the default */
    bool mixed; /* real-world records: an empty cell is a missing value (NaN), and a column
                 * with any cell that is not a number is a text column (every cell kept as
                 * text, up to DATASET_TEXT_MAX bytes); labels stay strict */
} DatasetOptions;

/* Parses CSV text of len bytes (need not be NUL-terminated; never read past len).
 * source names the input in messages ("data.csv" -> "data.csv:12:3: ..."; COLUMN counts
 * every field of the line, the label's included; LINE is the file line, counting the line
 * ends inside quoted fields). Accepted: a UTF-8 BOM, LF or CRLF or CR line ends, blank
 * trailing lines, blanks around cells, RFC 4180 quoted fields in the header and the rows
 * ("" for a quote; commas and line ends inside; the quotes are not part of the value, so
 * "1.5" is a number and "" an empty cell), decimal numbers of at most 64 characters (decimal.h,
 * DECIMAL_TEXT), labels 0 or 1 (also 0.0, 1.0).
 * Rejected with DATASET_E_FORMAT: an unterminated quoted field, text after a closing quote,
 * ragged rows, empty rows inside the data, empty or
 * non-numeric cells, NaN/Inf and out-of-range numbers, duplicate or empty column names, a
 * label that is not 0 or 1, no feature columns, no data rows, more than max_columns
 * columns in the file (label included).
 * On success *out owns a new Dataset (free with dataset_free); on failure *out is untouched
 * and err (err_size bytes, may be 0) holds a one-line message. -EINVAL for NULL arguments. */
int dataset_parse_csv(const char *text, size_t len, const char *source, const DatasetOptions *opts,
                      Dataset **out, char *err, size_t err_size);

/* Reads the whole file at path in one pass and parses it as dataset_parse_csv does, with
 * the path as source. I/O failures return -errno with a message naming the path. */
int dataset_read_csv(const char *path, const DatasetOptions *opts, Dataset **out, char *err,
                     size_t err_size);

/* ---- the builder: one way to make a Dataset, cell by cell ----
 * Both the CSV reader and the daemon's JSON training records feed it, so a mixed data set
 * (numbers, text, missing cells) means the same whichever door it came in by: a column with
 * any text cell becomes a text column, in which every number becomes text too (its own
 * spelling when the caller has one, "%.9g" otherwise) and x is NaN; an empty or absent cell
 * is missing (NaN, no text); labels are kept when any row gave one (rows without one are
 * normal).
 * Errors: 0; -EINVAL for a call out of order (a row of the wrong length, a text cell in a
 * numbers-only builder, a text longer than DATASET_TEXT_MAX); -EFBIG past 4 GiB of text;
 * -ENOMEM. After an error the builder can only be freed. */
typedef enum DatasetCellKind {
    DATASET_CELL_MISSING = 0,
    DATASET_CELL_NUMBER,
    DATASET_CELL_TEXT,
} DatasetCellKind;

typedef struct DatasetCell {
    DatasetCellKind kind;
    float number;     /* NUMBER: finite */
    const char *text; /* TEXT: the text (1..DATASET_TEXT_MAX bytes, no NUL); NUMBER: its
                       * spelling, or NULL */
    size_t len;
} DatasetCell;

typedef struct DatasetBuilderOptions {
    bool mixed; /* text cells allowed; false: numbers only (strict CSV), nothing kept but x */
    /* When not NULL, every text and spelling lies in [text_base, text_base + text_len) and
     * stays there until finish (the CSV reader's buffer): only offsets are kept. NULL: the
     * builder copies what it is given. */
    const char *text_base;
    size_t text_len;
} DatasetBuilderOptions;

typedef struct DatasetBuilder DatasetBuilder;

/* A builder of rows of n_cols cells named names[0..n_cols-1] (copied). */
int dataset_builder_new(DatasetBuilder **out, size_t n_cols, const char *const *names,
                        const DatasetBuilderOptions *opts);
/* Appends the next cell of the current row. */
int dataset_builder_add(DatasetBuilder *b, const DatasetCell *cell);
/* Ends the current row (exactly n_cols cells); label is 0, 1 or -1 (none given). */
int dataset_builder_end_row(DatasetBuilder *b, int label);
/* Hands out the Dataset (*out) and frees the builder, also on failure. */
int dataset_builder_finish(DatasetBuilder *b, Dataset **out);
DatasetBuilder *dataset_builder_free(DatasetBuilder *b); /* accepts NULL; returns NULL */

/* Allocates an empty Dataset of n_rows x n_cols with copies of names (x zero-filled, no
 * labels), for callers that fill a numeric matrix themselves (encodings, tests). */
int dataset_new(Dataset **out, size_t n_rows, size_t n_cols, const char *const *names);

/* Frees everything; accepts NULL; returns NULL. */
Dataset *dataset_free(Dataset *ds);
