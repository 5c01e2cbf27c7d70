/* Unit tests of records.c (JSON record -> float[] against a schema) and the JSON helpers of
 * http_body.c / http_reply.c that guard it: depth scan, UTF-8 check, string escaping. */
#undef NDEBUG
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/service/http_body.h"
#include "../../src/service/json_buf.h"
#include "../../src/service/records.h"

static char *schema[] = {"amount", "age", "limit"};
#define N_SCHEMA 3

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_ParseWithLengthOpts(s, strlen(s), NULL, 0);
    assert_non_null(j);
    return j;
}

/* Reads text as one scoring record against a numeric model of the fields in schema[],
 * every field required; returns the code and leaves issues in *iss. */
static int read_text(const char *text, float *x, RecordIssues *iss)
{
    static const float fill[N_SCHEMA] = {0};
    RecordPolicy strict = {0};
    Model m;
    cJSON *j = parse(text);
    int r;

    memset(&m, 0, sizeof(m));
    m.n_features = N_SCHEMA;
    m.names = schema;
    assert_int_equal(schema_new_numeric(&m.schema, N_SCHEMA, (const char *const *) schema, fill),
                     0);
    r = records_read_model(j, &m, &strict, x, NULL, iss);
    schema_free(m.schema);
    cJSON_Delete(j);
    return r;
}

static void assert_list(const JsonBuf *b, const char *expect)
{
    assert_string_equal(b->data ? b->data : "", expect);
}

static void test_named_features_fill_schema_order(void **state)
{
    RecordIssues iss;
    float x[N_SCHEMA];

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(
        read_text("{\"id\":1,\"features\":{\"limit\":3,\"amount\":1.5,\"age\":2}}", x, &iss), 0);
    assert_true(x[0] == 1.5f && x[1] == 2.0f && x[2] == 3.0f);
    records_issues_deinit(&iss);
}

static void test_values_are_taken_in_model_order(void **state)
{
    RecordIssues iss;
    float x[N_SCHEMA];

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(read_text("{\"values\":[4,5,6]}", x, &iss), 0);
    assert_true(x[0] == 4.0f && x[1] == 5.0f && x[2] == 6.0f);
    records_issues_deinit(&iss);
}

static void test_missing_and_unknown_features_are_named(void **state)
{
    RecordIssues iss;
    float x[N_SCHEMA];
    char *details;

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(read_text("{\"features\":{\"amount\":1,\"Age\":2}}", x, &iss),
                     RECORDS_E_SCHEMA);
    assert_list(&iss.unknown, "\"Age\"");
    assert_list(&iss.missing, "\"age\",\"limit\"");
    details = records_issues_details(&iss);
    assert_string_equal(details, "\"missing\":[\"age\",\"limit\"],\"unknown\":[\"Age\"],"
                                 "\"invalid\":[]");
    free(details);
    records_issues_deinit(&iss);
}

static void test_repeated_feature_is_named(void **state)
{
    RecordIssues iss;
    float x[N_SCHEMA];

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(
        read_text("{\"features\":{\"amount\":1,\"age\":2,\"limit\":3,\"age\":4}}", x, &iss),
        RECORDS_E_SCHEMA);
    assert_list(&iss.repeated, "\"age\"");
    assert_int_equal(iss.n_missing, 0);
    records_issues_deinit(&iss);
}

static void test_non_numbers_and_non_finite_are_invalid(void **state)
{
    RecordIssues iss;
    float x[N_SCHEMA];

    (void) state;
    records_issues_init(&iss);
    /* 1e999 is inf as a double; 1e39 is finite as a double but inf as a float */
    assert_int_equal(
        read_text("{\"features\":{\"amount\":\"1\",\"age\":1e999,\"limit\":1e39}}", x, &iss),
        RECORDS_E_SCHEMA);
    assert_list(&iss.invalid, "\"amount\",\"age\",\"limit\"");
    assert_int_equal(iss.n_missing, 0);
    records_issues_deinit(&iss);

    records_issues_init(&iss);
    assert_int_equal(read_text("{\"values\":[1,true,null]}", x, &iss), RECORDS_E_SCHEMA);
    assert_list(&iss.invalid, "\"age\"");
    assert_list(&iss.missing, "\"limit\""); /* null is a missing value */
    records_issues_deinit(&iss);
}

static void test_wrong_length_values_are_refused(void **state)
{
    RecordIssues iss;
    float x[N_SCHEMA];

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(read_text("{\"values\":[1,2]}", x, &iss), RECORDS_E_SCHEMA);
    assert_list(&iss.invalid, "\"values\"");
    assert_non_null(strstr(iss.message, "has 2 values; the model has 3 fields"));
    records_issues_deinit(&iss);
}

static void test_structure_errors_are_schema_errors(void **state)
{
    static const char *bad[] = {
        "[1,2,3]",
        "{\"id\":1}",
        "{\"features\":{\"amount\":1,\"age\":2,\"limit\":3},\"values\":[1,2,3]}",
        "{\"features\":[1,2,3]}",
        "{\"values\":{\"a\":1}}",
        "{\"id\":[1],\"values\":[1,2,3]}",
        "{\"values\":[1,2,3],\"extra\":1}",
        "{\"values\":[1,2,3],\"label\":0}", /* label only in training records */
    };
    float x[N_SCHEMA];

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        RecordIssues iss;
        records_issues_init(&iss);
        assert_int_equal(read_text(bad[i], x, &iss), RECORDS_E_SCHEMA);
        assert_true(iss.message[0] != '\0');
        records_issues_deinit(&iss);
    }
}

/* records_training_set against a served schema of the fields in schema[]. */
static int training_set(const cJSON *records, Dataset **ds, RecordIssues *iss)
{
    static const float fill[N_SCHEMA] = {0};
    Schema *served = NULL;
    int r;

    assert_int_equal(schema_new_numeric(&served, N_SCHEMA, (const char *const *) schema, fill), 0);
    r = records_training_set(records, served, ds, iss);
    schema_free(served);
    return r;
}

/* The same rows sent as JSON records and as CSV give the same Dataset: both feed the one
 * builder (dataset.h), so text columns, numbers spelt in them, missing cells and labels
 * mean the same whichever door they came in by. */
static void test_json_records_and_csv_build_the_same_dataset(void **state)
{
    static const char csv[] = "amount,age,limit,label\n"
                              "1.5,x,3,1\n"
                              ",7,6,0\n"
                              "2.25,,9,0\n";
    cJSON *j = parse("[{\"values\":[1.5,\"x\",3],\"label\":1},"
                     "{\"features\":{\"age\":7,\"limit\":6},\"label\":0},"
                     "{\"features\":{\"amount\":2.25,\"age\":null,\"limit\":9}}]");
    DatasetOptions opts = {.label_column = "label", .mixed = true};
    Dataset *a = NULL, *b = NULL;
    RecordIssues iss;
    char err[256];

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(training_set(j, &a, &iss), 0);
    assert_int_equal(dataset_parse_csv(csv, strlen(csv), "t.csv", &opts, &b, err, sizeof(err)), 0);
    assert_int_equal(a->n_rows, b->n_rows);
    assert_int_equal(a->n_cols, b->n_cols);
    assert_memory_equal(a->label, b->label, a->n_rows);
    assert_non_null(a->is_text);
    assert_memory_equal(a->is_text, b->is_text, a->n_cols);
    for (size_t k = 0; k < a->n_rows * a->n_cols; k++) {
        assert_true(isnan(a->x[k]) == isnan(b->x[k]));
        assert_true(isnan(a->x[k]) || a->x[k] == b->x[k]);
        assert_true((a->text[k] == NULL) == (b->text[k] == NULL));
        if (a->text[k] != NULL)
            assert_string_equal(a->text[k], b->text[k]);
    }
    assert_string_equal(a->text[1 * 3 + 1], "7"); /* a number in a text column: its text */
    dataset_free(a);
    dataset_free(b);
    records_issues_deinit(&iss);
    cJSON_Delete(j);
}

static void test_training_records_become_a_mixed_dataset(void **state)
{
    RecordIssues iss;
    Dataset *ds = NULL;
    cJSON *j = parse("[{\"values\":[1,\"x\",3],\"label\":1},"
                     "{\"id\":7,\"features\":{\"limit\":6,\"age\":5}},"
                     "{\"features\":{\"amount\":null,\"age\":8,\"limit\":9}}]");

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(training_set(j, &ds, &iss), 0);
    assert_int_equal(ds->n_rows, 3);
    assert_non_null(ds->label);
    assert_true(ds->label[0] == 1 && ds->label[1] == 0);
    assert_non_null(ds->is_text);
    assert_true(!ds->is_text[0] && ds->is_text[1] && !ds->is_text[2]);
    assert_string_equal(ds->text[0 * 3 + 1], "x");
    assert_string_equal(ds->text[1 * 3 + 1], "5"); /* a number in a text column: its text */
    assert_true(isnan(ds->x[1 * 3 + 0]));          /* absent */
    assert_true(isnan(ds->x[2 * 3 + 0]));          /* null */
    assert_true(ds->x[2 * 3 + 2] == 9);
    dataset_free(ds);
    records_issues_deinit(&iss);
    cJSON_Delete(j);

    /* a record that does not fit names its index; the others are fine */
    j = parse("[{\"values\":[1,2,3]},{\"values\":[1,[2],3]},{\"features\":{\"x\":1}}]");
    records_issues_init(&iss);
    ds = NULL;
    assert_int_equal(training_set(j, &ds, &iss), RECORDS_E_SCHEMA);
    assert_null(ds);
    assert_list(&iss.indices, "1,2");
    assert_list(&iss.invalid, "\"age\"");
    assert_list(&iss.unknown, "\"x\"");
    records_issues_deinit(&iss);
    cJSON_Delete(j);
}

static void test_issues_accumulate_over_a_batch(void **state)
{
    RecordIssues iss;
    float x[N_SCHEMA];

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(read_text("{\"values\":[1,2,3]}", x, &iss), 0);
    assert_int_equal(read_text("{\"features\":{\"amount\":1,\"age\":2}}", x, &iss),
                     RECORDS_E_SCHEMA);
    /* the same problem again still fails this record, though the list names it once */
    assert_int_equal(read_text("{\"features\":{\"amount\":1,\"age\":2}}", x, &iss),
                     RECORDS_E_SCHEMA);
    assert_int_equal(read_text("{\"values\":[1,2,3]}", x, &iss), 0);
    assert_list(&iss.missing, "\"limit\"");
    records_issues_deinit(&iss);
}

/* A model with fields amount (numeric, fill 10), housing (rent/own + other) and age
 * (numeric, fill 40): five input columns. Only the schema is read by records_read_model. */
static Model *schema_model(void)
{
    static Model m;
    static char *names[5] = {"amount", "housing=rent", "housing=own", "housing=*other*", "age"};
    Schema *sc = calloc(1, sizeof(*sc));

    assert_non_null(sc);
    sc->n_fields = 3;
    sc->fields = calloc(3, sizeof(*sc->fields));
    sc->fields[0] = (SchemaField){.name = strdup("amount"), .fill = 10, .n_columns = 1};
    sc->fields[1] = (SchemaField){.name = strdup("housing"),
                                  .kind = SCHEMA_CATEGORICAL,
                                  .column = 1,
                                  .n_columns = 3,
                                  .n_categories = 2,
                                  .has_other = true,
                                  .fill = 1};
    sc->fields[1].categories = calloc(2, sizeof(char *));
    sc->fields[1].categories[0] = strdup("rent");
    sc->fields[1].categories[1] = strdup("own");
    sc->fields[2] = (SchemaField){.name = strdup("age"), .column = 4, .n_columns = 1, .fill = 40};
    sc->n_columns = 5;
    assert_int_equal(schema_validate(sc), 0);
    memset(&m, 0, sizeof(m));
    m.schema = sc;
    m.n_features = 5;
    m.names = names;
    return &m;
}

static int read_model_text(const char *text, const RecordPolicy *policy, float *x,
                           RecordNotes *notes, RecordIssues *iss)
{
    Model *m = schema_model();
    cJSON *j = parse(text);
    int r = records_read_model(j, m, policy, x, notes, iss);

    cJSON_Delete(j);
    schema_free(m->schema);
    return r;
}

static void test_model_schema_is_used(void **state)
{
    RecordPolicy strict = {0};
    RecordIssues iss;
    RecordNotes notes;
    float x[5];

    (void) state;
    records_issues_init(&iss);
    records_notes_init(&notes);
    assert_int_equal(read_model_text("{\"features\":{\"age\":30,\"housing\":\"own\","
                                     "\"amount\":3}}",
                                     &strict, x, &notes, &iss),
                     0);
    const float want[] = {3, 0, 1, 0, 30};
    assert_memory_equal(x, want, sizeof(want));
    assert_int_equal(notes.n_imputed + notes.n_unseen, 0);
    assert_int_equal(read_model_text("{\"values\":[1,\"rent\",2]}", &strict, x, &notes, &iss), 0);
    const float want2[] = {1, 1, 0, 0, 2};
    assert_memory_equal(x, want2, sizeof(want2));
    records_notes_deinit(&notes);
    records_issues_deinit(&iss);
}

static void test_missing_fields_are_imputed_up_to_the_allowed_share(void **state)
{
    RecordPolicy strict = {0}, third = {.max_missing_percent = 34};
    RecordIssues iss;
    RecordNotes notes;
    float x[5];

    (void) state;
    records_issues_init(&iss);
    records_notes_init(&notes);
    /* strict: a null and an absent field are both missing and named */
    assert_int_equal(read_model_text("{\"features\":{\"amount\":null,\"housing\":\"own\"}}",
                                     &strict, x, &notes, &iss),
                     RECORDS_E_SCHEMA);
    assert_list(&iss.missing, "\"amount\",\"age\"");
    records_issues_deinit(&iss);

    /* one of three missing is within 34 %: imputed with the fill value and reported */
    records_issues_init(&iss);
    assert_int_equal(read_model_text("{\"features\":{\"amount\":null,\"housing\":\"own\","
                                     "\"age\":5}}",
                                     &third, x, &notes, &iss),
                     0);
    assert_true(x[0] == 10);
    assert_list(&notes.imputed, "\"amount\"");
    /* a missing category takes the mode (own, fill 1) */
    records_notes_deinit(&notes);
    assert_int_equal(
        read_model_text("{\"features\":{\"amount\":1,\"age\":5}}", &third, x, &notes, &iss), 0);
    assert_true(x[1] == 0 && x[2] == 1 && x[3] == 0);
    assert_list(&notes.imputed, "\"housing\"");
    records_notes_deinit(&notes);
    /* two of three is over the share */
    assert_int_equal(read_model_text("{\"features\":{\"age\":5}}", &third, x, &notes, &iss),
                     RECORDS_E_SCHEMA);
    assert_list(&iss.missing, "\"amount\",\"housing\"");
    records_notes_deinit(&notes);
    records_issues_deinit(&iss);
}

static void test_unseen_categories_map_to_other_and_are_reported(void **state)
{
    RecordPolicy strict = {0};
    RecordIssues iss;
    RecordNotes notes;
    float x[5];

    (void) state;
    records_issues_init(&iss);
    records_notes_init(&notes);
    assert_int_equal(read_model_text("{\"features\":{\"amount\":1,\"housing\":\"castle\","
                                     "\"age\":2}}",
                                     &strict, x, &notes, &iss),
                     0);
    assert_true(x[1] == 0 && x[2] == 0 && x[3] == 1);
    assert_list(&notes.unseen, "\"housing\"");
    JsonBuf b = JSON_BUF_INIT;
    records_put_notes(&b, &notes);
    assert_string_equal(b.data, ",\"unseen\":[\"housing\"]");
    json_buf_deinit(&b);
    records_notes_deinit(&notes);
    records_issues_deinit(&iss);
}

static void test_numbers_as_strings_need_lenient_numbers(void **state)
{
    RecordPolicy strict = {0}, lenient = {.lenient_numbers = true};
    const char *rec = "{\"features\":{\"amount\":\"12.5\",\"housing\":\"rent\",\"age\":2}}";
    RecordIssues iss;
    float x[5];

    (void) state;
    records_issues_init(&iss);
    assert_int_equal(read_model_text(rec, &strict, x, NULL, &iss), RECORDS_E_SCHEMA);
    assert_list(&iss.invalid, "\"amount\"");
    assert_string_equal(iss.message,
                        "field \"amount\" is a number sent as a string (lenient_numbers is off)");
    records_issues_deinit(&iss);
    records_issues_init(&iss);
    assert_int_equal(read_model_text(rec, &lenient, x, NULL, &iss), 0);
    assert_true(x[0] == 12.5f);
    assert_int_equal(read_model_text("{\"features\":{\"amount\":\"12x\",\"housing\":\"rent\","
                                     "\"age\":2}}",
                                     &lenient, x, NULL, &iss),
                     RECORDS_E_SCHEMA);
    /* a number where a category belongs is never accepted */
    records_issues_deinit(&iss);
    records_issues_init(&iss);
    assert_int_equal(read_model_text("{\"features\":{\"amount\":1,\"housing\":3,\"age\":2}}",
                                     &lenient, x, NULL, &iss),
                     RECORDS_E_SCHEMA);
    assert_list(&iss.invalid, "\"housing\"");
    records_issues_deinit(&iss);
}

static void test_id_is_echoed_as_given(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"id\":7}", "7"},     {"{\"id\":-12345678901}", "-12345678901"},
        {"{\"id\":1.5}", "1.5"}, {"{\"id\":\"a\\\"b\"}", "\"a\\\"b\""},
        {"{}", "null"},          {"{\"id\":null}", "null"},
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        JsonBuf b = JSON_BUF_INIT;
        cJSON *j = parse(cases[i].in);
        assert_int_equal(records_id(j, &b), 0);
        assert_string_equal(b.data, cases[i].out);
        json_buf_deinit(&b);
        cJSON_Delete(j);
    }
    {
        JsonBuf b = JSON_BUF_INIT;
        cJSON *j = parse("{\"id\":{}}");
        assert_int_equal(records_id(j, &b), RECORDS_E_SCHEMA);
        json_buf_deinit(&b);
        cJSON_Delete(j);
    }
}

static void test_depth_scan_skips_strings(void **state)
{
    static const char deep[] = "[[[[[1]]]]]";
    static const char quoted[] = "{\"a\":\"[[[[[[[[[[\\\"[[[[\"}";
    char *big = malloc(20001);
    const char *why;
    size_t at;

    (void) state;
    /* depth 5: taken at a limit of 5, refused at 4 on the fifth '[' */
    assert_int_equal(http_json_grammar(deep, strlen(deep), 5, &at, &why), 0);
    assert_int_equal(http_json_grammar(deep, strlen(deep), 4, &at, &why), -E2BIG);
    assert_int_equal(at, 4);
    /* brackets inside a string are not nesting: depth 1 */
    assert_int_equal(http_json_grammar(quoted, strlen(quoted), 1, &at, &why), 0);
    memset(big, '[', 10000);
    memset(big + 10000, ']', 10000);
    big[20000] = '\0';
    /* stops just past the limit instead of walking 10,000 levels */
    assert_int_equal(http_json_grammar(big, 20000, 16, &at, &why), -E2BIG);
    assert_int_equal(at, 16);
    free(big);
}

static void test_utf8_check_refuses_bad_sequences(void **state)
{
    (void) state;
    assert_true(json_utf8_valid("plain", 5));
    assert_true(json_utf8_valid("\xc3\xa9t\xc3\xa9", 6));
    assert_true(json_utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(json_utf8_valid("\xff", 1));
    assert_false(json_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(json_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(json_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(json_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
}

static void test_json_string_escapes_and_replaces_bad_bytes(void **state)
{
    JsonBuf b = JSON_BUF_INIT;

    (void) state;
    json_buf_string(&b, "a\"\\\n\x01\xff\xc3\xa9", 8);
    assert_string_equal(b.data, "\"a\\\"\\\\\\u000a\\u0001\\ufffd\xc3\xa9\"");
    json_buf_deinit(&b);
    json_buf_float(&b, NAN);
    json_buf_puts(&b, ",");
    json_buf_float(&b, 0.25);
    assert_string_equal(b.data, "null,0.25");
    json_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_features_fill_schema_order),
        cmocka_unit_test(test_values_are_taken_in_model_order),
        cmocka_unit_test(test_missing_and_unknown_features_are_named),
        cmocka_unit_test(test_repeated_feature_is_named),
        cmocka_unit_test(test_non_numbers_and_non_finite_are_invalid),
        cmocka_unit_test(test_wrong_length_values_are_refused),
        cmocka_unit_test(test_structure_errors_are_schema_errors),
        cmocka_unit_test(test_training_records_become_a_mixed_dataset),
        cmocka_unit_test(test_json_records_and_csv_build_the_same_dataset),
        cmocka_unit_test(test_issues_accumulate_over_a_batch),
        cmocka_unit_test(test_model_schema_is_used),
        cmocka_unit_test(test_missing_fields_are_imputed_up_to_the_allowed_share),
        cmocka_unit_test(test_unseen_categories_map_to_other_and_are_reported),
        cmocka_unit_test(test_numbers_as_strings_need_lenient_numbers),
        cmocka_unit_test(test_id_is_echoed_as_given),
        cmocka_unit_test(test_depth_scan_skips_strings),
        cmocka_unit_test(test_utf8_check_refuses_bad_sequences),
        cmocka_unit_test(test_json_string_escapes_and_replaces_bad_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
