/* Unit tests for schema (and the mixed mode of dataset that feeds it): which columns become
 * numeric, categorical or ignored fields; medians, modes and category order; the one-hot
 * encoding of records with missing values and unseen categories. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/dataset.h"
#include "aescore/schema.h"

static Dataset *parse_mixed(const char *csv)
{
    DatasetOptions opts = {.label_column = "label", .mixed = true};
    Dataset *ds = NULL;
    char err[256] = "";
    char *copy = malloc(strlen(csv)); /* no NUL after the text: ASan checks the bounds */

    assert_non_null(copy);
    memcpy(copy, csv, strlen(csv));
    if (dataset_parse_csv(copy, strlen(csv), "t.csv", &opts, &ds, err, sizeof(err)) != 0)
        fail_msg("parse failed: %s", err);
    free(copy);
    return ds;
}

static Schema *learn_all(const Dataset *ds, const SchemaOptions *opts)
{
    size_t *rows = malloc(ds->n_rows * sizeof(*rows));
    Schema *s = NULL;
    char err[256] = "";

    for (size_t i = 0; i < ds->n_rows; i++)
        rows[i] = i;
    if (schema_learn(ds, rows, ds->n_rows, opts, &s, err, sizeof(err)) != 0)
        fail_msg("learn failed: %s", err);
    free(rows);
    return s;
}

/* 12 rows: amount numeric with one missing cell, housing text (rent x6, own x4, boat x1, one
 * missing), name unique per row, label. */
static const char *const FIXTURE = "amount,housing,name,label\n"
                                   "10,rent,ann,0\n"
                                   "20,own,bob,0\n"
                                   ",rent,cid,0\n"
                                   "40,rent,dan,0\n"
                                   "50,own,eve,0\n"
                                   "60,boat,fay,0\n"
                                   "70,rent,gus,1\n"
                                   "80,own,hal,0\n"
                                   "90,rent,ian,0\n"
                                   "100,,jan,0\n"
                                   "110,own,kim,0\n"
                                   "120,rent,lee,0\n";

static void test_mixed_mode_keeps_text_and_marks_missing_cells(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    (void) state;

    assert_int_equal(ds->n_rows, 12);
    assert_int_equal(ds->n_cols, 3);
    assert_non_null(ds->is_text);
    assert_int_equal(ds->is_text[0], 0);
    assert_int_equal(ds->is_text[1], 1);
    assert_int_equal(ds->is_text[2], 1);
    assert_true(isnan(ds->x[2 * 3 + 0])); /* the empty amount */
    assert_true(ds->x[1 * 3 + 0] == 20.0f);
    assert_string_equal(ds->text[0 * 3 + 1], "rent");
    assert_null(ds->text[9 * 3 + 1]); /* the empty housing */
    assert_null(ds->text[0 * 3 + 0]); /* not a text column */
    assert_int_equal(ds->label[6], 1);
    dataset_free(ds);
}

static void test_a_number_in_a_text_column_is_text(void **state)
{
    Dataset *ds = parse_mixed("code,x\n12,1\nA7,2\n");
    (void) state;

    assert_int_equal(ds->is_text[0], 1);
    assert_string_equal(ds->text[0], "12");
    assert_string_equal(ds->text[2], "A7");
    dataset_free(ds);
}

/* Found by fuzz_csv: a NUL inside a text cell made an empty category (strdup stops at it). */
static void test_a_nul_byte_in_a_cell_is_refused(void **state)
{
    DatasetOptions opts = {.mixed = true};
    Dataset *ds = NULL;
    char err[256];
    const char text[] = "a,b\n1,x\0y\n";
    (void) state;

    assert_int_equal(
        dataset_parse_csv(text, sizeof(text) - 1, "n.csv", &opts, &ds, err, sizeof(err)),
        DATASET_E_FORMAT);
    assert_string_equal(err, "n.csv:2:2: NUL byte in a cell");
    assert_null(ds);
}

static void test_strict_mode_is_unchanged(void **state)
{
    DatasetOptions opts = {.label_column = "label"};
    Dataset *ds = NULL;
    char err[256];
    (void) state;

    assert_int_equal(dataset_parse_csv("a,b\n1,x\n", 8, "s.csv", &opts, &ds, err, sizeof(err)),
                     DATASET_E_FORMAT);
    assert_string_equal(err, "s.csv:2:2: not a number");
    assert_null(ds);
}

static void test_learn_sorts_categories_folds_rare_ones_and_ignores_unique_text(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    SchemaOptions opts = {.min_category_rows = 2};
    (void) state;

    Schema *s = learn_all(ds, &opts);
    assert_int_equal(s->n_fields, 2);
    assert_int_equal(s->n_ignored, 1);
    assert_string_equal(s->ignored[0], "name"); /* a distinct value in every row */

    const SchemaField *amount = &s->fields[0], *housing = &s->fields[1];
    assert_string_equal(amount->name, "amount");
    assert_int_equal(amount->kind, SCHEMA_NUMERIC);
    /* present: 10 20 40 .. 120 (11 values) -> median 70 */
    assert_true(amount->fill == 70.0f);
    assert_int_equal(housing->kind, SCHEMA_CATEGORICAL);
    assert_int_equal(housing->n_categories, 2); /* rent (6), own (4); boat (1) < 2 rows */
    assert_string_equal(housing->categories[0], "rent");
    assert_string_equal(housing->categories[1], "own");
    assert_true(housing->has_other);
    assert_true(housing->fill == 0.0f); /* the mode, rent */
    assert_int_equal(housing->column, 1);
    assert_int_equal(housing->n_columns, 3);
    assert_int_equal(s->n_columns, 4);
    assert_int_equal(schema_validate(s), 0);

    char *name = schema_column_name(s, 3);
    assert_string_equal(name, "housing=*other*");
    free(name);
    name = schema_column_name(s, 2);
    assert_string_equal(name, "housing=own");
    free(name);
    assert_null(schema_column_name(s, 4));
    schema_free(s);
    dataset_free(ds);
}

static void test_with_every_category_rare_only_other_is_left(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    (void) state;

    Schema *s = learn_all(ds, NULL); /* default: 10 rows; rent has 6 */
    assert_int_equal(s->fields[1].n_categories, 0);
    assert_true(s->fields[1].has_other);
    assert_int_equal(s->fields[1].n_columns, 1);
    assert_int_equal(schema_validate(s), 0);
    schema_free(s);
    dataset_free(ds);
}

static void test_without_rare_categories_there_is_no_other_column(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    SchemaOptions opts = {.min_category_rows = 1};
    (void) state;

    Schema *s = learn_all(ds, &opts);
    assert_int_equal(s->fields[1].n_categories, 3);
    assert_false(s->fields[1].has_other);
    assert_string_equal(s->fields[1].categories[2], "boat");
    schema_free(s);
    dataset_free(ds);
}

static void test_ignore_list_leaves_columns_out_and_names_a_missing_one(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    const char *ignore[] = {"housing"};
    const char *absent[] = {"nope"};
    SchemaOptions opts = {.ignore = ignore, .n_ignore = 1};
    Schema *s = NULL;
    size_t rows[12];
    char err[256];
    (void) state;

    s = learn_all(ds, &opts);
    assert_int_equal(s->n_fields, 1);
    assert_int_equal(s->n_ignored, 2);
    assert_string_equal(s->ignored[0], "housing");
    schema_free(s);

    for (size_t i = 0; i < 12; i++)
        rows[i] = i;
    opts.ignore = absent;
    s = NULL;
    assert_int_equal(schema_learn(ds, rows, 12, &opts, &s, err, sizeof(err)), SCHEMA_E_INPUT);
    assert_string_equal(err, "no column 'nope' to ignore");
    assert_null(s);
    dataset_free(ds);
}

static void test_encode_imputes_and_maps_unseen_categories(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    SchemaOptions opts = {.min_category_rows = 2};
    Schema *s;
    SchemaEncodeInfo info;
    float x[4];
    (void) state;

    s = learn_all(ds, &opts);
    SchemaValue v[2] = {{.type = SCHEMA_NUMBER, .number = 5},
                        {.type = SCHEMA_TEXT, .text = "own!", .len = 3}};
    assert_int_equal(schema_encode(s, v, x, &info), 0);
    assert_true(x[0] == 5 && x[1] == 0 && x[2] == 1 && x[3] == 0);
    assert_int_equal(info.n_imputed, 0);
    assert_int_equal(info.n_unseen, 0);

    v[0] = (SchemaValue){.type = SCHEMA_MISSING};
    v[1] = (SchemaValue){.type = SCHEMA_TEXT, .text = "castle", .len = 6};
    assert_int_equal(schema_encode(s, v, x, &info), 0);
    assert_true(x[0] == 70 && x[1] == 0 && x[2] == 0 && x[3] == 1); /* median; other */
    assert_int_equal(info.n_imputed, 1);
    assert_int_equal(info.n_unseen, 1);

    v[1] = (SchemaValue){.type = SCHEMA_MISSING};
    assert_int_equal(schema_encode(s, v, x, &info), 0);
    assert_true(x[1] == 1 && x[2] == 0 && x[3] == 0); /* the mode */
    assert_int_equal(info.n_imputed, 2);

    v[1] = (SchemaValue){.type = SCHEMA_NUMBER, .number = 1};
    assert_int_equal(schema_encode(s, v, x, &info), -EINVAL);
    v[1] = (SchemaValue){.type = SCHEMA_MISSING};
    v[0] = (SchemaValue){.type = SCHEMA_TEXT, .text = "12", .len = 2};
    assert_int_equal(schema_encode(s, v, x, &info), -EINVAL);
    schema_free(s);
    dataset_free(ds);
}

static void test_an_unseen_category_without_other_is_all_zeros(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    SchemaOptions opts = {.min_category_rows = 1};
    SchemaEncodeInfo info;
    float x[4] = {9, 9, 9, 9};
    (void) state;

    Schema *s = learn_all(ds, &opts);
    SchemaValue v[2] = {{.type = SCHEMA_NUMBER, .number = 1},
                        {.type = SCHEMA_TEXT, .text = "castle", .len = 6}};
    assert_int_equal(schema_encode(s, v, x, &info), 0);
    assert_true(x[1] == 0 && x[2] == 0 && x[3] == 0);
    assert_int_equal(info.n_unseen, 1);
    schema_free(s);
    dataset_free(ds);
}

static void test_encode_dataset_matches_columns_by_name_and_names_bad_lines(void **state)
{
    Dataset *train = parse_mixed(FIXTURE);
    SchemaOptions opts = {.min_category_rows = 2};
    Dataset *ds, *enc = NULL;
    char err[256];
    (void) state;

    Schema *s = learn_all(train, &opts);
    /* other column order, the ignored column absent, a missing and an unseen value */
    ds = parse_mixed("housing,amount\nown,1\n,2\ncastle,\n");
    assert_int_equal(schema_encode_dataset(s, ds, &enc, err, sizeof(err)), 0);
    const float want[] = {1, 0, 1, 0, 2, 1, 0, 0, 70, 0, 0, 1};
    assert_memory_equal(enc->x, want, sizeof(want));
    assert_string_equal(enc->names[3], "housing=*other*");
    dataset_free(enc);
    dataset_free(ds);

    ds = parse_mixed("amount,housing,surprise\n1,own,2\n");
    assert_int_equal(schema_encode_dataset(s, ds, &enc, err, sizeof(err)), SCHEMA_E_INPUT);
    assert_string_equal(err, "1: column 'surprise' is not a field of the model");
    dataset_free(ds);

    ds = parse_mixed("amount\n1\n");
    assert_int_equal(schema_encode_dataset(s, ds, &enc, err, sizeof(err)), SCHEMA_E_INPUT);
    assert_string_equal(err, "1: the model's field 'housing' has no column");
    dataset_free(ds);

    ds = parse_mixed("amount,housing\n1,own\n2,rent\nlots,own\n");
    assert_int_equal(schema_encode_dataset(s, ds, &enc, err, sizeof(err)), SCHEMA_E_INPUT);
    assert_string_equal(err, "4: field 'amount': text where the model expects a number");
    dataset_free(ds);
    schema_free(s);
    dataset_free(train);
}

/* Rows one at a time (schema_encode_cells, what score streams) encode as the whole data set
 * does (schema_encode_dataset), and their errors carry the row's own file line. */
static void test_encode_cells_matches_encode_dataset_row_by_row(void **state)
{
    static const char *const csv =
        "name,housing,amount\n\"x\ny\",own,1\n, \"rent\" ,\nq,castle,3.5\nz,,-4\n";
    const DatasetOptions dopts = {.label_column = "label", .mixed = true};
    Dataset *train = parse_mixed(FIXTURE), *ds = parse_mixed(csv), *enc = NULL;
    SchemaOptions opts = {.min_category_rows = 2};
    Schema *s;
    DatasetReader *rd = NULL;
    DatasetRow row;
    size_t col[8], i = 0;
    SchemaValue values[8];
    float x[16];
    char err[256] = "";
    (void) state;

    s = learn_all(train, &opts);
    assert_int_equal(schema_encode_dataset(s, ds, &enc, err, sizeof(err)), 0);
    assert_int_equal(
        dataset_reader_new_text(&rd, csv, strlen(csv), "t.csv", &dopts, err, sizeof(err)), 0);
    assert_int_equal(schema_match_names(s, dataset_reader_names(rd), dataset_reader_n_cols(rd),
                                        SIZE_MAX, col, err, sizeof(err)),
                     0);
    while (dataset_reader_next(rd, &row) == 0) {
        assert_int_equal(
            schema_encode_cells(s, col, row.cells, row.line, values, x, NULL, err, sizeof(err)), 0);
        assert_memory_equal(x, enc->x + i * s->n_columns, s->n_columns * sizeof(float));
        i++;
    }
    assert_int_equal(i, enc->n_rows);
    dataset_reader_free(rd);
    dataset_free(enc);
    dataset_free(ds);

    /* an unknown column may be the one left aside (an id); a bad cell names its line */
    {
        static const char *const bad = "id,amount,housing\n1,\"2\",own\n\"a\nb\",lots,own\n";

        assert_int_equal(
            dataset_reader_new_text(&rd, bad, strlen(bad), "t.csv", &dopts, err, sizeof(err)), 0);
        assert_int_equal(
            schema_match_names(s, dataset_reader_names(rd), 3, SIZE_MAX, col, err, sizeof(err)),
            SCHEMA_E_INPUT);
        assert_string_equal(err, "1: column 'id' is not a field of the model");
        assert_int_equal(
            schema_match_names(s, dataset_reader_names(rd), 3, 0, col, err, sizeof(err)), 0);
        assert_int_equal(dataset_reader_next(rd, &row), 0);
        assert_int_equal(
            schema_encode_cells(s, col, row.cells, row.line, values, x, NULL, err, sizeof(err)), 0);
        assert_int_equal(dataset_reader_next(rd, &row), 0);
        assert_int_equal(
            schema_encode_cells(s, col, row.cells, row.line, values, x, NULL, err, sizeof(err)),
            SCHEMA_E_INPUT);
        assert_string_equal(err, "3: field 'amount': text where the model expects a number");
        dataset_reader_free(rd);
    }
    schema_free(s);
    dataset_free(train);
}

static void test_validate_rejects_broken_schemas(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    SchemaOptions opts = {.min_category_rows = 2};
    Schema *s, *c;
    (void) state;

    s = learn_all(ds, &opts);
    c = learn_all(ds, &opts); /* a second one to break */
    assert_int_equal(schema_validate(c), 0);

    c->fields[1].column = 2; /* columns no longer tile */
    assert_int_equal(schema_validate(c), -EINVAL);
    c->fields[1].column = 1;
    c->fields[0].fill = NAN;
    assert_int_equal(schema_validate(c), -EINVAL);
    c->fields[0].fill = 1;
    free(c->fields[1].name);
    c->fields[1].name = strdup("amount"); /* duplicate field name */
    assert_int_equal(schema_validate(c), -EINVAL);
    schema_free(c);
    schema_free(s);
    dataset_free(ds);
}

static void test_numeric_schema_and_field_lookup(void **state)
{
    const char *names[] = {"a", "bb"};
    const float fill[] = {1.5f, -2};
    Schema *s = NULL;
    (void) state;

    assert_int_equal(schema_new_numeric(&s, 2, names, fill), 0);
    assert_int_equal(s->n_columns, 2);
    assert_int_equal(schema_validate(s), 0);
    assert_int_equal(schema_field_index(s, "bb", 2), 1);
    assert_int_equal(schema_field_index(s, "bbx", 2), 1);
    assert_int_equal(schema_field_index(s, "b", 1), -1);
    assert_int_equal(schema_field_index(s, "b\0b", 3), -1); /* a NUL inside is another name */
    assert_int_equal(schema_field_index(s, "a\0", 2), -1);
    { /* a numeric field's error is its column's, copied or in place */
        float col[2] = {0.25f, 3}, fields[2] = {-1, -1};

        schema_field_errors(s, col, fields);
        assert_memory_equal(fields, col, sizeof(col));
        schema_field_errors(s, col, col);
        assert_true(col[0] == 0.25f && col[1] == 3);
    }
    schema_free(s);
    assert_null(schema_free(NULL));
}

/* A field's error is its columns' sum, told apart by the column names ("housing=..."); in
 * place too; the worst field is the largest, the first of equals. */
static void test_field_errors_sum_a_fields_columns_and_the_worst_comes_first(void **state)
{
    Dataset *ds = parse_mixed(FIXTURE);
    SchemaOptions opts = {.min_category_rows = 2};
    Schema *s = learn_all(ds, &opts);
    float col[16], fields[16], want[16] = {0};
    (void) state;

    assert_true(s->n_columns <= 16 && s->n_fields == 2);
    for (size_t c = 0; c < s->n_columns; c++) {
        char *name = schema_column_name(s, c);

        assert_non_null(name);
        col[c] = 0.25f * (float) (c + 1);
        want[strncmp(name, "housing", 7) == 0] += col[c];
        free(name);
    }
    schema_field_errors(s, col, fields);
    assert_float_equal(fields[0], want[0], 0);
    assert_float_equal(fields[1], want[1], 1e-6);
    schema_field_errors(s, col, col); /* in place */
    assert_memory_equal(col, fields, 2 * sizeof(float));
    {
        size_t idx[2];

        assert_int_equal(schema_worst_fields(fields, 2, 1, idx), 1);
        assert_int_equal(idx[0], fields[1] > fields[0]);
        fields[0] = fields[1];
        assert_int_equal(schema_worst_fields(fields, 2, 5, idx), 2); /* k > n: all of them */
        assert_int_equal(idx[0], 0);                                 /* the first of equals */
        assert_int_equal(idx[1], 1);
    }
    schema_free(s);
    dataset_free(ds);
}

/* schema_worst_fields against a full sort (value down, index up) of random errors with many
 * ties, for every k from 0 to past n. */
typedef struct Ranked {
    float err;
    size_t i;
} Ranked;

static int by_error_then_index(const void *a, const void *b)
{
    const Ranked *x = a, *y = b;

    if (x->err != y->err)
        return x->err < y->err ? 1 : -1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void test_worst_fields_are_a_sorts_first_k(void **state)
{
    enum { N = 40 };
    float err[N];
    Ranked want[N];
    size_t idx[N + 3];
    uint64_t seed = 12345;

    (void) state;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t) round % N;

        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            err[i] = (float) ((seed >> 33) % 7) * 0.5f; /* 7 values: ties everywhere */
            want[i] = (Ranked){err[i], i};
        }
        qsort(want, n, sizeof(*want), by_error_then_index);
        for (size_t k = 0; k <= n + 3; k++) {
            size_t got = schema_worst_fields(err, n, k, idx);

            assert_int_equal(got, k < n ? k : n);
            for (size_t j = 0; j < got; j++)
                assert_int_equal(idx[j], want[j].i);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_mode_keeps_text_and_marks_missing_cells),
        cmocka_unit_test(test_a_number_in_a_text_column_is_text),
        cmocka_unit_test(test_a_nul_byte_in_a_cell_is_refused),
        cmocka_unit_test(test_strict_mode_is_unchanged),
        cmocka_unit_test(test_learn_sorts_categories_folds_rare_ones_and_ignores_unique_text),
        cmocka_unit_test(test_with_every_category_rare_only_other_is_left),
        cmocka_unit_test(test_without_rare_categories_there_is_no_other_column),
        cmocka_unit_test(test_ignore_list_leaves_columns_out_and_names_a_missing_one),
        cmocka_unit_test(test_encode_imputes_and_maps_unseen_categories),
        cmocka_unit_test(test_an_unseen_category_without_other_is_all_zeros),
        cmocka_unit_test(test_encode_dataset_matches_columns_by_name_and_names_bad_lines),
        cmocka_unit_test(test_encode_cells_matches_encode_dataset_row_by_row),
        cmocka_unit_test(test_validate_rejects_broken_schemas),
        cmocka_unit_test(test_numeric_schema_and_field_lookup),
        cmocka_unit_test(test_field_errors_sum_a_fields_columns_and_the_worst_comes_first),
        cmocka_unit_test(test_worst_fields_are_a_sorts_first_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
