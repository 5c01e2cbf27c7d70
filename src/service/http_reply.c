/* http_reply: the output side of the HTTP layer.
 *
 * A small growable buffer that formats JSON by hand (snprintf into one allocation: on the
 * scoring path a cJSON tree would cost a malloc per value), the one error envelope and the
 * one table from error code to HTTP status. Every response goes through http_reply_take,
 * which records the status for the request log and the metrics. An allocation failure
 * while formatting sticks in the buffer and turns into a bare 500, never a half document.
 */
#include "http_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/log.h"

static const struct {
    const char *code;
    unsigned status;
} error_table[HTTP_E_COUNT_] = {
    [HTTP_E_INVALID_JSON] = {"invalid_json", 400},
    [HTTP_E_INVALID_REQUEST] = {"invalid_request", 400},
    [HTTP_E_UNAUTHORIZED] = {"unauthorized", 401},
    [HTTP_E_NOT_FOUND] = {"not_found", 404},
    [HTTP_E_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
    [HTTP_E_TRAINING_IN_PROGRESS] = {"training_in_progress", 409},
    [HTTP_E_NO_PREVIOUS_MODEL] = {"no_previous_model", 409},
    [HTTP_E_NO_JOB] = {"no_job", 409},
    [HTTP_E_NOT_TRAINER] = {"not_trainer", 409},
    [HTTP_E_BODY_TOO_LARGE] = {"body_too_large", 413},
    [HTTP_E_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415},
    [HTTP_E_SCHEMA_MISMATCH] = {"schema_mismatch", 422},
    [HTTP_E_TOO_FEW_ROWS] = {"too_few_rows", 422},
    [HTTP_E_MODEL_INVALID] = {"model_invalid", 422},
    [HTTP_E_NO_MODEL] = {"no_model", 503},
    [HTTP_E_STOPPING] = {"stopping", 503},
    [HTTP_E_INTERNAL] = {"internal", 500},
};

const char *http_error_code(HttpError e)
{
    return (unsigned) e < HTTP_E_COUNT_ ? error_table[e].code : "internal";
}

unsigned http_error_status(HttpError e)
{
    return (unsigned) e < HTTP_E_COUNT_ ? error_table[e].status : 500;
}

/* ---- HttpBuf ---- */

void http_buf_deinit(HttpBuf *b)
{
    free(b->data);
    *b = (HttpBuf) HTTP_BUF_INIT;
}

bool http_buf_reserve(HttpBuf *b, size_t extra)
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

void http_buf_put(HttpBuf *b, const char *s, size_t n)
{
    if (!http_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void http_buf_puts(HttpBuf *b, const char *s)
{
    http_buf_put(b, s, strlen(s));
}

void http_buf_printf(HttpBuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!http_buf_reserve(b, 64))
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t) n >= b->cap - b->len) {
        if (!http_buf_reserve(b, (size_t) n))
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

bool http_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s;

    for (size_t i = 0; i < n;) {
        size_t k;

        if (p[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

void http_buf_json_string(HttpBuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *) s;

    if (!http_buf_reserve(b, n + 2))
        return;
    http_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k;

        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char) c};
            http_buf_put(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            http_buf_put(b, esc, 6);
            i++;
        } else if (c < 0x80) {
            http_buf_put(b, (const char *) p + i, 1);
            i++;
        } else if ((k = utf8_seq(p + i, n - i)) != 0) {
            http_buf_put(b, (const char *) p + i, k);
            i += k;
        } else {
            /* never echo bytes that would make the reply invalid JSON */
            http_buf_puts(b, "\\ufffd");
            i++;
        }
    }
    http_buf_put(b, "\"", 1);
}

void http_buf_json_float(HttpBuf *b, double v)
{
    if (!isfinite(v))
        http_buf_puts(b, "null");
    else
        http_buf_printf(b, "%.9g", v);
}

void http_buf_json_double(HttpBuf *b, double v)
{
    if (!isfinite(v))
        http_buf_puts(b, "null");
    else
        http_buf_printf(b, "%.17g", v);
}

char *http_buf_steal(HttpBuf *b, size_t *len)
{
    char *p;

    if (b->oom || !http_buf_reserve(b, 0)) {
        http_buf_deinit(b);
        *len = 0;
        return NULL;
    }
    p = b->data;
    *len = b->len;
    *b = (HttpBuf) HTTP_BUF_INIT;
    return p;
}

/* ---- replies ---- */

static enum MHD_Result queue(HttpRequest *req, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result r;

    r = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    req->replied = true;
    req->status = status;
    return r;
}

static enum MHD_Result reply_bare_500(HttpRequest *req)
{
    static const char body[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *) body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return queue(req, 500, resp);
}

static struct MHD_Response *make_response(char *body, size_t len, const char *content_type)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL)
        return NULL;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}

enum MHD_Result http_reply_take(HttpRequest *req, unsigned status, const char *content_type,
                                char *body, size_t len)
{
    struct MHD_Response *resp;

    if (body == NULL)
        return reply_bare_500(req);
    resp = make_response(body, len, content_type);
    if (resp == NULL) {
        free(body);
        return reply_bare_500(req);
    }
    return queue(req, status, resp);
}

enum MHD_Result http_reply_json(HttpRequest *req, unsigned status, HttpBuf *b)
{
    size_t len;
    char *body = http_buf_steal(b, &len);

    return http_reply_take(req, status, "application/json", body, len);
}

static enum MHD_Result reply_error_headers(HttpRequest *req, HttpError e, const char *details,
                                           const char *extra_header, const char *extra_value,
                                           const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

static enum MHD_Result reply_error_headers(HttpRequest *req, HttpError e, const char *details,
                                           const char *extra_header, const char *extra_value,
                                           const char *fmt, va_list ap)
{
    HttpBuf b = HTTP_BUF_INIT;
    char message[512];
    struct MHD_Response *resp;
    char *body;
    size_t len;

    vsnprintf(message, sizeof(message), fmt, ap);
    http_buf_puts(&b, "{\"error\":{\"code\":\"");
    http_buf_puts(&b, http_error_code(e));
    http_buf_puts(&b, "\",\"message\":");
    http_buf_json_string(&b, message, strlen(message));
    if (details != NULL && details[0] != '\0') {
        http_buf_puts(&b, ",");
        http_buf_puts(&b, details);
    }
    http_buf_puts(&b, "}}\n");
    body = http_buf_steal(&b, &len);
    if (body == NULL)
        return reply_bare_500(req);
    resp = make_response(body, len, "application/json");
    if (resp == NULL) {
        free(body);
        return reply_bare_500(req);
    }
    if (extra_header != NULL)
        MHD_add_response_header(resp, extra_header, extra_value);
    /* a client that gets an error before we read its body must not reuse the stream */
    if (e == HTTP_E_BODY_TOO_LARGE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (http_error_status(e) >= 500 || e == HTTP_E_UNAUTHORIZED)
        log_info("http", "%s %s -> %u %s: %s", req->method, req->path, http_error_status(e),
                 http_error_code(e), message);
    return queue(req, http_error_status(e), resp);
}

enum MHD_Result http_reply_error(HttpRequest *req, HttpError e, const char *details,
                                 const char *fmt, ...)
{
    va_list ap;
    enum MHD_Result r;
    const char *hdr = NULL, *val = NULL;

    if (e == HTTP_E_UNAUTHORIZED) {
        hdr = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        val = "Bearer realm=\"aescored\"";
    }
    va_start(ap, fmt);
    r = reply_error_headers(req, e, details, hdr, val, fmt, ap);
    va_end(ap);
    return r;
}

static enum MHD_Result reply_405_v(HttpRequest *req, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result reply_405_v(HttpRequest *req, const char *allow, const char *fmt, ...)
{
    va_list ap;
    enum MHD_Result r;

    va_start(ap, fmt);
    r = reply_error_headers(req, HTTP_E_METHOD_NOT_ALLOWED, NULL, MHD_HTTP_HEADER_ALLOW, allow, fmt,
                            ap);
    va_end(ap);
    return r;
}

enum MHD_Result http_reply_405(HttpRequest *req, const char *allow)
{
    return reply_405_v(req, allow, "method not allowed here; allowed: %s", allow);
}
