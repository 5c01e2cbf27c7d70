/* dataset: a CSV file with a header row -> feature names, a row-major float matrix and an
 * optional 0/1 label column; or the same rows one at a time (DatasetReader), in memory
 * that does not grow with them; or a seeded uniform sample of them (DatasetSample).
 *
 * Threads: no shared state; each Dataset belongs to one thread at a time.
 * Errors: 0 on success, DATASET_E_FORMAT when the text is not a valid data set (the message
 * names "source:line:column: reason"), -ENOMEM, or a negative errno from reading the file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    DATASET_E_FORMAT = 1, /* the input is not a valid data set; see the message */
    DATASET_END = 2,      /* dataset_reader_next: no more rows */
};

#define DATASET_DEFAULT_MAX_COLUMNS 4096

#define DATASET_TEXT_MAX 1024 /* longest text cell, in bytes (mixed mode) */

/* Longest record (the header or a row: a line, or the lines a quoted field joins), in
 * bytes, line end excluded: what bounds the reader's memory whatever the input. */
#define DATASET_RECORD_MAX (4 * 1024 * 1024)

typedef struct Dataset {
    size_t n_rows;
    size_t n_read;        /* rows the input held: n_rows, unless a sample of them was kept */
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
    /* dataset_parse_csv / dataset_read_csv: keep a uniform random sample of at most max_rows
     * normal rows (label 0 or no label), and as many labelled anomalies, drawn with seed
     * (dataset_sample_new); 0 keeps every row. */
    size_t max_rows;
    uint64_t seed;
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
 * columns in the file (label included), a record longer than DATASET_RECORD_MAX bytes.
 * On success *out owns a new Dataset (free with dataset_free); on failure *out is untouched
 * and err (err_size bytes, may be 0) holds a one-line message. -EINVAL for NULL arguments. */
int dataset_parse_csv(const char *text, size_t len, const char *source, const DatasetOptions *opts,
                      Dataset **out, char *err, size_t err_size);

/* Reads the file at path in one streaming pass (dataset_reader_new: the file is never held
 * whole) and parses it as dataset_parse_csv does, with the path as source. I/O failures
 * return -errno with a message naming the path; in mixed mode more than 1 GiB of kept text
 * is -EFBIG (sample with max_rows). */
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

/* ---- the incremental reader: one row at a time, in memory bounded by the record ----
 * The one CSV reader: dataset_parse_csv and dataset_read_csv are loops over it, so a row
 * means the same, and an error reads the same, whichever way the text comes in. Input comes
 * from a DatasetReadFn in reads of any size (a record may be split anywhere, inside quotes
 * or between CR and LF), or from text in memory (parsed in place, nothing copied).
 * Memory: a window of the input as long as the longest record (DATASET_RECORD_MAX at
 * most) plus a read, whatever the number of rows.
 * Errors: as dataset_parse_csv's, in err (which must outlive the reader; every error of
 * dataset_reader_next goes there too). An error sticks: the next calls return it again. */
typedef struct DatasetReader DatasetReader;

/* Reads at most size bytes into buf: the count, 0 at the end of the input, or -errno
 * (-EINTR is retried). */
typedef long (*DatasetReadFn)(void *ctx, char *buf, size_t size);

/* Reads a whole input from read_fn(ctx) as dataset_read_csv reads a file (standard input,
 * a pipe), source naming it in messages. */
int dataset_read_stream(DatasetReadFn read_fn, void *ctx, const char *source,
                        const DatasetOptions *opts, Dataset **out, char *err, size_t err_size);

/* A DatasetReadFn on a file descriptor: ctx points to the int (read(2); not closed). */
long dataset_read_fd(void *ctx, char *buf, size_t size);

typedef struct DatasetRow {
    const DatasetCell *cells; /* dataset_reader_n_cols cells in header order, the label
                               * column left out; texts valid until the next call */
    int label;                /* 0 or 1; -1 without a label column */
    size_t line;              /* the file line the row starts on */
} DatasetRow;

/* Opens a reader on read_fn(ctx) and reads the header (BOM, names, label column). */
int dataset_reader_new(DatasetReader **out, DatasetReadFn read_fn, void *ctx, const char *source,
                       const DatasetOptions *opts, char *err, size_t err_size);
/* The same over text[0..len) in memory, which must outlive the reader. */
int dataset_reader_new_text(DatasetReader **out, const char *text, size_t len, const char *source,
                            const DatasetOptions *opts, char *err, size_t err_size);
/* The next row into *row: 0; DATASET_END after the last (a header with no rows is
 * DATASET_E_FORMAT "no data rows" instead); DATASET_E_FORMAT; -ENOMEM; -errno of a read. */
int dataset_reader_next(DatasetReader *rd, DatasetRow *row);
size_t dataset_reader_n_cols(const DatasetReader *rd);            /* feature columns */
const char *const *dataset_reader_names(const DatasetReader *rd); /* their names */
bool dataset_reader_has_label(const DatasetReader *rd);           /* the label column is there */
size_t dataset_reader_rows(const DatasetReader *rd);              /* rows returned so far */
DatasetReader *dataset_reader_free(DatasetReader *rd);            /* accepts NULL; returns NULL */

/* ---- reservoir sampling: a uniform sample of rows of unknown number, in bounded memory ----
 * Normal rows (label 0 or -1) and anomalies (label 1) each fill a reservoir of max_rows
 * (Vitter's algorithm R): the i-th row of its kind (0-based) is kept while i < max_rows,
 * then replaces slot j = uniform(0..i) when j < max_rows, the draws made by nn_rng_next
 * from a state derived from seed alone. So the rows kept depend only on seed, max_rows and
 * the sequence of labels: the same input and seed give the same sample, however read.
 * finish hands out the kept rows in input order, built as dataset_builder would (copy
 * mode) from their cells, so a max_rows >= the rows gives the Dataset of every row, and
 * sets n_read to the rows added. Memory: the kept rows' cells and texts.
 * Errors: 0, -EINVAL (max_rows 0, a builder's error), -EFBIG, -ENOMEM. */
typedef struct DatasetSample DatasetSample;

int dataset_sample_new(DatasetSample **out, size_t n_cols, const char *const *names, bool mixed,
                       size_t max_rows, uint64_t seed);
/* Offers one row: n_cols cells (texts copied when kept) and its label (1, 0 or -1). */
int dataset_sample_add(DatasetSample *s, const DatasetCell *cells, int label);
/* The sample as a Dataset (*out); frees s, also on failure. */
int dataset_sample_finish(DatasetSample *s, Dataset **out);
DatasetSample *dataset_sample_free(DatasetSample *s); /* accepts NULL; returns NULL */

/* Replaces *ds (a whole data set already in memory: the daemon's JSON training records)
 * by the sample of its rows that dataset_sample_* would keep, offered in order (numeric
 * columns as numbers, text columns as text). Unchanged when it has at most max_rows rows of
 * each kind. 0, -ENOMEM, -EFBIG (ds unchanged). */
int dataset_sample_rows(Dataset **ds, size_t max_rows, uint64_t seed);

/* Allocates an empty Dataset of n_rows x n_cols with copies of names (x zero-filled, no
 * labels), for callers that fill a numeric matrix themselves (encodings, tests). */
int dataset_new(Dataset **out, size_t n_rows, size_t n_cols, const char *const *names);

/* Frees everything; accepts NULL; returns NULL. */
Dataset *dataset_free(Dataset *ds);
