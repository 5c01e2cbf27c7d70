/* notify: the service manager protocol through libsystemd.
 *
 * The only file that includes sd-daemon.h. Every call is best effort: sd_notify returns 0
 * when there is no NOTIFY_SOCKET (not under systemd), and a failure is logged at debug and
 * otherwise ignored, because losing a status line must never take the service down.
 * sd_listen_fds(1) unsets LISTEN_PID/LISTEN_FDS (so children do not inherit them) and
 * touches the environment, hence "before any thread" in the header.
 */
#include "aescore/notify.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "aescore/log.h"
#include "aescore/util.h"

static void send_state(const char *state)
{
    int r = sd_notify(0, state);

    if (r < 0)
        log_debug("notify", "sd_notify failed: %d", r);
}

void notify_ready(void)
{
    send_state("READY=1");
}

void notify_reloading(void)
{
    char buf[64];

    /* MONOTONIC_USEC is read by systemd >= 253 and harmless before. */
    snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long) (util_now_mono() * 1e6));
    send_state(buf);
}

void notify_stopping(void)
{
    send_state("STOPPING=1");
}

void notify_watchdog(void)
{
    send_state("WATCHDOG=1");
}

void notify_extend_timeout(uint64_t usec)
{
    char buf[64];

    snprintf(buf, sizeof(buf), "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long) usec);
    send_state(buf);
}

void notify_status(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    n = snprintf(buf, sizeof(buf), "STATUS=");
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t) n, fmt, ap);
    va_end(ap);
    send_state(buf);
}

uint64_t notify_watchdog_usec(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec;
}

int notify_listen_fds(void)
{
    int n = sd_listen_fds(1);
    int flags;

    if (n <= 0)
        return 0;
    if (sd_is_socket(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
        log_err("notify", "socket activation: fd %d is not a listening stream socket; ignored",
                SD_LISTEN_FDS_START);
        return 0;
    }
    /* libmicrohttpd 0.9.75 misbehaves with a blocking listen socket (fixed in 0.9.77). */
    flags = fcntl(SD_LISTEN_FDS_START, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK))
        (void) fcntl(SD_LISTEN_FDS_START, F_SETFL, flags | O_NONBLOCK);
    return n;
}
