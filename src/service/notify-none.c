/* notify-none: the build without libsystemd. Every call is a no-op, so callers never need an
 * #ifdef: no readiness or status to report, no watchdog, no inherited sockets. */
#include "aescore/notify.h"

void notify_ready(void)
{
}

void notify_reloading(void)
{
}

void notify_stopping(void)
{
}

void notify_watchdog(void)
{
}

void notify_extend_timeout(uint64_t usec)
{
    (void) usec;
}

void notify_status(const char *fmt, ...)
{
    (void) fmt;
}

uint64_t notify_watchdog_usec(void)
{
    return 0;
}

int notify_listen_fds(void)
{
    return 0;
}
