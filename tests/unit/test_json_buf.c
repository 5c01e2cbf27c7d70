/* Unit tests of json_buf.h's numbers: json_buf_float prints what snprintf's %.9g prints, for
 * every kind of double, byte for byte (its own digit loop takes the common cases; the rest,
 * and halves it cannot round by its approximation, go to snprintf). */
#undef NDEBUG
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
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

/* json_buf_float(v) against snprintf %.9g; true when they agree. */
static void check(double v)
{
    JsonBuf b = JSON_BUF_INIT;
    char want[64];

    snprintf(want, sizeof(want), isfinite(v) ? "%.9g" : "null", v);
    json_buf_float(&b, v);
    assert_false(b.oom);
    if (strcmp(b.data, want) != 0)
        fail_msg("json_buf_float(%a) wrote %s; %%.9g is %s", v, b.data, want);
    json_buf_deinit(&b);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_values_print_as_g9),
        cmocka_unit_test(test_random_floats_print_as_g9),
        cmocka_unit_test(test_random_doubles_print_as_g9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
