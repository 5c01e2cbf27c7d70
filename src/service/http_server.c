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
 * Shutdown quiesces first (no new connections), lets requests in flight finish, then stops.
 */
#include "aescore/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aescore/log.h"
#include "api.h"
#include "http_body.h"
#include "http_guard.h"
#include "http_reply.h"
#include "http_request.h"

#define LOG_PATH_MAX 160 /* request paths are cut to this in logs */
#define TLS_PEM_MAX  (1024 * 1024)

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
    {"/model/rollback", "POST", HTTP_EP_MODEL_ROLLBACK, HTTP_BODY_NONE, true, api_model_rollback},
    {"/metrics", "GET", HTTP_EP_METRICS, HTTP_BODY_NONE, false, api_metrics},
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
    [HTTP_EP_METRICS] = "/metrics",
    [HTTP_EP_OTHER] = "other",
};

double http_now_unix(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static const char *header(HttpRequest *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

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

/* Does the request carry "Authorization: Bearer <token>"? A NULL token lets everyone in. */
static bool authorized(HttpRequest *req, const char *token, size_t token_len)
{
    const char *auth;

    if (token == NULL)
        return true;
    auth = header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    auth += 7;
    while (*auth == ' ')
        auth++;
    return token_equal(auth, strlen(auth), token, token_len);
}

/* Everything decided before the body: returns MHD_YES to go on reading, or the result of
 * an error reply already queued. */
static enum MHD_Result first_call(HttpRequest *req, const char *url)
{
    const HttpServer *s = req->server;
    const char *method = req->method;
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    char allow[64] = "";
    bool path_known = false;
    const char *cl, *te, *ct;

    for (size_t i = 0; i < N_ROUTES; i++) {
        if (strcmp(routes[i].path, url) != 0)
            continue;
        path_known = true;
        req->endpoint = routes[i].endpoint;
        if (strcmp(routes[i].method, want) == 0)
            req->route = &routes[i];
        if (allow[0] != '\0')
            strcat(allow, ", ");
        strcat(allow, routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            strcat(allow, ", HEAD");
    }
    if (!path_known)
        return http_reply_error(req, HTTP_E_NOT_FOUND, NULL, "no such endpoint");
    if (req->route == NULL)
        return http_reply_405(req, allow);

    cl = header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    te = header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (cl != NULL && te != NULL)
        return http_reply_error(req, HTTP_E_INVALID_REQUEST, NULL,
                                "Content-Length together with Transfer-Encoding is refused");
    if (req->route->admin && !authorized(req, s->admin_token, s->admin_token_len))
        return http_reply_error(req, HTTP_E_UNAUTHORIZED, NULL,
                                "this endpoint needs Authorization: Bearer <admin token>");
    if ((req->endpoint == HTTP_EP_SCORE || req->endpoint == HTTP_EP_SCORE_BATCH) &&
        !authorized(req, s->score_token, s->score_token_len))
        return http_reply_error(req, HTTP_E_UNAUTHORIZED, NULL,
                                "this endpoint needs Authorization: Bearer <scoring token>");

    switch (req->route->body) {
    case HTTP_BODY_NONE:
        req->body_limit = 0;
        break;
    case HTTP_BODY_JSON:
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
    }
    if (req->route->body != HTTP_BODY_NONE) {
        ct = header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (media_type_is(ct, "application/json")) {
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    HttpServer *s = cls;
    HttpRequest *req = *con_cls;
    size_t plen;

    (void) version;
    if (req == NULL) {
        req = calloc(1, sizeof(*req));
        if (req == NULL)
            return MHD_NO;
        plen = strnlen(url, LOG_PATH_MAX);
        req->path = strndup(url, plen);
        if (req->path == NULL) {
            free(req);
            return MHD_NO;
        }
        req->server = s;
        req->conn = conn;
        req->method = method;
        req->endpoint = HTTP_EP_OTHER;
        clock_gettime(CLOCK_MONOTONIC, &req->start);
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = req;
        http_guard_request_started(s->guard, conn);
        return first_call(req, url);
    }
    if (req->replied) {
        /* an early error is queued: MHD discards the rest of the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        http_guard_body(s->guard, conn, *upload_data_size);
        return http_body_append(req, upload_data, upload_data_size) < 0 ? MHD_NO : MHD_YES;
    }
    http_guard_request_received(s->guard, conn);
    if (req->too_large)
        return http_reply_error(req, HTTP_E_BODY_TOO_LARGE, NULL,
                                "the body is larger than this endpoint accepts (%zu bytes)",
                                req->body_limit);
    return req->route->handler(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    HttpServer *s = cls;
    HttpRequest *req = *con_cls;
    struct timespec now;
    double seconds;

    if (req == NULL)
        return;
    http_guard_request_done(s->guard, conn);
    clock_gettime(CLOCK_MONOTONIC, &now);
    seconds = (double) (now.tv_sec - req->start.tv_sec) +
              (double) (now.tv_nsec - req->start.tv_nsec) * 1e-9;
    metrics_observe_request(s->metrics, req->endpoint, req->status, seconds);
    /* method, path, status, duration: never a header value or a byte of the body */
    log_debug("http", "%s %s %u %.3f ms%s", req->method, req->path, req->status, seconds * 1e3,
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    free(req->body);
    free(req->path);
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

/* Reads a whole small file (a token, a PEM certificate or key) into a NUL-terminated buffer
 * that the caller wipes and frees. `what` names it in errors. */
static int read_secret(const char *path, const char *what, size_t max, char **out, size_t *len,
                       char *err, size_t err_size)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;
    int r;

    if (f == NULL) {
        r = -errno;
        snprintf(err, err_size, "%s: cannot read the %s: %s", path, what, strerror(errno));
        return r;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    n = fread(buf, 1, max + 1, f);
    r = ferror(f) ? -EIO : 0;
    fclose(f);
    if (r == 0 && n > max)
        r = -EFBIG;
    if (r < 0) {
        snprintf(err, err_size, "%s: cannot read the %s: %s", path, what, strerror(-r));
        explicit_bzero(buf, max + 1);
        free(buf);
        return r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static void free_secret(char *p, size_t len)
{
    if (p != NULL) {
        explicit_bzero(p, len);
        free(p);
    }
}

/* A bearer token: one non-empty line (trailing blanks and newline dropped). */
static int read_token(const char *path, const char *what, char **token, size_t *token_len,
                      char *err, size_t err_size)
{
    char *buf = NULL;
    size_t n = 0, cap;
    int r = read_secret(path, what, 4096, &buf, &n, err, err_size);

    if (r < 0)
        return r;
    cap = n;
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (n == 0 || memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL) {
        snprintf(err, err_size, "%s: the %s must be one non-empty line", path, what);
        free_secret(buf, cap);
        return -EINVAL;
    }
    explicit_bzero(buf + n, cap - n);
    buf[n] = '\0';
    *token = buf;
    *token_len = n;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" -> a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char *err,
                        size_t err_size)
{
    char host[256];
    const char *colon, *port;
    struct addrinfo hints, *res = NULL;
    int r;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':' || (size_t) (close - listen - 1) >= sizeof(host))
            goto bad;
        memcpy(host, listen + 1, (size_t) (close - listen - 1));
        host[close - listen - 1] = '\0';
        port = close + 2;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL || (size_t) (colon - listen) >= sizeof(host))
            goto bad;
        memcpy(host, listen, (size_t) (colon - listen));
        host[colon - listen] = '\0';
        port = colon + 1;
    }
    if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
        atoi(port) > 65535)
        goto bad;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (r != 0) {
        snprintf(err, err_size, "listen address %s: %s", listen, gai_strerror(r));
        return -EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;

bad:
    snprintf(err, err_size, "listen address %s: expected HOST:PORT or [IPV6]:PORT", listen);
    return -EINVAL;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *) ss)->sin_port);
}

int http_server_new(HttpServer **out, const Config *config, ModelSlot *slot, Trainer *trainer,
                    int listen_fd, char *err, size_t err_size)
{
    HttpServer *s = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    unsigned threads = config->threads, limit;
    struct MHD_OptionItem extra[4]; /* ours, passed as one MHD_OPTION_ARRAY */
    size_t n_extra = 0;
    const union MHD_DaemonInfo *info;
    int r;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->config = config;
    s->slot = slot;
    s->trainer = trainer;
    s->listen_fd = -1;
    s->started = http_now_unix();
    atomic_init(&s->stopping, false);
    atomic_init(&s->in_flight, 0);
    r = metrics_new(&s->metrics, endpoint_names, HTTP_EP_COUNT_);
    if (r < 0)
        goto fail;
    if (config->admin_token_file[0] != '\0') {
        r = read_token(config->admin_token_file, "admin token", &s->admin_token,
                       &s->admin_token_len, err, err_size);
        if (r < 0)
            goto fail;
    }
    if (config->score_token_file[0] != '\0') {
        r = read_token(config->score_token_file, "scoring token", &s->score_token,
                       &s->score_token_len, err, err_size);
        if (r < 0)
            goto fail;
    }
    if (config->tls_cert_file[0] != '\0' || config->tls_key_file[0] != '\0') {
        size_t unused;

        if (config->tls_cert_file[0] == '\0' || config->tls_key_file[0] == '\0') {
            r = -EINVAL;
            snprintf(err, err_size, "tls_cert_file and tls_key_file must be set together");
            goto fail;
        }
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            r = -ENOTSUP;
            snprintf(err, err_size, "this libmicrohttpd was built without TLS support");
            goto fail;
        }
        r = read_secret(config->tls_cert_file, "TLS certificate", TLS_PEM_MAX, &s->tls_cert,
                        &unused, err, err_size);
        if (r < 0)
            goto fail;
        r = read_secret(config->tls_key_file, "TLS key", TLS_PEM_MAX, &s->tls_key, &unused, err,
                        err_size);
        if (r < 0)
            goto fail;
        flags |= MHD_USE_TLS;
    }
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned) n : 1;
    }
    /* http_guard admits max_connections. MHD's own limit sits above it, with room for the
     * connections the guard has shut down and MHD has not cleaned up yet (a flood of new
     * connections outpaces the cleanup within one poll round): at its limit MHD drops new
     * connections, or stops accepting and leaves clients in the backlog. MHD divides the
     * limit among the pool threads and refuses one below the pool size. */
    limit = 2 * config->max_connections + 64;
    if (limit < threads)
        limit = threads;
    r = http_guard_new(&s->guard, config->max_connections, config->connection_timeout,
                       s->tls_cert == NULL);
    if (r < 0) {
        snprintf(err, err_size, "cannot start the connection guard: %s", strerror(-r));
        goto fail;
    }
    extra[n_extra++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
                                               (intptr_t) http_guard_notify, s->guard};
    if (s->tls_cert != NULL) {
        extra[n_extra++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        extra[n_extra++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
    }
    extra[n_extra] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    if (listen_fd >= 0) {
        int fl = fcntl(listen_fd, F_GETFL);
        if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            r = -errno;
            snprintf(err, err_size, "listen socket %d: %s", listen_fd, strerror(errno));
            goto fail;
        }
        s->listen_fd = listen_fd;
    } else {
        r = parse_listen(config->listen, &ss, &sslen, err, err_size);
        if (r < 0)
            goto fail;
        if (ss.ss_family == AF_INET6)
            flags |= MHD_USE_IPv6;
    }

    /* the logger goes first so that MHD's complaints about later options reach it */
    if (listen_fd >= 0)
        s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, limit,
            MHD_OPTION_CONNECTION_TIMEOUT, config->connection_timeout,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, config->connection_memory_limit,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_LISTEN_SOCKET,
            (MHD_socket) listen_fd, MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    else
        s->daemon = MHD_start_daemon(
            flags, sockaddr_port(&ss), NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_logger, s, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, limit,
            MHD_OPTION_CONNECTION_TIMEOUT, config->connection_timeout,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, config->connection_memory_limit,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *) &ss, MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    (void) sslen;
    if (s->daemon == NULL) {
        r = -EADDRNOTAVAIL;
        snprintf(err, err_size, "libmicrohttpd did not start (its message above says why)");
        goto fail;
    }
    info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : 0;
    if (s->port == 0) {
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD);
        if (info != NULL && getsockname(info->listen_fd, (struct sockaddr *) &bound, &blen) == 0)
            s->port =
                ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                  : ((struct sockaddr_in *) &bound)->sin_port);
    }
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
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        /* in-flight requests finish (bounded: a stuck client is cut by the timeout) */
        unsigned waited_ms = 0, max_ms = 1000 * (s->config->connection_timeout + 1);
        while (atomic_load(&s->in_flight) > 0 && waited_ms < max_ms) {
            usleep(10 * 1000);
            waited_ms += 10;
        }
        MHD_stop_daemon(s->daemon);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    metrics_free(s->metrics);
    http_guard_free(s->guard);
    free_secret(s->admin_token, s->admin_token_len);
    free_secret(s->score_token, s->score_token_len);
    free_secret(s->tls_key, s->tls_key != NULL ? strlen(s->tls_key) : 0);
    free(s->tls_cert);
    free(s);
    return NULL;
}
