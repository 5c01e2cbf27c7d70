/* Unit tests of json_buf.h's numbers: json_buf_float prints what snprintf's %.9g prints, for
 * every kind of double, byte for byte (its own digit loop takes the common cases; the rest,
 * and halves it cannot round by its approximation, go to snprintf). */
#undef NDEBUG
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/service/json_buf.h"

static uint64_t next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* json_buf_float(v) against snprintf %.9g, both ways it writes: into an empty buffer (the
 * digits made aside, then copied) and after a piece with room left (made in place). */
static void check(double v)
{
    JsonBuf fresh = JSON_BUF_INIT, roomy = JSON_BUF_INIT;
    char want[64];

    snprintf(want, sizeof(want), isfinite(v) ? "%.9g" : "null", v);
    json_buf_float(&fresh, v);
    assert_false(fresh.oom);
    if (strcmp(fresh.data, want) != 0)
        fail_msg("json_buf_float(%a) wrote %s; %%.9g is %s", v, fresh.data, want);
    json_buf_put(&roomy, "[", 1);
    json_buf_float(&roomy, v);
    assert_false(roomy.oom);
    if (strcmp(roomy.data + 1, want) != 0 || roomy.len != 1 + strlen(want))
        fail_msg("json_buf_float(%a) in place wrote %s; %%.9g is %s", v, roomy.data + 1, want);
    json_buf_deinit(&fresh);
    json_buf_deinit(&roomy);
}

static void test_listed_values_print_as_g9(void **state)
{
    static const double listed[] = {
        0.0,      -0.0,          1.0,          -1.0,       0.5,           0.1,
        1e-4,     9.99999999e-5, 1e-5,         123456789,  999999999,     999999999.5,
        1e9,      1e9 + 1,       1234567890,   99999999.5, 0.0847671032,  4.0424633,
        100,      100.000001,    3.0000000049, 1e-14,      9.9999999e-15, 1e30,
        1e29,     FLT_MAX,       FLT_MIN,      DBL_MAX,    DBL_MIN,       5e-324,
        INFINITY, -INFINITY,     NAN,          0.30974625, 12.5,          -2.5e-7};

    (void) state;
    for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
        check(listed[i]);
}

/* Every float is a double the daemon prints: random bit patterns, and floats near the
 * halves between two 9-digit decimals. */
static void test_random_floats_print_as_g9(void **state)
{
    uint64_t s = 20261203;

    (void) state;
    for (size_t i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t) next(&s);
        float f;

        memcpy(&f, &bits, sizeof(f));
        check((double) f);
    }
    for (size_t i = 0; i < 200000; i++) {
        /* a 9-digit decimal plus a half, scaled: the rounding edge */
        double d = (double) (100000000 + next(&s) % 900000000) + 0.5;
        int e = (int) (next(&s) % 30) - 15;
        check((float) (d * pow(10, e)));
        check(d * pow(10, e));
    }
}

static void test_random_doubles_print_as_g9(void **state)
{
    uint64_t s = 7;

    (void) state;
    for (size_t i = 0; i < 1000000; i++) {
        uint64_t bits = next(&s);
        double d;

        memcpy(&d, &bits, sizeof(d));
        check(d);
        check(ldexp((double) (bits >> 11), -(int) (bits % 80))); /* scores, percentiles */
    }
}

/* ASCII text as JSON writes it, byte by byte (the rule json_buf_string follows). */
static size_t reference_string(const char *s, size_t n, char *out)
{
    size_t o = 0;

    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == '"' || c == '\\')
            o += (size_t) sprintf(out + o, "\\%c", c);
        else if (c < 0x20)
            o += (size_t) sprintf(out + o, "\\u%04x", c);
        else
            out[o++] = (char) c;
    }
    out[o++] = '"';
    out[o] = '\0';
    return o;
}

/* Strings of ASCII bytes, plain ones (copied whole) and ones with a quote, a backslash or
 * a control byte anywhere (escaped), appended after other text: the bytes JSON asks for. */
static void test_ascii_strings_are_written_as_json_asks(void **state)
{
    uint64_t s = 11;
    char text[40], want[6 * 40 + 3];
    (void) state;

    for (int k = 0; k < 20000; k++) {
        size_t n = (size_t) (next(&s) % sizeof(text)), len;
        bool plain = k % 2 == 0;
        JsonBuf b = JSON_BUF_INIT;

        for (size_t i = 0; i < n; i++)
            text[i] = (char) (plain ? 0x20 + next(&s) % 0x5f : next(&s) % 0x80);
        for (size_t i = 0; plain && i < n; i++)
            if (text[i] == '"' || text[i] == '\\')
                text[i] = 'q';
        json_buf_puts(&b, "[1,");
        json_buf_string(&b, text, n);
        len = reference_string(text, n, want);
        assert_false(b.oom);
        assert_int_equal(b.len, 3 + len);
        assert_memory_equal(b.data, "[1,", 3);
        assert_memory_equal(b.data + 3, want, len);
        assert_int_equal(b.data[b.len], '\0');
        json_buf_deinit(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_values_print_as_g9),
        cmocka_unit_test(test_random_floats_print_as_g9),
        cmocka_unit_test(test_random_doubles_print_as_g9),
        cmocka_unit_test(test_ascii_strings_are_written_as_json_asks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
