/* notify: the service manager protocol (sd_notify). The ONLY place that includes
 * sd-daemon.h; built as no-ops without libsystemd. Failures are ignored (never fatal).
 * Threads: any thread.
 */
#pragma once

#include <stdint.h>

void notify_ready(void);
void notify_reloading(void); /* RELOADING=1 with MONOTONIC_USEC */
void notify_stopping(void);
void notify_watchdog(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Watchdog interval in microseconds when the manager asked for pings, else 0. */
uint64_t notify_watchdog_usec(void);

/* Number of sockets passed by socket activation (first fd is 3); 0 when none. */
int notify_listen_fds(void);
