/* Unit tests for dataset: CSV parsing into names, a row-major matrix and 0/1 labels, the
 * exact "source:line:column: reason" message of every rejection, and reading files.
 * Inputs are copied into exactly-sized heap buffers with no NUL after them, so the
 * sanitizer build catches any read past len.
 */
#undef NDEBUG
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/dataset.h"

#define SENTINEL ((Dataset *) &sentinel_storage)

static char sentinel_storage;

/* Parses len bytes of text from a heap copy with nothing after the last byte. */
static int parse_n(const char *text, size_t len, const DatasetOptions *opts, Dataset **out,
                   char *err, size_t err_size)
{
    char *copy = malloc(len ? len : 1);
    int r;

    assert_non_null(copy);
    memcpy(copy, text, len);
    r = dataset_parse_csv(copy, len, "t.csv", opts, out, err, err_size);
    free(copy);
    return r;
}

static Dataset *parse_ok(const char *text, const DatasetOptions *opts)
{
    char err[256] = "";
    Dataset *ds = NULL;
    int r = parse_n(text, strlen(text), opts, &ds, err, sizeof(err));

    if (r != 0)
        fail_msg("unexpected failure %d: %s", r, err);
    assert_non_null(ds);
    return ds;
}

static void expect_rejection(const char *text, const DatasetOptions *opts, const char *message)
{
    char err[256] = "";
    Dataset *ds = SENTINEL;

    assert_int_equal(parse_n(text, strlen(text), opts, &ds, err, sizeof(err)), DATASET_E_FORMAT);
    assert_ptr_equal(ds, SENTINEL); /* *out untouched on failure */
    assert_string_equal(err, message);
}

static void assert_values(const Dataset *ds, const float *expected, size_t n)
{
    assert_int_equal(ds->n_rows * ds->n_cols, n);
    for (size_t i = 0; i < n; i++)
        assert_true(ds->x[i] == expected[i]);
}

/* tests/data/NAME, found from this source file's path (meson runs tests in the build root
 * and compiles with a path relative to it, or an absolute one). */
static void fixture_path(char *buf, size_t size, const char *name)
{
    const char *file = __FILE__;
    const char *unit = strstr(file, "unit/test_dataset.c");

    assert_non_null(unit);
    snprintf(buf, size, "%.*sdata/%s", (int) (unit - file), file, name);
}

/* ------------------------------------------------------------------ accepted input */

static void test_parse_reads_names_and_rows_in_file_order(void **state)
{
    const float expected[] = {1, 2.5f, -3, 0.125f, 1e3f, -0.0f};
    Dataset *ds;

    (void) state;
    ds = parse_ok("x,y,z\n1,2.5,-3\n0.125,1e3,-0\n", NULL);
    assert_int_equal(ds->n_rows, 2);
    assert_int_equal(ds->n_cols, 3);
    assert_string_equal(ds->names[0], "x");
    assert_string_equal(ds->names[1], "y");
    assert_string_equal(ds->names[2], "z");
    assert_values(ds, expected, 6);
    assert_null(ds->label);
    dataset_free(ds);
}

static void test_parse_accepts_crlf_line_ends(void **state)
{
    const float expected[] = {1, 2, 3, 4};
    Dataset *ds;

    (void) state;
    ds = parse_ok("a,b\r\n1,2\r\n3,4\r\n", NULL);
    assert_string_equal(ds->names[1], "b");
    assert_values(ds, expected, 4);
    dataset_free(ds);
}

static void test_parse_accepts_cr_line_ends(void **state)
{
    const float expected[] = {1, 2, 3, 4};
    Dataset *ds;

    (void) state;
    ds = parse_ok("a,b\r1,2\r3,4\r", NULL);
    assert_string_equal(ds->names[1], "b");
    assert_values(ds, expected, 4);
    dataset_free(ds);
}

static void test_parse_counts_lines_the_same_for_lf_crlf_and_cr(void **state)
{
    (void) state;
    expect_rejection("a,b\n1,2\n3,x\n", NULL, "t.csv:3:2: not a number");
    expect_rejection("a,b\r\n1,2\r\n3,x\r\n", NULL, "t.csv:3:2: not a number");
    expect_rejection("a,b\r1,2\r3,x\r", NULL, "t.csv:3:2: not a number");
}

static void test_parse_skips_a_utf8_bom(void **state)
{
    const float expected[] = {5, 6};
    Dataset *ds;

    (void) state;
    ds = parse_ok("\xEF\xBB\xBF"
                  "a,b\n5,6\n",
                  NULL);
    assert_string_equal(ds->names[0], "a");
    assert_values(ds, expected, 2);
    dataset_free(ds);
}

static void test_parse_accepts_blank_trailing_lines(void **state)
{
    const float expected[] = {1, 2};
    Dataset *ds;

    (void) state;
    ds = parse_ok("a,b\n1,2\n\n\r\n  \n\n", NULL);
    assert_values(ds, expected, 2);
    dataset_free(ds);
}

static void test_parse_accepts_a_last_row_without_a_line_end(void **state)
{
    const float expected[] = {1, 2, 3, 4};
    Dataset *ds;

    (void) state;
    ds = parse_ok("a,b\n1,2\n3,4", NULL);
    assert_values(ds, expected, 4);
    dataset_free(ds);
}

static void test_parse_ignores_blanks_around_cells(void **state)
{
    const float expected[] = {1, 2};
    Dataset *ds;

    (void) state;
    ds = parse_ok(" a ,\tb\t\n 1 ,\t2 \n", NULL);
    assert_string_equal(ds->names[0], "a");
    assert_string_equal(ds->names[1], "b");
    assert_values(ds, expected, 2);
    dataset_free(ds);
}

static void test_parse_accepts_quoted_header_names(void **state)
{
    Dataset *ds;

    (void) state;
    ds = parse_ok("\"amount, EUR\",\"say \"\"hi\"\"\" , plain\n1,2,3\n", NULL);
    assert_int_equal(ds->n_cols, 3);
    assert_string_equal(ds->names[0], "amount, EUR");
    assert_string_equal(ds->names[1], "say \"hi\"");
    assert_string_equal(ds->names[2], "plain");
    dataset_free(ds);
}

static void test_parse_rounds_numbers_exactly_like_strtof(void **state)
{
    /* Both the exact fast path and the strtof fallback must give the correctly rounded
     * float; the long ones are the classic cases where a naive parser is off by one ulp. */
    static const char *const cells[] = {
        "0",
        "0.1",
        "-7.25",
        "16777216",
        "16777217",
        "0.000123",
        "1e10",
        "1e-10",
        "3.14159265358979323846",
        "123456789012345678901234567890",
        "0.30000001192092895507812",
        "1.17549435e-38",
        "1e-45",
        "1e-50",
        "3.4028235e38",
        "8.589973e9",
        ".5",
        "5.",
        "+7",
        "1E+2",
        "0000000000000000000000000000000000000000000000000000001.5",
    };
    char text[128];

    (void) state;
    for (size_t i = 0; i < sizeof(cells) / sizeof(cells[0]); i++) {
        Dataset *ds;

        snprintf(text, sizeof(text), "v\n%s\n", cells[i]);
        ds = parse_ok(text, NULL);
        if (ds->x[0] != strtof(cells[i], NULL))
            fail_msg("%s parsed as %a, strtof gives %a", cells[i], (double) ds->x[0],
                     (double) strtof(cells[i], NULL));
        dataset_free(ds);
    }
}

static void test_parse_matches_strtof_on_random_decimals(void **state)
{
    /* 200,000 pseudo-random decimals of 1 to 30 digits with and without exponents, bit for
     * bit against strtof: covers the fast path, its midpoint escape and the fallback. */
    const size_t n = 200000;
    char *text = malloc(n * 48 + 8);
    size_t len = 0;
    uint32_t seed = 12345;
    char err[256] = "";
    Dataset *ds = NULL;

    (void) state;
    assert_non_null(text);
    len += (size_t) sprintf(text, "v\n");
    for (size_t i = 0; i < n; i++) {
        int digits, point, e;

        seed = seed * 1664525u + 1013904223u;
        digits = 1 + (int) ((seed >> 8) % (i % 5 == 0 ? 30u : 17u));
        point = (int) ((seed >> 16) % (uint32_t) (digits + 1));
        if (seed & 1)
            text[len++] = '-';
        for (int d = 0; d < digits; d++) {
            if (d == point)
                text[len++] = '.';
            seed = seed * 1664525u + 1013904223u;
            text[len++] = (char) ('0' + (seed >> 24) % 10);
        }
        if ((seed >> 4) & 1) {
            e = (int) ((seed >> 12) % 76u) - 45; /* keep below 10^38: finite */
            if (point + e > 38)
                e = 38 - point;
            len += (size_t) sprintf(text + len, "e%d", e);
        }
        text[len++] = '\n';
    }
    assert_int_equal(parse_n(text, len, NULL, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->n_rows, n);
    {
        const char *p = text + 2;

        for (size_t i = 0; i < n; i++) {
            char *next;
            float want = strtof(p, &next);

            if (memcmp(&want, &ds->x[i], sizeof(want)) != 0)
                fail_msg("%.*s parsed as %a, strtof gives %a", (int) (next - p), p,
                         (double) ds->x[i], (double) want);
            p = next + 1;
        }
    }
    dataset_free(ds);
    free(text);
}

static void test_parse_grows_the_matrix_for_many_rows(void **state)
{
    size_t n = 100000, len = 0;
    char *text = malloc(n * 16 + 16);
    char err[256] = "";
    Dataset *ds = NULL;

    (void) state;
    assert_non_null(text);
    len += (size_t) sprintf(text, "i,half\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t) sprintf(text + len, "%zu,%zu.5\n", i, i);
    assert_int_equal(parse_n(text, len, NULL, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->n_rows, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(ds->x[2 * i] == (float) i);
        assert_true(ds->x[2 * i + 1] == (float) i + 0.5f);
    }
    dataset_free(ds);
    free(text);
}

static void test_parse_never_reads_past_len(void **state)
{
    const char *text = "a,b\n1,2\n3,4\n";
    const float expected[] = {1, 2};
    char err[256] = "";
    Dataset *ds = NULL;

    (void) state;
    /* Cut inside the second row: "3" is a short row. Cut after "1,2": one row. */
    assert_int_equal(parse_n(text, 9, NULL, &ds, err, sizeof(err)), DATASET_E_FORMAT);
    assert_string_equal(err, "t.csv:3:2: expected 2 fields, found 1");
    assert_int_equal(parse_n(text, 7, NULL, &ds, err, sizeof(err)), 0);
    assert_values(ds, expected, 2);
    dataset_free(ds);
}

/* ------------------------------------------------------------------ labels */

static void test_parse_extracts_the_label_column(void **state)
{
    const DatasetOptions opts = {.label_column = "label"};
    const float expected[] = {1, 2, 3, 4, 5, 6};
    Dataset *ds;

    (void) state;
    ds = parse_ok("a,label,b\n1,0,2\n3,1,4\n5,1.0,6\n", &opts);
    assert_int_equal(ds->n_cols, 2);
    assert_string_equal(ds->names[0], "a");
    assert_string_equal(ds->names[1], "b");
    assert_values(ds, expected, 6);
    assert_non_null(ds->label);
    assert_int_equal(ds->label[0], 0);
    assert_int_equal(ds->label[1], 1);
    assert_int_equal(ds->label[2], 1);
    dataset_free(ds);
}

static void test_parse_without_the_named_label_column_has_no_labels(void **state)
{
    const DatasetOptions opts = {.label_column = "label"};
    Dataset *ds;

    (void) state;
    ds = parse_ok("a,b\n1,2\n", &opts);
    assert_int_equal(ds->n_cols, 2);
    assert_null(ds->label);
    dataset_free(ds);
}

static void test_parse_without_a_label_option_keeps_every_column_as_a_feature(void **state)
{
    const DatasetOptions opts = {.label_column = NULL};
    Dataset *ds;

    (void) state;
    ds = parse_ok("a,label\n1,7\n", &opts);
    assert_int_equal(ds->n_cols, 2);
    assert_string_equal(ds->names[1], "label");
    assert_true(ds->x[1] == 7.0f);
    assert_null(ds->label);
    dataset_free(ds);
}

static void test_parse_rejects_label_other_than_0_or_1(void **state)
{
    const DatasetOptions opts = {.label_column = "label"};

    (void) state;
    expect_rejection("a,label\n1,0\n2,2\n", &opts, "t.csv:3:2: label must be 0 or 1");
    expect_rejection("a,label\n1,0.5\n", &opts, "t.csv:2:2: label must be 0 or 1");
    expect_rejection("a,label\n1,yes\n", &opts, "t.csv:2:2: label must be 0 or 1");
    expect_rejection("a,label\n1,\n", &opts, "t.csv:2:2: empty cell");
}

static void test_parse_rejects_a_label_as_the_only_column(void **state)
{
    const DatasetOptions opts = {.label_column = "label"};

    (void) state;
    expect_rejection("label\n1\n", &opts, "t.csv:1:1: no feature columns");
}

/* ------------------------------------------------------------------ rejections */

static void test_parse_rejects_ragged_row_with_too_few_fields(void **state)
{
    (void) state;
    expect_rejection("a,b,c\n1,2,3\n4,5\n", NULL, "t.csv:3:3: expected 3 fields, found 2");
}

static void test_parse_rejects_ragged_row_with_too_many_fields(void **state)
{
    (void) state;
    expect_rejection("a,b\n1,2,3,4\n", NULL, "t.csv:2:3: expected 2 fields, found 4");
    expect_rejection("a,b\n1,2,\n", NULL, "t.csv:2:3: expected 2 fields, found 3");
}

static void test_parse_rejects_empty_cell(void **state)
{
    (void) state;
    expect_rejection("a,b\n1,\n", NULL, "t.csv:2:2: empty cell");
    expect_rejection("a,b\n,1\n", NULL, "t.csv:2:1: empty cell");
    expect_rejection("a,b,c\n1, ,3\n", NULL, "t.csv:2:2: empty cell");
}

static void test_parse_rejects_non_numeric_cell(void **state)
{
    (void) state;
    expect_rejection("a,b\n1,abc\n", NULL, "t.csv:2:2: not a number");
    expect_rejection("a,b\n1x,2\n", NULL, "t.csv:2:1: not a number");
    expect_rejection("a,b\n1,1e\n", NULL, "t.csv:2:2: not a number");
    expect_rejection("a,b\n1,0x10\n", NULL, "t.csv:2:2: not a number");
    expect_rejection("a,b\n1,1 2\n", NULL, "t.csv:2:2: not a number");
    expect_rejection("a,b\n1,\"2x\"\n", NULL, "t.csv:2:2: not a number");
    expect_rejection("a,b\n-,.\n", NULL, "t.csv:2:1: not a number");
}

/* RFC 4180: a quoted field may hold commas, doubled quotes and line ends; its quotes are
 * not part of it, so a quoted number is a number and a quoted category is the category
 * (a spreadsheet's "university" must match a record's university). */
static void test_parse_reads_quoted_cells_as_rfc_4180_says(void **state)
{
    const DatasetOptions mixed = {.mixed = true, .label_column = "label"};
    Dataset *ds;
    (void) state;

    ds = parse_ok("a,b\n\"1.5\",2\n\"-3\" , \"4e1\"\n", NULL);
    assert_int_equal(ds->n_rows, 2);
    assert_true(ds->x[0] == 1.5f && ds->x[1] == 2.0f && ds->x[2] == -3.0f && ds->x[3] == 40.0f);
    dataset_free(ds);

    ds = parse_ok("education,note,amount,label\n"
                  "\"university\",\"a, b\",\"7\",\"0\"\n"
                  "\"high \"\"school\"\"\",\"two\nlines\",8,1\n"
                  "university,\"\",9,0\n",
                  &mixed);
    assert_int_equal(ds->n_rows, 3);
    assert_non_null(ds->is_text);
    assert_true(ds->is_text[0] && ds->is_text[1] && !ds->is_text[2]);
    assert_string_equal(ds->text[0 * 3 + 0], "university");
    assert_string_equal(ds->text[0 * 3 + 1], "a, b");
    assert_string_equal(ds->text[1 * 3 + 0], "high \"school\"");
    assert_string_equal(ds->text[1 * 3 + 1], "two\nlines");
    assert_string_equal(ds->text[2 * 3 + 0], "university");
    assert_null(ds->text[2 * 3 + 1]); /* "" is an empty cell: missing */
    assert_true(ds->x[0 * 3 + 2] == 7.0f && ds->x[1 * 3 + 2] == 8.0f);
    assert_true(ds->label[0] == 0 && ds->label[1] == 1 && ds->label[2] == 0);
    dataset_free(ds);

    /* a header name may be quoted across a line end too */
    ds = parse_ok("\"a\nb\",c\n1,2\n", NULL);
    assert_string_equal(ds->names[0], "a\nb");
    dataset_free(ds);
}

static void test_parse_counts_lines_inside_quoted_cells_and_rejects_broken_quotes(void **state)
{
    const DatasetOptions mixed = {.mixed = true};
    (void) state;

    /* the row after a two-line cell is file line 4 */
    expect_rejection("a,b\n\"x\ny\",1\n1,2,3\n", &mixed, "t.csv:4:3: expected 2 fields, found 3");
    expect_rejection("a,b\n1,\"open\n2,3\n", &mixed, "t.csv:2:2: unterminated quoted field");
    expect_rejection("a,b\n1,\"x\"y\n", &mixed,
                     "t.csv:2:2: unexpected character after closing quote");
    expect_rejection("a,b\n1,\"\"\n", NULL, "t.csv:2:2: empty cell");
    /* a message stays one line whatever a quoted name holds */
    expect_rejection("\"a\nb\",\"a\nb\"\n1,2\n", NULL,
                     "t.csv:1:2: duplicate column name \"a?b\" (also column 1)");
}

static void test_parse_rejects_nan_and_infinity(void **state)
{
    (void) state;
    expect_rejection("a,b\n1,NaN\n", NULL, "t.csv:2:2: NaN or infinite value");
    expect_rejection("a,b\n1,nan\n", NULL, "t.csv:2:2: NaN or infinite value");
    expect_rejection("a,b\ninf,1\n", NULL, "t.csv:2:1: NaN or infinite value");
    expect_rejection("a,b\n1,-Infinity\n", NULL, "t.csv:2:2: NaN or infinite value");
}

static void test_parse_rejects_overflowing_number(void **state)
{
    (void) state;
    expect_rejection("a,b\n1,1e999\n", NULL, "t.csv:2:2: number out of range");
    expect_rejection("a,b\n1,-3.5e38\n", NULL, "t.csv:2:2: number out of range");
}

static void test_parse_rejects_a_cell_of_200_digits(void **state)
{
    char text[256];

    (void) state;
    memcpy(text, "a\n", 2);
    memset(text + 2, '7', 200);
    strcpy(text + 202, "\n");
    expect_rejection(text, NULL, "t.csv:2:1: number too long (more than 64 characters)");
}

static void test_parse_rejects_duplicate_column_names(void **state)
{
    (void) state;
    expect_rejection("a,b,c,b,a\n1,2,3,4,5\n", NULL,
                     "t.csv:1:4: duplicate column name \"b\" (also column 2)");
    expect_rejection("a,\"a\"\n1,2\n", NULL,
                     "t.csv:1:2: duplicate column name \"a\" (also column 1)");
}

static void test_parse_rejects_empty_column_name(void **state)
{
    (void) state;
    expect_rejection("a,,c\n1,2,3\n", NULL, "t.csv:1:2: empty column name");
    expect_rejection("a,b,\n1,2,3\n", NULL, "t.csv:1:3: empty column name");
    expect_rejection("\"\",b\n1,2\n", NULL, "t.csv:1:1: empty column name");
}

static void test_parse_rejects_malformed_quoted_names(void **state)
{
    (void) state;
    expect_rejection("a,\"b\n1,2\n", NULL, "t.csv:1:2: unterminated quoted name");
    expect_rejection("\"a\"x,b\n1,2\n", NULL,
                     "t.csv:1:1: unexpected character after closing quote");
}

static void test_parse_rejects_header_without_data_rows(void **state)
{
    (void) state;
    expect_rejection("a,b\n", NULL, "t.csv:2:1: no data rows");
    expect_rejection("a,b", NULL, "t.csv:2:1: no data rows");
    expect_rejection("a,b\n\n\n", NULL, "t.csv:2:1: no data rows");
}

static void test_parse_rejects_empty_input(void **state)
{
    (void) state;
    expect_rejection("", NULL, "t.csv:1:1: no header row");
    expect_rejection("\xEF\xBB\xBF", NULL, "t.csv:1:1: no header row");
    expect_rejection("\n1,2\n", NULL, "t.csv:1:1: no header row");
}

static void test_parse_rejects_blank_line_between_rows(void **state)
{
    (void) state;
    expect_rejection("a,b\n1,2\n\n3,4\n", NULL, "t.csv:3:1: empty row");
    expect_rejection("a,b\r\n1,2\r\n\r\n3,4\r\n", NULL, "t.csv:3:1: empty row");
}

static void test_parse_rejects_more_than_max_columns(void **state)
{
    const DatasetOptions three = {.max_columns = 3};
    Dataset *ds;

    (void) state;
    expect_rejection("a,b,c,d\n1,2,3,4\n", &three, "t.csv:1:4: more than 3 columns");
    ds = parse_ok("a,b,c\n1,2,3\n", &three);
    assert_int_equal(ds->n_cols, 3);
    dataset_free(ds);
}

static void test_parse_defaults_to_4096_columns(void **state)
{
    size_t n = DATASET_DEFAULT_MAX_COLUMNS + 1, len = 0;
    char *text = malloc(n * 8 + n * 2 + 2);
    char err[256] = "";
    Dataset *ds = SENTINEL;

    (void) state;
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        len += (size_t) sprintf(text + len, "c%zu%s", i, i + 1 < n ? "," : "\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t) sprintf(text + len, "1%s", i + 1 < n ? "," : "\n");
    assert_int_equal(parse_n(text, len, NULL, &ds, err, sizeof(err)), DATASET_E_FORMAT);
    assert_string_equal(err, "t.csv:1:4097: more than 4096 columns");
    assert_ptr_equal(ds, SENTINEL);
    free(text);
}

static void test_parse_truncates_the_message_to_err_size(void **state)
{
    char err[8];
    Dataset *ds = SENTINEL;

    (void) state;
    assert_int_equal(parse_n("a\nx\n", 4, NULL, &ds, err, sizeof(err)), DATASET_E_FORMAT);
    assert_string_equal(err, "t.csv:2");
    assert_int_equal(parse_n("a\nx\n", 4, NULL, &ds, NULL, 0), DATASET_E_FORMAT);
    assert_ptr_equal(ds, SENTINEL);
}

/* ------------------------------------------------------------------ dataset_new / free */

static void test_dataset_new_zero_fills_and_copies_names(void **state)
{
    char a[] = "alpha";
    const char *names[] = {a, "beta"};
    Dataset *ds = NULL;

    (void) state;
    assert_int_equal(dataset_new(&ds, 3, 2, names), 0);
    a[0] = 'X'; /* the Dataset holds copies */
    assert_int_equal(ds->n_rows, 3);
    assert_int_equal(ds->n_cols, 2);
    assert_string_equal(ds->names[0], "alpha");
    assert_string_equal(ds->names[1], "beta");
    for (size_t i = 0; i < 6; i++)
        assert_true(ds->x[i] == 0.0f);
    assert_null(ds->label);
    assert_null(dataset_free(ds));
}

static void test_dataset_new_rejects_missing_names_and_huge_sizes(void **state)
{
    const char *names[] = {"a", NULL};
    Dataset *ds = SENTINEL;

    (void) state;
    assert_int_equal(dataset_new(&ds, 1, 2, names), -EINVAL);
    assert_int_equal(dataset_new(&ds, 1, 1, NULL), -EINVAL);
    assert_int_equal(dataset_new(&ds, SIZE_MAX / 2, 1, names), -ENOMEM);
    assert_ptr_equal(ds, SENTINEL);
}

static void test_dataset_free_accepts_null(void **state)
{
    (void) state;
    assert_null(dataset_free(NULL));
}

/* ------------------------------------------------------------------ dataset_read_csv */

static void test_read_csv_loads_a_fixture_file(void **state)
{
    const DatasetOptions opts = {.label_column = "label"};
    const float expected[] = {1.5f, -2, 3, 400};
    char path[4096], err[256] = "";
    Dataset *ds = NULL;

    (void) state;
    fixture_path(path, sizeof(path), "dataset_labelled.csv");
    if (dataset_read_csv(path, &opts, &ds, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(ds->n_rows, 2);
    assert_int_equal(ds->n_cols, 2);
    assert_string_equal(ds->names[0], "a");
    assert_string_equal(ds->names[1], "b");
    assert_values(ds, expected, 4);
    assert_int_equal(ds->label[0], 0);
    assert_int_equal(ds->label[1], 1);
    dataset_free(ds);
}

static void test_read_csv_names_the_path_in_format_errors(void **state)
{
    char path[4096], expected[4200], err[4200] = "";
    Dataset *ds = SENTINEL;

    (void) state;
    fixture_path(path, sizeof(path), "dataset_ragged.csv");
    assert_int_equal(dataset_read_csv(path, NULL, &ds, err, sizeof(err)), DATASET_E_FORMAT);
    snprintf(expected, sizeof(expected), "%s:3:2: expected 3 fields, found 1", path);
    assert_string_equal(err, expected);
    assert_ptr_equal(ds, SENTINEL);
}

static void test_read_csv_reports_a_missing_file(void **state)
{
    const char *path = "/nonexistent-aescore-dir/missing.csv";
    char expected[256], err[256] = "";
    Dataset *ds = SENTINEL;

    (void) state;
    assert_int_equal(dataset_read_csv(path, NULL, &ds, err, sizeof(err)), -ENOENT);
    snprintf(expected, sizeof(expected), "%s: %s", path, strerror(ENOENT));
    assert_string_equal(err, expected);
    assert_ptr_equal(ds, SENTINEL);
}

static void test_read_csv_reports_a_directory(void **state)
{
    char path[4096], err[4200] = "";
    Dataset *ds = SENTINEL;

    (void) state;
    fixture_path(path, sizeof(path), "");
    assert_int_equal(dataset_read_csv(path, NULL, &ds, err, sizeof(err)), -EISDIR);
    assert_non_null(strstr(err, strerror(EISDIR)));
    assert_ptr_equal(ds, SENTINEL);
}

/* ---- the incremental reader against the whole-text parse ---- */

typedef struct Chunks {
    const char *text;
    size_t len, pos;
    const size_t *sizes; /* read sizes, cycled; a 0 entry means "random 1..9" */
    size_t n_sizes, next;
    unsigned rng;
} Chunks;

static long chunked_read(void *ctx, char *buf, size_t size)
{
    Chunks *c = ctx;
    size_t n = c->sizes[c->next++ % c->n_sizes];

    if (n == 0) {
        c->rng = c->rng * 1103515245u + 12345u;
        n = 1 + (c->rng >> 16) % 9;
    }
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

static void assert_same_dataset(const Dataset *a, const Dataset *b)
{
    assert_int_equal(a->n_rows, b->n_rows);
    assert_int_equal(a->n_cols, b->n_cols);
    for (size_t j = 0; j < a->n_cols; j++)
        assert_string_equal(a->names[j], b->names[j]);
    for (size_t i = 0; i < a->n_rows * a->n_cols; i++)
        assert_true(same_float(a->x[i], b->x[i]));
    assert_int_equal(a->label == NULL, b->label == NULL);
    if (a->label != NULL)
        assert_memory_equal(a->label, b->label, a->n_rows);
    assert_int_equal(a->is_text == NULL, b->is_text == NULL);
    if (a->is_text == NULL)
        return;
    assert_memory_equal(a->is_text, b->is_text, a->n_cols);
    for (size_t i = 0; i < a->n_rows * a->n_cols; i++) {
        assert_int_equal(a->text[i] == NULL, b->text[i] == NULL);
        if (a->text[i] != NULL)
            assert_string_equal(a->text[i], b->text[i]);
    }
}

/* Parses text whole and streamed in reads of sizes[]: the same Dataset or the same error. */
static void assert_stream_matches(const char *text, size_t len, const DatasetOptions *opts,
                                  const size_t *sizes, size_t n_sizes)
{
    Chunks c = {.text = text, .len = len, .sizes = sizes, .n_sizes = n_sizes, .rng = 7};
    char err_whole[512] = "", err_stream[512] = "";
    Dataset *whole = NULL, *streamed = NULL;
    int r_whole = parse_n(text, len, opts, &whole, err_whole, sizeof(err_whole));
    int r_stream = dataset_read_stream(chunked_read, &c, "t.csv", opts, &streamed, err_stream,
                                       sizeof(err_stream));

    if (r_whole != r_stream || strcmp(err_whole, err_stream) != 0)
        fail_msg("whole %d '%s', streamed %d '%s' for \"%.*s\"", r_whole, err_whole, r_stream,
                 err_stream, (int) len, text);
    if (r_whole == 0)
        assert_same_dataset(whole, streamed);
    dataset_free(whole);
    dataset_free(streamed);
}

static void test_stream_matches_the_whole_text_at_any_split(void **state)
{
    static const char *const inputs[] = {
        "a,b\n1,2\n3,4\n",
        "\xEF\xBB\xBF"
        "a,b\r\n1,2\r\n3,4\r\n\r\n",
        "a,b\r1,2\r3,4",
        "\"x\"\"y\",\"b\nc\"\n\"1\",2\n",
        "id,t,label\n1,\"multi\r\nline, with \"\"quotes\"\"\",0\n2,plain,1\n3,,0\n",
        "id,t\n1,\"a\"\"b\",\n",
        "id,t\n1,\"a\"\"b\" , \"c\"\"\"\"d\"\n",
        "a,b\n1,2\n\n3,4\n",
        "a,b\n1,2\n \t\n\r\n",
        "a,b\n1,\"2\n",
        "a,b\n1,\"2\"x\n",
        "a,b\n1,2,3\n",
        "a,b\n1\n",
        "a,b\n",
        "a,b\n\n\n",
        "",
        "a,a\n1,2\n",
        "a,label\n1,2\n",
        "t\n\"\"\"\"\r",
        "a,b\n1,2\r",
        "x\nabc\n1e999\n",
        "a,\"b\r\nc\"\r\n\"1\r\n\",2\r\n",
    };
    static const size_t one[] = {1}, two[] = {2}, three[] = {3}, mixed_sizes[] = {1, 5, 2, 64},
                        random[] = {0};
    static const struct {
        const size_t *s;
        size_t n;
    } splits[] = {{one, 1}, {two, 1}, {three, 1}, {mixed_sizes, 4}, {random, 1}};
    const DatasetOptions opts[] = {
        {.label_column = "label"},
        {.label_column = "label", .mixed = true},
        {.mixed = true, .max_columns = 2},
        {.label_column = "label", .mixed = true, .max_rows = 2, .seed = 3},
    };

    (void) state;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        for (size_t o = 0; o < sizeof(opts) / sizeof(opts[0]); o++)
            for (size_t k = 0; k < sizeof(splits) / sizeof(splits[0]); k++)
                assert_stream_matches(inputs[i], strlen(inputs[i]), &opts[o], splits[k].s,
                                      splits[k].n);
}

/* A long file with quoted line ends, read in random small reads and in 64 KiB ones. */
static void test_stream_matches_on_many_rows_split_anywhere(void **state)
{
    static const size_t random[] = {0}, big[] = {65536, 65535, 1};
    const DatasetOptions opts = {.label_column = "label", .mixed = true};
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);

    (void) state;
    assert_non_null(text);
    len += (size_t) snprintf(text, cap, "id,note,x,label\r\n");
    for (int i = 0; i < 20000; i++)
        len += (size_t) snprintf(text + len, cap - len,
                                 "%d,\"n%d\r\nsaid \"\"hi\"\", ok\",%d.%d,%d\r\n", i, i % 17, i,
                                 i % 10, i % 13 == 0);
    assert_true(len < cap);
    assert_stream_matches(text, len, &opts, random, 1);
    assert_stream_matches(text, len, &opts, big, 3);
    free(text);
}

static void test_reader_refuses_a_record_longer_than_the_maximum(void **state)
{
    static const size_t big[] = {65536};
    size_t len = DATASET_RECORD_MAX + 16;
    char *text = malloc(len), err[256] = "";
    const DatasetOptions opts = {.mixed = true};
    Dataset *ds = SENTINEL;

    (void) state;
    assert_non_null(text);
    memcpy(text, "a\n\"", 3);
    memset(text + 3, 'x', len - 3); /* an unterminated quote: the scan must stop anyway */
    assert_int_equal(parse_n(text, len, &opts, &ds, err, sizeof(err)), DATASET_E_FORMAT);
    assert_string_equal(err, "t.csv:2:1: record longer than 4194304 bytes");
    assert_ptr_equal(ds, SENTINEL);
    assert_stream_matches(text, len, &opts, big, 1);
    free(text);
}

static void test_reader_gives_rows_with_their_lines(void **state)
{
    const char *text = "a,t,label\n1,\"x\ny\",1\n\n";
    const DatasetOptions opts = {.label_column = "label", .mixed = true};
    DatasetReader *rd = NULL;
    DatasetRow row;
    char err[256] = "";

    (void) state;
    assert_int_equal(
        dataset_reader_new_text(&rd, text, strlen(text), "t.csv", &opts, err, sizeof(err)), 0);
    assert_int_equal(dataset_reader_n_cols(rd), 2);
    assert_true(dataset_reader_has_label(rd));
    assert_string_equal(dataset_reader_names(rd)[1], "t");
    assert_int_equal(dataset_reader_next(rd, &row), 0);
    assert_int_equal(row.line, 2);
    assert_int_equal(row.label, 1);
    assert_int_equal(row.cells[1].kind, DATASET_CELL_TEXT);
    assert_memory_equal(row.cells[1].text, "x\ny", 3);
    assert_int_equal(dataset_reader_next(rd, &row), DATASET_END);
    assert_int_equal(dataset_reader_next(rd, &row), DATASET_END);
    assert_int_equal(dataset_reader_rows(rd), 1);
    dataset_reader_free(rd);
}

/* ---- reservoir sampling ---- */

/* "x\n0\n1\n...": rows whose value is their index; every 10th is an anomaly when labelled. */
static char *index_csv(size_t n, bool labelled, size_t *len)
{
    size_t cap = 32 + n * 24, w = 0;
    char *text = malloc(cap);

    assert_non_null(text);
    w += (size_t) snprintf(text, cap, labelled ? "x,label\n" : "x\n");
    for (size_t i = 0; i < n; i++)
        w += (size_t) (labelled ? snprintf(text + w, cap - w, "%zu,%d\n", i, i % 10 == 9)
                                : snprintf(text + w, cap - w, "%zu\n", i));
    *len = w;
    return text;
}

static Dataset *sample_of(const char *text, size_t len, size_t max_rows, uint64_t seed)
{
    const DatasetOptions opts = {.label_column = "label", .max_rows = max_rows, .seed = seed};
    Dataset *ds = NULL;
    char err[256] = "";

    if (dataset_parse_csv(text, len, "t.csv", &opts, &ds, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return ds;
}

static void test_sample_is_deterministic_and_in_input_order(void **state)
{
    size_t len;
    char *text = index_csv(5000, true, &len);
    Dataset *a = sample_of(text, len, 300, 11), *b = sample_of(text, len, 300, 11);
    Dataset *c = sample_of(text, len, 300, 12), *all = sample_of(text, len, 5000, 11);
    Dataset *whole = parse_ok(text, &(DatasetOptions){.label_column = "label"});
    size_t anomalies = 0;

    (void) state;
    assert_same_dataset(a, b);
    assert_int_equal(a->n_rows, 600); /* 300 normal rows and 300 of the 500 anomalies */
    assert_int_equal(a->n_read, 5000);
    for (size_t i = 0; i < a->n_rows; i++) {
        anomalies += a->label[i];
        assert_int_equal(a->label[i], (size_t) a->x[i] % 10 == 9);
        if (i > 0)
            assert_true(a->x[i] > a->x[i - 1]);
    }
    assert_int_equal(anomalies, 300);
    assert_true(c->n_rows == 600 && memcmp(a->x, c->x, 600 * sizeof(float)) != 0);
    assert_same_dataset(all, whole); /* max_rows >= the rows: every row, as read whole */
    assert_int_equal(all->n_read, 5000);
    dataset_free(a);
    dataset_free(b);
    dataset_free(c);
    dataset_free(all);
    dataset_free(whole);
    free(text);
}

/* Each of 1000 rows is kept with probability 100/1000: over 400 seeds, every tenth of the
 * input (100 rows) is kept 4000 times on average (sd about 60: the bound is 5 sd). */
static void test_sample_is_uniform(void **state)
{
    size_t len, tenth[10] = {0}, first = 0;
    char *text = index_csv(1000, false, &len);

    (void) state;
    for (uint64_t seed = 0; seed < 400; seed++) {
        Dataset *ds = sample_of(text, len, 100, seed);

        assert_int_equal(ds->n_rows, 100);
        for (size_t i = 0; i < ds->n_rows; i++)
            tenth[(size_t) ds->x[i] / 100]++;
        first += ds->x[0] == 0.0f;
        dataset_free(ds);
    }
    for (size_t k = 0; k < 10; k++)
        if (tenth[k] < 4000 - 300 || tenth[k] > 4000 + 300)
            fail_msg("tenth %zu of the input kept %zu times, expected about 4000", k, tenth[k]);
    assert_true(first >= 40 - 25 && first <= 40 + 25); /* row 0: 400 * 0.1, sd 6 */
    free(text);
}

/* The sample of a data set in memory is the one the reader keeps from the same rows. */
static void test_sample_rows_keeps_the_rows_the_reader_keeps(void **state)
{
    size_t len;
    char *text = index_csv(3000, true, &len);
    Dataset *streamed = sample_of(text, len, 250, 5);
    Dataset *ds = parse_ok(text, &(DatasetOptions){.label_column = "label"});
    Dataset *before = ds;

    (void) state;
    assert_int_equal(dataset_sample_rows(&ds, 5000, 5), 0);
    assert_ptr_equal(ds, before); /* nothing to drop */
    assert_int_equal(dataset_sample_rows(&ds, 250, 5), 0);
    assert_same_dataset(ds, streamed);
    assert_int_equal(ds->n_read, 3000);
    dataset_free(ds);
    dataset_free(streamed);
    free(text);
}

/* A text cell longer than DATASET_TEXT_MAX is a call out of contract (-EINVAL, as the
 * header says), not an allocation failure; the error sticks to the sample. */
static void test_sample_refuses_an_overlong_text_as_invalid(void **state)
{
    static const char *const names[] = {"name"};
    static char long_text[DATASET_TEXT_MAX + 1];
    DatasetCell ok = {.kind = DATASET_CELL_TEXT, .text = "ok", .len = 2};
    DatasetCell too_long = {.kind = DATASET_CELL_TEXT, .text = long_text, .len = sizeof(long_text)};
    DatasetSample *s = NULL;
    Dataset *ds = NULL;

    (void) state;
    memset(long_text, 'a', sizeof(long_text));
    assert_int_equal(dataset_sample_new(&s, 1, names, true, 10, 1), 0);
    assert_int_equal(dataset_sample_add(s, &ok, 0), 0);
    assert_int_equal(dataset_sample_add(s, &too_long, 0), -EINVAL);
    assert_int_equal(dataset_sample_finish(s, &ds), -EINVAL);
    assert_null(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_names_and_rows_in_file_order),
        cmocka_unit_test(test_parse_accepts_crlf_line_ends),
        cmocka_unit_test(test_parse_accepts_cr_line_ends),
        cmocka_unit_test(test_parse_counts_lines_the_same_for_lf_crlf_and_cr),
        cmocka_unit_test(test_parse_skips_a_utf8_bom),
        cmocka_unit_test(test_parse_accepts_blank_trailing_lines),
        cmocka_unit_test(test_parse_accepts_a_last_row_without_a_line_end),
        cmocka_unit_test(test_parse_ignores_blanks_around_cells),
        cmocka_unit_test(test_parse_accepts_quoted_header_names),
        cmocka_unit_test(test_parse_rounds_numbers_exactly_like_strtof),
        cmocka_unit_test(test_parse_matches_strtof_on_random_decimals),
        cmocka_unit_test(test_parse_grows_the_matrix_for_many_rows),
        cmocka_unit_test(test_parse_never_reads_past_len),
        cmocka_unit_test(test_parse_extracts_the_label_column),
        cmocka_unit_test(test_parse_without_the_named_label_column_has_no_labels),
        cmocka_unit_test(test_parse_without_a_label_option_keeps_every_column_as_a_feature),
        cmocka_unit_test(test_parse_rejects_label_other_than_0_or_1),
        cmocka_unit_test(test_parse_rejects_a_label_as_the_only_column),
        cmocka_unit_test(test_parse_rejects_ragged_row_with_too_few_fields),
        cmocka_unit_test(test_parse_rejects_ragged_row_with_too_many_fields),
        cmocka_unit_test(test_parse_rejects_empty_cell),
        cmocka_unit_test(test_parse_rejects_non_numeric_cell),
        cmocka_unit_test(test_parse_reads_quoted_cells_as_rfc_4180_says),
        cmocka_unit_test(test_parse_counts_lines_inside_quoted_cells_and_rejects_broken_quotes),
        cmocka_unit_test(test_parse_rejects_nan_and_infinity),
        cmocka_unit_test(test_parse_rejects_overflowing_number),
        cmocka_unit_test(test_parse_rejects_a_cell_of_200_digits),
        cmocka_unit_test(test_parse_rejects_duplicate_column_names),
        cmocka_unit_test(test_parse_rejects_empty_column_name),
        cmocka_unit_test(test_parse_rejects_malformed_quoted_names),
        cmocka_unit_test(test_parse_rejects_header_without_data_rows),
        cmocka_unit_test(test_parse_rejects_empty_input),
        cmocka_unit_test(test_parse_rejects_blank_line_between_rows),
        cmocka_unit_test(test_parse_rejects_more_than_max_columns),
        cmocka_unit_test(test_parse_defaults_to_4096_columns),
        cmocka_unit_test(test_parse_truncates_the_message_to_err_size),
        cmocka_unit_test(test_dataset_new_zero_fills_and_copies_names),
        cmocka_unit_test(test_dataset_new_rejects_missing_names_and_huge_sizes),
        cmocka_unit_test(test_dataset_free_accepts_null),
        cmocka_unit_test(test_read_csv_loads_a_fixture_file),
        cmocka_unit_test(test_read_csv_names_the_path_in_format_errors),
        cmocka_unit_test(test_read_csv_reports_a_missing_file),
        cmocka_unit_test(test_read_csv_reports_a_directory),
        cmocka_unit_test(test_stream_matches_the_whole_text_at_any_split),
        cmocka_unit_test(test_stream_matches_on_many_rows_split_anywhere),
        cmocka_unit_test(test_reader_refuses_a_record_longer_than_the_maximum),
        cmocka_unit_test(test_reader_gives_rows_with_their_lines),
        cmocka_unit_test(test_sample_is_deterministic_and_in_input_order),
        cmocka_unit_test(test_sample_is_uniform),
        cmocka_unit_test(test_sample_rows_keeps_the_rows_the_reader_keeps),
        cmocka_unit_test(test_sample_refuses_an_overlong_text_as_invalid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
