/* http_guard: connection admission (a limit that refuses cleanly, evicting idle
 * connections when full), and receive deadlines against slow senders (private to
 * src/service; see http_guard.c for the design).
 * Threads: the callbacks run on MHD's threads; the guard has its own reaper thread and
 * locks its state.
 */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HttpGuard HttpGuard;
typedef struct HttpConn HttpConn;

/* raw_replies: plain HTTP, so a 503/408 may be written on a connection MHD has not
 * answered yet. Starts the reaper thread. Returns 0 or -errno. */
int http_guard_new(HttpGuard **out, unsigned max_connections, unsigned timeout_s, bool raw_replies);
/* After MHD_stop_daemon. Accepts NULL. */
HttpGuard *http_guard_free(HttpGuard *g);
typedef struct HttpGuardCounts {
    uint64_t evicted;   /* idle connections closed to admit a new one */
    uint64_t refused;   /* new connections refused with 503 */
    uint64_t timed_out; /* cut for sending headers or a body too slowly */
    uint64_t abandoned; /* dropped: the client half-closed with its body incomplete */
} HttpGuardCounts;

/* What the guard did so far (for /metrics). Accepts g == NULL (all zero). */
void http_guard_counts(HttpGuard *g, HttpGuardCounts *out);
/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the HttpGuard. */
void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* The request's life on its connection: headers in, n body bytes in, body complete,
 * reply done (the connection is idle again); `now` is util_now_mono() at that moment, which
 * the caller reads anyway. Each accepts g == NULL. */
void http_guard_request_started(HttpGuard *g, struct MHD_Connection *conn, double now);
void http_guard_body(HttpGuard *g, struct MHD_Connection *conn, size_t n);
void http_guard_request_received(HttpGuard *g, struct MHD_Connection *conn);
void http_guard_request_done(HttpGuard *g, struct MHD_Connection *conn, double now);
