/* json_buf: a growable output buffer that formats JSON by hand, and the UTF-8 check.
 *
 * The scoring path formats its replies with snprintf into one allocation (a cJSON tree
 * would cost a malloc per value). An allocation failure sticks in `oom`: every later call
 * is a no-op and json_buf_steal hands out NULL, so a caller checks once at the end and
 * never sends half a document.
 * Threads: a JsonBuf belongs to one thread; json_utf8_valid is reentrant.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct JsonBuf {
    char *data; /* NUL-terminated after len once anything was put */
    size_t len, cap;
    bool oom;
} JsonBuf;

#define JSON_BUF_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

void json_buf_deinit(JsonBuf *b);
/* Room for extra more bytes (and the NUL); false (and oom set) when it cannot be had. */
bool json_buf_reserve(JsonBuf *b, size_t extra);
void json_buf_put_slow(JsonBuf *b, const char *s, size_t n);
/* Appends s[0..n-1]. Inline, with the copy in place when there is room: a reply is some
 * sixty short pieces, and two calls per piece cost more than the copies. */
static inline void json_buf_put(JsonBuf *b, const char *s, size_t n)
{
    /* cap > len once data exists; an empty buffer (0 - 0) takes the slow way */
    if (n < b->cap - b->len && !b->oom) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    json_buf_put_slow(b, s, n);
}
static inline void json_buf_puts(JsonBuf *b, const char *s)
{
    json_buf_put(b, s, strlen(s)); /* a constant for literals */
}
void json_buf_printf(JsonBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* U+0000 inside a string read from a request, as the service holds it: the two bytes C0 80
 * (an overlong form valid UTF-8 never contains), so cJSON's C strings keep their whole
 * length (http_body.c). */
#define JSON_NUL "\xc0\x80"

/* A JSON string literal (quotes included) of s[0..n-1], NUL bytes and JSON_NUL written as
 * \u0000; other invalid UTF-8 becomes U+FFFD. */
void json_buf_string(JsonBuf *b, const char *s, size_t n);
/* The bytes a JSON string carries as they are, with no escape: printable ASCII but the
 * quote and the backslash. json_buf_string copies a string of only these whole; the
 * scoring fast path (records_fast.c) reads only strings of these. */
extern const bool json_plain_byte[256];
/* A JSON number as %.9g (float values; the common cases without stdio, which costs more
 * than the rest of a /score reply) or %.17g; non-finite becomes null. */
void json_buf_float(JsonBuf *b, double v);
void json_buf_double(JsonBuf *b, double v);
void json_buf_uint(JsonBuf *b, uint64_t v); /* decimal digits */
/* Hands the bytes out (caller frees) and resets b; NULL after an allocation failure. */
char *json_buf_steal(JsonBuf *b, size_t *len);

/* True when s[0..n-1] is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool json_utf8_valid(const char *s, size_t n);
/* How many leading bytes of s[0..n-1] are valid UTF-8 (n when all are). */
size_t json_utf8_prefix(const char *s, size_t n);
