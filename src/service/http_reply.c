/* http_reply: the output side of the HTTP layer.
 *
 * A small growable buffer that formats JSON by hand (snprintf into one allocation: on the
 * scoring path a cJSON tree would cost a malloc per value), the one error envelope and the
 * one table from error code to HTTP status. Every response goes through http_reply_take,
 * which records the status for the request log and the metrics. An allocation failure
 * while formatting sticks in the buffer and turns into a bare 500, never a half document.
 */
#include "http_reply.h"

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
    [HTTP_E_NO_CANDIDATE] = {"no_candidate", 409},
    [HTTP_E_UNKNOWN_MODEL] = {"unknown_model", 404},
    [HTTP_E_NO_JOB] = {"no_job", 409},
    [HTTP_E_NOT_TRAINER] = {"not_trainer", 409},
    [HTTP_E_BODY_TOO_LARGE] = {"body_too_large", 413},
    [HTTP_E_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415},
    [HTTP_E_SCHEMA_MISMATCH] = {"schema_mismatch", 422},
    [HTTP_E_TOO_FEW_ROWS] = {"too_few_rows", 422},
    [HTTP_E_MODEL_INVALID] = {"model_invalid", 422},
    [HTTP_E_OVER_BUDGET] = {"over_budget", 422},
    [HTTP_E_NOT_IMPLEMENTED] = {"not_implemented", 501},
    [HTTP_E_NOT_READY] = {"not_ready", 400},
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

enum MHD_Result http_reply_page(HttpRequest *req, const char *html, size_t len, const char *csp)
{
    static const char *const headers[][2] = {
        {MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8"},
        {MHD_HTTP_HEADER_CACHE_CONTROL, "no-store"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"Cross-Origin-Opener-Policy", "same-origin"},
    };
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *) html, MHD_RESPMEM_PERSISTENT);

    if (resp == NULL)
        return reply_bare_500(req);
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        if (MHD_add_response_header(resp, headers[i][0], headers[i][1]) != MHD_YES)
            goto fail;
    if (MHD_add_response_header(resp, "Content-Security-Policy", csp) != MHD_YES)
        goto fail;
    return queue(req, 200, resp);
fail:
    MHD_destroy_response(resp);
    return reply_bare_500(req);
}

enum MHD_Result http_reply_json(HttpRequest *req, unsigned status, JsonBuf *b)
{
    size_t len;
    char *body = json_buf_steal(b, &len);

    return http_reply_take(req, status, "application/json", body, len);
}

/* Our envelope: {"error":{"code","message"[,details]}}. */
static void put_error(JsonBuf *b, HttpError e, const char *message, const char *details)
{
    json_buf_puts(b, "{\"error\":{\"code\":\"");
    json_buf_puts(b, http_error_code(e));
    json_buf_puts(b, "\",\"message\":");
    json_buf_string(b, message, strlen(message));
    if (details != NULL && details[0] != '\0') {
        json_buf_puts(b, ",");
        json_buf_puts(b, details);
    }
    json_buf_puts(b, "}}\n");
}

/* The Open Inference Protocol's: {"error": "<message>"}, the details (the fields a record
 * got wrong) folded into the message as their JSON text. */
static void put_oip_error(JsonBuf *b, const char *message, const char *details)
{
    JsonBuf m = JSON_BUF_INIT;

    json_buf_puts(&m, message);
    if (details != NULL && details[0] != '\0') {
        json_buf_puts(&m, " {");
        json_buf_puts(&m, details);
        json_buf_puts(&m, "}");
    }
    json_buf_puts(b, "{\"error\":");
    if (m.oom)
        b->oom = true;
    else
        json_buf_string(b, m.data, m.len);
    json_buf_puts(b, "}\n");
    json_buf_deinit(&m);
}

static enum MHD_Result reply_error_headers(HttpRequest *req, HttpError e, const char *details,
                                           const char *extra_header, const char *extra_value,
                                           const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

static enum MHD_Result reply_error_headers(HttpRequest *req, HttpError e, const char *details,
                                           const char *extra_header, const char *extra_value,
                                           const char *fmt, va_list ap)
{
    JsonBuf b = JSON_BUF_INIT;
    char message[512];
    struct MHD_Response *resp;
    char *body;
    size_t len;

    vsnprintf(message, sizeof(message), fmt, ap);
    if (req->oip)
        put_oip_error(&b, message, details);
    else
        put_error(&b, e, message, details);
    body = json_buf_steal(&b, &len);
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
    if (e == HTTP_E_BODY_TOO_LARGE || req->close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (http_error_status(e) >= 500 || e == HTTP_E_UNAUTHORIZED)
        log_info("http", "%s %s -> %u %s: %s", req->method, req->path, http_error_status(e),
                 http_error_code(e), message);
    /* the protocol's "bad request" is 400, whatever our own code would be */
    return queue(req, req->oip && e == HTTP_E_SCHEMA_MISMATCH ? 400 : http_error_status(e), resp);
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
