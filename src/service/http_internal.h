/* http_internal: what the HTTP layer's files share (private to src/service).
 *
 * One HttpServer per daemon; one HttpRequest per request, made on MHD's first callback and
 * freed only in the completion callback. A route is one {path, method} row of the static
 * table in http_server.c; its handler runs once, on the final callback, with the whole body
 * in req->body (never NUL-terminated by contract, though a NUL follows it for convenience).
 * Every reply leaves through http_reply_* so the status is recorded for logs and metrics,
 * and every error through http_reply_error with one envelope and one code -> status table.
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

#include <cjson/cJSON.h>

#include "aescore/config.h"
#include "aescore/metrics.h"
#include "aescore/model.h"
#include "aescore/model_slot.h"
#include "aescore/trainer.h"

/* ---- errors: one table, code -> status (http_reply.c) ---- */
typedef enum HttpError {
    HTTP_E_INVALID_JSON = 0,       /* 400 */
    HTTP_E_INVALID_REQUEST,        /* 400 */
    HTTP_E_UNAUTHORIZED,           /* 401 */
    HTTP_E_NOT_FOUND,              /* 404 */
    HTTP_E_METHOD_NOT_ALLOWED,     /* 405 */
    HTTP_E_TRAINING_IN_PROGRESS,   /* 409 */
    HTTP_E_NO_PREVIOUS_MODEL,      /* 409 */
    HTTP_E_NO_JOB,                 /* 409 */
    HTTP_E_NOT_TRAINER,            /* 409: role = replica; training happens elsewhere */
    HTTP_E_BODY_TOO_LARGE,         /* 413 */
    HTTP_E_UNSUPPORTED_MEDIA_TYPE, /* 415 */
    HTTP_E_SCHEMA_MISMATCH,        /* 422 */
    HTTP_E_TOO_FEW_ROWS,           /* 422 */
    HTTP_E_MODEL_INVALID,          /* 422 */
    HTTP_E_NO_MODEL,               /* 503 */
    HTTP_E_STOPPING,               /* 503 */
    HTTP_E_INTERNAL,               /* 500 */
    HTTP_E_COUNT_,
} HttpError;

const char *http_error_code(HttpError e);
unsigned http_error_status(HttpError e);

/* ---- a growable output buffer; an allocation failure sticks in `oom` ---- */
typedef struct HttpBuf {
    char *data;
    size_t len, cap;
    bool oom;
} HttpBuf;

#define HTTP_BUF_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

void http_buf_deinit(HttpBuf *b);
bool http_buf_reserve(HttpBuf *b, size_t extra);
void http_buf_put(HttpBuf *b, const char *s, size_t n);
void http_buf_puts(HttpBuf *b, const char *s);
void http_buf_printf(HttpBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal (quotes included); invalid UTF-8 becomes U+FFFD. */
void http_buf_json_string(HttpBuf *b, const char *s, size_t n);
/* A JSON number with %.9g (float values) or %.17g; non-finite becomes null. */
void http_buf_json_float(HttpBuf *b, double v);
void http_buf_json_double(HttpBuf *b, double v);
/* Hands the bytes out (caller frees) and resets b; NULL after an allocation failure. */
char *http_buf_steal(HttpBuf *b, size_t *len);

/* ---- the server and one request ---- */
typedef enum HttpEndpoint {
    HTTP_EP_SCORE = 0,
    HTTP_EP_SCORE_BATCH,
    HTTP_EP_RETRAIN,
    HTTP_EP_HEALTH,
    HTTP_EP_HEALTH_LIVE,
    HTTP_EP_MODEL,
    HTTP_EP_MODEL_RELOAD,
    HTTP_EP_MODEL_ROLLBACK,
    HTTP_EP_METRICS,
    HTTP_EP_OTHER, /* unknown paths: one label value, never the raw path */
    HTTP_EP_COUNT_,
} HttpEndpoint;

typedef struct HttpServer {
    struct MHD_Daemon *daemon;
    const Config *config;
    ModelSlot *slot;
    Trainer *trainer;
    Metrics *metrics;
    char *admin_token; /* NULL: admin endpoints are open */
    size_t admin_token_len;
    char *score_token; /* NULL: /score and /score/batch are open */
    size_t score_token_len;
    struct HttpGuard *guard;  /* connection admission and deadlines (http_guard.c) */
    char *tls_cert, *tls_key; /* PEM text handed to MHD; NULL: plain HTTP */
    int listen_fd;            /* socket handed to MHD, or -1 when MHD bound its own */
    uint16_t port;
    atomic_bool stopping;
    atomic_long in_flight; /* requests between first callback and completion */
    double started;        /* unix seconds */
} HttpServer;

typedef enum HttpBodyKind {
    HTTP_BODY_NONE = 0, /* no body expected: any byte counts against a 0 cap */
    HTTP_BODY_JSON,     /* application/json, capped by max_body_bytes */
    HTTP_BODY_RETRAIN,  /* application/json or text/csv, capped by max_retrain_bytes */
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
    char *path;         /* a bounded copy for the request log */
    struct timespec start;
    bool is_csv; /* Content-Type was text/csv */
    char *body;  /* accumulated body, NUL after body_len */
    size_t body_len, body_cap, body_limit;
    bool too_large;  /* a chunked body passed the cap: discard, 413 at the end */
    bool replied;    /* a response was queued */
    unsigned status; /* of the queued response */
};

/* ---- http_guard.c: connection limit, eviction of idle connections, receive deadlines ---- */
typedef struct HttpGuard HttpGuard;
typedef struct HttpConn HttpConn;

/* raw_replies: plain HTTP, so a 503/408 may be written on a connection MHD has not
 * answered yet. Starts the reaper thread. Returns 0 or -errno. */
int http_guard_new(HttpGuard **out, unsigned max_connections, unsigned timeout_s, bool raw_replies);
/* After MHD_stop_daemon. Accepts NULL. */
HttpGuard *http_guard_free(HttpGuard *g);
/* What the guard did so far (for /metrics). Accepts g == NULL (all zero). */
void http_guard_counts(HttpGuard *g, uint64_t *evicted, uint64_t *refused, uint64_t *timed_out);
/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the HttpGuard. */
void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* The request's life on its connection: headers in, n body bytes in, body complete,
 * reply done (the connection is idle again). Each accepts g == NULL. */
void http_guard_request_started(HttpGuard *g, struct MHD_Connection *conn);
void http_guard_body(HttpGuard *g, struct MHD_Connection *conn, size_t n);
void http_guard_request_received(HttpGuard *g, struct MHD_Connection *conn);
void http_guard_request_done(HttpGuard *g, struct MHD_Connection *conn);

/* ---- http_body.c ---- */
enum {
    HTTP_BODY_MORE = 0,    /* keep reading */
    HTTP_BODY_READY = 1,   /* the whole body is in req->body */
    HTTP_BODY_REPLIED = 2, /* an error reply was queued (or tried): return its result */
};
#define HTTP_JSON_MAX_DEPTH 16

/* Takes one body chunk (upload_data, *size) into req; sets *size = 0. Returns
 * HTTP_BODY_MORE, or -ENOMEM. */
int http_body_append(HttpRequest *req, const char *data, size_t *size);

/* Parses req->body as one JSON value: valid UTF-8, nesting at most HTTP_JSON_MAX_DEPTH
 * (checked before parsing), no trailing bytes but whitespace, no duplicate object keys
 * (except inside a record's "features" object, which records.c reports by name).
 * Returns HTTP_BODY_READY with *out (caller cJSON_Deletes), or HTTP_BODY_REPLIED with
 * the 400 queued and *ret holding MHD's result. */
int http_body_parse_json(HttpRequest *req, cJSON **out, enum MHD_Result *ret);

/* Checks bytes for UTF-8 validity (no overlongs, no surrogates). */
bool http_utf8_valid(const char *s, size_t n);

/* Depth of the deepest [ or { in s (strings skipped); stops counting past limit+1. */
size_t http_json_depth(const char *s, size_t n, size_t limit);

/* ---- http_reply.c: every reply records req->status ---- */
/* Queues body (ownership taken, freed with free()) with the given content type. */
enum MHD_Result http_reply_take(HttpRequest *req, unsigned status, const char *content_type,
                                char *body, size_t len);
/* Queues the contents of b as JSON (b is reset); 500 when b ran out of memory. */
enum MHD_Result http_reply_json(HttpRequest *req, unsigned status, HttpBuf *b);
/* The one error envelope: {"error":{"code","message"[,details]}}. details, when not NULL,
 * is a JSON fragment of members (`"missing":["a"],"unknown":[]`) placed after message. */
enum MHD_Result http_reply_error(HttpRequest *req, HttpError e, const char *details,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 405 with an Allow header. */
enum MHD_Result http_reply_405(HttpRequest *req, const char *allow);

/* ---- records.c: the only place JSON becomes float[] ---- */
#define RECORDS_MAX_NAMES 64 /* names listed per category in a 422 */

typedef struct RecordIssues {
    HttpBuf missing, unknown, invalid, repeated; /* comma-separated JSON strings */
    size_t n_missing, n_unknown, n_invalid, n_repeated;
    HttpBuf indices; /* batch: comma-separated record indices */
    size_t n_indices;
    size_t hits;       /* problems seen, counting repeats the lists leave out */
    char message[200]; /* first problem, human readable, never a record value */
} RecordIssues;

enum {
    RECORDS_E_SCHEMA = 1, /* the record does not fit: issues say how */
};

void records_issues_init(RecordIssues *iss);
void records_issues_deinit(RecordIssues *iss);
/* Renders issues as envelope details ("missing":[..],"unknown":[..],...). Caller frees. */
char *records_issues_details(RecordIssues *iss);

/* How strictly scoring records are read (from the Config). */
typedef struct RecordPolicy {
    unsigned max_missing_percent; /* more missing fields than this share: 422 */
    bool lenient_numbers;         /* "12.5" accepted for a numeric field */
} RecordPolicy;

/* What reading a record did besides filling x: fields imputed, categories never seen. */
typedef struct RecordNotes {
    HttpBuf imputed, unseen; /* comma-separated JSON strings (field names) */
    size_t n_imputed, n_unseen;
} RecordNotes;

void records_notes_init(RecordNotes *notes);
void records_notes_deinit(RecordNotes *notes);
/* Appends ,"imputed":[...] and ,"unseen":[...] when they are not empty. */
void records_put_notes(HttpBuf *out, const RecordNotes *notes);

/* Reads one scoring record against the model's schema (fields by name, or "values" in field
 * order; see records.c) and encodes it into x[m->n_features]. notes (may be NULL) collects
 * the imputed fields and unseen categories. Returns 0, RECORDS_E_SCHEMA (iss says why) or
 * -ENOMEM. */
int records_read_model(const cJSON *rec, const Model *m, const RecordPolicy *policy, float *x,
                       RecordNotes *notes, RecordIssues *iss);

/* Training records (POST /retrain): {"features": {name: value}} or {"values": [...]} filling
 * the first n_values of names[n] in order; values are numbers, strings (a column with any
 * string is a text column), null or absent (missing); "label": 0|1 and "id" are allowed.
 * Builds a mixed Dataset as dataset_parse_csv's mixed mode does. Returns 0, RECORDS_E_SCHEMA (iss
 * names the record indices and fields) or -ENOMEM. */
int records_to_dataset(const cJSON *records, char *const *names, size_t n, size_t n_values,
                       Dataset **out, RecordIssues *iss);

/* The record's "id" (string or number) as a JSON fragment for echoing ("null" when
 * absent). Returns 0 or RECORDS_E_SCHEMA for another type. */
int records_id(const cJSON *rec, HttpBuf *out);

/* ---- handlers (api_*.c) ---- */
enum MHD_Result api_score(HttpRequest *req);
enum MHD_Result api_score_batch(HttpRequest *req);
enum MHD_Result api_retrain_start(HttpRequest *req);
enum MHD_Result api_retrain_status(HttpRequest *req);
enum MHD_Result api_retrain_cancel(HttpRequest *req);
/* 409 not_trainer: what a role = replica answers to anything that would write the model file
 * (POST/DELETE /retrain, POST /model/rollback). */
enum MHD_Result api_reply_not_trainer(HttpRequest *req);
enum MHD_Result api_model_get(HttpRequest *req);
enum MHD_Result api_model_reload(HttpRequest *req);
enum MHD_Result api_model_rollback(HttpRequest *req);
enum MHD_Result api_health(HttpRequest *req);
enum MHD_Result api_health_live(HttpRequest *req);
enum MHD_Result api_metrics(HttpRequest *req);

/* The value of query parameter key, or NULL. */
const char *http_query(HttpRequest *req, const char *key);

double http_now_unix(void);
