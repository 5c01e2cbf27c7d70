/* dataset: CSV text -> feature names, a row-major float matrix and optional 0/1 labels.
 *
 * DESIGN. One forward pass over a bounded buffer: a cursor walks [p, end) and never reads
 * at or past end, so the text needs no NUL terminator. The header is parsed into names
 * (optionally "quoted", "" escapes a quote), checked for empty and duplicate names, and
 * the label column, if named and present, is split off. Each data row is then parsed cell
 * by cell straight into a matrix that doubles its row capacity as needed (overflow-checked),
 * and is shrunk to fit at the end.
 *
 * Numbers are checked against a strict decimal grammar ([+-]digits[.digits][e[+-]digits],
 * at most NUMBER_MAX chars) by a hand-written scanner. Digits that fit 2^53 (15 or so
 * significant digits) with |exponent| <= 22 take an exact fast path (fast_to_float); the
 * rest is copied into a bounded local buffer and handed to strtof_l in the C locale.
 * Either way the value is the correctly rounded float (the unit test compares bit for bit
 * with strtof), and the host's LC_NUMERIC never changes it.
 * Blanks (space, tab) around any cell are ignored. Errors name "source:line:column" where
 * the line is the 1-based file line and the column the 1-based field index in the file.
 */
#include "aescore/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NUMBER_MAX   64  /* longest accepted numeric cell, in bytes */
#define NAME_SHOWN   64  /* at most this much of a column name goes into a message */
#define INITIAL_ROWS 256 /* first row capacity; doubled from there */

typedef struct Parser {
    const char *p;     /* cursor; p <= end always */
    const char *end;   /* one past the last byte of the text */
    const char *begin; /* the first byte of the text (spans are offsets from here) */
    size_t line;       /* 1-based file line of the cursor */
    const char *source;
    char *err;
    size_t err_size;
    locale_t c_locale; /* created on the first slow-path number, or (locale_t) 0 */
    bool mixed;        /* DatasetOptions.mixed */
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

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

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
    set_err(ps->err, ps->err_size, "%s:%zu:%zu: %s", ps->source, ps->line, col, reason);
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

/* True when everything from the cursor on is blanks and line ends. */
static bool rest_is_blank(const Parser *ps)
{
    for (const char *q = ps->p; q < ps->end; q++)
        if (!is_blank(*q) && *q != '\n' && *q != '\r')
            return false;
    return true;
}

static bool is_word(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* Clinger's fast path, made safe for float: mant and 10^|e10| are exact doubles, so one
 * multiply or divide gives the correctly rounded double d. Rounding d again to float gives
 * the correctly rounded float unless d landed exactly on a midpoint between two floats
 * (the 29 bits below float precision read 1000...0), the one case where rounding twice
 * can differ from rounding once. That case, float subnormals and overflow return false. */
static bool fast_to_float(uint64_t mant, long e10, float *out)
{
#if FLT_EVAL_METHOD == 0 && DBL_MANT_DIG == 53 && FLT_MANT_DIG == 24
    static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const uint64_t below_float = (UINT64_C(1) << 29) - 1;
    uint64_t bits;
    double d;

    if (mant > (UINT64_C(1) << 53) || e10 < -22 || e10 > 22)
        return false;
    d = (double) mant;
    d = e10 >= 0 ? d * exact_pow10[e10] : d / exact_pow10[-e10];
    if (d < FLT_MIN || d > FLT_MAX)
        return false;
    memcpy(&bits, &d, sizeof(bits));
    if ((bits & below_float) == UINT64_C(1) << 28)
        return false;
    *out = (float) d;
    return true;
#else
    (void) mant;
    (void) e10;
    (void) out;
    return false;
#endif
}

/* Parses s[0..n) (1 <= n <= NUMBER_MAX) as a whole decimal number. */
static int parse_number(Parser *ps, const char *s, size_t n, float *out)
{
    uint64_t mant = 0;
    int n_sig = 0;          /* significant digits held in mant */
    bool truncated = false; /* nonzero digits did not fit in mant */
    long e10 = 0;
    size_t i = 0, n_digits = 0;
    bool neg = false;

    if (s[i] == '+' || s[i] == '-')
        neg = s[i++] == '-';
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, n_digits++) {
        if (n_sig < 19) {
            mant = mant * 10 + (uint64_t) (s[i] - '0');
            n_sig += mant != 0;
        } else {
            truncated |= s[i] != '0';
            e10++;
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, n_digits++) {
            if (n_sig < 19) {
                mant = mant * 10 + (uint64_t) (s[i] - '0');
                n_sig += mant != 0;
                e10--;
            } else {
                truncated |= s[i] != '0';
            }
        }
    }
    if (n_digits == 0)
        goto not_decimal;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        bool eneg = false;
        long exp = 0;
        size_t exp_digits = 0;

        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, exp_digits++)
            if (exp < 100000) /* far beyond float range either way; stops overflow */
                exp = exp * 10 + (s[i] - '0');
        if (exp_digits == 0)
            return NUM_INVALID;
        e10 += eneg ? -exp : exp;
    }
    if (i != n)
        return NUM_INVALID;

    if (mant == 0) {
        *out = neg ? -0.0f : 0.0f;
        return NUM_OK;
    }
    if (!truncated && fast_to_float(mant, e10, out)) {
        if (neg)
            *out = -*out;
        return NUM_OK;
    }
    {
        char buf[NUMBER_MAX + 1];
        float f;

        if (ps->c_locale == (locale_t) 0) {
            ps->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
            if (ps->c_locale == (locale_t) 0)
                return NUM_NOMEM;
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
        f = strtof_l(buf, NULL, ps->c_locale);
        if (!isfinite(f))
            return NUM_RANGE; /* the grammar above admits only finite spellings */
        *out = f;
        return NUM_OK;
    }

not_decimal:
    i = s[0] == '+' || s[0] == '-';
    if (is_word(s + i, n - i, "nan") || is_word(s + i, n - i, "inf") ||
        is_word(s + i, n - i, "infinity"))
        return NUM_NONFINITE;
    return NUM_INVALID;
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

/* Reads the cell at the cursor (up to ',' or the line end) into *value, leaving the
 * cursor on the delimiter and the cell's trimmed text in [*start, *stop). is_label asks for
 * a 0/1 value instead of any finite number. *kind: CELL_NUMBER, or in mixed mode also
 * CELL_MISSING (empty) and CELL_TEXT (not a number). Returns 0 or an error. */
static int parse_cell(Parser *ps, size_t col, bool is_label, float *value, const char **start,
                      const char **stop, int *kind)
{
    const char *s, *e;
    bool mixed = ps->mixed && !is_label;
    int r;

    skip_blanks(ps);
    take_field(ps, &s, &e);
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

    r = parse_number(ps, s, (size_t) (e - s), value);
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
    size_t n = 0;

    skip_blanks(ps);
    if (ps->p < ps->end && *ps->p == '"') {
        /* Quoted: "" stands for one quote; a line end inside is not supported. */
        ps->p++;
        s = ps->p;
        for (;;) {
            if (at_line_end(ps))
                return fail_at(ps, col, "unterminated quoted name");
            if (*ps->p == '"') {
                if (ps->p + 1 < ps->end && ps->p[1] == '"') {
                    ps->p += 2;
                    continue;
                }
                break;
            }
            ps->p++;
        }
        e = ps->p++; /* past the closing quote */
        skip_blanks(ps);
        if (!at_line_end(ps) && *ps->p != ',')
            return fail_at(ps, col, "unexpected character after closing quote");
        name = malloc((size_t) (e - s) + 1);
        if (name == NULL)
            return -ENOMEM;
        for (const char *q = s; q < e; q++) {
            name[n++] = *q;
            if (*q == '"')
                q++;
        }
    } else {
        take_field(ps, &s, &e);
        n = (size_t) (e - s);
        name = malloc(n + 1);
        if (name == NULL)
            return -ENOMEM;
        memcpy(name, s, n);
    }
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
    r = check_duplicates(ps, names, n);
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

/* Makes room for at least one more row (and its label when has_label). */
static int grow_rows(Dataset *ds, bool has_label, size_t *cap)
{
    size_t row_bytes = ds->n_cols * sizeof(*ds->x), new_cap;
    float *x;
    unsigned char *label;

    if (*cap > SIZE_MAX / 2)
        return -ENOMEM;
    new_cap = *cap ? *cap * 2 : INITIAL_ROWS;
    if (new_cap > SIZE_MAX / row_bytes)
        return -ENOMEM;
    x = realloc(ds->x, new_cap * row_bytes);
    if (x == NULL)
        return -ENOMEM;
    ds->x = x;
    if (has_label) {
        label = realloc(ds->label, new_cap);
        if (label == NULL)
            return -ENOMEM;
        ds->label = label;
    }
    *cap = new_cap;
    return 0;
}

/* Parses the data rows after the header into ds. In mixed mode also fills *spans (one per
 * feature cell, grown with the rows) and marks text columns in ds->is_text. */
static int parse_rows(Parser *ps, Dataset *ds, size_t n_fields, size_t label_col, CellSpan **spans)
{
    size_t cap = 0;
    int r;

    while (ps->p < ps->end) {
        const char *q = ps->p;
        float *row;

        while (q < ps->end && is_blank(*q))
            q++;
        if (q == ps->end || *q == '\n' || *q == '\r') {
            if (rest_is_blank(ps))
                break;
            return fail_at(ps, 1, "empty row");
        }
        if (ds->n_rows == cap) {
            size_t old_cap = cap;

            r = grow_rows(ds, label_col != SIZE_MAX, &cap);
            if (r < 0)
                return r;
            if (ps->mixed) {
                /* cap * n_cols <= the x array's element count: no overflow here */
                CellSpan *grown = realloc(*spans, cap * ds->n_cols * sizeof(**spans));
                if (grown == NULL) {
                    cap = old_cap;
                    return -ENOMEM;
                }
                *spans = grown;
            }
        }
        row = ds->x + ds->n_rows * ds->n_cols;
        for (size_t c = 0, feature = 0; c < n_fields; c++) {
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
                ds->label[ds->n_rows] = v != 0.0f;
                continue;
            }
            *row++ = v;
            if (ps->mixed) {
                if (kind == CELL_TEXT)
                    ds->is_text[feature] = 1;
                (*spans)[ds->n_rows * ds->n_cols + feature] = (CellSpan){
                    .off = (uint32_t) (start - ps->begin),
                    .len = kind == CELL_MISSING ? UINT32_MAX : (uint32_t) (stop - start),
                };
            }
            feature++;
        }
        if (!at_line_end(ps)) {
            size_t found = n_fields; /* the cursor is on the ',' that starts one more */

            for (q = ps->p; q < ps->end && *q != '\n' && *q != '\r'; q++)
                found += *q == ',';
            return fail_at(ps, n_fields + 1, "expected %zu fields, found %zu", n_fields, found);
        }
        ds->n_rows++;
        next_line(ps);
    }
    if (ds->n_rows == 0)
        return fail_at(ps, 1, "no data rows");

    if (ds->n_rows < cap) {
        /* Give back the unused tail; keeping the larger block is harmless if this fails. */
        float *x = realloc(ds->x, ds->n_rows * ds->n_cols * sizeof(*ds->x));
        unsigned char *label = ds->label ? realloc(ds->label, ds->n_rows) : NULL;

        if (x != NULL)
            ds->x = x;
        if (label != NULL)
            ds->label = label;
    }
    return 0;
}

/* Mixed mode, after the rows: copies the cells of the text columns into one arena and
 * points ds->text at them; numbers seen in a text column become its text too. */
static int collect_text(Dataset *ds, const CellSpan *spans, const char *base)
{
    size_t bytes = 1, cells = ds->n_rows * ds->n_cols;
    bool any = false;
    char *w;

    for (size_t c = 0; c < ds->n_cols; c++)
        any = any || ds->is_text[c];
    if (!any) {
        free(ds->is_text);
        ds->is_text = NULL;
        return 0;
    }
    for (size_t k = 0; k < cells; k++)
        if (ds->is_text[k % ds->n_cols] && spans[k].len != UINT32_MAX)
            bytes += (size_t) spans[k].len + 1;
    ds->text = calloc(cells, sizeof(*ds->text));
    ds->text_arena = malloc(bytes);
    if (ds->text == NULL || ds->text_arena == NULL)
        return -ENOMEM;
    w = ds->text_arena;
    for (size_t k = 0; k < cells; k++) {
        if (!ds->is_text[k % ds->n_cols])
            continue;
        ds->x[k] = NAN;
        if (spans[k].len == UINT32_MAX)
            continue;
        memcpy(w, base + spans[k].off, spans[k].len);
        w[spans[k].len] = '\0';
        ds->text[k] = w;
        w += spans[k].len + 1;
    }
    return 0;
}

int dataset_parse_csv(const char *text, size_t len, const char *source, const DatasetOptions *opts,
                      Dataset **out, char *err, size_t err_size)
{
    Parser ps = {
        .line = 1,
        .source = source != NULL ? source : "<input>",
        .err = err,
        .err_size = err_size,
        .c_locale = (locale_t) 0,
    };
    size_t max_columns = DATASET_DEFAULT_MAX_COLUMNS;
    const char *label_name = NULL;
    Dataset *ds = NULL;
    char **names = NULL;
    CellSpan *spans = NULL;
    size_t n_fields = 0, label_col = SIZE_MAX;
    int r;

    if (out == NULL || (text == NULL && len != 0)) {
        set_err(err, err_size, "%s: invalid argument", ps.source);
        return -EINVAL;
    }
    if (text == NULL)
        text = "";
    ps.p = text;
    ps.begin = text;
    ps.end = text + len;
    if (opts != NULL) {
        if (opts->max_columns != 0)
            max_columns = opts->max_columns;
        label_name = opts->label_column;
        ps.mixed = opts->mixed;
    }
    if (ps.mixed && len >= UINT32_MAX) {
        set_err(err, err_size, "%s: too large for mixed columns (4 GiB at most)", ps.source);
        return -EFBIG;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3;

    r = parse_header(&ps, max_columns, &names, &n_fields);
    if (r != 0)
        goto fail;
    ds = calloc(1, sizeof(*ds));
    if (ds == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    ds->names = names;
    ds->n_cols = n_fields;
    names = NULL;
    if (label_name != NULL) {
        for (size_t i = 0; i < n_fields; i++) {
            if (strcmp(ds->names[i], label_name) == 0) {
                label_col = i;
                break;
            }
        }
    }
    if (label_col != SIZE_MAX) {
        free(ds->names[label_col]);
        memmove(ds->names + label_col, ds->names + label_col + 1,
                (n_fields - label_col - 1) * sizeof(*ds->names));
        ds->n_cols--;
    }
    if (ds->n_cols == 0) {
        r = fail_at(&ps, 1, "no feature columns");
        goto fail;
    }
    next_line(&ps);

    if (ps.mixed && (ds->is_text = calloc(ds->n_cols, 1)) == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    r = parse_rows(&ps, ds, n_fields, label_col, &spans);
    if (r == 0 && ps.mixed)
        r = collect_text(ds, spans, text);
    if (r != 0)
        goto fail;
    *out = ds;
    ds = NULL;

fail:
    free(spans);
    if (r == -ENOMEM)
        set_err(err, err_size, "%s: out of memory", ps.source);
    dataset_free(ds);
    if (ps.c_locale != (locale_t) 0)
        freelocale(ps.c_locale);
    return r;
}

int dataset_read_csv(const char *path, const DatasetOptions *opts, Dataset **out, char *err,
                     size_t err_size)
{
    struct stat st;
    char *buf = NULL, *grown;
    size_t len = 0, cap;
    int fd = -1, r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
        goto fail_errno;
    /* One byte more than the file so the read that sees EOF needs no reallocation; pipes
     * and files that grow while read just take the doubling path. */
    cap = 64 * 1024;
    if (S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t) st.st_size < SIZE_MAX)
        cap = (size_t) st.st_size + 1;
    buf = malloc(cap);
    if (buf == NULL) {
        errno = ENOMEM;
        goto fail_errno;
    }
    for (;;) {
        ssize_t n;

        if (len == cap) {
            if (cap > SIZE_MAX / 2) {
                errno = ENOMEM;
                goto fail_errno;
            }
            grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                errno = ENOMEM;
                goto fail_errno;
            }
            buf = grown;
            cap *= 2;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail_errno;
        }
        if (n == 0)
            break;
        len += (size_t) n;
    }
    r = dataset_parse_csv(buf, len, path, opts, out, err, err_size);
    goto done;

fail_errno:
    r = -errno;
    set_err(err, err_size, "%s: %s", path, strerror(errno));
done:
    free(buf);
    if (fd >= 0)
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
