/* stream: see stream.h.
 *
 * DESIGN. A Stream is the reader, the model's field-to-column map and the scratch of one
 * row's values; rows come in batches of BATCH, encoded into one block of input columns and
 * scored together (model_score_batch), or one by one when the per-field errors are asked
 * for (--top-features: model_score gives them). The id column's text is copied per batch,
 * as the reader's texts last only until its next row.
 */
#include "stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aescore/dataset.h"
#include "aescore/schema.h"
#include "cli.h"

#define BATCH  256
#define ID_MAX (DATASET_TEXT_MAX + 1)

typedef struct Stream {
    const Model *m;
    int fd;
    const char *source;
    DatasetReader *rd;
    size_t *col; /* n_fields: each field's column */
    SchemaValue *values;
    size_t id_col; /* SIZE_MAX: none */
    char err[512];
} Stream;

typedef struct Batch {
    float *x; /* BATCH rows of n_features */
    int label[BATCH];
    char *ids; /* BATCH * ID_MAX when there is an id column */
    size_t id_len[BATCH];
    size_t n;
    bool end;
} Batch;

static void stream_close(Stream *st)
{
    dataset_reader_free(st->rd);
    free(st->col);
    free(st->values);
    if (st->fd > STDIN_FILENO)
        close(st->fd);
}

/* The id column among the reader's: 0, or 1 with the message printed. */
static int find_id_column(Stream *st, const char *id_column)
{
    const char *const *names = dataset_reader_names(st->rd);

    st->id_col = SIZE_MAX;
    if (id_column == NULL)
        return 0;
    for (size_t c = 0; c < dataset_reader_n_cols(st->rd); c++)
        if (strcmp(names[c], id_column) == 0) {
            st->id_col = c;
            break;
        }
    if (st->id_col != SIZE_MAX)
        return 0;
    cli_error("%s:1: no id column '%s'", st->source, id_column);
    return 1;
}

/* Opens the input, reads its header and matches it to the model's fields. */
static int stream_open(Stream *st, const Model *m, const StreamArgs *a, bool need_label)
{
    DatasetOptions opts = {.label_column = a->label, .mixed = true};
    size_t nf = m->schema->n_fields;
    int r;

    *st = (Stream){.m = m, .fd = -1, .id_col = SIZE_MAX};
    if (cli_open_data(a->data, &st->fd, &st->source) != 0)
        return 1;
    r = dataset_reader_new(&st->rd, dataset_read_fd, &st->fd, st->source, &opts, st->err,
                           sizeof(st->err));
    if (r != 0) {
        cli_error("%s", st->err);
        return 1;
    }
    if (need_label && !dataset_reader_has_label(st->rd)) {
        cli_error_no_label(st->source, a->label, "eval");
        return 1;
    }
    if (find_id_column(st, a->id_column) != 0)
        return 1;
    st->col = malloc((nf + 1) * sizeof(*st->col));
    st->values = malloc((nf + 1) * sizeof(*st->values));
    if (st->col == NULL || st->values == NULL) {
        cli_error("out of memory");
        return 1;
    }
    r = schema_match_names(m->schema, dataset_reader_names(st->rd), dataset_reader_n_cols(st->rd),
                           st->id_col, st->col, st->err, sizeof(st->err));
    if (r != 0) {
        cli_error("%s:%s", st->source, r == -ENOMEM ? " out of memory" : st->err);
        return 1;
    }
    return 0;
}

/* Keeps row's id text in slot i of the batch. */
static void keep_id(const Stream *st, Batch *b, const DatasetRow *row)
{
    const DatasetCell *cell = &row->cells[st->id_col];
    size_t len = cell->text != NULL ? cell->len : 0;

    memcpy(b->ids + b->n * ID_MAX, cell->text != NULL ? cell->text : "", len);
    b->id_len[b->n] = len;
}

/* Reads and encodes up to BATCH rows: 0, or 1 with the message printed; either way b->n
 * rows before the problem are ready, and b->end says the input is done. */
static int read_batch(Stream *st, Batch *b)
{
    size_t nx = st->m->n_features;
    char err[512];
    int r;

    for (b->n = 0; b->n < BATCH && !b->end;) {
        DatasetRow row;

        r = dataset_reader_next(st->rd, &row);
        if (r == DATASET_END) {
            b->end = true;
            break;
        }
        if (r != 0) {
            cli_error("%s", st->err);
            return 1;
        }
        r = schema_encode_cells(st->m->schema, st->col, row.cells, row.line, st->values,
                                b->x + b->n * nx, NULL, err, sizeof(err));
        if (r != 0) {
            cli_error("%s:%s", st->source, err);
            return 1;
        }
        b->label[b->n] = row.label;
        if (st->id_col != SIZE_MAX)
            keep_id(st, b, &row);
        b->n++;
    }
    return 0;
}

static int batch_init(Batch *b, const Stream *st)
{
    *b = (Batch){0};
    b->x = malloc(BATCH * st->m->n_features * sizeof(*b->x));
    if (st->id_col != SIZE_MAX)
        b->ids = malloc(BATCH * ID_MAX);
    if (b->x == NULL || (st->id_col != SIZE_MAX && b->ids == NULL)) {
        cli_error("out of memory");
        return 1;
    }
    return 0;
}

static void batch_deinit(Batch *b)
{
    free(b->x);
    free(b->ids);
}

/* A CSV field: as is, or quoted when it holds a comma, a quote or a line end. */
static void put_field(FILE *out, const char *s, size_t len)
{
    bool plain = true;

    for (size_t i = 0; i < len && plain; i++)
        plain = s[i] != ',' && s[i] != '"' && s[i] != '\r' && s[i] != '\n';
    if (plain) {
        fwrite(s, 1, len, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            fputc('"', out);
        fputc(s[i], out);
    }
    fputc('"', out);
}

/* The k fields of the largest errors, largest first, as /score's top_features picks them
 * (schema.h); err becomes the per-field errors. */
static void put_top(FILE *out, const Schema *sc, float *err, unsigned k)
{
    size_t idx[MODEL_MAX_FEATURES], n;

    schema_field_errors(sc, err, err);
    n = schema_worst_fields(err, sc->n_fields, k, idx);
    for (size_t j = 0; j < n; j++) {
        fputc(',', out);
        put_field(out, sc->fields[idx[j]].name, strlen(sc->fields[idx[j]].name));
    }
}

typedef struct Scorer {
    float *scratch, *scores, *feature_err;
    size_t row; /* rows written */
    unsigned top;
} Scorer;

static void write_batch(const Stream *st, Batch *b, Scorer *sc, FILE *out)
{
    const Model *m = st->m;

    if (sc->top == 0)
        model_score_batch(m, b->x, b->n, sc->scratch, sc->scores);
    for (size_t i = 0; i < b->n; i++) {
        ModelScore ms;

        if (sc->top > 0) {
            model_score(m, b->x + i * m->n_features, sc->scratch, sc->feature_err, &ms);
            sc->scores[i] = ms.score;
        }
        sc->row++;
        if (st->id_col != SIZE_MAX)
            put_field(out, b->ids + i * ID_MAX, b->id_len[i]);
        else
            fprintf(out, "%zu", sc->row);
        fprintf(out, ",%.9g,%d", (double) sc->scores[i], sc->scores[i] > m->threshold);
        if (sc->top > 0)
            put_top(out, m->schema, sc->feature_err, sc->top);
        fputc('\n', out);
    }
}

static void write_header(const Stream *st, unsigned top, FILE *out)
{
    const char *id = st->id_col != SIZE_MAX ? dataset_reader_names(st->rd)[st->id_col] : "id";

    put_field(out, id, strlen(id));
    fputs(",score,anomaly", out);
    for (unsigned j = 1; j <= top; j++)
        fprintf(out, ",top_%u", j);
    fputc('\n', out);
}

int stream_score(const Model *m, const StreamArgs *a, FILE *out)
{
    Stream st;
    Batch b = {0};
    Scorer sc = {.top = a->top_features < m->schema->n_fields ? a->top_features
                                                              : (unsigned) m->schema->n_fields};
    int r = stream_open(&st, m, a, false);

    if (r == 0)
        r = batch_init(&b, &st);
    sc.scratch = malloc(model_scratch_size(m) * sizeof(float));
    sc.scores = malloc(BATCH * sizeof(float));
    sc.feature_err = malloc(m->n_features * sizeof(float));
    if (r == 0 && (sc.scratch == NULL || sc.scores == NULL || sc.feature_err == NULL)) {
        cli_error("out of memory");
        r = 1;
    }
    if (r == 0)
        write_header(&st, sc.top, out);
    while (r == 0 && !b.end) {
        r = read_batch(&st, &b);
        write_batch(&st, &b, &sc, out); /* the rows before a bad one, too */
        if (fflush(out) != 0 || ferror(out)) {
            cli_error("writing the scores: %s", strerror(errno));
            r = 1;
        }
    }
    free(sc.scratch);
    free(sc.scores);
    free(sc.feature_err);
    batch_deinit(&b);
    stream_close(&st);
    return r;
}

/* Room for n more scores and labels. */
static int grow(float **scores, unsigned char **labels, size_t *cap, size_t need)
{
    size_t new_cap = *cap ? *cap : 4096;
    void *p;

    while (new_cap < need)
        new_cap *= 2;
    if (new_cap == *cap)
        return 0;
    if ((p = realloc(*scores, new_cap * sizeof(**scores))) == NULL)
        return -ENOMEM;
    *scores = p;
    if ((p = realloc(*labels, new_cap)) == NULL)
        return -ENOMEM;
    *labels = p;
    *cap = new_cap;
    return 0;
}

int stream_eval(const Model *m, const StreamArgs *a, float **scores, unsigned char **labels,
                size_t *n)
{
    Stream st;
    Batch b = {0};
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    size_t cap = 0;
    int r = stream_open(&st, m, a, true);

    *scores = NULL;
    *labels = NULL;
    *n = 0;
    if (r == 0)
        r = batch_init(&b, &st);
    if (r == 0 && scratch == NULL) {
        cli_error("out of memory");
        r = 1;
    }
    while (r == 0 && !b.end) {
        r = read_batch(&st, &b);
        if (r == 0 && grow(scores, labels, &cap, *n + b.n) < 0) {
            cli_error("out of memory");
            r = 1;
        }
        if (r != 0)
            break;
        model_score_batch(m, b.x, b.n, scratch, *scores + *n);
        for (size_t i = 0; i < b.n; i++)
            (*labels)[*n + i] = (unsigned char) b.label[i];
        *n += b.n;
    }
    free(scratch);
    batch_deinit(&b);
    stream_close(&st);
    return r;
}
