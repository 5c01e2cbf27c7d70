/* decimal: the one reader of numbers from text, for every input that carries them (CSV
 * cells, JSON records on both paths, schema encoding of text cells, lenient numbers, query
 * and training parameters, config values).
 *
 * Always the C locale (the host's LC_NUMERIC never changes a value) and always correctly
 * rounded: digits that fit 2^53 with a decimal exponent within +-22 take Clinger's exact
 * fast path, the rest go to strtod_l / strtof_l on a bounded copy.
 * Two grammars, both without hex, "inf", "nan" or blanks:
 *   DECIMAL_JSON  RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 *   DECIMAL_TEXT  what people type and spreadsheets export: [+-]? then digits with an
 *                 optional '.' anywhere among them (at least one digit: "1.", ".5"), then
 *                 an optional exponent as above.
 * Threads: reentrant (the C locale object is made once, with call_once).
 * Errors: 0; DECIMAL_E_SYNTAX (not a number of the grammar, or longer than DECIMAL_MAX_LEN);
 * DECIMAL_E_NONFINITE (spelled nan, inf or infinity, any case, signed or not);
 * DECIMAL_E_RANGE (a number of the grammar whose value overflows the target type); -ENOMEM
 * (the C locale could not be made).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    DECIMAL_E_SYNTAX = 1,
    DECIMAL_E_NONFINITE,
    DECIMAL_E_RANGE,
};

#define DECIMAL_MAX_LEN 64 /* longest number accepted, in bytes */

typedef enum DecimalGrammar {
    DECIMAL_JSON = 0,
    DECIMAL_TEXT,
} DecimalGrammar;

/* The longest number of grammar g at the start of s[0..len-1] (s need not be
 * NUL-terminated): *used bytes make it. For readers that go on after the number (JSON).
 * DECIMAL_E_SYNTAX when no number starts there. DECIMAL_E_RANGE when it overflows a
 * double: *out is then +-HUGE_VAL (as strtod gives) and *used is set too. Never reads past
 * len. */
int decimal_scan(const char *s, size_t len, DecimalGrammar g, double *out, size_t *used);

/* The whole of s[0..len-1] as one number of grammar g, as a double. */
int decimal_parse(const char *s, size_t len, DecimalGrammar g, double *out);

/* The same as the correctly rounded float (not a rounded double: the two differ on
 * midpoints). DECIMAL_E_RANGE when it overflows float. */
int decimal_parse_float(const char *s, size_t len, DecimalGrammar g, float *out);

/* The common JSON number, -?(0|[1-9][0-9]*)(.[0-9]+)? with at most 19 digits, no exponent
 * and digits that fit 2^53: true with the double decimal_scan gives (Clinger's exact fast
 * path: one division by an exact power of ten) and *used; false for everything else, which
 * decimal_scan decides. Inline, for the scoring path that reads one per field; decimal_scan
 * itself starts with it. Never reads past end. */
extern const double decimal_exact_pow10[23]; /* 10^0 .. 10^22, exact doubles */

static inline bool decimal_is_digit(char c)
{
    return (unsigned char) (c - '0') < 10;
}

/* The run of digits at p (none read past end) appended to *mant; returns its length. One
 * unsigned compare a digit (a byte below '0' wraps above 9). */
static inline size_t decimal_take_plain(const char *p, const char *end, uint64_t *mant)
{
    const char *start = p;
    uint64_t m = *mant; /* wraps past 19 digits, and is then not used */
    unsigned digit;

    while (p < end && (digit = (unsigned) (unsigned char) *p - '0') <= 9) {
        m = m * 10 + digit;
        p++;
    }
    *mant = m;
    return (size_t) (p - start);
}

static inline bool decimal_json_plain(const char *s, const char *end, double *out, size_t *used)
{
    bool neg = s < end && *s == '-';
    const char *p = s + neg;
    uint64_t mant = 0;
    size_t n_int = decimal_take_plain(p, end, &mant), n_frac = 0;
    double d;

    if (n_int == 0 || (n_int > 1 && *p == '0')) /* no digit, or a leading zero */
        return false;
    p += n_int;
    if (p < end && *p == '.') {
        n_frac = decimal_take_plain(++p, end, &mant);
        if (n_frac == 0)
            return false;
        p += n_frac;
    }
    /* (c | 0x20) == 'e': e or E */
    if ((p < end && (*p | 0x20) == 'e') || n_int + n_frac > 19 || mant > (UINT64_C(1) << 53))
        return false;
    d = (double) mant / decimal_exact_pow10[n_frac];
    *out = neg ? -d : d;
    *used = (size_t) (p - s);
    return true;
}
