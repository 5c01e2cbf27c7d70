/* Tests for config: defaults, every value form, the exact error messages (users grep for
 * them and the daemon prints them verbatim), print/load round trip, and that the shipped
 * config/aescored.conf is exactly what the key table generates. */
#undef NDEBUG
#include "aescore/config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aescore/log.h"

static char src_root[4096];

/* __FILE__ is "<root>/tests/unit/test_config.c", relative to the build directory (where
 * meson test runs us) or absolute. */
static void find_src_root(void)
{
    const char *suffix = "tests/unit/test_config.c";
    size_t len = strlen(__FILE__), slen = strlen(suffix);

    assert_true(len >= slen);
    snprintf(src_root, sizeof(src_root), "%.*s", (int) (len - slen), __FILE__);
    if (src_root[0] == '\0')
        snprintf(src_root, sizeof(src_root), "./");
}

static const char *data_path(const char *name)
{
    static char path[4096 + 64];

    snprintf(path, sizeof(path), "%stests/data/%s", src_root, name);
    return path;
}

/* Loads tests/data/name over the defaults and returns the code; err gets the message. */
static int load_fixture(const char *name, Config *c, char *err, size_t err_size)
{
    config_defaults(c);
    err[0] = '\0';
    return config_load(c, data_path(name), err, err_size);
}

static void assert_error(const char *fixture, const char *message)
{
    Config c;
    char err[512], expected[4096 + 512];

    assert_int_equal(load_fixture(fixture, &c, err, sizeof(err)), CONFIG_E_INVALID);
    snprintf(expected, sizeof(expected), "%s:%s", data_path(fixture), message);
    assert_string_equal(err, expected);
}

static void test_defaults_match_the_contract(void **state)
{
    Config c;

    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.model, "/var/lib/aescored/model.aes");
    assert_string_equal(c.bootstrap_data, "");
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.max_connections, 1024);
    assert_int_equal(c.connection_timeout, 15);
    assert_int_equal(c.connection_memory_limit, 8192);
    assert_int_equal(c.max_body_bytes, 16 * 1024 * 1024);
    assert_int_equal(c.max_retrain_bytes, 256 * 1024 * 1024);
    assert_int_equal(c.max_batch, 10000);
    assert_int_equal(c.min_retrain_rows, 100);
    assert_int_equal(c.top_features, 5);
    assert_int_equal(c.log_level, LOG_LEVEL_INFO);
    assert_string_equal(c.admin_token_file, "");
    assert_string_equal(c.score_token_file, "");
    assert_string_equal(c.tls_cert_file, "");
    assert_string_equal(c.tls_key_file, "");
    assert_false(c.allow_remote);
}

static void test_security_keys_take_paths(void **state)
{
    Config c;
    char err[512];

    config_defaults(&c);
    assert_int_equal(
        config_set(&c, "score_token_file", "/etc/aescored/score.token", "t", 1, err, sizeof(err)),
        0);
    assert_int_equal(
        config_set(&c, "tls_cert_file", "/etc/aescored/cert.pem", "t", 2, err, sizeof(err)), 0);
    assert_int_equal(
        config_set(&c, "tls_key_file", "/etc/aescored/key.pem", "t", 3, err, sizeof(err)), 0);
    assert_string_equal(c.score_token_file, "/etc/aescored/score.token");
    assert_string_equal(c.tls_cert_file, "/etc/aescored/cert.pem");
    assert_string_equal(c.tls_key_file, "/etc/aescored/key.pem");
    /* empty is allowed (the default: off) */
    assert_int_equal(config_set(&c, "tls_key_file", "", "t", 4, err, sizeof(err)), 0);
    assert_string_equal(c.tls_key_file, "");
    assert_int_equal(config_set(&c, "score_token", "/x", "t", 5, err, sizeof(err)),
                     CONFIG_E_INVALID);
    assert_string_equal(err, "t:5: unknown key 'score_token'");
}

static void test_model_name_is_one_path_segment(void **state)
{
    Config c;
    char err[512];

    (void) state;
    config_defaults(&c);
    assert_string_equal(c.model_name, "aescore");
    assert_int_equal(config_set(&c, "model_name", "credit-ae_2.1", "t", 1, err, sizeof(err)), 0);
    assert_string_equal(c.model_name, "credit-ae_2.1");
    for (const char *const *bad = (const char *const[]){"", "a/b", "..", ".", "a b", "a%2f", NULL};
         *bad != NULL; bad++) {
        assert_int_equal(config_set(&c, "model_name", *bad, "t", 2, err, sizeof(err)),
                         CONFIG_E_INVALID);
        assert_string_equal(c.model_name, "credit-ae_2.1");
    }
}

static void test_load_reads_every_value_form(void **state)
{
    Config c;
    char err[512];

    assert_int_equal(load_fixture("config_valid.conf", &c, err, sizeof(err)), 0);
    assert_string_equal(c.listen, "[::1]:9090");
    assert_string_equal(c.model, "/tmp/aescore-test/model.aes");
    assert_string_equal(c.bootstrap_data, "/tmp/aescore-test/normal.csv");
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.max_body_bytes, 2 * 1024 * 1024);
    assert_int_equal(c.max_retrain_bytes, (size_t) 1024 * 1024 * 1024);
    assert_int_equal(c.connection_memory_limit, 131072);
    assert_true(c.allow_remote);
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c.top_features, 0);
    /* untouched keys keep their defaults */
    assert_int_equal(c.max_batch, 10000);
}

static void test_load_rejects_unknown_key(void **state)
{
    assert_error("config_unknown_key.conf", "3: unknown key 'thread'");
}

static void test_load_rejects_out_of_range_integer(void **state)
{
    assert_error("config_bad_threads.conf",
                 "3: invalid value for 'threads': expected an integer 0..256");
}

static void test_load_rejects_section_header(void **state)
{
    assert_error("config_section.conf",
                 "2: sections are not used: write every key at the top level");
}

static void test_load_rejects_line_without_equals(void **state)
{
    assert_error("config_syntax.conf", "2: syntax error: expected 'key = value'");
}

static void test_load_rejects_duplicate_key(void **state)
{
    assert_error("config_duplicate.conf", "3: duplicate key 'threads' (first set on line 1)");
}

static void test_load_rejects_listen_without_port(void **state)
{
    assert_error("config_bad_listen.conf",
                 "1: invalid value for 'listen': expected HOST:PORT with a port 0..65535");
}

static void test_load_rejects_unknown_size_suffix(void **state)
{
    assert_error("config_bad_size.conf", "1: invalid value for 'max_body_bytes': expected a "
                                         "size 1K..1G (bytes, or with a K, M or G suffix)");
}

static void test_load_reports_missing_file_with_errno(void **state)
{
    Config c;
    char err[512], expected[4096 + 512];

    assert_int_equal(load_fixture("config_does_not_exist.conf", &c, err, sizeof(err)), -ENOENT);
    snprintf(expected, sizeof(expected), "%s: cannot read: No such file or directory",
             data_path("config_does_not_exist.conf"));
    assert_string_equal(err, expected);
}

static void test_set_names_the_flag_in_errors(void **state)
{
    Config c;
    char err[256];

    config_defaults(&c);
    assert_int_equal(config_set(&c, "listen", "127.0.0.1", "--listen", 0, err, sizeof(err)),
                     CONFIG_E_INVALID);
    assert_string_equal(
        err, "--listen: invalid value for 'listen': expected HOST:PORT with a port 0..65535");
    assert_string_equal(c.listen, "127.0.0.1:8080"); /* unchanged on failure */
    assert_int_equal(config_set(&c, "listen", "127.0.0.1:0", "--listen", 0, err, sizeof(err)), 0);
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_int_equal(config_set(&c, "model", "", "--model", 0, err, sizeof(err)), CONFIG_E_INVALID);
    assert_string_equal(err, "--model: invalid value for 'model': expected a non-empty path "
                             "shorter than 4096 bytes");
}

static void test_set_checks_bounds_and_suffixes(void **state)
{
    static const struct {
        const char *key, *value;
        int ok;
    } cases[] = {
        {"threads", "256", 1},
        {"threads", "257", 0},
        {"threads", "-1", 0},
        {"threads", "4x", 0},
        {"threads", "", 0},
        {"max_body_bytes", "1K", 1},
        {"max_body_bytes", "1023", 0},
        {"max_body_bytes", "1g", 1},
        {"max_body_bytes", "2G", 0},
        {"max_body_bytes", "99999999999999999999", 0},
        {"allow_remote", "true", 1},
        {"allow_remote", "maybe", 0},
        {"log_level", "warning", 1},
        {"log_level", "verbose", 0},
        {"listen", "[::]:80", 1},
        {"listen", "[]:80", 0},
        {"listen", "host:65536", 0},
        {"listen", "my-host.example:443", 1},
        {"listen", "a b:1", 0},
        {"connection_timeout", "0", 0},
        {"min_retrain_rows", "9", 0},
        {"bootstrap_data", "", 1},
    };
    Config c;
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r;

        config_defaults(&c);
        r = config_set(&c, cases[i].key, cases[i].value, NULL, 0, err, sizeof(err));
        if (r != (cases[i].ok ? 0 : CONFIG_E_INVALID))
            fail_msg("%s = '%s': got %d (%s)", cases[i].key, cases[i].value, r, err);
    }
}

static void test_print_then_load_round_trips(void **state)
{
    Config a, b;
    char err[512];
    char path[] = "/tmp/aescore-test-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;

    assert_true(fd >= 0);
    assert_int_equal(load_fixture("config_valid.conf", &a, err, sizeof(err)), 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    config_print(&a, f);
    assert_int_equal(fclose(f), 0);
    config_defaults(&b);
    assert_int_equal(config_load(&b, path, err, sizeof(err)), 0);
    unlink(path);
    assert_memory_equal(&a, &b, sizeof(a));
}

/* A value that starts with ';' (inih takes "key=;x" as the value ";x") is printed so that
 * it reads back the same, not as "key = ;x", where ';' after a blank starts a comment. Found
 * by fuzz_config. */
static void test_a_value_starting_with_a_semicolon_round_trips(void **state)
{
    Config a, b;
    char err[512];
    char in[] = "/tmp/aescore-test-config-XXXXXX", out[] = "/tmp/aescore-test-config-XXXXXX";
    int fd_in = mkstemp(in), fd_out = mkstemp(out);
    FILE *f;

    (void) state;
    assert_true(fd_in >= 0 && fd_out >= 0);
    assert_true(write(fd_in, "bootstrap_data=;x\n", 18) == 18);
    close(fd_in);
    config_defaults(&a);
    assert_int_equal(config_load(&a, in, err, sizeof(err)), 0);
    assert_string_equal(a.bootstrap_data, ";x");
    f = fdopen(fd_out, "w");
    assert_non_null(f);
    config_print(&a, f);
    assert_int_equal(fclose(f), 0);
    config_defaults(&b);
    assert_int_equal(config_load(&b, out, err, sizeof(err)), 0);
    unlink(in);
    unlink(out);
    assert_string_equal(b.bootstrap_data, ";x");
    assert_memory_equal(&a, &b, sizeof(a));
}

static void test_shipped_file_is_generated_from_the_table(void **state)
{
    char path[4096 + 64];
    char *expected = NULL, *actual = NULL;
    size_t expected_len = 0;
    long actual_len;
    FILE *f;
    Config c;
    char err[512];

    f = open_memstream(&expected, &expected_len);
    assert_non_null(f);
    config_print_template(f);
    assert_int_equal(fclose(f), 0);

    snprintf(path, sizeof(path), "%sconfig/aescored.conf", src_root);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    actual_len = ftell(f);
    rewind(f);
    actual = calloc(1, (size_t) actual_len + 1);
    assert_non_null(actual);
    assert_int_equal(fread(actual, 1, (size_t) actual_len, f), (size_t) actual_len);
    fclose(f);
    if (strcmp(expected, actual) != 0)
        fail_msg("config/aescored.conf is stale; regenerate it from config_print_template:\n%s",
                 expected);

    /* and, everything being commented out, it loads to the defaults */
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
    free(expected);
    free(actual);
}

/* The rules across keys live with the config: config_check, used by aescored at start and
 * by --check-config alike. */
static void test_check_applies_the_rules_across_keys(void **state)
{
    Config c;
    char err[512];
    (void) state;

    config_defaults(&c);
    assert_int_equal(config_check(&c, false, err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "listen", "0.0.0.0:8080", NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(config_check(&c, false, err, sizeof(err)), CONFIG_E_INVALID);
    assert_non_null(strstr(err, "refusing to listen on 0.0.0.0:8080: not a loopback address"));
    /* the listen key is not used when systemd passes the socket */
    assert_int_equal(config_check(&c, true, err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "allow_remote", "yes", NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(config_check(&c, false, err, sizeof(err)), 0);
    assert_true(config_remote_allowed(&c));

    config_defaults(&c);
    assert_false(config_remote_allowed(&c));
    assert_int_equal(config_set(&c, "tls_cert_file", "/x/cert.pem", NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(config_check(&c, true, err, sizeof(err)), CONFIG_E_INVALID);
    assert_string_equal(err, "tls_cert_file and tls_key_file must be set together");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_the_contract),
        cmocka_unit_test(test_security_keys_take_paths),
        cmocka_unit_test(test_model_name_is_one_path_segment),
        cmocka_unit_test(test_load_reads_every_value_form),
        cmocka_unit_test(test_load_rejects_unknown_key),
        cmocka_unit_test(test_load_rejects_out_of_range_integer),
        cmocka_unit_test(test_load_rejects_section_header),
        cmocka_unit_test(test_load_rejects_line_without_equals),
        cmocka_unit_test(test_load_rejects_duplicate_key),
        cmocka_unit_test(test_load_rejects_listen_without_port),
        cmocka_unit_test(test_load_rejects_unknown_size_suffix),
        cmocka_unit_test(test_load_reports_missing_file_with_errno),
        cmocka_unit_test(test_set_names_the_flag_in_errors),
        cmocka_unit_test(test_set_checks_bounds_and_suffixes),
        cmocka_unit_test(test_print_then_load_round_trips),
        cmocka_unit_test(test_a_value_starting_with_a_semicolon_round_trips),
        cmocka_unit_test(test_shipped_file_is_generated_from_the_table),
        cmocka_unit_test(test_check_applies_the_rules_across_keys),
    };

    find_src_root();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
