/* notify: the service manager protocol (sd_notify). The ONLY place that includes
 * sd-daemon.h; built as no-ops without libsystemd. Failures are ignored (never fatal).
 * Threads: any thread.
 */
#pragma once

#include <stdint.h>

/* READY=1: only once the model is served and the HTTP server accepts (also after a reload,
 * successful or not, to end RELOADING=1). */
void notify_ready(void);
void notify_reloading(void); /* RELOADING=1 with MONOTONIC_USEC */
void notify_stopping(void);
void notify_watchdog(void);
/* EXTEND_TIMEOUT_USEC: asks for usec more before the start/stop timeout fires (a bootstrap
 * training run, a long drain). */
void notify_extend_timeout(uint64_t usec);
/* STATUS=<one human line>, e.g. "serving model v3 (50 features), trained 2 min ago". */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Watchdog interval in microseconds when the manager asked for pings, else 0. */
uint64_t notify_watchdog_usec(void);

/* Number of sockets passed by socket activation (first fd is 3, checked to be a listening
 * stream socket and made non-blocking); 0 when none or when fd 3 is unusable (logged).
 * Unsets LISTEN_FDS/LISTEN_PID: call it once, from main, before any thread starts. */
int notify_listen_fds(void);
