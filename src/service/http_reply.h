/* http_reply: every response leaves through here (private to src/service), so its status
 * is recorded for the request log and the metrics, and every error has the one envelope
 * {"error":{"code","message"[,details]}} and the one code -> status table.
 * Threads: per request; the table is constant.
 */
#pragma once

#include <microhttpd.h>
#include <stddef.h>

#include "http_request.h"
#include "json_buf.h"

typedef enum HttpError {
    HTTP_E_INVALID_JSON = 0,       /* 400 */
    HTTP_E_INVALID_REQUEST,        /* 400 */
    HTTP_E_UNAUTHORIZED,           /* 401 */
    HTTP_E_NOT_FOUND,              /* 404 */
    HTTP_E_METHOD_NOT_ALLOWED,     /* 405 */
    HTTP_E_TRAINING_IN_PROGRESS,   /* 409 */
    HTTP_E_NO_PREVIOUS_MODEL,      /* 409 */
    HTTP_E_NO_CANDIDATE,           /* 409 */
    HTTP_E_UNKNOWN_MODEL,          /* 404 */
    HTTP_E_NO_JOB,                 /* 409 */
    HTTP_E_NOT_TRAINER,            /* 409: role = replica; training happens elsewhere */
    HTTP_E_BODY_TOO_LARGE,         /* 413 */
    HTTP_E_UNSUPPORTED_MEDIA_TYPE, /* 415 */
    HTTP_E_SCHEMA_MISMATCH,        /* 422 */
    HTTP_E_TOO_FEW_ROWS,           /* 422 */
    HTTP_E_MODEL_INVALID,          /* 422 */
    HTTP_E_OVER_BUDGET,            /* 422: the job would pass max_train_parameters/_memory */
    HTTP_E_NOT_IMPLEMENTED,        /* 501 */
    HTTP_E_NOT_READY,              /* 400: the protocol's "model not ready" (api_oip.c) */
    HTTP_E_NO_MODEL,               /* 503 */
    HTTP_E_STOPPING,               /* 503 */
    HTTP_E_INTERNAL,               /* 500 */
    HTTP_E_COUNT_,
} HttpError;

const char *http_error_code(HttpError e);
unsigned http_error_status(HttpError e);

/* Queues body (ownership taken, freed with free()) with the given content type. */
enum MHD_Result http_reply_take(HttpRequest *req, unsigned status, const char *content_type,
                                char *body, size_t len);
/* Queues the contents of b as JSON (b is reset); 500 when b ran out of memory. */
enum MHD_Result http_reply_json(HttpRequest *req, unsigned status, JsonBuf *b);
/* The one error envelope: {"error":{"code","message"[,details]}}. details, when not NULL,
 * is a JSON fragment of members (`"missing":["a"],"unknown":[]`) placed after message. On a
 * /v2 path (req->oip) the Open Inference Protocol's {"error": "<message>"} instead, with
 * 400 for a record that does not fit (our 422). */
enum MHD_Result http_reply_error(HttpRequest *req, HttpError e, const char *details,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The status page: static bytes (not copied, never freed) with its security headers. */
enum MHD_Result http_reply_page(HttpRequest *req, const char *html, size_t len, const char *csp);
/* 405 with an Allow header. */
enum MHD_Result http_reply_405(HttpRequest *req, const char *allow);
