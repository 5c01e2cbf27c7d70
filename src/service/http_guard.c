/* http_guard: which connections the daemon keeps, and for how long.
 *
 * libmicrohttpd 0.9.75 gets two things wrong for a daemon in a request path:
 *  - at its connection limit a pool thread stops polling the listen socket, so further
 *    clients queue in the kernel backlog, unanswered, until an old connection times out:
 *    a few thousand idle connections take the service down for minutes, /health included;
 *  - its timeout counts inactivity only, so a client that sends a byte a second holds a
 *    connection (and, in the body phase, a request buffer) for ever.
 * So MHD gets a hard limit above ours (room for connections being torn down) and tells us
 * about every connection (MHD_OPTION_NOTIFY_CONNECTION). We keep our own list, least
 * recently used first, and admit at most max_connections:
 *  - a new connection over the limit closes the least recently used IDLE connection (no
 *    request in progress; an HTTP client expects an idle keep-alive connection to close)
 *    that has been idle for HTTP_GUARD_GRACE at least (a younger one may be sending the
 *    headers MHD has not parsed yet), or, when there is none, is refused itself with a 503
 *    too_many_connections. So a burst of idle connections is refused, and a client that
 *    comes a second later still gets a slot at the expense of the oldest idle one;
 *  - a reaper thread closes an idle connection (headers not complete, or keep-alive with
 *    nothing sent) after connection_timeout, and a request whose body is still arriving
 *    after connection_timeout plus one second per HTTP_GUARD_MIN_RATE bytes with a 408;
 *    a request whose client half-closed before sending its whole body is dropped on the
 *    next tick (MHD would keep it until its own timeout: a cheap way to fill the slots).
 * Closing is shutdown(2) on the socket, never close(2): MHD still owns the descriptor, sees
 * end-of-file on its next poll and cleans up as for any peer that went away. MHD notifies
 * CLOSED before it closes the descriptor, and the entry leaves the list under the same lock
 * that every shutdown here holds, so a shutdown can never hit a reused descriptor.
 * Raw 503/408 replies are written only on plain HTTP, before MHD has written anything on
 * that connection; over TLS the connection is just closed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "aescore/log.h"
#include "aescore/util.h"
#include "http_guard.h"
#include "http_request.h"

#define HTTP_GUARD_MIN_RATE  (64.0 * 1024.0) /* bytes/s a body must keep up, past the timeout */
#define HTTP_GUARD_TICK_NS   (200L * 1000L * 1000L)
#define HTTP_GUARD_WARN_SECS 10.0
#define HTTP_GUARD_GRACE     1.0 /* seconds a new or just-served connection is safe from eviction */

typedef enum ConnPhase {
    CONN_IDLE = 0, /* no request callback yet: headers arriving, or keep-alive */
    CONN_BODY,     /* headers in, body arriving: deadline applies */
    CONN_BUSY,     /* handler running or reply being sent: MHD's timeout only */
} ConnPhase;

struct HttpConn {
    HttpConn *prev, *next; /* in g->conns, least recently used first; NULL when dead */
    int fd;
    ConnPhase phase;
    double since;       /* monotonic: admitted, or last request completed */
    double deadline;    /* CONN_BODY: cut off after this */
    bool dead;          /* shut down by us; MHD has not cleaned up yet */
    unsigned eof_ticks; /* reaper ticks in a row that found the peer half-closed */
};

struct HttpGuard {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t reaper;
    bool reaper_started, stop;
    unsigned max;     /* admitted connections */
    double timeout;   /* seconds */
    bool raw_replies; /* plain HTTP: 503/408 may be written before MHD writes */
    HttpConn *head, *tail;
    unsigned live; /* entries in the list (not dead) */
    unsigned long long evicted, refused, timed_out, abandoned;
    double last_warn;
};

static const char refuse_503[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Connection: close\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Retry-After: 1\r\n"
                                 "Content-Length: 84\r\n"
                                 "\r\n"
                                 "{\"error\":{\"code\":\"too_many_connections\",\"message\":"
                                 "\"every connection slot is busy\"}}\n";

static const char timeout_408[] = "HTTP/1.1 408 Request Timeout\r\n"
                                  "Connection: close\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Content-Length: 85\r\n"
                                  "\r\n"
                                  "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the "
                                  "request body arrived too slowly\"}}\n";

static void list_remove(HttpGuard *g, HttpConn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        g->tail = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(HttpGuard *g, HttpConn *c)
{
    c->prev = g->tail;
    c->next = NULL;
    if (g->tail != NULL)
        g->tail->next = c;
    else
        g->head = c;
    g->tail = c;
}

/* Under g->lock. Takes c out of the list and shuts its socket down, after a raw reply. */
static void cut(HttpGuard *g, HttpConn *c, const char *reply, size_t len)
{
    if (reply != NULL && g->raw_replies)
        (void) send(c->fd, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void) shutdown(c->fd, SHUT_RDWR);
    list_remove(g, c);
    c->dead = true;
    g->live--;
}

/* True when the peer has half-closed (FIN read, nothing left unread): a request whose body
 * is still owed can never complete, and MHD would hold the slot until its timeout. */
static bool peer_finished(int fd)
{
    char b;

    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Under g->lock: at most one warning per HTTP_GUARD_WARN_SECS. */
static void warn_pressure(HttpGuard *g, double now)
{
    if (now - g->last_warn < HTTP_GUARD_WARN_SECS)
        return;
    g->last_warn = now;
    log_warning("http",
                "connection limit %u reached: %llu idle connections closed, %llu refused, "
                "%llu cut off for slowness so far",
                g->max, g->evicted, g->refused, g->timed_out);
}

/* Under g->lock: one reaper tick for c. A half-closed peer is cut on the second tick in a
 * row that finds it so with no progress in between: within one tick MHD may still hold the
 * last bytes it read (a request sent whole, then shutdown(SHUT_WR), is served). */
static void reap(HttpGuard *g, HttpConn *c, double now)
{
    if (c->phase == CONN_BUSY)
        return;
    c->eof_ticks = peer_finished(c->fd) ? c->eof_ticks + 1 : 0;
    if (c->phase == CONN_IDLE && c->eof_ticks >= 2) {
        cut(g, c, NULL, 0); /* the client went away: not a timeout */
    } else if (c->phase == CONN_IDLE && now - c->since > g->timeout) {
        cut(g, c, NULL, 0);
        g->timed_out++;
    } else if (c->phase == CONN_BODY && now > c->deadline) {
        cut(g, c, timeout_408, sizeof(timeout_408) - 1);
        g->timed_out++;
    } else if (c->phase == CONN_BODY && c->eof_ticks >= 2) {
        cut(g, c, NULL, 0);
        g->abandoned++;
    }
}

static void *reaper_main(void *arg)
{
    HttpGuard *g = arg;
    struct timespec until;

    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        double now = util_now_mono();
        HttpConn *c = g->head, *next;

        for (; c != NULL; c = next) {
            next = c->next;
            reap(g, c, now);
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += HTTP_GUARD_TICK_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int http_guard_new(HttpGuard **out, unsigned max_connections, unsigned timeout_s, bool raw_replies)
{
    HttpGuard *g = calloc(1, sizeof(*g));
    int r;

    if (g == NULL)
        return -ENOMEM;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    g->max = max_connections;
    g->timeout = (double) timeout_s;
    g->raw_replies = raw_replies;
    g->last_warn = -HTTP_GUARD_WARN_SECS;
    r = pthread_create(&g->reaper, NULL, reaper_main, g);
    if (r != 0) {
        http_guard_free(g);
        return -r;
    }
    g->reaper_started = true;
    *out = g;
    return 0;
}

void http_guard_counts(HttpGuard *g, HttpGuardCounts *out)
{
    *out = (HttpGuardCounts){0};
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    *out = (HttpGuardCounts){g->evicted, g->refused, g->timed_out, g->abandoned};
    pthread_mutex_unlock(&g->lock);
}

HttpGuard *http_guard_free(HttpGuard *g)
{
    if (g == NULL)
        return NULL;
    if (g->reaper_started) {
        pthread_mutex_lock(&g->lock);
        g->stop = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->reaper, NULL);
    }
    /* MHD_stop_daemon has notified CLOSED for every connection: the list is empty. */
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
    return NULL;
}

void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    HttpGuard *g = cls;
    HttpConn *c = *socket_context;
    const union MHD_ConnectionInfo *info;
    double now;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (c == NULL)
            return;
        pthread_mutex_lock(&g->lock);
        if (!c->dead) {
            list_remove(g, c);
            g->live--;
        }
        pthread_mutex_unlock(&g->lock);
        free(c);
        *socket_context = NULL;
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c = calloc(1, sizeof(*c));
    if (c == NULL || info == NULL) {
        /* no entry, no control: better to drop this one connection than to guess */
        if (info != NULL)
            (void) shutdown(info->connect_fd, SHUT_RDWR);
        free(c);
        return;
    }
    c->fd = info->connect_fd;
    now = util_now_mono();
    c->since = now;
    pthread_mutex_lock(&g->lock);
    if (g->live >= g->max) {
        HttpConn *victim = g->head;

        /* the list is in `since` order: stop at the first idle one still in its grace */
        while (victim != NULL && victim->phase != CONN_IDLE)
            victim = victim->next;
        if (victim != NULL && now - victim->since < HTTP_GUARD_GRACE)
            victim = NULL;
        if (victim != NULL) {
            cut(g, victim, NULL, 0);
            g->evicted++;
        } else {
            if (g->raw_replies)
                (void) send(c->fd, refuse_503, sizeof(refuse_503) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void) shutdown(c->fd, SHUT_RDWR);
            c->dead = true;
            g->refused++;
            warn_pressure(g, now);
            pthread_mutex_unlock(&g->lock);
            *socket_context = c;
            return;
        }
        warn_pressure(g, now);
    }
    list_append(g, c);
    g->live++;
    pthread_mutex_unlock(&g->lock);
    *socket_context = c;
}

static HttpConn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

void http_guard_request_started(HttpGuard *g, struct MHD_Connection *conn, double now)
{
    HttpConn *c = conn_of(conn);

    if (g == NULL || c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    c->phase = CONN_BODY;
    c->deadline = now + g->timeout;
    c->eof_ticks = 0;
    pthread_mutex_unlock(&g->lock);
}

void http_guard_body(HttpGuard *g, struct MHD_Connection *conn, size_t n)
{
    HttpConn *c = conn_of(conn);

    if (g == NULL || c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    c->deadline += (double) n / HTTP_GUARD_MIN_RATE;
    c->eof_ticks = 0; /* progress: the bytes MHD held are in */
    pthread_mutex_unlock(&g->lock);
}

void http_guard_request_received(HttpGuard *g, struct MHD_Connection *conn)
{
    HttpConn *c = conn_of(conn);

    if (g == NULL || c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    c->phase = CONN_BUSY;
    pthread_mutex_unlock(&g->lock);
}

void http_guard_request_done(HttpGuard *g, struct MHD_Connection *conn, double now)
{
    HttpConn *c = conn_of(conn);

    if (g == NULL || c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    c->phase = CONN_IDLE;
    c->since = now;
    c->eof_ticks = 0;
    if (!c->dead) {
        list_remove(g, c);
        list_append(g, c);
    }
    pthread_mutex_unlock(&g->lock);
}
