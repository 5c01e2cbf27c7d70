/* http_server: libmicrohttpd lifecycle, options and the route table.
 *
 * MHD runs a pool of epoll threads and calls on_request for every request: once when the
 * headers are in, once per body chunk, once at the end (libmicrohttpd's protocol). The first
 * call makes the HttpRequest and settles everything that does not need the body, so a bad
 * request costs no reading: 404 / 405 (+Allow), Content-Length together with
 * Transfer-Encoding (request smuggling: MHD 0.9.75 would silently prefer chunked), the
 * bearer token, a Content-Length over the route's cap (413), the media type (415). Chunk
 * calls only accumulate (http_body.c); the final call runs the route's handler. The request
 * is freed only in on_completed, which MHD calls for finished and aborted requests alike,
 * and which also writes the request log line and the metrics.
 * Shutdown turns new connections away (closed as they are accepted), lets requests in flight
 * finish, then stops. Not MHD_quiesce_daemon: in 0.9.75 with a thread pool it aborts the
 * process when a worker that is awake has taken the listen socket out of its epoll set
 * first (its own removal treats ENOENT as a panic, the worker's does not).
 */
#include "aescore/http_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aescore/listen.h"
#include "aescore/log.h"
#include "aescore/util.h"
#include "api.h"
#include "drift.h"
#include "http_body.h"
#include "http_guard.h"
#include "http_reply.h"
#include "http_request.h"
#include "secret.h"

#define LOG_PATH_MAX 160 /* request paths are cut to this in logs */

static const HttpRoute routes[] = {
    {"/score", "POST", HTTP_EP_SCORE, HTTP_BODY_JSON, false, api_score},
    {"/score/batch", "POST", HTTP_EP_SCORE_BATCH, HTTP_BODY_JSON, false, api_score_batch},
    {"/retrain", "POST", HTTP_EP_RETRAIN, HTTP_BODY_RETRAIN, true, api_retrain_start},
    {"/retrain", "GET", HTTP_EP_RETRAIN, HTTP_BODY_NONE, false, api_retrain_status},
    {"/retrain", "DELETE", HTTP_EP_RETRAIN, HTTP_BODY_NONE, true, api_retrain_cancel},
    {"/health", "GET", HTTP_EP_HEALTH, HTTP_BODY_NONE, false, api_health},
    {"/health/live", "GET", HTTP_EP_HEALTH_LIVE, HTTP_BODY_NONE, false, api_health_live},
    {"/model", "GET", HTTP_EP_MODEL, HTTP_BODY_NONE, false, api_model_get},
    {"/model/reload", "POST", HTTP_EP_MODEL_RELOAD, HTTP_BODY_NONE, true, api_model_reload},
    {"/model/rollback", "POST", HTTP_EP_MODEL_ROLLBACK, HTTP_BODY_OPTIONAL, true,
     api_model_rollback},
    {"/model/promote", "POST", HTTP_EP_MODEL_PROMOTE, HTTP_BODY_OPTIONAL, true, api_model_promote},
    {"/models", "GET", HTTP_EP_MODELS, HTTP_BODY_NONE, false, api_models},
    {"/metrics", "GET", HTTP_EP_METRICS, HTTP_BODY_NONE, false, api_metrics},
    /* the Open Inference Protocol: api_oip_path maps a /v2 path to one of these */
    {"/v2", "GET", HTTP_EP_V2, HTTP_BODY_NONE, false, api_oip_server},
    {"/v2/health/live", "GET", HTTP_EP_V2_LIVE, HTTP_BODY_NONE, false, api_oip_live},
    {"/v2/health/ready", "GET", HTTP_EP_V2_READY, HTTP_BODY_NONE, false, api_oip_ready},
    {API_OIP_MODEL, "GET", HTTP_EP_V2_MODEL, HTTP_BODY_NONE, false, api_oip_model},
    {API_OIP_MODEL "/ready", "GET", HTTP_EP_V2_MODEL_READY, HTTP_BODY_NONE, false,
     api_oip_model_ready},
    {API_OIP_MODEL "/infer", "POST", HTTP_EP_V2_INFER, HTTP_BODY_JSON, false, api_oip_infer},
    {"/drift", "GET", HTTP_EP_DRIFT, HTTP_BODY_NONE, false, api_drift},
    {"/", "GET", HTTP_EP_STATUS_PAGE, HTTP_BODY_NONE, false, api_status_page},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* label values of aescore_http_requests_total{endpoint}, indexed by HttpEndpoint */
static const char *const endpoint_names[HTTP_EP_COUNT_] = {
    [HTTP_EP_SCORE] = "/score",
    [HTTP_EP_SCORE_BATCH] = "/score/batch",
    [HTTP_EP_RETRAIN] = "/retrain",
    [HTTP_EP_HEALTH] = "/health",
    [HTTP_EP_HEALTH_LIVE] = "/health/live",
    [HTTP_EP_MODEL] = "/model",
    [HTTP_EP_MODEL_RELOAD] = "/model/reload",
    [HTTP_EP_MODEL_ROLLBACK] = "/model/rollback",
    [HTTP_EP_MODEL_PROMOTE] = "/model/promote",
    [HTTP_EP_MODELS] = "/models",
    [HTTP_EP_METRICS] = "/metrics",
    [HTTP_EP_V2] = "/v2",
    [HTTP_EP_V2_LIVE] = "/v2/health/live",
    [HTTP_EP_V2_READY] = "/v2/health/ready",
    [HTTP_EP_V2_MODEL] = API_OIP_MODEL,
    [HTTP_EP_V2_MODEL_READY] = API_OIP_MODEL "/ready",
    [HTTP_EP_V2_INFER] = API_OIP_MODEL "/infer",
    [HTTP_EP_DRIFT] = "/drift",
    [HTTP_EP_STATUS_PAGE] = "/",
    [HTTP_EP_OTHER] = "other",
};

/* Does the Content-Type header name media type `type` (parameters such as charset allowed)? */
static bool media_type_is(const char *ct, const char *type)
{
    size_t n = strlen(type);

    if (ct == NULL)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, type, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Compares without an early exit: the time taken depends only on the lengths, never on how
 * much of the token matched. */
static bool token_equal(const char *given, size_t glen, const char *token, size_t tlen)
{
    unsigned char diff = (unsigned char) (glen != tlen);

    for (size_t i = 0; i < tlen; i++)
        diff |= (unsigned char) ((i < glen ? given[i] : 0) ^ token[i]);
    return diff == 0;
}

/* Does the Authorization header's value auth (NULL: none) say "Bearer <token>"? A NULL token
 * lets everyone in. */
static bool authorized(const char *auth, const char *token, size_t token_len)
{
    if (token == NULL)
        return true;
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    auth += 7;
    while (*auth == ' ')
        auth++;
    return token_equal(auth, strlen(auth), token, token_len);
}

/* What the request's headers say, from one walk over them: its framing (how many
 * Content-Length and Transfer-Encoding headers, whether every coding named is chunked) and
 * the values routing reads, each the first of its name as MHD_lookup_connection_value
 * gives it (NULL: absent). */
typedef struct RequestHeaders {
    unsigned content_lengths, transfer_encodings;
    bool only_chunked, has_host;
    const char *content_length, *content_type, *authorization;
} RequestHeaders;

static bool is_chunked(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, "chunked", 7) != 0)
        return false;
    for (v += 7; *v == ' ' || *v == '\t'; v++)
        ;
    return *v == '\0';
}

/* key[key_size] is the header name (ASCII case-insensitive) */
#define HEADER_IS(name) (key_size == sizeof(name) - 1 && strncasecmp(key, name, key_size) == 0)

static enum MHD_Result read_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    RequestHeaders *h = cls;

    (void) kind;
    (void) value_size;
    if (HEADER_IS(MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (h->content_lengths++ == 0)
            h->content_length = value;
    } else if (HEADER_IS(MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        h->transfer_encodings++;
        h->only_chunked = h->only_chunked && value != NULL && is_chunked(value);
    } else if (HEADER_IS(MHD_HTTP_HEADER_HOST)) {
        h->has_host = true;
    } else if (HEADER_IS(MHD_HTTP_HEADER_CONTENT_TYPE)) {
        if (h->content_type == NULL)
            h->content_type = value;
    } else if (HEADER_IS(MHD_HTTP_HEADER_AUTHORIZATION)) {
        if (h->authorization == NULL)
            h->authorization = value;
    }
    return MHD_YES;
}
#undef HEADER_IS

/* RFC 9112 section 6.3: a message whose length two parsers could read differently is refused
 * and its connection closed, so no byte after it is read as another request (request
 * smuggling behind a proxy that picks the other length). HTTP/1.1 needs Host (3.2). */
static enum MHD_Result check_framing(HttpRequest *req, const RequestHeaders *h, const char *version)
{
    req->close_after = true; /* every refusal below ends the connection */
    if (h->content_lengths > 1)
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "more than one Content-Length header is refused");
    if (h->content_lengths > 0 && h->transfer_encodings > 0)
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "Content-Length together with Transfer-Encoding is refused");
    if (h->transfer_encodings > 1 || !h->only_chunked)
        return http_reply_error(req, HTTP_E_NOT_IMPLEMENTED, NULL,
                                "Transfer-Encoding other than one 'chunked' is not supported");
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && !h->has_host)
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "an HTTP/1.1 request needs a Host header");
    req->close_after = false;
    return MHD_YES;
}

/* The path of a request target: origin form as it is, absolute form (RFC 9112 3.2.2,
 * "http://host:port/score") without its scheme and authority. */
static const char *target_path(const char *url)
{
    const char *p;

    if (url[0] == '/')
        return url; /* origin form, nearly every request */
    if (strncasecmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        p = url + 8;
    else
        return url;
    p += strcspn(p, "/?");
    return *p == '/' ? p : "/";
}

/* libmicrohttpd's unescaper for the path and the query, with one difference: %00 stays as
 * it is. Decoded, it would end the C string early, and "/score%00/../model" would be
 * routed as /score; kept, the path matches no route and a parameter no value. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *w = s;

    (void) cls;
    (void) conn;
    for (const char *r = s; *r != '\0'; r++) {
        if (r[0] == '%' && isxdigit((unsigned char) r[1]) && isxdigit((unsigned char) r[2]) &&
            !(r[1] == '0' && r[2] == '0')) {
            char hex[3] = {r[1], r[2], '\0'};

            *w++ = (char) strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t) (w - s);
}

/* The route's body rules: its cap (a declared length over it is refused at once) and its
 * media types. */
static enum MHD_Result check_body(HttpRequest *req, const RequestHeaders *h)
{
    const HttpServer *s = req->server;
    const char *cl = h->content_length, *ct = h->content_type;

    switch (req->route->body) {
    case HTTP_BODY_NONE:
        req->body_limit = 0;
        break;
    case HTTP_BODY_JSON:
    case HTTP_BODY_OPTIONAL:
        req->body_limit = s->config->max_body_bytes;
        break;
    case HTTP_BODY_RETRAIN:
        req->body_limit = s->config->max_retrain_bytes;
        break;
    }
    if (cl != NULL) {
        char *end = NULL;
        unsigned long long n;

        errno = 0;
        n = strtoull(cl, &end, 10);
        if (errno != 0 || end == cl || *end != '\0' || n > req->body_limit)
            return http_reply_error(req, HTTP_E_BODY_TOO_LARGE, NULL,
                                    "the body is larger than this endpoint accepts (%zu bytes)",
                                    req->body_limit);
        req->body_declared = (size_t) n;
    }
    if (req->route->body == HTTP_BODY_OPTIONAL && (cl == NULL || strcmp(cl, "0") == 0) &&
        h->transfer_encodings == 0)
        return MHD_YES; /* no body: any Content-Type will do */
    if (req->route->body != HTTP_BODY_NONE) {
        /* the protocol's clients need not name the type (the body is JSON by definition); a
         * type they do name must be JSON */
        if (media_type_is(ct, "application/json") ||
            (ct == NULL && req->endpoint == HTTP_EP_V2_INFER)) {
            req->is_csv = false;
        } else if (req->route->body == HTTP_BODY_RETRAIN && media_type_is(ct, "text/csv")) {
            req->is_csv = true;
        } else {
            return http_reply_error(req, HTTP_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                                    req->route->body == HTTP_BODY_RETRAIN
                                        ? "Content-Type must be application/json or text/csv"
                                        : "Content-Type must be application/json");
        }
    }
    return MHD_YES;
}

/* Under /v2: the Open Inference Protocol's, whose errors take its form (http_reply.h). */
static bool is_oip_path(const char *path)
{
    return strncmp(path, "/v2", 3) == 0 && (path[3] == '\0' || path[3] == '/');
}

/* strcmp(a, b) == 0 inline: the route table is walked for every request, and most paths
 * differ from the one asked at their second byte. */
static bool text_equal(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b)
        a++, b++;
    return *a == *b;
}

/* The 405's Allow header for path: the methods of its routes, HEAD with GET. */
static void allowed_methods(const char *path, char allow[static 64])
{
    allow[0] = '\0';
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!text_equal(routes[i].path, path))
            continue;
        if (allow[0] != '\0')
            strcat(allow, ", ");
        strcat(allow, routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            strcat(allow, ", HEAD");
    }
}

/* Everything decided before the body: returns MHD_YES to go on reading, or the result of
 * an error reply already queued. */
static enum MHD_Result first_call(HttpRequest *req, const char *url, const char *version)
{
    const HttpServer *s = req->server;
    const char *method = req->method;
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    bool path_known = false;
    RequestHeaders h = {.only_chunked = true};
    enum MHD_Result framing;

    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, read_header, &h);
    framing = check_framing(req, &h, version);

    if (req->replied)
        return framing;
    url = target_path(url);
    if (req->oip) {
        int r = api_oip_path(url, s->config->model_name, &url, req->oip_version);

        if (r == -ESRCH)
            return http_reply_error(req, HTTP_E_NOT_FOUND, NULL,
                                    "unknown model (this server "
                                    "serves \"%s\")",
                                    s->config->model_name);
    }
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!text_equal(routes[i].path, url))
            continue;
        path_known = true;
        req->endpoint = routes[i].endpoint;
        if (strcmp(routes[i].method, want) == 0)
            req->route = &routes[i];
    }
    if (!path_known)
        return http_reply_error(req, HTTP_E_NOT_FOUND, NULL, "no such endpoint");
    if (req->route == NULL) {
        char allow[64];

        allowed_methods(url, allow);
        return http_reply_405(req, allow);
    }

    if (req->route->admin && !authorized(h.authorization, s->admin_token, s->admin_token_len))
        return http_reply_error(req, HTTP_E_UNAUTHORIZED, NULL,
                                "this endpoint needs Authorization: Bearer <admin token>");
    if ((req->endpoint == HTTP_EP_SCORE || req->endpoint == HTTP_EP_SCORE_BATCH ||
         req->endpoint == HTTP_EP_V2_INFER) &&
        !authorized(h.authorization, s->score_token, s->score_token_len))
        return http_reply_error(req, HTTP_E_UNAUTHORIZED, NULL,
                                "this endpoint needs Authorization: Bearer <scoring token>");

    return check_body(req, &h);
}

/* The body has all the bytes its Content-Length declared (a body over the cap is dropped,
 * so it never does). */
static bool declared_body_in(const HttpRequest *req)
{
    return req->body_declared > 0 && req->body_len == req->body_declared;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    HttpServer *s = cls;
    HttpRequest *req = *con_cls;
    size_t plen;

    if (req == NULL) {
        plen = strnlen(url, LOG_PATH_MAX);
        /* one block with its path; malloc, not calloc, which glibc serves without its
         * thread cache (320 instructions a request against 65) */
        req = malloc(sizeof(*req) + plen + 1);
        if (req == NULL)
            return MHD_NO;
        *req = (HttpRequest){.server = s,
                             .conn = conn,
                             .method = method,
                             .endpoint = HTTP_EP_OTHER,
                             .oip = is_oip_path(target_path(url)),
                             .start = util_now_mono()};
        memcpy(req->path, url, plen);
        req->path[plen] = '\0';
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = req;
        http_guard_request_started(s->guard, conn, req->start);
        return first_call(req, url, version);
    }
    if (req->replied) {
        /* an early error is queued: MHD discards the rest of the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        if (http_body_append(req, upload_data, upload_data_size) < 0)
            return MHD_NO;
        /* the whole declared body is in and the final callback comes next: the guard hears
         * so now, once, rather than of these bytes and then of the end */
        if (declared_body_in(req))
            http_guard_request_received(s->guard, conn);
        else
            http_guard_body(s->guard, conn, n);
        return MHD_YES;
    }
    if (!declared_body_in(req)) /* else the guard heard it with the last bytes */
        http_guard_request_received(s->guard, conn);
    if (req->too_large)
        return http_reply_error(req, HTTP_E_BODY_TOO_LARGE, NULL,
                                "the body is larger than this endpoint accepts (%zu bytes)",
                                req->body_limit);
    return req->route->handler(req);
}

/* Once the server is stopping, a new connection is closed as soon as it is accepted. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    const HttpServer *s = cls;

    (void) addr;
    (void) addrlen;
    return atomic_load(&s->stopping) ? MHD_NO : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    HttpServer *s = cls;
    HttpRequest *req = *con_cls;
    double now, seconds;

    if (req == NULL)
        return;
    now = util_now_mono();
    http_guard_request_done(s->guard, conn, now);
    seconds = now - req->start;
    metrics_observe_request(s->metrics, req->endpoint, req->status, seconds);
    /* method, path, status, duration: never a header value or a byte of the body */
    log_debug("http", "%s %s %u %.3f ms%s", req->method, req->path, req->status, seconds * 1e3,
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    free(req->body);
    free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void) cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_write(LOG_LEVEL_WARNING, "http", "libmicrohttpd: %s", line);
}

/* The files the config names: the bearer tokens and the TLS pair (config_check saw that
 * the two TLS keys come together). */
static int read_secrets(HttpServer *s, const Config *config, char *err, size_t err_size)
{
    size_t unused;
    int r = 0;

    if (config->admin_token_file[0] != '\0')
        r = secret_read_token(config->admin_token_file, "admin token", &s->admin_token,
                              &s->admin_token_len, err, err_size);
    if (r == 0 && config->score_token_file[0] != '\0')
        r = secret_read_token(config->score_token_file, "scoring token", &s->score_token,
                              &s->score_token_len, err, err_size);
    if (r != 0 || config->tls_cert_file[0] == '\0')
        return r;
    if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        snprintf(err, err_size, "this libmicrohttpd was built without TLS support");
        return -ENOTSUP;
    }
    r = secret_read_pem(config->tls_cert_file, "TLS certificate", &s->tls_cert, &unused, err,
                        err_size);
    if (r == 0)
        r = secret_read_pem(config->tls_key_file, "TLS key", &s->tls_key, &s->tls_key_len, err,
                            err_size);
    return r;
}

/* A listening socket of our own for config->listen, so that what fails (the address, the
 * bind) is said precisely; libmicrohttpd then serves it as it serves systemd's. */
static int bind_listen(const char *listen_text, int *out, char *err, size_t err_size)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    ListenAddr a;
    int fd, one = 1, r;

    if (listen_parse(listen_text, &a) != 0) {
        snprintf(err, err_size, "listen address %s: expected HOST:PORT or [IPV6]:PORT",
                 listen_text);
        return -EINVAL;
    }
    r = listen_resolve(&a, &ss, &len, err, err_size);
    if (r < 0)
        return r;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        snprintf(err, err_size, "socket: %s", strerror(errno));
        return r;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *) &ss, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        snprintf(err, err_size, "cannot bind %s: %s", listen_text, strerror(errno));
        close(fd);
        return r;
    }
    *out = fd;
    return 0;
}

/* Makes an inherited socket nonblocking, as libmicrohttpd's epoll loop needs. */
static int adopt_listen(int fd, char *err, size_t err_size)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int r = -errno;
        snprintf(err, err_size, "listen socket %d: %s", fd, strerror(errno));
        return r;
    }
    return 0;
}

/* The CPUs this process may run on: its affinity mask (taskset, a cgroup cpuset, systemd's
 * CPUAffinity=), else the online count. More pool threads than that only take turns on the
 * same CPUs: no more throughput, and a request waiting a scheduler tick (p99 of 4 ms
 * instead of 0.3 ms with two threads on one CPU under scripts/bench.sh's load). */
static unsigned usable_cpus(void)
{
    cpu_set_t set;
    long n;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned) CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN); /* more CPUs than a cpu_set_t holds */
    return n > 0 ? (unsigned) n : 1;
}

/* The pool size, and MHD's own connection limit for max_connections admitted ones. */
static void connection_limits(const Config *config, unsigned *threads, unsigned *limit)
{
    *threads = config->threads != 0 ? config->threads : usable_cpus();
    /* http_guard admits max_connections. MHD's own limit sits above it, with room for the
     * connections the guard has shut down and MHD has not cleaned up yet (a flood of new
     * connections outpaces the cleanup within one poll round): at its limit MHD drops new
     * connections, or stops accepting and leaves clients in the backlog. MHD divides the
     * limit among the pool threads and refuses one below the pool size. */
    *limit = 2 * config->max_connections + 64;
    if (*limit < *threads)
        *limit = *threads;
}

static int start_mhd(HttpServer *s, unsigned threads, unsigned limit, char *err, size_t err_size)
{
    const Config *config = s->config;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct MHD_OptionItem extra[4]; /* ours, passed as one MHD_OPTION_ARRAY */
    size_t n_extra = 0;

    extra[n_extra++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
                                               (intptr_t) http_guard_notify, s->guard};
    if (s->tls_cert != NULL) {
        flags |= MHD_USE_TLS;
        extra[n_extra++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        extra[n_extra++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
    }
    extra[n_extra] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    /* the logger goes first so that MHD's complaints about later options reach it */
    s->daemon =
        MHD_start_daemon(flags, 0, accept_policy, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                         mhd_logger, s, MHD_OPTION_THREAD_POOL_SIZE, threads,
                         MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
                         config->connection_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         config->connection_memory_limit, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                         s, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_LISTEN_SOCKET,
                         (MHD_socket) s->listen_fd, MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    if (s->daemon == NULL) {
        /* the socket is bound already: what is left to fail is MHD's own setup (threads,
         * epoll, TLS credentials), and its log line above names it */
        snprintf(err, err_size, "libmicrohttpd did not start%s (its message above says why)",
                 s->tls_cert != NULL ? " with the TLS certificate and key" : "");
        return -EIO;
    }
    return 0;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *) &ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *) &ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *) &ss)->sin_port);
}

int http_server_new(HttpServer **out, const Config *config, ModelSlot *slot, Trainer *trainer,
                    Watcher *watcher, Recent *recent, int listen_fd, char *err, size_t err_size)
{
    HttpServer *s = calloc(1, sizeof(*s));
    unsigned threads, limit;
    int r;

    if (s == NULL)
        return -ENOMEM;
    s->config = config;
    s->slot = slot;
    s->trainer = trainer;
    s->watcher = watcher;
    s->recent = recent;
    s->listen_fd = -1;
    s->started = util_now_wall();
    atomic_init(&s->stopping, false);
    atomic_init(&s->in_flight, 0);
    r = metrics_new(&s->metrics, endpoint_names, HTTP_EP_COUNT_);
    if (r == 0)
        r = drift_new(&s->drift, config->drift_window);
    if (r == 0)
        r = read_secrets(s, config, err, err_size);
    if (r != 0)
        goto fail;
    connection_limits(config, &threads, &limit);
    r = http_guard_new(&s->guard, config->max_connections, config->connection_timeout,
                       s->tls_cert == NULL);
    if (r < 0) {
        snprintf(err, err_size, "cannot start the connection guard: %s", strerror(-r));
        goto fail;
    }
    if (listen_fd >= 0) {
        r = adopt_listen(listen_fd, err, err_size);
        s->listen_fd = listen_fd;
    } else {
        r = bind_listen(config->listen, &s->listen_fd, err, err_size);
    }
    if (r == 0)
        r = start_mhd(s, threads, limit, err, err_size);
    if (r != 0)
        goto fail;
    s->port = bound_port(s->listen_fd);
    log_debug("http", "%u worker threads, %u connections (%u with those closing), %us timeout%s",
              threads, config->max_connections, limit, config->connection_timeout,
              s->tls_cert != NULL ? ", TLS" : "");
    *out = s;
    return 0;

fail:
    http_server_free(s);
    return r;
}

uint16_t http_server_port(const HttpServer *s)
{
    return s->port;
}

void http_server_set_stopping(HttpServer *s)
{
    atomic_store(&s->stopping, true);
}

HttpServer *http_server_free(HttpServer *s)
{
    if (s == NULL)
        return NULL;
    if (s->daemon != NULL) {
        /* in-flight requests finish (bounded: a stuck client is cut by the timeout), while
         * accept_policy turns new connections away; MHD closes the listen socket */
        unsigned waited_ms = 0, max_ms = 1000 * (s->config->connection_timeout + 1);

        http_server_set_stopping(s);
        while (atomic_load(&s->in_flight) > 0 && waited_ms < max_ms) {
            usleep(10 * 1000);
            waited_ms += 10;
        }
        MHD_stop_daemon(s->daemon);
    } else if (s->listen_fd >= 0)
        close(s->listen_fd); /* MHD never took it */
    metrics_free(s->metrics);
    drift_free(s->drift);
    http_guard_free(s->guard);
    secret_free(s->admin_token, s->admin_token_len);
    secret_free(s->score_token, s->score_token_len);
    secret_free(s->tls_key, s->tls_key_len);
    free(s->tls_cert);
    free(s);
    return NULL;
}
