/* json_buf: see json_buf.h. */
#include "json_buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/decimal.h"

void json_buf_deinit(JsonBuf *b)
{
    free(b->data);
    *b = (JsonBuf) JSON_BUF_INIT;
}

bool json_buf_reserve(JsonBuf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->oom)
        return false;
    if (extra > SIZE_MAX - b->len - 1)
        goto oom;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        goto oom;
    b->data = p;
    b->cap = cap;
    return true;

oom:
    b->oom = true;
    return false;
}

void json_buf_put_slow(JsonBuf *b, const char *s, size_t n)
{
    if (!json_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void json_buf_printf(JsonBuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!json_buf_reserve(b, 64))
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t) n >= b->cap - b->len) {
        if (!json_buf_reserve(b, (size_t) n))
            return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t) n;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t json_utf8_prefix(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t i = 0;

    while (i < n) {
        size_t k = p[i] < 0x80 ? 1 : utf8_seq(p + i, n - i);

        if (k == 0)
            break;
        i += k;
    }
    return i;
}

bool json_utf8_valid(const char *s, size_t n)
{
    return json_utf8_prefix(s, n) == n;
}

#define JSON_PLAIN(c)  ((c) >= 0x20 && (c) < 0x7f && (c) != '"' && (c) != '\\')
#define JSON_PLAIN4(c) JSON_PLAIN(c), JSON_PLAIN((c) + 1), JSON_PLAIN((c) + 2), JSON_PLAIN((c) + 3)
#define JSON_PLAIN16(c)                                                                            \
    JSON_PLAIN4(c), JSON_PLAIN4((c) + 4), JSON_PLAIN4((c) + 8), JSON_PLAIN4((c) + 12)
const bool json_plain_byte[256] = {JSON_PLAIN16(0),  JSON_PLAIN16(16), JSON_PLAIN16(32),
                                   JSON_PLAIN16(48), JSON_PLAIN16(64), JSON_PLAIN16(80),
                                   JSON_PLAIN16(96), JSON_PLAIN16(112)};

void json_buf_string(JsonBuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *) s;
    size_t plain = 0;

    if (!json_buf_reserve(b, n + 2))
        return;
    while (plain < n && json_plain_byte[p[plain]])
        plain++;
    if (plain == n) { /* the usual string: one copy */
        b->data[b->len++] = '"';
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len++] = '"';
        b->data[b->len] = '\0';
        return;
    }
    json_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k;

        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char) c};
            json_buf_put(b, esc, 2);
            i++;
        } else if (c == 0xc0 && i + 1 < n && p[i + 1] == 0x80) { /* JSON_NUL */
            json_buf_put(b, "\\u0000", 6);
            i += 2;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            json_buf_put(b, esc, 6);
            i++;
        } else if (c < 0x80) {
            json_buf_put(b, (const char *) p + i, 1);
            i++;
        } else if ((k = utf8_seq(p + i, n - i)) != 0) {
            json_buf_put(b, (const char *) p + i, k);
            i += k;
        } else {
            /* never echo bytes that would make the reply invalid JSON */
            json_buf_puts(b, "\\ufffd");
            i++;
        }
    }
    json_buf_put(b, "\"", 1);
}

/* a (finite, > 0) = *digits * 10^(e - 8) with *digits the 9 significant digits %.9g prints,
 * or false where that cannot be known cheaply. a * 10^k is one correctly rounded multiply or
 * divide (|k| <= 22: 10^|k| is exact), within 2^-53 relative, so 6e-8 absolute below 10^9;
 * rounding it to an integer can differ from rounding the exact value only within that of a
 * half, and those cases, like every a out of the range, go to snprintf. */
static bool nine_digits(double a, uint32_t *digits, int *e)
{
    uint64_t bits;
    long b;
    int k;
    double p, r;

    if (!(a >= 1e-14 && a < 1e30))
        return false;
    /* floor(log10(2^b)) for the binary exponent b (a is normal here), as floor(b * 78913 /
     * 2^18): never above log10(a) and at most one below, so the loop only ever steps up (an
     * estimate above could round 99999999.9 up to a wrong 10^8); log10 itself cost more than
     * the rest of the function */
    memcpy(&bits, &a, sizeof(bits));
    b = (long) (bits >> 52 & 0x7ff) - 1023;
    *e = (int) (b >= 0 ? b * 78913 / 262144 : -((-b * 78913 + 262143) / 262144));
    for (int tries = 0; tries < 3; tries++) {
        k = 8 - *e;
        if (k > 22 || k < -22)
            return false;
        p = k >= 0 ? a * decimal_exact_pow10[k] : a / decimal_exact_pow10[-k];
        /* p > 0 and below 10^10 here: truncation is floor, and cheaper than calling it; a
         * signed conversion is one instruction on every x86-64, an unsigned one is not */
        r = (double) (int64_t) (p + 0.5);
        if (fabs(p - (double) (int64_t) p - 0.5) < 1e-6)
            return false; /* too near a half to round by the approximation */
        if (r < 1e8) {
            (*e)--;
        } else if (r >= 1e9) {
            (*e)++;
        } else {
            *digits = (uint32_t) r;
            return true;
        }
    }
    return false;
}

/* The nine digits of digits (< 10^9, leading zeros kept) into d[9], two at a time. */
static void nine_chars(uint32_t digits, char *d)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";

    for (int i = 7; i >= 1; i -= 2, digits /= 100) {
        d[i] = pairs[2 * (digits % 100)];
        d[i + 1] = pairs[2 * (digits % 100) + 1];
    }
    d[0] = (char) ('0' + digits);
}

/* %.9g of finite v into out (at least 24 bytes), or 0 when nine_digits cannot say. Bytes
 * are copied in short loops: a memcpy of a length known only here is a library call. */
static size_t format_g9(double v, char *out)
{
    char d[9];
    uint32_t digits;
    size_t n = 0, last;
    int e;

    if (v == 0) {
        if (signbit(v))
            out[n++] = '-';
        out[n++] = '0';
        return n;
    }
    if (!nine_digits(fabs(v), &digits, &e))
        return 0;
    nine_chars(digits, d);
    for (last = 8; last > 0 && d[last] == '0'; last--)
        ; /* %g drops trailing zeros */
    if (v < 0)
        out[n++] = '-';
    if (e < -4 || e >= 9) { /* d.ddde+XX */
        out[n++] = d[0];
        if (last > 0)
            out[n++] = '.';
        for (size_t i = 1; i <= last; i++)
            out[n++] = d[i];
        n += (size_t) sprintf(out + n, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return n;
    }
    if (e < 0) { /* 0.000ddd */
        out[n++] = '0';
        out[n++] = '.';
        for (int i = -1; i > e; i--)
            out[n++] = '0';
        for (size_t i = 0; i <= last; i++)
            out[n++] = d[i];
        return n;
    }
    for (size_t i = 0; i <= (size_t) e; i++) /* ddd[.ddd] */
        out[n++] = d[i];
    if (last > (size_t) e)
        out[n++] = '.';
    for (size_t i = (size_t) e + 1; i <= last; i++)
        out[n++] = d[i];
    return n;
}

void json_buf_float(JsonBuf *b, double v)
{
    char text[32];
    size_t n;

    if (!isfinite(v)) {
        json_buf_puts(b, "null");
        return;
    }
    if (!b->oom && b->cap - b->len > sizeof(text)) { /* in place: no copy of unknown length */
        n = format_g9(v, b->data + b->len);
        b->len += n;
        b->data[b->len] = '\0';
    } else if ((n = format_g9(v, text)) > 0) {
        json_buf_put(b, text, n);
    }
    if (n == 0)
        json_buf_printf(b, "%.9g", v);
}

void json_buf_uint(JsonBuf *b, uint64_t v)
{
    char text[20];
    size_t n = sizeof(text);

    do
        text[--n] = (char) ('0' + v % 10);
    while ((v /= 10) != 0);
    json_buf_put(b, text + n, sizeof(text) - n);
}

void json_buf_double(JsonBuf *b, double v)
{
    if (!isfinite(v))
        json_buf_puts(b, "null");
    else
        json_buf_printf(b, "%.17g", v);
}

char *json_buf_steal(JsonBuf *b, size_t *len)
{
    char *p;

    if (b->oom || !json_buf_reserve(b, 0)) {
        json_buf_deinit(b);
        *len = 0;
        return NULL;
    }
    p = b->data;
    *len = b->len;
    *b = (JsonBuf) JSON_BUF_INIT;
    return p;
}
