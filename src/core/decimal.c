/* decimal: see decimal.h.
 *
 * One scanner walks the grammar and collects up to 19 significant digits into a 64-bit
 * mantissa with a decimal exponent; digits beyond those are only noted (truncated). When
 * nothing was truncated and Clinger's conditions hold (mantissa <= 2^53, |exponent| <= 22,
 * both then exact doubles), one IEEE multiply or divide is the correctly rounded result.
 * Everything else is copied (at most DECIMAL_MAX_LEN bytes) and handed to strtod_l /
 * strtof_l in the C locale, which round correctly too, so both routes agree bit for bit.
 */
#include "aescore/decimal.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

typedef struct Scan {
    uint64_t mant;  /* first significant digits */
    long e10;       /* value = mant * 10^e10 (ignoring truncated digits) */
    bool truncated; /* nonzero digits did not fit in mant */
    bool neg;
    size_t len; /* bytes of the number */
} Scan;

const double decimal_exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static locale_t c_locale = (locale_t) 0;
static once_flag c_locale_once = ONCE_FLAG_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
}

/* Takes the digits of s[i..] into sc: the first 19 significant ones into the mantissa,
 * the rest only noted (truncated) with the exponent kept right. Returns the index after
 * them; *count is how many there were. (Locals, not sc's fields, in the loops: a store
 * through sc could alias s, which would reload everything per digit.) */
static size_t take_digits(const char *s, size_t i, size_t len, Scan *sc, int *n_sig, bool fraction,
                          size_t *count)
{
    size_t start = i, kept;
    uint64_t mant = sc->mant;
    int sig = *n_sig;
    bool truncated = false;

    for (; i < len && decimal_is_digit(s[i]) && sig < 19; i++) {
        mant = mant * 10 + (uint64_t) (s[i] - '0');
        sig += mant != 0;
    }
    kept = i - start;
    for (; i < len && decimal_is_digit(s[i]); i++)
        truncated |= s[i] != '0';
    /* a kept fraction digit scales the mantissa down; a dropped integer digit up */
    sc->e10 += fraction ? -(long) kept : (long) (i - start - kept);
    sc->mant = mant;
    sc->truncated |= truncated;
    *n_sig = sig;
    *count += i - start;
    return i;
}

/* Digits of the integer part, by grammar: JSON forbids a leading zero before more digits. */
static size_t scan_integer(const char *s, size_t i, size_t len, DecimalGrammar g, Scan *sc,
                           int *n_sig, size_t *n_digits)
{
    if (g == DECIMAL_JSON && i < len && s[i] == '0') {
        (*n_digits)++;
        return i + 1;
    }
    return take_digits(s, i, len, sc, n_sig, false, n_digits);
}

/* The exponent at s[i] ('e' or 'E' already seen); 0 when it has no digit. */
static size_t scan_exponent(const char *s, size_t i, size_t len, Scan *sc)
{
    bool neg = false;
    long e = 0;
    size_t start;

    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    start = i;
    for (; i < len && decimal_is_digit(s[i]); i++)
        if (e < 100000) /* far beyond double range either way; stops overflow */
            e = e * 10 + (s[i] - '0');
    if (i == start)
        return 0;
    sc->e10 += neg ? -e : e;
    return i;
}

static int scan(const char *s, size_t len, DecimalGrammar g, Scan *sc)
{
    size_t i = 0, n_digits = 0, frac_digits = 0, e;
    int n_sig = 0;

    *sc = (Scan){0};
    if (i < len && (s[i] == '-' || (g == DECIMAL_TEXT && s[i] == '+')))
        sc->neg = s[i++] == '-';
    i = scan_integer(s, i, len, g, sc, &n_sig, &n_digits);
    if (g == DECIMAL_JSON && n_digits == 0)
        return DECIMAL_E_SYNTAX;
    if (i < len && s[i] == '.' &&
        (g == DECIMAL_TEXT || (i + 1 < len && decimal_is_digit(s[i + 1]))))
        i = take_digits(s, i + 1, len, sc, &n_sig, true, &frac_digits);
    if (n_digits + frac_digits == 0)
        return DECIMAL_E_SYNTAX;
    if (i < len && (s[i] == 'e' || s[i] == 'E') && (e = scan_exponent(s, i + 1, len, sc)) != 0)
        i = e;
    if (i > DECIMAL_MAX_LEN)
        return DECIMAL_E_SYNTAX;
    sc->len = i;
    return 0;
}

/* s[0..n-1] is word (lower case) in any case. ASCII only: strncasecmp would follow the
 * host's LC_CTYPE, and this module answers the same in every locale. */
static bool is_word(const char *s, size_t n, const char *word)
{
    if (n != strlen(word))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]) != word[i])
            return false;
    return true;
}

/* After a failed whole-string parse: was it a spelling of a non-finite value? */
static int syntax_or_nonfinite(const char *s, size_t len)
{
    size_t i = len > 0 && (s[0] == '+' || s[0] == '-');

    if (is_word(s + i, len - i, "nan") || is_word(s + i, len - i, "inf") ||
        is_word(s + i, len - i, "infinity"))
        return DECIMAL_E_NONFINITE;
    return DECIMAL_E_SYNTAX;
}

/* A NUL-terminated copy of the number for strtod_l / strtof_l. */
static int slow_copy(const char *s, const Scan *sc, char buf[DECIMAL_MAX_LEN + 1])
{
    call_once(&c_locale_once, make_c_locale);
    if (c_locale == (locale_t) 0)
        return -ENOMEM;
    memcpy(buf, s, sc->len);
    buf[sc->len] = '\0';
    return 0;
}

static int to_double(const char *s, const Scan *sc, double *out)
{
    char buf[DECIMAL_MAX_LEN + 1];
    double d;
    int r;

    if (sc->mant == 0) {
        *out = sc->neg ? -0.0 : 0.0;
        return 0;
    }
    if (!sc->truncated && sc->mant <= (UINT64_C(1) << 53) && sc->e10 >= -22 && sc->e10 <= 22) {
        d = (double) sc->mant;
        d = sc->e10 < 0 ? d / decimal_exact_pow10[-sc->e10] : d * decimal_exact_pow10[sc->e10];
        *out = sc->neg ? -d : d;
        return 0;
    }
    if ((r = slow_copy(s, sc, buf)) < 0)
        return r;
    d = strtod_l(buf, NULL, c_locale);
    *out = d;
    return isfinite(d) ? 0 : DECIMAL_E_RANGE;
}

/* Clinger's fast path, made safe for float: the double d is correctly rounded; rounding it
 * again to float is correct unless d lies exactly on a midpoint between two floats (the 29
 * bits below float precision read 1000...0), the one case where rounding twice can differ
 * from rounding once. That case, float subnormals and overflow return false. */
static bool fast_to_float(uint64_t mant, long e10, float *out)
{
#if FLT_EVAL_METHOD == 0 && DBL_MANT_DIG == 53 && FLT_MANT_DIG == 24
    const uint64_t below_float = (UINT64_C(1) << 29) - 1;
    uint64_t bits;
    double d;

    if (mant > (UINT64_C(1) << 53) || e10 < -22 || e10 > 22)
        return false;
    d = (double) mant;
    d = e10 >= 0 ? d * decimal_exact_pow10[e10] : d / decimal_exact_pow10[-e10];
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

static int to_float(const char *s, const Scan *sc, float *out)
{
    char buf[DECIMAL_MAX_LEN + 1];
    float f;
    int r;

    if (sc->mant == 0) {
        *out = sc->neg ? -0.0f : 0.0f;
        return 0;
    }
    if (!sc->truncated && fast_to_float(sc->mant, sc->e10, out)) {
        if (sc->neg)
            *out = -*out;
        return 0;
    }
    if ((r = slow_copy(s, sc, buf)) < 0)
        return r;
    f = strtof_l(buf, NULL, c_locale);
    if (!isfinite(f))
        return DECIMAL_E_RANGE;
    *out = f;
    return 0;
}

int decimal_scan(const char *s, size_t len, DecimalGrammar g, double *out, size_t *used)
{
    Scan sc;
    int r;

    if (g == DECIMAL_JSON && decimal_json_plain(s, s + len, out, used))
        return 0;
    r = scan(s, len, g, &sc);
    if (r != 0)
        return r;
    r = to_double(s, &sc, out);
    if (r == 0 || r == DECIMAL_E_RANGE)
        *used = sc.len;
    return r;
}

int decimal_parse(const char *s, size_t len, DecimalGrammar g, double *out)
{
    Scan sc;

    if (scan(s, len, g, &sc) != 0 || sc.len != len)
        return syntax_or_nonfinite(s, len);
    return to_double(s, &sc, out);
}

int decimal_parse_float(const char *s, size_t len, DecimalGrammar g, float *out)
{
    Scan sc;

    if (scan(s, len, g, &sc) != 0 || sc.len != len)
        return syntax_or_nonfinite(s, len);
    return to_float(s, &sc, out);
}
