/* dataset: CSV text -> feature names, a row-major float matrix and optional 0/1 labels.
 *
 * DESIGN. One forward pass over a bounded buffer: a cursor walks [p, end) and never reads
 * at or past end, so the text needs no NUL terminator. The buffer is the caller's text, or
 * a window of a stream that the incremental reader (below) refills so that it always holds
 * the whole record under the cursor: the same parsing functions serve both, and the
 * whole-input functions are loops over the reader. The header is parsed into names
 * (optionally "quoted", "" escapes a quote), checked for empty and duplicate names, and
 * the label column, if named and present, is split off. Each data row is then parsed cell
 * by cell into the reader's row, which the whole-input functions hand to the builder (its
 * matrix doubles its row capacity as needed, overflow-checked, and is shrunk to fit at the
 * end) or to the reservoir (dataset_sample.c).
 *
 * Numbers are read by decimal.h (the DECIMAL_TEXT grammar, at most NUMBER_MAX chars) as the
 * correctly rounded float, in the C locale whatever the host's LC_NUMERIC. Cells go into the
 * builder (below), which both this reader and the daemon's JSON training records feed.
 * Blanks (space, tab) around any cell are ignored. Errors name "source:line:column" where
 * the line is the 1-based file line and the column the 1-based field index in the file.
 */
#include "aescore/dataset.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "aescore/decimal.h"
#include "aescore/util.h"

#define NUMBER_MAX   64  /* longest accepted numeric cell, in bytes */
#define NAME_SHOWN   64  /* at most this much of a column name goes into a message */
#define INITIAL_ROWS 256 /* first row capacity; doubled from there */

typedef struct Parser {
    const char *p;   /* cursor; p <= end always */
    const char *end; /* one past the last byte of the text */
    size_t line;     /* 1-based file line of the cursor */
    const char *source;
    char *err;
    size_t err_size;
    bool mixed; /* DatasetOptions.mixed */
    /* The current row's quoted cells with their "" made ": room for the whole record (an
     * unescaped cell is shorter than its text), so every cell of a row stays put. */
    char *unq;
    size_t unq_len, unq_cap;
} Parser;

/* Where one cell's text lies in the input (mixed mode keeps every cell's, since a column
 * may turn out to be text only at its last row). */
typedef struct CellSpan {
    uint32_t off, len;
} CellSpan;

enum {
    CELL_NUMBER = 0,
    CELL_MISSING,
    CELL_TEXT,
};

enum {
    NUM_OK = 0,
    NUM_INVALID,   /* not a decimal number */
    NUM_NONFINITE, /* spelled NaN or Inf */
    NUM_RANGE,     /* finite text that overflows float */
    NUM_NOMEM,     /* the C locale could not be created */
};

static int fail_at(const Parser *ps, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats "source:line:col: reason" and returns DATASET_E_FORMAT. */
static int fail_at(const Parser *ps, size_t col, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    util_set_err(ps->err, ps->err_size, "%s:%zu:%zu: %s", ps->source, ps->line, col, reason);
    return DATASET_E_FORMAT;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool at_line_end(const Parser *ps)
{
    return ps->p == ps->end || *ps->p == '\n' || *ps->p == '\r';
}

static void skip_blanks(Parser *ps)
{
    while (ps->p < ps->end && is_blank(*ps->p))
        ps->p++;
}

/* Consumes one LF, CRLF or CR (or nothing at the end of the text) and counts the line. */
static void next_line(Parser *ps)
{
    if (ps->p < ps->end && *ps->p == '\r')
        ps->p++;
    if (ps->p < ps->end && *ps->p == '\n')
        ps->p++;
    ps->line++;
}

/* Parses s[0..n) (1 <= n <= NUMBER_MAX) as a whole decimal number (decimal.h, DECIMAL_TEXT). */
static int parse_number(const char *s, size_t n, float *out)
{
    switch (decimal_parse_float(s, n, DECIMAL_TEXT, out)) {
    case 0:
        return NUM_OK;
    case DECIMAL_E_NONFINITE:
        return NUM_NONFINITE;
    case DECIMAL_E_RANGE:
        return NUM_RANGE;
    case -ENOMEM:
        return NUM_NOMEM;
    default:
        return NUM_INVALID;
    }
}

/* The unquoted field at the cursor, up to ',' or the line end, trailing blanks trimmed, in
 * [*s, *e); the cursor is left on the delimiter. */
static void take_field(Parser *ps, const char **s, const char **e)
{
    *s = ps->p;
    while (ps->p < ps->end && *ps->p != ',' && *ps->p != '\n' && *ps->p != '\r')
        ps->p++;
    *e = ps->p;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

/* The quoted field at the cursor (on its opening quote), RFC 4180: "" stands for a quote,
 * and commas and line ends inside belong to the field (the lines are counted). Leaves the
 * cursor on the delimiter after the closing quote and blanks; [*s, *e) is the text between
 * the quotes, *escaped whether it holds "" pairs. what names it in errors ("name",
 * "field"), which give the line the field starts on. */
static int take_quoted(Parser *ps, size_t col, const char *what, const char **s, const char **e,
                       bool *escaped)
{
    size_t start_line = ps->line;

    *escaped = false;
    *s = ++ps->p;
    for (;;) {
        if (ps->p == ps->end) {
            ps->line = start_line;
            return fail_at(ps, col, "unterminated quoted %s", what);
        }
        if (*ps->p == '"') {
            if (ps->p + 1 < ps->end && ps->p[1] == '"') {
                *escaped = true;
                ps->p += 2;
                continue;
            }
            break;
        }
        if (*ps->p == '\n' || (*ps->p == '\r' && (ps->p + 1 == ps->end || ps->p[1] != '\n')))
            ps->line++;
        ps->p++;
    }
    *e = ps->p++; /* past the closing quote */
    skip_blanks(ps);
    if (!at_line_end(ps) && *ps->p != ',')
        return fail_at(ps, col, "unexpected character after closing quote");
    return 0;
}

/* Copies [s, e) into out with each "" made one quote; returns the length. */
static size_t unescape(const char *s, const char *e, char *out)
{
    size_t n = 0;

    for (const char *q = s; q < e; q++) {
        out[n++] = *q;
        if (*q == '"')
            q++;
    }
    return n;
}

/* The field at the cursor, quoted or not, as text [*s, *s + *len): a span of the input, or
 * for a quoted field with "" pairs its unescaped copy in ps->unq (when at most
 * DATASET_TEXT_MAX bytes; *len is otherwise the escaped length, so the caller's length
 * checks refuse it). */
static int take_cell_text(Parser *ps, size_t col, const char **s, size_t *len, bool *quoted)
{
    const char *e;
    bool escaped;
    int r;

    *quoted = ps->p < ps->end && *ps->p == '"';
    if (!*quoted) {
        take_field(ps, s, &e);
        *len = (size_t) (e - *s);
        return 0;
    }
    r = take_quoted(ps, col, "field", s, &e, &escaped);
    if (r != 0)
        return r;
    *len = (size_t) (e - *s);
    if (escaped && *len <= DATASET_TEXT_MAX) {
        char *w = ps->unq + ps->unq_len; /* unq_cap >= the record: fill_record */

        *len = unescape(*s, e, w);
        ps->unq_len += *len;
        *s = w;
    }
    return 0;
}

/* Reads the cell at the cursor (up to ',' or the line end) into *value, leaving the
 * cursor on the delimiter and the cell's trimmed text in [*start, *stop). is_label asks for
 * a 0/1 value instead of any finite number. *kind: CELL_NUMBER, or in mixed mode also
 * CELL_MISSING (empty) and CELL_TEXT (not a number). Returns 0 or an error. */
static int parse_cell(Parser *ps, size_t col, bool is_label, float *value, const char **start,
                      const char **stop, int *kind)
{
    const char *s, *e;
    bool mixed = ps->mixed && !is_label, quoted;
    size_t len;
    int r;

    skip_blanks(ps);
    r = take_cell_text(ps, col, &s, &len, &quoted);
    if (r != 0)
        return r;
    e = s + len;
    *start = s;
    *stop = e;
    *kind = CELL_NUMBER;
    if (mixed && memchr(s, '\0', (size_t) (e - s)) != NULL)
        return fail_at(ps, col, "NUL byte in a cell");
    if (e == s) {
        if (!mixed)
            return fail_at(ps, col, "empty cell");
        *value = NAN;
        *kind = CELL_MISSING;
        return 0;
    }
    if ((size_t) (e - s) > NUMBER_MAX) {
        if (!mixed)
            return fail_at(ps, col, "number too long (more than %d characters)", NUMBER_MAX);
        if ((size_t) (e - s) > DATASET_TEXT_MAX)
            return fail_at(ps, col, "text too long (more than %d characters)", DATASET_TEXT_MAX);
        *value = NAN;
        *kind = CELL_TEXT;
        return 0;
    }

    r = parse_number(s, (size_t) (e - s), value);
    if (r == NUM_NOMEM)
        return -ENOMEM;
    if (is_label) {
        if (r != NUM_OK || (*value != 0.0f && *value != 1.0f))
            return fail_at(ps, col, "label must be 0 or 1");
        return 0;
    }
    switch (r) {
    case NUM_OK:
        return 0;
    case NUM_NONFINITE:
        return fail_at(ps, col, "NaN or infinite value");
    case NUM_RANGE:
        return fail_at(ps, col, "number out of range");
    default:
        if (!mixed)
            return fail_at(ps, col, "not a number");
        *value = NAN;
        *kind = CELL_TEXT;
        return 0;
    }
}

/* Reads one header cell into a new string at *out. */
static int parse_name(Parser *ps, size_t col, char **out)
{
    const char *s, *e;
    char *name = NULL;
    bool escaped = false;
    size_t n;
    int r;

    skip_blanks(ps);
    if (ps->p < ps->end && *ps->p == '"') {
        r = take_quoted(ps, col, "name", &s, &e, &escaped);
        if (r != 0)
            return r;
    } else {
        take_field(ps, &s, &e);
    }
    name = malloc((size_t) (e - s) + 1);
    if (name == NULL)
        return -ENOMEM;
    n = escaped ? unescape(s, e, name) : (size_t) (e - s);
    if (!escaped)
        memcpy(name, s, n);
    name[n] = '\0';
    if (n == 0 || strlen(name) != n) {
        free(name);
        return fail_at(ps, col, n == 0 ? "empty column name" : "NUL byte in column name");
    }
    *out = name;
    return 0;
}

typedef struct NameRef {
    const char *name;
    size_t col; /* 0-based */
} NameRef;

static int compare_name_refs(const void *a, const void *b)
{
    const NameRef *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0)
        return c;
    return (x->col > y->col) - (x->col < y->col);
}

/* Reports the leftmost column whose name already appeared before it. O(n log n). */
static int check_duplicates(Parser *ps, char *const *names, size_t n)
{
    NameRef *refs = NULL;
    size_t dup = SIZE_MAX, first = 0;

    if (n < 2)
        return 0;
    refs = calloc(n, sizeof(*refs));
    if (refs == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        refs[i] = (NameRef){names[i], i};
    qsort(refs, n, sizeof(*refs), compare_name_refs);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(refs[i - 1].name, refs[i].name) == 0 && refs[i].col < dup) {
            dup = refs[i].col;
            first = refs[i - 1].col;
        }
    }
    free(refs);
    if (dup == SIZE_MAX)
        return 0;
    return fail_at(ps, dup + 1, "duplicate column name \"%.*s\" (also column %zu)", NAME_SHOWN,
                   names[dup], first + 1);
}

/* Parses the header line into *names_out (n_out names, all owned by the caller), leaving
 * the cursor on its line end. */
static int parse_header(Parser *ps, size_t max_columns, char ***names_out, size_t *n_out)
{
    size_t header_line = ps->line, end_line;
    char **names = NULL, **grown;
    size_t n = 0, cap = 0;
    int r;

    if (at_line_end(ps)) {
        r = fail_at(ps, 1, "no header row");
        goto fail;
    }
    for (;;) {
        if (n == max_columns) {
            r = fail_at(ps, n + 1, "more than %zu columns", max_columns);
            goto fail;
        }
        if (n == cap) {
            if (cap > SIZE_MAX / 2 / sizeof(*names)) {
                r = -ENOMEM;
                goto fail;
            }
            cap = cap ? cap * 2 : 16;
            if (cap > max_columns)
                cap = max_columns;
            grown = realloc(names, cap * sizeof(*names));
            if (grown == NULL) {
                r = -ENOMEM;
                goto fail;
            }
            names = grown;
        }
        r = parse_name(ps, n + 1, &names[n]);
        if (r != 0)
            goto fail;
        n++;
        if (at_line_end(ps))
            break;
        ps->p++; /* the ',' */
    }
    /* a duplicate is reported on the header's first line, where the names start */
    end_line = ps->line;
    ps->line = header_line;
    r = check_duplicates(ps, names, n);
    ps->line = end_line;
    if (r != 0)
        goto fail;
    *names_out = names;
    *n_out = n;
    return 0;

fail:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

/* ---- the builder ---- */

#define SPAN_MISSING  UINT32_MAX       /* no text: a missing cell */
#define SPAN_UNSPELT  (UINT32_MAX - 1) /* a number without a spelling: "%.9g" if it must be text */
#define SPAN_IN_ARENA (UINT32_C(1) << 30) /* len flag: the text was copied into the arena */
#define NUMBER_TEXT   32                  /* room for "%.9g" of a float, NUL included */

struct DatasetBuilder {
    Dataset *ds; /* rows so far: n_rows, names, x (cap rows), label, is_text */
    size_t cap;  /* rows x (and label, spans) have room for */
    size_t col;  /* cells of the current row so far */
    bool mixed, any_label;
    const char *base; /* text_base, or NULL: texts are copied into arena */
    size_t base_len;
    CellSpan *spans; /* mixed: one per cell, offsets into base or arena */
    char *arena;     /* copy mode: the texts */
    size_t arena_len, arena_cap;
    int error; /* the first error; sticks */
};

int dataset_builder_new(DatasetBuilder **out, size_t n_cols, const char *const *names,
                        const DatasetBuilderOptions *opts)
{
    DatasetBuilder *b = calloc(1, sizeof(*b));
    int r = -ENOMEM;

    if (b == NULL)
        return -ENOMEM;
    if (opts != NULL) {
        b->mixed = opts->mixed;
        b->base = opts->text_base;
        b->base_len = opts->text_len;
    }
    r = -EFBIG;
    if (b->base != NULL && b->base_len >= SPAN_UNSPELT)
        goto fail;
    r = dataset_new(&b->ds, 0, n_cols, names);
    if (r < 0)
        goto fail;
    b->ds->n_rows = 0;
    r = -ENOMEM;
    if (b->mixed && (b->ds->is_text = calloc(n_cols ? n_cols : 1, 1)) == NULL)
        goto fail;
    *out = b;
    return 0;

fail:
    dataset_builder_free(b);
    return r;
}

DatasetBuilder *dataset_builder_free(DatasetBuilder *b)
{
    if (b == NULL)
        return NULL;
    dataset_free(b->ds);
    free(b->spans);
    free(b->arena);
    free(b);
    return NULL;
}

/* Makes room for one more row: x, labels and spans grow together. */
static int grow_rows(DatasetBuilder *b)
{
    Dataset *ds = b->ds;
    size_t cells = ds->n_cols ? ds->n_cols : 1, new_cap;
    void *p;

    if (b->cap > SIZE_MAX / 2)
        return -ENOMEM;
    new_cap = b->cap ? b->cap * 2 : INITIAL_ROWS;
    if (new_cap > SIZE_MAX / sizeof(CellSpan) / cells)
        return -ENOMEM;
    if ((p = realloc(ds->x, new_cap * cells * sizeof(*ds->x))) == NULL)
        return -ENOMEM;
    ds->x = p;
    if ((p = realloc(ds->label, new_cap)) == NULL)
        return -ENOMEM;
    ds->label = p;
    if (b->mixed) {
        if ((p = realloc(b->spans, new_cap * cells * sizeof(*b->spans))) == NULL)
            return -ENOMEM;
        b->spans = p;
    }
    b->cap = new_cap;
    return 0;
}

/* Copies text into the builder's arena; *off is where it starts. */
static int copy_text(DatasetBuilder *b, const char *text, size_t len, uint32_t *off)
{
    if (len >= SPAN_IN_ARENA || b->arena_len > SPAN_IN_ARENA - len)
        return -EFBIG;
    if (b->arena_len + len > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap : 4096;
        char *grown;

        while (cap < b->arena_len + len)
            cap *= 2;
        if ((grown = realloc(b->arena, cap)) == NULL)
            return -ENOMEM;
        b->arena = grown;
        b->arena_cap = cap;
    }
    memcpy(b->arena + b->arena_len, text, len);
    *off = (uint32_t) b->arena_len;
    b->arena_len += len;
    return 0;
}

/* Where a cell's text will be found at finish: an offset into base when it lies there,
 * else a copy in the arena (the CSV reader's unescaped quoted cells, every JSON text). */
static int keep_text(DatasetBuilder *b, const char *text, size_t len, CellSpan *span)
{
    uint32_t off;
    int r;

    if (b->base != NULL && text >= b->base && len <= b->base_len &&
        (size_t) (text - b->base) <= b->base_len - len) {
        *span = (CellSpan){(uint32_t) (text - b->base), (uint32_t) len};
        return 0;
    }
    if ((r = copy_text(b, text, len, &off)) < 0)
        return r;
    *span = (CellSpan){off, (uint32_t) len | SPAN_IN_ARENA};
    return 0;
}

static int add_cell(DatasetBuilder *b, const DatasetCell *cell)
{
    Dataset *ds = b->ds;
    size_t k = ds->n_rows * ds->n_cols + b->col;
    CellSpan span = {0, SPAN_MISSING};
    int r;

    if (b->col == ds->n_cols || (cell->kind == DATASET_CELL_TEXT && !b->mixed) ||
        (cell->kind != DATASET_CELL_MISSING && cell->text != NULL &&
         (cell->len == 0 || cell->len > DATASET_TEXT_MAX)))
        return -EINVAL;
    if (b->col == 0 && ds->n_rows == b->cap && (r = grow_rows(b)) < 0)
        return r;
    ds->x[k] = cell->kind == DATASET_CELL_NUMBER ? cell->number : NAN;
    if (!b->mixed) {
        b->col++;
        return 0;
    }
    if (cell->kind == DATASET_CELL_TEXT)
        ds->is_text[b->col] = 1;
    if (cell->kind != DATASET_CELL_MISSING && cell->text == NULL)
        span.len = SPAN_UNSPELT;
    else if (cell->kind != DATASET_CELL_MISSING &&
             (r = keep_text(b, cell->text, cell->len, &span)) < 0)
        return r;
    b->spans[k] = span;
    b->col++;
    return 0;
}

int dataset_builder_add(DatasetBuilder *b, const DatasetCell *cell)
{
    if (b->error == 0)
        b->error = add_cell(b, cell);
    return b->error;
}

int dataset_builder_end_row(DatasetBuilder *b, int label)
{
    if (b->error == 0 && b->col != b->ds->n_cols)
        b->error = -EINVAL;
    if (b->error == 0 && b->col == 0 && b->ds->n_rows == b->cap) /* a row of no cells */
        b->error = grow_rows(b);
    if (b->error != 0)
        return b->error;
    b->ds->label[b->ds->n_rows++] = label == 1;
    b->any_label = b->any_label || label >= 0;
    b->col = 0;
    return 0;
}

/* The text of cell k at finish: its own bytes, or a spelling made for a number. */
static size_t cell_text(const DatasetBuilder *b, size_t k, char *w, size_t room)
{
    const CellSpan *sp = &b->spans[k];
    int n;

    if (sp->len == SPAN_UNSPELT) {
        n = snprintf(w, room, "%.9g", (double) b->ds->x[k]);
        return n > 0 && (size_t) n < room ? (size_t) n : 0;
    }
    if (sp->len & SPAN_IN_ARENA) {
        memcpy(w, b->arena + sp->off, sp->len & ~SPAN_IN_ARENA);
        return sp->len & ~SPAN_IN_ARENA;
    }
    memcpy(w, b->base + sp->off, sp->len);
    return sp->len;
}

/* Points ds->text at one arena holding the cells of the text columns; x is NaN there. */
static int collect_text(DatasetBuilder *b)
{
    Dataset *ds = b->ds;
    size_t bytes = 1, nc = ds->n_cols, cells = ds->n_rows * nc;
    bool any = false;
    char *w;

    for (size_t c = 0; c < nc; c++)
        any = any || ds->is_text[c];
    if (!any) {
        free(ds->is_text);
        ds->is_text = NULL;
        return 0;
    }
    for (size_t r = 0; r < ds->n_rows; r++)
        for (size_t c = 0; c < nc; c++) {
            uint32_t len = b->spans[r * nc + c].len;

            if (ds->is_text[c] && len != SPAN_MISSING)
                bytes += len == SPAN_UNSPELT ? NUMBER_TEXT : (len & ~SPAN_IN_ARENA) + 1;
        }
    ds->text = calloc(cells ? cells : 1, sizeof(*ds->text));
    ds->text_arena = malloc(bytes);
    if (ds->text == NULL || ds->text_arena == NULL)
        return -ENOMEM;
    w = ds->text_arena;
    for (size_t r = 0; r < ds->n_rows; r++)
        for (size_t c = 0; c < nc; c++) {
            size_t k = r * nc + c, n;

            if (!ds->is_text[c])
                continue;
            ds->x[k] = NAN;
            if (b->spans[k].len == SPAN_MISSING)
                continue;
            n = cell_text(b, k, w, (size_t) (ds->text_arena + bytes - w));
            w[n] = '\0';
            ds->text[k] = w;
            w += n + 1;
        }
    return 0;
}

int dataset_builder_finish(DatasetBuilder *b, Dataset **out)
{
    Dataset *ds = b->ds;
    int r = b->error;

    if (r == 0 && b->col != 0)
        r = -EINVAL; /* a row left open */
    if (r == 0 && b->mixed)
        r = collect_text(b);
    if (r == 0) {
        /* give back the unused tail; keeping the larger blocks is harmless if this fails */
        size_t cells = ds->n_rows * ds->n_cols;
        float *x = realloc(ds->x, (cells > 0 ? cells : 1) * sizeof(*ds->x));
        if (x != NULL)
            ds->x = x;
        if (!b->any_label) {
            free(ds->label);
            ds->label = NULL;
        } else if (ds->n_rows > 0) {
            unsigned char *label = realloc(ds->label, ds->n_rows);
            if (label != NULL)
                ds->label = label;
        }
        ds->n_read = ds->n_rows;
        *out = ds;
        b->ds = NULL;
    }
    dataset_builder_free(b);
    return r;
}

/* ---- the CSV reader's rows ---- */

/* Reads one data row (the cursor at its start) into cells[] and *label. */
static int parse_row(Parser *ps, DatasetCell *cells, size_t n_fields, size_t label_col, int *label)
{
    size_t k = 0;
    int r;

    *label = -1;
    for (size_t c = 0; c < n_fields; c++) {
        const char *start, *stop;
        float v = 0.0f;
        int kind;

        if (c > 0) {
            if (at_line_end(ps))
                return fail_at(ps, c + 1, "expected %zu fields, found %zu", n_fields, c);
            ps->p++; /* the ',' */
        }
        r = parse_cell(ps, c + 1, c == label_col, &v, &start, &stop, &kind);
        if (r != 0)
            return r;
        if (c == label_col) {
            *label = v != 0.0f;
            continue;
        }
        cells[k] = (DatasetCell){.kind = kind == CELL_NUMBER ? DATASET_CELL_NUMBER
                                         : kind == CELL_TEXT ? DATASET_CELL_TEXT
                                                             : DATASET_CELL_MISSING,
                                 .number = v};
        if (ps->mixed && kind != CELL_MISSING) {
            cells[k].text = start;
            cells[k].len = (size_t) (stop - start);
        }
        k++;
    }
    if (!at_line_end(ps)) {
        size_t found = n_fields; /* the cursor is on the ',' that starts one more */

        for (const char *q = ps->p; q < ps->end && *q != '\n' && *q != '\r'; q++)
            found += *q == ',';
        return fail_at(ps, n_fields + 1, "expected %zu fields, found %zu", n_fields, found);
    }
    return 0;
}

/* Splits the label column (when named and present) off the header's names: *label_col is
 * its index among the file's columns, or SIZE_MAX. */
static void split_label(char **names, size_t *n, const char *label_name, size_t *label_col)
{
    *label_col = SIZE_MAX;
    for (size_t i = 0; label_name != NULL && i < *n; i++)
        if (strcmp(names[i], label_name) == 0) {
            *label_col = i;
            free(names[i]);
            memmove(names + i, names + i + 1, (*n - i - 1) * sizeof(*names));
            (*n)--;
            return;
        }
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- the incremental reader ----
 * Rows are parsed by the functions above, in place, once the buffer holds a whole record:
 * a line, or several joined by line ends inside quotes. The scanner below finds a record's
 * end by the same rules as take_field and take_quoted (a field is quoted when its first
 * non-blank byte is '"'; "" inside is a quote), resuming where it stopped when a read
 * brought more bytes, so a record split across reads costs one pass. The buffer is the
 * caller's text in memory mode (nothing copied, nothing read), else a window of the
 * stream that holds the current record and is compacted before each read. */

#define READ_CHUNK (64 * 1024) /* bytes asked of a DatasetReadFn at least */

enum { SCAN_START = 0, SCAN_UNQUOTED, SCAN_QUOTED };

struct DatasetReader {
    Parser ps;
    DatasetReadFn read; /* NULL in memory mode */
    void *ctx;
    char *buf; /* stream mode: the window; ps.p and ps.end point into it */
    size_t cap;
    bool eof;
    /* the scanner: how far the record at ps.p is known, in what state, and its end */
    size_t scan_off;
    int scan_state;
    bool scan_blank, scan_done;
    size_t rec_len;
    char **names;
    size_t n_names, n_fields, label_col, rows;
    DatasetCell *cells;
    int error; /* sticks */
};

/* Advances the scan of the record at ps.p over the bytes there are; scan_done when its end
 * (an unquoted line end with its LF if a CR, or the end of the input) is known. */
static void scan_record(DatasetReader *rd)
{
    const char *s = rd->ps.p;
    size_t n = (size_t) (rd->ps.end - s), i = rd->scan_off;

    for (; i < n; i++) {
        char c = s[i];

        if (rd->scan_state == SCAN_QUOTED) {
            if (c != '"')
                continue;
            if (i + 1 == n && !rd->eof)
                break; /* "" or a closing quote: the next byte says */
            if (i + 1 < n && s[i + 1] == '"')
                i++;
            else
                rd->scan_state = SCAN_UNQUOTED;
            continue;
        }
        if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 == n && !rd->eof)
                break; /* CR or CRLF: the next byte says */
            rd->rec_len = i;
            rd->scan_done = true;
            rd->scan_off = i;
            return;
        }
        if (c == ',') {
            rd->scan_state = SCAN_START;
            rd->scan_blank = false;
        } else if (!is_blank(c)) {
            rd->scan_blank = false;
            if (rd->scan_state == SCAN_START)
                rd->scan_state = c == '"' ? SCAN_QUOTED : SCAN_UNQUOTED;
        }
    }
    rd->scan_off = i;
    if (i == n && rd->eof) {
        rd->rec_len = n;
        rd->scan_done = true;
    }
}

/* Stream mode: keeps [ps.p, end), makes room and reads once more (or meets the end). */
static int refill(DatasetReader *rd)
{
    Parser *ps = &rd->ps;
    size_t keep = (size_t) (ps->end - ps->p);
    long n;

    if (rd->read == NULL) { /* memory mode: the text is all there is */
        rd->eof = true;
        return 0;
    }
    if (ps->p != rd->buf)
        memmove(rd->buf, ps->p, keep);
    if (rd->cap - keep < READ_CHUNK) {
        char *grown = realloc(rd->buf, rd->cap * 2);

        if (grown == NULL)
            return -ENOMEM;
        rd->buf = grown;
        rd->cap *= 2;
    }
    ps->p = rd->buf;
    ps->end = rd->buf + keep;
    do
        n = rd->read(rd->ctx, rd->buf + keep, rd->cap - keep);
    while (n == -EINTR);
    if (n < 0) {
        util_set_err(ps->err, ps->err_size, "%s: %s", ps->source, strerror((int) -n));
        return (int) n;
    }
    rd->eof = n == 0;
    ps->end += n;
    return 0;
}

/* Makes sure the record at ps.p is whole in the buffer (rec_len bytes, scan_blank when it
 * holds blanks only), within DATASET_RECORD_MAX bytes, with the room to unescape it. */
static int fill_record(DatasetReader *rd)
{
    Parser *ps = &rd->ps;
    int r;

    rd->scan_off = 0;
    rd->scan_state = SCAN_START;
    rd->scan_blank = true;
    rd->scan_done = false;
    for (;;) {
        scan_record(rd);
        if ((rd->scan_done ? rd->rec_len : rd->scan_off) > DATASET_RECORD_MAX)
            return fail_at(ps, 1, "record longer than %d bytes", DATASET_RECORD_MAX);
        if (rd->scan_done)
            break;
        if ((r = refill(rd)) < 0)
            return r;
    }
    if (rd->rec_len + 1 > ps->unq_cap) {
        char *grown = realloc(ps->unq, rd->rec_len + 1);

        if (grown == NULL)
            return -ENOMEM;
        ps->unq = grown;
        ps->unq_cap = rd->rec_len + 1;
    }
    ps->unq_len = 0;
    return 0;
}

/* The header: names (the label split off) and the cells of a row. */
static int read_header(DatasetReader *rd, size_t max_columns, const char *label_name)
{
    Parser *ps = &rd->ps;
    int r = fill_record(rd);

    if (r == 0)
        r = parse_header(ps, max_columns, &rd->names, &rd->n_fields);
    if (r != 0)
        return r;
    rd->n_names = rd->n_fields;
    split_label(rd->names, &rd->n_names, label_name, &rd->label_col);
    if (rd->n_names == 0)
        return fail_at(ps, 1, "no feature columns");
    next_line(ps);
    rd->cells = calloc(rd->n_names, sizeof(*rd->cells));
    return rd->cells == NULL ? -ENOMEM : 0;
}

static int reader_start(DatasetReader *rd, const DatasetOptions *opts)
{
    size_t max_columns = DATASET_DEFAULT_MAX_COLUMNS;
    const char *label_name = NULL;
    int r = 0;

    if (opts != NULL) {
        if (opts->max_columns != 0)
            max_columns = opts->max_columns;
        label_name = opts->label_column;
        rd->ps.mixed = opts->mixed;
    }
    while (r == 0 && rd->ps.end - rd->ps.p < 3 && !rd->eof)
        r = refill(rd); /* enough for a BOM */
    if (r == 0 && rd->ps.end - rd->ps.p >= 3 && memcmp(rd->ps.p, "\xEF\xBB\xBF", 3) == 0)
        rd->ps.p += 3;
    if (r == 0)
        r = read_header(rd, max_columns, label_name);
    if (r == -ENOMEM)
        util_set_err(rd->ps.err, rd->ps.err_size, "%s: out of memory", rd->ps.source);
    return r;
}

static DatasetReader *reader_alloc(const char *source, char *err, size_t err_size)
{
    DatasetReader *rd = calloc(1, sizeof(*rd));

    if (rd == NULL) {
        util_set_err(err, err_size, "%s: out of memory", source != NULL ? source : "<input>");
        return NULL;
    }
    rd->ps = (Parser){
        .line = 1, .source = source != NULL ? source : "<input>", .err = err, .err_size = err_size};
    return rd;
}

int dataset_reader_new(DatasetReader **out, DatasetReadFn read_fn, void *ctx, const char *source,
                       const DatasetOptions *opts, char *err, size_t err_size)
{
    DatasetReader *rd;
    int r;

    if (out == NULL || read_fn == NULL) {
        util_set_err(err, err_size, "%s: invalid argument", source != NULL ? source : "<input>");
        return -EINVAL;
    }
    if ((rd = reader_alloc(source, err, err_size)) == NULL)
        return -ENOMEM;
    rd->read = read_fn;
    rd->ctx = ctx;
    rd->cap = 2 * READ_CHUNK;
    if ((rd->buf = malloc(rd->cap)) == NULL) {
        dataset_reader_free(rd);
        util_set_err(err, err_size, "%s: out of memory", source != NULL ? source : "<input>");
        return -ENOMEM;
    }
    rd->ps.p = rd->ps.end = rd->buf;
    r = reader_start(rd, opts);
    if (r != 0) {
        dataset_reader_free(rd);
        return r;
    }
    *out = rd;
    return 0;
}

int dataset_reader_new_text(DatasetReader **out, const char *text, size_t len, const char *source,
                            const DatasetOptions *opts, char *err, size_t err_size)
{
    DatasetReader *rd;
    int r;

    if (out == NULL || (text == NULL && len != 0)) {
        util_set_err(err, err_size, "%s: invalid argument", source != NULL ? source : "<input>");
        return -EINVAL;
    }
    if ((rd = reader_alloc(source, err, err_size)) == NULL)
        return -ENOMEM;
    rd->ps.p = text != NULL ? text : "";
    rd->ps.end = rd->ps.p + len;
    rd->eof = true;
    r = reader_start(rd, opts);
    if (r != 0) {
        dataset_reader_free(rd);
        return r;
    }
    *out = rd;
    return 0;
}

/* Passes blank lines before the next row (0): none left but blanks is the end (DATASET_END,
 * the line the blanks began on kept for "no data rows"); a row after them is an error. */
static int skip_blank_lines(DatasetReader *rd)
{
    Parser *ps = &rd->ps;
    size_t first_blank = 0;
    int r;

    for (;;) {
        if ((r = fill_record(rd)) != 0)
            return r;
        if (ps->p == ps->end) {
            if (first_blank != 0)
                ps->line = first_blank;
            return DATASET_END;
        }
        if (!rd->scan_blank)
            break;
        if (first_blank == 0)
            first_blank = ps->line;
        ps->p += rd->rec_len;
        next_line(ps);
    }
    if (first_blank == 0)
        return 0;
    ps->line = first_blank;
    return fail_at(ps, 1, "empty row");
}

int dataset_reader_next(DatasetReader *rd, DatasetRow *row)
{
    Parser *ps = &rd->ps;
    int r = rd->error;

    if (r == 0)
        r = skip_blank_lines(rd);
    if (r == DATASET_END && rd->rows == 0)
        r = fail_at(ps, 1, "no data rows");
    if (r == 0) {
        row->line = ps->line;
        r = parse_row(ps, rd->cells, rd->n_fields, rd->label_col, &row->label);
    }
    if (r == 0) {
        next_line(ps);
        row->cells = rd->cells;
        rd->rows++;
        return 0;
    }
    if (r == DATASET_END)
        return r; /* and the end stays the end: nothing is left to read */
    if (r == -ENOMEM)
        util_set_err(ps->err, ps->err_size, "%s: out of memory", ps->source);
    rd->error = r;
    return r;
}

size_t dataset_reader_n_cols(const DatasetReader *rd)
{
    return rd->n_names;
}

const char *const *dataset_reader_names(const DatasetReader *rd)
{
    return (const char *const *) rd->names;
}

bool dataset_reader_has_label(const DatasetReader *rd)
{
    return rd->label_col != SIZE_MAX;
}

size_t dataset_reader_rows(const DatasetReader *rd)
{
    return rd->rows;
}

DatasetReader *dataset_reader_free(DatasetReader *rd)
{
    if (rd == NULL)
        return NULL;
    free_names(rd->names, rd->n_names);
    free(rd->cells);
    free(rd->buf);
    free(rd->ps.unq);
    free(rd);
    return NULL;
}

long dataset_read_fd(void *ctx, char *buf, size_t size)
{
    ssize_t n = read(*(const int *) ctx, buf, size);

    return n < 0 ? -errno : (long) n;
}

/* ---- whole inputs, on top of the reader ---- */

/* Every row of rd into *out: a builder, or a reservoir sample when opts->max_rows is set. */
static int read_rows(DatasetReader *rd, const DatasetOptions *opts, const char *base,
                     size_t base_len, Dataset **out)
{
    DatasetBuilderOptions bopts = {.mixed = rd->ps.mixed, .text_base = base, .text_len = base_len};
    size_t n = rd->n_names, max_rows = opts != NULL ? opts->max_rows : 0;
    const char *const *names = dataset_reader_names(rd);
    DatasetBuilder *b = NULL;
    DatasetSample *smp = NULL;
    DatasetRow row;
    int r;

    r = max_rows > 0 ? dataset_sample_new(&smp, n, names, rd->ps.mixed, max_rows, opts->seed)
                     : dataset_builder_new(&b, n, names, &bopts);
    while (r == 0 && (r = dataset_reader_next(rd, &row)) == 0) {
        if (smp != NULL) {
            r = dataset_sample_add(smp, row.cells, row.label);
            continue;
        }
        for (size_t c = 0; r == 0 && c < n; c++)
            r = dataset_builder_add(b, &row.cells[c]);
        if (r == 0)
            r = dataset_builder_end_row(b, row.label);
    }
    if (r == DATASET_END)
        r = 0;
    if (r == 0 && smp != NULL) {
        r = dataset_sample_finish(smp, out);
        smp = NULL;
    } else if (r == 0) {
        r = dataset_builder_finish(b, out);
        b = NULL;
    }
    if (r == -EFBIG)
        util_set_err(rd->ps.err, rd->ps.err_size,
                     "%s: too much text for mixed columns (1 GiB at most when streamed; "
                     "sample the rows)",
                     rd->ps.source);
    else if (r == -ENOMEM)
        util_set_err(rd->ps.err, rd->ps.err_size, "%s: out of memory", rd->ps.source);
    dataset_sample_free(smp);
    dataset_builder_free(b);
    return r;
}

int dataset_parse_csv(const char *text, size_t len, const char *source, const DatasetOptions *opts,
                      Dataset **out, char *err, size_t err_size)
{
    DatasetReader *rd = NULL;
    int r;

    if (out == NULL || (text == NULL && len != 0)) {
        util_set_err(err, err_size, "%s: invalid argument", source != NULL ? source : "<input>");
        return -EINVAL;
    }
    if (opts != NULL && opts->mixed && len >= UINT32_MAX - 1) {
        util_set_err(err, err_size, "%s: too large for mixed columns (4 GiB at most)",
                     source != NULL ? source : "<input>");
        return -EFBIG;
    }
    r = dataset_reader_new_text(&rd, text, len, source, opts, err, err_size);
    if (r == 0)
        r = read_rows(rd, opts, text, len, out);
    dataset_reader_free(rd);
    return r;
}

int dataset_read_stream(DatasetReadFn read_fn, void *ctx, const char *source,
                        const DatasetOptions *opts, Dataset **out, char *err, size_t err_size)
{
    DatasetReader *rd = NULL;
    int r;

    if (out == NULL) { /* before anything is read from the stream */
        util_set_err(err, err_size, "%s: invalid argument", source != NULL ? source : "<input>");
        return -EINVAL;
    }
    r = dataset_reader_new(&rd, read_fn, ctx, source, opts, err, err_size);
    if (r == 0)
        r = read_rows(rd, opts, NULL, 0, out);
    dataset_reader_free(rd);
    return r;
}

int dataset_read_csv(const char *path, const DatasetOptions *opts, Dataset **out, char *err,
                     size_t err_size)
{
    int fd, r;

    if (path == NULL || out == NULL) {
        util_set_err(err, err_size, "<input>: invalid argument");
        return -EINVAL;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        r = -errno;
        util_set_err(err, err_size, "%s: %s", path, strerror(-r));
        return r;
    }
    r = dataset_read_stream(dataset_read_fd, &fd, path, opts, out, err, err_size);
    close(fd);
    return r;
}

int dataset_new(Dataset **out, size_t n_rows, size_t n_cols, const char *const *names)
{
    Dataset *ds = NULL;
    size_t n_values;

    if (out == NULL || (n_cols > 0 && names == NULL))
        return -EINVAL;
    for (size_t i = 0; i < n_cols; i++)
        if (names[i] == NULL)
            return -EINVAL;
    if (n_cols > 0 && n_rows > SIZE_MAX / sizeof(float) / n_cols)
        return -ENOMEM;
    n_values = n_rows * n_cols;

    ds = calloc(1, sizeof(*ds));
    if (ds == NULL)
        goto fail;
    /* calloc(0) may return NULL; one spare element keeps "NULL means failure" simple. */
    ds->names = calloc(n_cols + 1, sizeof(*ds->names));
    ds->x = calloc(n_values ? n_values : 1, sizeof(*ds->x));
    if (ds->names == NULL || ds->x == NULL)
        goto fail;
    ds->n_cols = n_cols;
    for (size_t i = 0; i < n_cols; i++) {
        ds->names[i] = strdup(names[i]);
        if (ds->names[i] == NULL)
            goto fail;
    }
    ds->n_rows = n_rows;
    ds->n_read = n_rows;
    *out = ds;
    return 0;

fail:
    dataset_free(ds);
    return -ENOMEM;
}

Dataset *dataset_free(Dataset *ds)
{
    if (ds == NULL)
        return NULL;
    if (ds->names != NULL)
        for (size_t i = 0; i < ds->n_cols; i++)
            free(ds->names[i]);
    free(ds->names);
    free(ds->x);
    free(ds->label);
    free(ds->is_text);
    free(ds->text);
    free(ds->text_arena);
    free(ds);
    return NULL;
}
