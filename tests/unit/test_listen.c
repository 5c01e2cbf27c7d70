/* listen: the one reader of listen addresses (config, daemon and HTTP server share it). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aescore/listen.h"

static void test_parse_takes_both_shapes(void **state)
{
    ListenAddr a;
    (void) state;

    assert_int_equal(listen_parse("127.0.0.1:8080", &a), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_string_equal(a.port, "8080");
    assert_false(a.bracketed);
    assert_int_equal(listen_parse("[::1]:0", &a), 0);
    assert_string_equal(a.host, "::1");
    assert_string_equal(a.port, "0");
    assert_true(a.bracketed);
    assert_int_equal(listen_parse("localhost:65535", &a), 0);
}

static void test_parse_refuses_every_other_shape(void **state)
{
    static const char *const bad[] = {
        "",
        ":80",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:8x",
        "[::1]",
        "[]:80",
        "[::1]80",
        "[::g]:80",
        "a b:80",
        "host/x:80",
        "127.0.0.1:123456",
    };
    ListenAddr a;
    (void) state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(listen_parse(bad[i], &a), -EINVAL);
}

static void test_loopback_is_decided_exactly(void **state)
{
    static const struct {
        const char *text;
        bool loopback;
    } cases[] = {
        {"127.0.0.1:1", true}, {"127.255.0.9:1", true},  {"localhost:1", true},
        {"[::1]:1", true},     {"0.0.0.0:1", false},     {"[::]:1", false},
        {"10.0.0.1:1", false}, {"example.com:1", false}, {"[::ffff:127.0.0.1]:1", true},
    };
    ListenAddr a;
    (void) state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(listen_parse(cases[i].text, &a), 0);
        assert_int_equal(listen_is_loopback(&a), cases[i].loopback);
    }
}

static void test_resolve_and_format_round_trip(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    ListenAddr a;
    char err[128], text[64];
    (void) state;

    assert_int_equal(listen_parse("127.0.0.1:8080", &a), 0);
    assert_int_equal(listen_resolve(&a, &ss, &len, err, sizeof(err)), 0);
    listen_format(&ss, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:8080");
    assert_int_equal(listen_parse("[::1]:9", &a), 0);
    assert_int_equal(listen_resolve(&a, &ss, &len, err, sizeof(err)), 0);
    listen_format(&ss, text, sizeof(text));
    assert_string_equal(text, "[::1]:9");
    assert_true(listen_sockaddr_is_loopback((struct sockaddr *) &ss));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_takes_both_shapes),
        cmocka_unit_test(test_parse_refuses_every_other_shape),
        cmocka_unit_test(test_loopback_is_decided_exactly),
        cmocka_unit_test(test_resolve_and_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
