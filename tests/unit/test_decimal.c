/* Unit tests for decimal: what each grammar accepts and refuses (with which code), what
 * decimal_scan consumes, and bit-identity with strtod_l / strtof_l in the C locale over a
 * large seeded set of numbers that exercises the exact fast path, the strtod path, digits
 * beyond the 19 kept, subnormals, overflow and the midpoints between adjacent floats (where
 * rounding a correctly rounded double to float can differ from rounding once).
 */
#undef NDEBUG
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "aescore/decimal.h"

#define N_RANDOM 200000 /* numbers per random test */

static locale_t c_locale;

static int setup(void **state)
{
    (void) state;
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
    return c_locale == (locale_t) 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void) state;
    freelocale(c_locale);
    return 0;
}

static uint64_t next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int below(uint64_t *s, int n) /* 0..n-1 */
{
    return (int) (next(s) % (uint64_t) n);
}

/* Parses s (NUL-terminated) with both entry points from an exact-size heap copy, so a read
 * past len is an ASan error rather than a lucky NUL. */
static int parse_d(const char *s, DecimalGrammar g, double *out)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    int r;

    assert_non_null(copy);
    memcpy(copy, s, len);
    r = decimal_parse(copy, len, g, out);
    free(copy);
    return r;
}

static int parse_f(const char *s, DecimalGrammar g, float *out)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    int r;

    assert_non_null(copy);
    memcpy(copy, s, len);
    r = decimal_parse_float(copy, len, g, out);
    free(copy);
    return r;
}

static void refuses(const char *s, DecimalGrammar g, int code)
{
    double d = 12345;
    float f = 12345;

    if (parse_d(s, g, &d) != code || parse_f(s, g, &f) != code) {
        print_error("'%s' (grammar %d): %d / %d, expected %d\n", s, (int) g, parse_d(s, g, &d),
                    parse_f(s, g, &f), code);
        fail();
    }
    assert_true(d == 12345 && f == 12345); /* nothing written on failure */
}

/* s parses in grammar g to exactly what strtod_l / strtof_l make of it (DECIMAL_E_RANGE for
 * the float when strtof_l overflows). */
static void accepts(const char *s, DecimalGrammar g)
{
    double d, want_d = strtod_l(s, NULL, c_locale);
    float f, want_f = strtof_l(s, NULL, c_locale);
    int rd = parse_d(s, g, &d), rf = parse_f(s, g, &f);
    int want_rf = isinf(want_f) ? DECIMAL_E_RANGE : 0;

    if (rd != 0 || rf != want_rf) {
        print_error("'%s' (grammar %d): %d / %d, expected 0 / %d\n", s, (int) g, rd, rf, want_rf);
        fail();
    }
    if (memcmp(&d, &want_d, sizeof(d)) != 0 || (rf == 0 && memcmp(&f, &want_f, sizeof(f)) != 0)) {
        print_error("'%s': %a / %a, strtod %a / strtof %a\n", s, d, (double) f, want_d,
                    (double) want_f);
        fail();
    }
}

/* ------------------------------------------------------------------ grammars */

static void test_json_refuses_what_rfc_8259_refuses(void **state)
{
    static const char *const syntax[] = {
        "",    "01",  "-01", "00",   "1.",     ".5",      "+1",   "0x10",  "0X10",
        "1e",  "1e+", "1E-", "-",    "--1",    "-.5",     "1..2", "1.5.3", "1e5.5",
        " 1",  "1 ",  "1,5", "1_0",  "e5",     "1.e5",    "0x",   "1f",    "0b1",
        "\t1", "1\n", "+.5", "inf1", "nan(1)", "infinit", "-in",
    };
    static const char *const nonfinite[] = {"inf",      "nan",       "NaN",  "-inf", "+inf",
                                            "INFINITY", "-Infinity", "+nan", "-NAN", "InFiNiTy"};

    (void) state;
    for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++)
        refuses(syntax[i], DECIMAL_JSON, DECIMAL_E_SYNTAX);
    for (size_t i = 0; i < sizeof(nonfinite) / sizeof(nonfinite[0]); i++)
        refuses(nonfinite[i], DECIMAL_JSON, DECIMAL_E_NONFINITE);
}

static void test_json_accepts_what_rfc_8259_accepts(void **state)
{
    static const char *const ok[] = {
        "0",
        "-0",
        "1",
        "-1",
        "0.5",
        "-0.5",
        "10",
        "123456789",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "1.25e3",
        "0e0",
        "0E-0",
        "-0.0e+00",
        "1e0009",
        "0.000001",
        "9007199254740993",
        "1.7976931348623157e308",
        "4.9e-324",
    };

    (void) state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        accepts(ok[i], DECIMAL_JSON);
}

static void test_text_accepts_what_people_type(void **state)
{
    static const char *const ok[] = {
        "1.",  ".5",  "+1",    "-.5",   "+.5e1", "1.e5", "007",  "0.",      "-0",
        "+0.", "1E5", "1e+05", "00.25", "-00",   "01",   "123.", ".000001", "+1.5E-3",
    };

    (void) state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        accepts(ok[i], DECIMAL_TEXT);
}

static void test_text_refuses_hex_blanks_and_words_with_the_right_code(void **state)
{
    static const char *const syntax[] = {
        "",      "0x10", "0X1p3", "0x1.8p1", ".",      "+",       "-",     "+-1",
        "e5",    ".e5",  "1e",    "1e+",     " 1",     "1 ",      "1_000", "1,5",
        "1.5.3", "..5",  "1f",    "++1",     "nan(1)", "infinit", "1e5e5",
    };
    static const char *const nonfinite[] = {"inf", "nan",      "NaN",       "-inf",      "+inf",
                                            "Inf", "infinity", "-INFINITY", "+Infinity", "-nan"};

    (void) state;
    for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++)
        refuses(syntax[i], DECIMAL_TEXT, DECIMAL_E_SYNTAX);
    for (size_t i = 0; i < sizeof(nonfinite) / sizeof(nonfinite[0]); i++)
        refuses(nonfinite[i], DECIMAL_TEXT, DECIMAL_E_NONFINITE);
}

static void test_overflow_is_a_range_error_and_underflow_is_zero(void **state)
{
    double d;
    float f;

    (void) state;
    for (int g = DECIMAL_JSON; g <= DECIMAL_TEXT; g++) {
        assert_int_equal(parse_d("1e999", (DecimalGrammar) g, &d), DECIMAL_E_RANGE);
        assert_int_equal(parse_d("-1e999", (DecimalGrammar) g, &d), DECIMAL_E_RANGE);
        assert_int_equal(parse_d("1.8e308", (DecimalGrammar) g, &d), DECIMAL_E_RANGE);
        assert_int_equal(parse_d("1e99999999999999999999", (DecimalGrammar) g, &d),
                         DECIMAL_E_RANGE);
        assert_int_equal(parse_f("1e39", (DecimalGrammar) g, &f), DECIMAL_E_RANGE);
        assert_int_equal(parse_f("-1e39", (DecimalGrammar) g, &f), DECIMAL_E_RANGE);
        /* just above FLT_MAX + half an ulp, and a 20-digit spelling of 1e39 */
        assert_int_equal(parse_f("3.4028236e38", (DecimalGrammar) g, &f), DECIMAL_E_RANGE);
        assert_int_equal(parse_f("10000000000000000000e20", (DecimalGrammar) g, &f),
                         DECIMAL_E_RANGE);
        /* 1e39 is a fine double */
        assert_int_equal(parse_d("1e39", (DecimalGrammar) g, &d), 0);
        assert_true(d == 1e39);
        /* below FLT_MAX + half an ulp: rounds down to FLT_MAX */
        assert_int_equal(parse_f("3.4028235e38", (DecimalGrammar) g, &f), 0);
        assert_true(f == FLT_MAX);
        /* underflow is not an error: the value is the (signed) zero strtod gives */
        assert_int_equal(parse_d("1e-400", (DecimalGrammar) g, &d), 0);
        assert_true(d == 0 && !signbit(d));
        assert_int_equal(parse_d("-1e-99999999999999999999", (DecimalGrammar) g, &d), 0);
        assert_true(d == 0 && signbit(d));
        assert_int_equal(parse_f("1e-50", (DecimalGrammar) g, &f), 0);
        assert_true(f == 0);
        /* zero with any exponent is zero */
        assert_int_equal(parse_d("0e99999", (DecimalGrammar) g, &d), 0);
        assert_true(d == 0 && !signbit(d));
    }
    accepts("-0", DECIMAL_JSON);
    assert_int_equal(parse_f("-0", DECIMAL_JSON, &f), 0);
    assert_true(f == 0 && signbit(f));
}

static void test_numbers_up_to_the_length_limit_only(void **state)
{
    char s[DECIMAL_MAX_LEN + 2];
    double d;

    (void) state;
    memset(s, '0', sizeof(s));
    s[0] = '1';
    s[DECIMAL_MAX_LEN] = '\0'; /* 1 and 63 zeros */
    assert_int_equal(parse_d(s, DECIMAL_JSON, &d), 0);
    assert_true(d == 1e63);
    s[DECIMAL_MAX_LEN] = '0';
    s[DECIMAL_MAX_LEN + 1] = '\0';
    assert_int_equal(parse_d(s, DECIMAL_JSON, &d), DECIMAL_E_SYNTAX);
    assert_int_equal(parse_d(s, DECIMAL_TEXT, &d), DECIMAL_E_SYNTAX);
}

static void test_parse_reads_len_bytes_only(void **state)
{
    const char s[] = "12345e7";
    double d;
    float f;

    (void) state;
    assert_int_equal(decimal_parse(s, 3, DECIMAL_JSON, &d), 0);
    assert_true(d == 123);
    assert_int_equal(decimal_parse_float(s, 6, DECIMAL_TEXT, &f), DECIMAL_E_SYNTAX); /* "12345e" */
    assert_int_equal(decimal_parse(s, 0, DECIMAL_TEXT, &d), DECIMAL_E_SYNTAX);
}

/* ------------------------------------------------------------------ decimal_scan */

static void scans(const char *s, DecimalGrammar g, size_t want_used)
{
    size_t len = strlen(s), used = 99;
    char *copy = malloc(len > 0 ? len : 1);
    double d = 0, want;
    char num[DECIMAL_MAX_LEN + 1];
    int r;

    assert_non_null(copy);
    memcpy(copy, s, len);
    r = decimal_scan(copy, len, g, &d, &used);
    free(copy);
    if (r != 0 || used != want_used) {
        print_error("scan '%s' (grammar %d): %d, used %zu, expected 0, used %zu\n", s, (int) g, r,
                    used, want_used);
        fail();
    }
    memcpy(num, s, want_used);
    num[want_used] = '\0';
    want = strtod_l(num, NULL, c_locale);
    assert_memory_equal(&d, &want, sizeof(d));
}

static void test_scan_stops_where_the_json_grammar_stops(void **state)
{
    double d = 7;
    size_t used = 99;

    (void) state;
    scans("01", DECIMAL_JSON, 1);
    scans("-01", DECIMAL_JSON, 2);
    scans("1.e5", DECIMAL_JSON, 1);
    scans("1.", DECIMAL_JSON, 1);
    scans("1e", DECIMAL_JSON, 1);
    scans("1e+", DECIMAL_JSON, 1);
    scans("1E-x", DECIMAL_JSON, 1);
    scans("1.5e3,", DECIMAL_JSON, 5);
    scans("-0.5e+3}", DECIMAL_JSON, 7);
    scans("12 34", DECIMAL_JSON, 2);
    scans("0x10", DECIMAL_JSON, 1);
    scans("1.5.3", DECIMAL_JSON, 3);
    scans("123]", DECIMAL_JSON, 3);
    scans("2e5.5", DECIMAL_JSON, 3);
    scans("7", DECIMAL_JSON, 1);
    /* TEXT goes on through a bare point */
    scans("1.e5", DECIMAL_TEXT, 4);
    scans("1.x", DECIMAL_TEXT, 2);
    scans("+.5;", DECIMAL_TEXT, 3);
    scans("01", DECIMAL_TEXT, 2);
    /* no number starts there */
    assert_int_equal(decimal_scan("-x", 2, DECIMAL_JSON, &d, &used), DECIMAL_E_SYNTAX);
    assert_int_equal(decimal_scan(".5", 2, DECIMAL_JSON, &d, &used), DECIMAL_E_SYNTAX);
    assert_int_equal(decimal_scan("+1", 2, DECIMAL_JSON, &d, &used), DECIMAL_E_SYNTAX);
    assert_int_equal(decimal_scan("inf", 3, DECIMAL_JSON, &d, &used), DECIMAL_E_SYNTAX);
    assert_int_equal(decimal_scan("", 0, DECIMAL_JSON, &d, &used), DECIMAL_E_SYNTAX);
    assert_int_equal(decimal_scan(".", 1, DECIMAL_TEXT, &d, &used), DECIMAL_E_SYNTAX);
    assert_true(d == 7 && used == 99);
    assert_int_equal(decimal_scan("1e999,", 6, DECIMAL_JSON, &d, &used), DECIMAL_E_RANGE);
}

/* ------------------------------------------------------------------ against strtod */

/* A random number of grammar g into buf (NUL-terminated): 1..25 significant digits, a
 * decimal exponent of the value in -330..330, in one of several spellings. About half of
 * them fit the exact fast path (at most 15 digits, exponent within +-22). */
static void random_number(uint64_t *rng, DecimalGrammar g, char *buf)
{
    char digits[32];
    int fast = below(rng, 2), nd = fast ? 1 + below(rng, 15) : 1 + below(rng, 25);
    int e = fast ? below(rng, 45) - 22 : below(rng, 661) - 330;
    int point, n = 0, style = below(rng, 4);
    bool neg = below(rng, 2);

    for (int i = 0; i < nd; i++)
        digits[i] = (char) ('0' + below(rng, 10));
    digits[0] = (char) ('1' + below(rng, 9));
    if (below(rng, 4) == 0) /* trailing zeros: long, but nothing truncated */
        for (int i = nd / 2; i < nd; i++)
            digits[i] = '0';
    if (below(rng, 8) == 0 && nd > 2) /* ...5000: a decimal midpoint */
        for (int i = nd - 1; i >= 0; i--)
            digits[i] = i == nd / 2 ? '5' : (i > nd / 2 ? '0' : digits[i]);
    digits[nd] = '\0';
    if (neg)
        buf[n++] = '-';
    else if (g == DECIMAL_TEXT && below(rng, 4) == 0)
        buf[n++] = '+';
    /* value = digits * 10^(e - nd + 1 + ...): the point after `point` digits */
    point = style == 0 ? nd : (style == 1 ? 1 : below(rng, nd) + 1);
    if (g == DECIMAL_TEXT && style == 3 && below(rng, 2))
        point = 0; /* ".123e5" */
    if (g == DECIMAL_TEXT && point == 0)
        n += sprintf(buf + n, ".%s", digits);
    else if (point < nd)
        n += sprintf(buf + n, "%.*s.%s", point, digits, digits + point);
    else
        n += sprintf(buf + n, "%s%s", digits, g == DECIMAL_TEXT && below(rng, 8) == 0 ? "." : "");
    /* the exponent that makes the value digits[0].digits[1..] * 10^e */
    e -= point - 1;
    if (e != 0 || below(rng, 4) == 0)
        sprintf(buf + n, "%c%s%d", below(rng, 2) ? 'e' : 'E', e >= 0 && below(rng, 2) ? "+" : "",
                e);
}

static void test_random_numbers_match_strtod_and_strtof_bit_for_bit(void **state)
{
    uint64_t rng = 20261202;
    char buf[96];
    int plain = 0;

    (void) state;
    for (int k = 0; k < N_RANDOM; k++) {
        DecimalGrammar g = k % 2 == 0 ? DECIMAL_JSON : DECIMAL_TEXT;
        double d, want_d;
        float f, want_f;
        int rd, rf;

        random_number(&rng, g, buf);
        assert_true(strlen(buf) <= DECIMAL_MAX_LEN);
        want_d = strtod_l(buf, NULL, c_locale);
        want_f = strtof_l(buf, NULL, c_locale);
        rd = parse_d(buf, g, &d);
        rf = parse_f(buf, g, &f);
        if (rd != (isinf(want_d) ? DECIMAL_E_RANGE : 0) ||
            rf != (isinf(want_f) ? DECIMAL_E_RANGE : 0) ||
            (rd == 0 && memcmp(&d, &want_d, sizeof(d)) != 0) ||
            (rf == 0 && memcmp(&f, &want_f, sizeof(f)) != 0)) {
            print_error("'%s' (grammar %d): %d %a / %d %a; strtod %a, strtof %a\n", buf, (int) g,
                        rd, d, rf, (double) f, want_d, (double) want_f);
            fail();
        }
        if (g == DECIMAL_JSON) { /* and the scanner the JSON readers use, fast path and all */
            size_t used = 0;

            rd = decimal_scan(buf, strlen(buf), g, &d, &used);
            if (rd != (isinf(want_d) ? DECIMAL_E_RANGE : 0) || used != strlen(buf) ||
                (rd == 0 && memcmp(&d, &want_d, sizeof(d)) != 0)) {
                print_error("scan '%s': %d %a, used %zu; strtod %a\n", buf, rd, d, used, want_d);
                fail();
            }
            /* the inline reader records_fast calls first: where it answers, the same */
            if (decimal_json_plain(buf, buf + strlen(buf), &d, &used)) {
                plain++;
                if (used != strlen(buf) || memcmp(&d, &want_d, sizeof(d)) != 0) {
                    print_error("plain '%s': %a, used %zu; strtod %a\n", buf, d, used, want_d);
                    fail();
                }
            }
        }
    }
    assert_true(plain > 0);
}

/* Numbers of the shape decimal_json_plain takes, -?(0|[1-9]d*)(.d+)? with 1 to 21 digits:
 * where it answers (up to 19 digits that fit 2^53) it gives strtod's bits and length, and
 * it answers for every one of at most 15 digits. */
static void test_plain_json_numbers_match_strtod(void **state)
{
    uint64_t rng = 20261203;
    char buf[48];
    int answered = 0;

    (void) state;
    for (int k = 0; k < N_RANDOM; k++) {
        size_t n = 0, digits = 1 + next(&rng) % 21, n_int = 1 + next(&rng) % digits;
        double d = 0, want;
        size_t used = 0;
        bool ok;

        if (next(&rng) % 2)
            buf[n++] = '-';
        for (size_t i = 0; i < digits; i++) {
            if (i == n_int)
                buf[n++] = '.';
            buf[n++] = (char) ('0' + next(&rng) % 10);
        }
        if (n_int > 1 && buf[n - digits - (digits > n_int)] == '0')
            buf[n - digits - (digits > n_int)] = '7'; /* no leading zero before more digits */
        buf[n] = '\0';
        want = strtod_l(buf, NULL, c_locale);
        ok = decimal_json_plain(buf, buf + n, &d, &used);
        if ((ok && (used != n || memcmp(&d, &want, sizeof(d)) != 0)) || (!ok && digits <= 15)) {
            print_error("plain '%s': %d %a, used %zu; strtod %a\n", buf, ok, d, used, want);
            fail();
        }
        answered += ok;
    }
    print_message("%d of %d plain-shaped numbers answered inline\n", answered, N_RANDOM);
}

static void test_shortest_round_trips_of_random_doubles_and_floats(void **state)
{
    uint64_t rng = 99;
    char buf[64];

    (void) state;
    for (int k = 0; k < N_RANDOM / 4; k++) {
        uint64_t bits = next(&rng);
        uint32_t fbits = (uint32_t) next(&rng);
        double d;
        float f;

        memcpy(&d, &bits, sizeof(d));
        memcpy(&f, &fbits, sizeof(f));
        if (isfinite(d)) {
            snprintf(buf, sizeof(buf), "%.17g", d);
            accepts(buf, DECIMAL_TEXT);
        }
        if (isfinite(f)) {
            snprintf(buf, sizeof(buf), "%.9g", (double) f);
            accepts(buf, DECIMAL_TEXT);
        }
    }
}

/* The exact decimal of x (a short binary fraction) in "d.ddde±X" form, or false when it
 * needs more digits than a number may have. */
static bool exact_decimal(double x, char *buf, size_t size)
{
    char tmp[160], *e, *end;
    size_t mant, exp_len;

    snprintf(tmp, sizeof(tmp), "%.100e", x); /* glibc prints the exact value */
    e = strchr(tmp, 'e');
    end = e;
    while (end[-1] == '0')
        end--;
    if (end[-1] == '.')
        end--;
    mant = (size_t) (end - tmp);
    exp_len = strlen(e);
    if (mant > 50 || mant + exp_len + 1 > size)
        return false;
    memcpy(buf, tmp, mant);
    memcpy(buf + mant, e, exp_len + 1);
    return true;
}

/* buf (an exact decimal "d.ddd...e±X") nudged by one unit in a digit far beyond it. */
static void nudge(const char *exact, int dir, char *buf, size_t size)
{
    const char *e = strchr(exact, 'e');
    size_t mant = (size_t) (e - exact);

    if (dir > 0) {
        snprintf(buf, size, "%.*s%s0000001%s", (int) mant, exact, strchr(exact, '.') ? "" : ".", e);
    } else { /* the last digit is not 0: take one off it and append nines */
        snprintf(buf, size, "%.*s%c%s9999999%s", (int) mant - 1, exact, exact[mant - 1] - 1,
                 strchr(exact, '.') ? "" : ".", e);
    }
}

static void test_float_midpoints_round_to_even_and_their_neighbours_away(void **state)
{
    uint64_t rng = 5;
    char mid[96], near[96];
    int tested = 0;

    (void) state;
    while (tested < N_RANDOM / 10) {
        /* a positive normal float with a binary exponent in -24..100, and the next one up */
        uint32_t bits =
            (uint32_t) (below(&rng, 125) + 127 - 24) << 23 | ((uint32_t) next(&rng) & 0x7fffff);
        float lo, hi, even, got;

        memcpy(&lo, &bits, sizeof(lo));
        hi = nextafterf(lo, INFINITY);
        if (!isfinite(hi) || !exact_decimal(((double) lo + (double) hi) / 2, mid, sizeof(mid)))
            continue;
        even = (bits & 1) == 0 ? lo : hi;
        assert_int_equal(parse_f(mid, DECIMAL_JSON, &got), 0);
        assert_memory_equal(&got, &even, sizeof(got));
        accepts(mid, DECIMAL_JSON);
        nudge(mid, +1, near, sizeof(near));
        assert_int_equal(parse_f(near, DECIMAL_TEXT, &got), 0);
        assert_memory_equal(&got, &hi, sizeof(got));
        accepts(near, DECIMAL_TEXT);
        nudge(mid, -1, near, sizeof(near));
        assert_int_equal(parse_f(near, DECIMAL_TEXT, &got), 0);
        assert_memory_equal(&got, &lo, sizeof(got));
        accepts(near, DECIMAL_TEXT);
        tested++;
    }
}

static void test_short_float_midpoints_that_fit_the_fast_path(void **state)
{
    char buf[64];
    float f;

    (void) state;
    /* integers in [2^24, 2^25) are floats only when even: every odd one is a midpoint, and as
     * a double it is exact, so only the midpoint check keeps it off the fast path */
    for (uint32_t v = (1u << 24) + 1; v < (1u << 24) + 20001; v += 2) {
        float even = (float) ((v >> 1) & 1 ? v + 1 : v - 1);

        snprintf(buf, sizeof(buf), "%u", v);
        assert_int_equal(parse_f(buf, DECIMAL_JSON, &f), 0);
        assert_memory_equal(&f, &even, sizeof(f));
        accepts(buf, DECIMAL_JSON);
        snprintf(buf, sizeof(buf), "%u.%ue1", v / 10, v % 10); /* the same, spelt otherwise */
        accepts(buf, DECIMAL_JSON);
    }
    /* x.5 between the floats of [2^23, 2^24), and with a decimal exponent */
    accepts("8388608.5", DECIMAL_JSON);
    accepts("8388609.5", DECIMAL_JSON);
    accepts("83886085e-1", DECIMAL_JSON);
    accepts("8388608.5000001", DECIMAL_JSON);
    accepts("8388608.4999999", DECIMAL_JSON);
}

/* Numbers the fast path computes as a double that lands exactly on a midpoint between two
 * floats while the decimal itself is off it: mant * 10^k (or mant / 10^k) with mant near
 * 2^53, so the double is rounded. Rounding that double to float again would tie to even;
 * the decimal is above or below the midpoint and must round that way instead. */
static void test_doubles_rounded_onto_a_float_midpoint_round_once(void **state)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t rng = 3;
    int candidates = 0, traps = 0;
    char buf[64];

    (void) state;
    for (int t = 0; t < 400000 && traps < 2000; t++) {
        int k = 1 + below(&rng, 22), div = below(&rng, 2);
        int e2 = div ? 52 - (int) (3.3219281 * k) - below(&rng, 2)
                     : 52 + (int) (3.3219281 * k) + below(&rng, 2);
        uint32_t bits = (uint32_t) (e2 + 127) << 23 | ((uint32_t) next(&rng) & 0x7fffff);
        float lo, hi, got, want;
        double mid, d;
        long double m;
        unsigned long long mant;

        if (e2 < -126 || e2 > 126)
            continue;
        memcpy(&lo, &bits, sizeof(lo));
        hi = nextafterf(lo, INFINITY);
        mid = ((double) lo + (double) hi) / 2;
        m = div ? (long double) mid * pow10[k] : (long double) mid / pow10[k];
        if (!(m >= 1 && m <= 9007199254740992.0L))
            continue;
        mant = (unsigned long long) llroundl(m);
        d = div ? (double) mant / pow10[k] : (double) mant * pow10[k];
        if (d != mid)
            continue;
        candidates++;
        snprintf(buf, sizeof(buf), "%llue%s%d", mant, div ? "-" : "", k);
        want = strtof_l(buf, NULL, c_locale);
        traps += want != (float) d; /* the naive second rounding would be wrong here */
        assert_int_equal(parse_f(buf, DECIMAL_JSON, &got), 0);
        if (memcmp(&got, &want, sizeof(got)) != 0) {
            print_error("'%s': %a, strtof %a\n", buf, (double) got, (double) want);
            fail();
        }
        accepts(buf, DECIMAL_JSON);
    }
    /* the construction must really reach the trap, or this test proves nothing */
    assert_true(candidates > 1000);
    assert_true(traps > 100);
}

static void test_double_midpoints_and_digits_beyond_the_nineteen_kept(void **state)
{
    uint64_t rng = 77;
    char buf[64];

    (void) state;
    /* odd integers in [2^53, 2^64) lie between doubles; 20-digit ones lose a digit from the
     * kept mantissa, and a nonzero lost digit must still round the right way */
    for (int k = 0; k < N_RANDOM / 10; k++) {
        int shift = below(&rng, 11);
        uint64_t v =
            ((UINT64_C(1) << 53) << shift) | (next(&rng) & ((UINT64_C(1) << (53 + shift)) - 1));

        v |= 1;
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
        accepts(buf, DECIMAL_JSON);
        snprintf(buf, sizeof(buf), "%llu.5", (unsigned long long) v);
        accepts(buf, DECIMAL_TEXT);
        snprintf(buf, sizeof(buf), "0.%llue-5", (unsigned long long) v);
        accepts(buf, DECIMAL_JSON);
    }
    accepts("9007199254740993", DECIMAL_JSON); /* 2^53 + 1: ties to even, 2^53 */
    accepts("9007199254740993.0000000000000000001", DECIMAL_JSON); /* just above: up */
    accepts("18446744073709551617", DECIMAL_JSON);                 /* 2^64 + 1, 20 digits */
    accepts("1844674407370955161700000000000000000000000000e-26", DECIMAL_JSON);
    accepts("0.1000000000000000055511151231257827021181583404541015625", DECIMAL_JSON);
    accepts("2.2250738585072011e-308", DECIMAL_JSON); /* near the smallest normal */
    accepts("2.4703282292062327e-324", DECIMAL_JSON); /* half the smallest subnormal */
    accepts("2.4703282292062328e-324", DECIMAL_JSON);
    accepts("1.4012984643248170e-45", DECIMAL_JSON); /* the smallest float subnormal */
    accepts("7.0064923216240854e-46", DECIMAL_JSON); /* half of it */
    accepts("1.1754942e-38", DECIMAL_JSON);          /* just below FLT_MIN */
}

/* ------------------------------------------------------------------ threads */

static int parse_many(void *arg)
{
    uint64_t rng = (uint64_t) (uintptr_t) arg;
    char buf[96];

    for (int k = 0; k < 20000; k++) {
        double d;

        random_number(&rng, DECIMAL_JSON, buf);
        if (decimal_parse(buf, strlen(buf), DECIMAL_JSON, &d) == 0 &&
            d != strtod_l(buf, NULL, c_locale))
            return 1;
    }
    return 0;
}

static void test_parsing_from_several_threads_at_once(void **state)
{
    thrd_t t[4];
    int res;

    (void) state;
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(thrd_create(&t[i], parse_many, (void *) (i + 1)), thrd_success);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(thrd_join(t[i], &res), thrd_success);
        assert_int_equal(res, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_refuses_what_rfc_8259_refuses),
        cmocka_unit_test(test_json_accepts_what_rfc_8259_accepts),
        cmocka_unit_test(test_text_accepts_what_people_type),
        cmocka_unit_test(test_text_refuses_hex_blanks_and_words_with_the_right_code),
        cmocka_unit_test(test_overflow_is_a_range_error_and_underflow_is_zero),
        cmocka_unit_test(test_numbers_up_to_the_length_limit_only),
        cmocka_unit_test(test_parse_reads_len_bytes_only),
        cmocka_unit_test(test_scan_stops_where_the_json_grammar_stops),
        cmocka_unit_test(test_random_numbers_match_strtod_and_strtof_bit_for_bit),
        cmocka_unit_test(test_plain_json_numbers_match_strtod),
        cmocka_unit_test(test_shortest_round_trips_of_random_doubles_and_floats),
        cmocka_unit_test(test_float_midpoints_round_to_even_and_their_neighbours_away),
        cmocka_unit_test(test_short_float_midpoints_that_fit_the_fast_path),
        cmocka_unit_test(test_doubles_rounded_onto_a_float_midpoint_round_once),
        cmocka_unit_test(test_double_midpoints_and_digits_beyond_the_nineteen_kept),
        cmocka_unit_test(test_parsing_from_several_threads_at_once),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
