/* train_params: the table's rows are coherent, their defaults survive a round trip through
 * text, and set/check agree on bounds (the CLI-vs-HTTP walk is tests/integration's
 * test_params.py). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aescore/train_params.h"

static void test_every_row_has_a_unique_name_help_and_sane_bounds(void **state)
{
    (void) state;
    assert_true(train_param_count >= 15);
    for (size_t i = 0; i < train_param_count; i++) {
        const TrainParamDef *def = &train_param_table[i];

        assert_non_null(def->name);
        assert_true(strlen(def->help) > 10);
        assert_true(def->min <= def->max);
        assert_ptr_equal(train_param_find(def->name), def);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(train_param_table[j].name, def->name);
        assert_true(strchr(def->name, '-') == NULL); /* the CLI spells '_' as '-' */
    }
    assert_null(train_param_find("learning_rate"));
}

static void test_defaults_pass_the_check_and_survive_a_text_round_trip(void **state)
{
    TrainParams d, p;
    char text[256], err[256];

    (void) state;
    train_params_default(&d);
    assert_int_equal(train_params_check(&d, err, sizeof(err)), 0);
    p = d;
    for (size_t i = 0; i < train_param_count; i++) {
        const TrainParamDef *def = &train_param_table[i];
        TrainValue v = {.form = TRAIN_VALUE_TEXT, .text = text};

        train_params_format(&d, def, text, sizeof(text));
        if (def->type == TRAIN_PARAM_F1 || def->type == TRAIN_PARAM_QUANTILE ||
            def->type == TRAIN_PARAM_THRESHOLD)
            continue; /* these choose a threshold method: checked below */
        assert_int_equal(train_params_set(&p, def, &v, err, sizeof(err)), 0);
    }
    assert_memory_equal(&p, &d, sizeof(p));
}

static void test_set_refuses_out_of_bounds_and_names_what_came(void **state)
{
    TrainParams p;
    TrainValue v = {.form = TRAIN_VALUE_TEXT};
    char err[256];

    (void) state;
    train_params_default(&p);
    v.text = "0";
    assert_int_equal(train_params_set(&p, train_param_find("epochs"), &v, err, sizeof(err)),
                     TRAIN_PARAMS_E_VALUE);
    assert_string_equal(err, "epochs must be 1..100000, got '0'");
    v.text = "fast";
    assert_int_equal(train_params_set(&p, train_param_find("lr"), &v, err, sizeof(err)),
                     TRAIN_PARAMS_E_VALUE);
    assert_string_equal(err, "expected a number, got 'fast'");
    /* 1e-50 is a positive double but float 0: lr must be > 0 as stored */
    v.text = "1e-50";
    assert_int_equal(train_params_set(&p, train_param_find("lr"), &v, err, sizeof(err)),
                     TRAIN_PARAMS_E_VALUE);
    assert_true(p.lr == 1e-3f); /* unchanged */
    /* a JSON number that is not an integer is not a count */
    v = (TrainValue){.form = TRAIN_VALUE_NUMBER, .number = 1.5};
    assert_int_equal(train_params_set(&p, train_param_find("batch"), &v, err, sizeof(err)),
                     TRAIN_PARAMS_E_VALUE);
    /* seeds: any 64-bit value as text, at most 2^53 as a JSON number */
    v = (TrainValue){.form = TRAIN_VALUE_TEXT, .text = "18446744073709551615"};
    assert_int_equal(train_params_set(&p, train_param_find("seed"), &v, err, sizeof(err)), 0);
    assert_true(p.seed == UINT64_MAX);
    v = (TrainValue){.form = TRAIN_VALUE_NUMBER, .number = 9007199254740994.0};
    assert_int_equal(train_params_set(&p, train_param_find("seed"), &v, err, sizeof(err)),
                     TRAIN_PARAMS_E_VALUE);
}

static void test_hidden_takes_text_and_lists_alike(void **state)
{
    const TrainParamDef *def = train_param_find("hidden");
    const double list[] = {64, 16, 64};
    TrainValue text = {.form = TRAIN_VALUE_TEXT, .text = "64,16,64"};
    TrainValue nums = {.form = TRAIN_VALUE_LIST, .list = list, .n_list = 3};
    TrainParams a, b;
    char err[256];

    (void) state;
    train_params_default(&a);
    train_params_default(&b);
    assert_int_equal(train_params_set(&a, def, &text, err, sizeof(err)), 0);
    assert_int_equal(train_params_set(&b, def, &nums, err, sizeof(err)), 0);
    assert_int_equal(a.n_hidden, 3);
    assert_memory_equal(&a, &b, sizeof(a));
    text.text = "64,,16";
    assert_int_equal(train_params_set(&a, def, &text, err, sizeof(err)), TRAIN_PARAMS_E_VALUE);
    assert_string_equal(err, "expected 'auto' or up to 15 sizes 1..4096 like 64,16,64, "
                             "got '64,,16'");
}

static void test_two_threshold_choices_fail_the_check(void **state)
{
    TrainParams p;
    TrainValue q = {.form = TRAIN_VALUE_TEXT, .text = "0.9"};
    TrainValue on = {.form = TRAIN_VALUE_BOOL, .flag = true};
    char err[256];

    (void) state;
    train_params_default(&p);
    assert_int_equal(
        train_params_set(&p, train_param_find("threshold_quantile"), &q, err, sizeof(err)), 0);
    assert_int_equal(train_params_check(&p, err, sizeof(err)), 0);
    assert_true(p.threshold_method == THRESHOLD_QUANTILE && p.threshold_q == 0.9);
    assert_int_equal(train_params_set(&p, train_param_find("threshold_f1"), &on, err, sizeof(err)),
                     0);
    assert_int_equal(train_params_check(&p, err, sizeof(err)), TRAIN_PARAMS_E_VALUE);
    assert_string_equal(err, "choose one of threshold_quantile, threshold_f1, threshold");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_has_a_unique_name_help_and_sane_bounds),
        cmocka_unit_test(test_defaults_pass_the_check_and_survive_a_text_round_trip),
        cmocka_unit_test(test_set_refuses_out_of_bounds_and_names_what_came),
        cmocka_unit_test(test_hidden_takes_text_and_lists_alike),
        cmocka_unit_test(test_two_threshold_choices_fail_the_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
