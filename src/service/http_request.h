/* http_request: the server and one request as the HTTP layer's files see them (private to
 * src/service; owned by http_server.c, which makes both).
 *
 * One HttpServer per daemon; one HttpRequest per request, made on MHD's first callback and
 * freed only in the completion callback. A route is one {path, method} row of the static
 * table in http_server.c; its handler runs once, on the final callback, with the whole body
 * in req->body (never NUL-terminated by contract, though a NUL follows it for convenience).
 * Threads: handlers run on MHD's pool threads; the server fields are read-only after start
 * except `stopping` and `in_flight` (atomics).
 */
#pragma once

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aescore/config.h"
#include "aescore/metrics.h"
#include "aescore/model_slot.h"
#include "aescore/trainer.h"
#include "aescore/watcher.h"

#define API_OIP_VERSION_MAX 24 /* a model_version (20 digits) or a model_id, and the NUL */

typedef enum HttpEndpoint {
    HTTP_EP_SCORE = 0,
    HTTP_EP_SCORE_BATCH,
    HTTP_EP_RETRAIN,
    HTTP_EP_HEALTH,
    HTTP_EP_HEALTH_LIVE,
    HTTP_EP_MODEL,
    HTTP_EP_MODEL_RELOAD,
    HTTP_EP_MODEL_ROLLBACK,
    HTTP_EP_MODEL_PROMOTE,
    HTTP_EP_MODELS,
    HTTP_EP_METRICS,
    HTTP_EP_V2,             /* the Open Inference Protocol (api_oip.c): GET /v2 */
    HTTP_EP_V2_LIVE,        /* GET /v2/health/live */
    HTTP_EP_V2_READY,       /* GET /v2/health/ready */
    HTTP_EP_V2_MODEL,       /* GET /v2/models/{name}[/versions/{v}] */
    HTTP_EP_V2_MODEL_READY, /* GET /v2/models/{name}[/versions/{v}]/ready */
    HTTP_EP_V2_INFER,       /* POST /v2/models/{name}[/versions/{v}]/infer */
    HTTP_EP_DRIFT,
    HTTP_EP_STATUS_PAGE,
    HTTP_EP_OTHER, /* unknown paths: one label value, never the raw path */
    HTTP_EP_COUNT_,
} HttpEndpoint;

typedef struct HttpServer {
    struct MHD_Daemon *daemon;
    const Config *config;
    ModelSlot *slot;
    Trainer *trainer;
    Watcher *watcher;    /* NULL without follow mode */
    Recent *recent;      /* what is scored, for the promotion gate; may be NULL */
    struct Drift *drift; /* bin counts of what is scored, for GET /drift (drift.h) */
    Metrics *metrics;
    char *admin_token; /* NULL: admin endpoints are open */
    size_t admin_token_len;
    char *score_token; /* NULL: /score and /score/batch are open */
    size_t score_token_len;
    struct HttpGuard *guard;  /* connection admission and deadlines (http_guard.c) */
    char *tls_cert, *tls_key; /* PEM text handed to MHD; NULL: plain HTTP */
    size_t tls_key_len;
    int listen_fd; /* the socket MHD serves: systemd's, or bound by http_server_new */
    uint16_t port;
    atomic_bool stopping;
    atomic_long in_flight; /* requests between first callback and completion */
    double started;        /* unix seconds */
} HttpServer;

typedef enum HttpBodyKind {
    HTTP_BODY_NONE = 0, /* no body expected: any byte counts against a 0 cap */
    HTTP_BODY_JSON,     /* application/json, capped by max_body_bytes */
    HTTP_BODY_RETRAIN,  /* application/json or text/csv, capped by max_retrain_bytes */
    HTTP_BODY_OPTIONAL, /* none, or application/json capped by max_body_bytes */
} HttpBodyKind;

typedef struct HttpRequest HttpRequest;
typedef enum MHD_Result (*HttpHandler)(HttpRequest *req);

typedef struct HttpRoute {
    const char *path;
    const char *method; /* "GET" also serves HEAD */
    HttpEndpoint endpoint;
    HttpBodyKind body;
    bool admin; /* needs the bearer token when one is configured */
    HttpHandler handler;
} HttpRoute;

struct HttpRequest {
    HttpServer *server;
    struct MHD_Connection *conn;
    const HttpRoute *route; /* NULL for 404/405 */
    HttpEndpoint endpoint;
    const char *method; /* MHD's, valid for the request */
    double start;       /* util_now_mono() at the first callback */
    bool is_csv;        /* Content-Type was text/csv */
    char *body;         /* accumulated body, NUL after body_len */
    size_t body_len, body_cap, body_limit;
    size_t body_declared; /* its Content-Length (<= body_limit), 0 when none was given */
    bool too_large;       /* a chunked body passed the cap: discard, 413 at the end */
    bool replied;         /* a response was queued */
    bool close_after;     /* the reply closes the connection (framing the server cannot trust) */
    unsigned status;      /* of the queued response */
    bool oip;             /* a /v2 path: errors take the protocol's {"error": "..."} form */
    char oip_version[API_OIP_VERSION_MAX]; /* {v} of /versions/{v}, "" without */
    char path[];                           /* a bounded copy for the request log */
};
