/* log: the one logger.
 *
 * Each record is formatted into one stack buffer and leaves in a single write(2) on stderr,
 * so lines from different threads never interleave (a pipe keeps writes of up to PIPE_BUF
 * bytes whole, which is why a line is capped at LOG_LINE_MAX and truncated with "..."
 * beyond). Under journald (JOURNAL_STREAM names the device and inode of our stderr) the line
 * starts with the sd-daemon "<N>" priority prefix and carries no timestamp, since the
 * journal adds its own; otherwise it is "2026-11-29T09:00:00.123Z level tag: message".
 * Control characters in the message (a newline in an error string, say) become spaces, so a
 * record can never forge a second line. No locks: the level is an atomic int and the
 * journald flag is written once by log_init before any thread exists.
 */
#include "aescore/log.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aescore/util.h"

#define LOG_LINE_MAX 4096 /* = PIPE_BUF on Linux: one atomic write */

static atomic_int max_level = LOG_LEVEL_INFO;
static bool under_journald;

static const char *const level_names[] = {
    [LOG_LEVEL_ERR] = "err",   [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
    [LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "DEVICE:INODE" of the stream journald gave us; it is inherited by
 * children whose stderr may point elsewhere, hence the comparison with our own stderr. */
static bool stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int n = 0;

    if (env == NULL || sscanf(env, "%llu:%llu%n", &dev, &ino, &n) != 2 || env[n] != '\0')
        return false;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_init(int level)
{
    if (level < LOG_LEVEL_ERR)
        level = LOG_LEVEL_ERR;
    if (level > LOG_LEVEL_DEBUG)
        level = LOG_LEVEL_DEBUG;
    atomic_store_explicit(&max_level, level, memory_order_relaxed);
    under_journald = stderr_is_journal();
}

int log_level_parse(const char *name, int *out)
{
    for (int l = LOG_LEVEL_ERR; l <= LOG_LEVEL_DEBUG; l++) {
        if (strcmp(name, level_names[l]) == 0) {
            *out = l;
            return 0;
        }
    }
    return -EINVAL;
}

int log_get_level(void)
{
    return atomic_load_explicit(&max_level, memory_order_relaxed);
}

static size_t format_prefix(char *buf, size_t size, int level, const char *tag)
{
    double now, whole;
    long ms;
    time_t sec;
    struct tm tm;
    int n;

    if (under_journald) {
        n = snprintf(buf, size, "<%d>%s: ", level, tag);
    } else {
        /* a double holds today's unix time to a fraction of a microsecond */
        now = util_now_wall();
        whole = floor(now);
        sec = (time_t) whole;
        ms = (long) ((now - whole) * 1000);
        if (ms > 999) /* rounding at the very end of a second */
            ms = 999;
        gmtime_r(&sec, &tm);
        n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
                     level_names[level], tag);
    }
    if (n < 0)
        return 0;
    return (size_t) n < size ? (size_t) n : size - 1;
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        buf += n;
        len -= (size_t) n;
    }
}

void log_writev(int level, const char *tag, const char *fmt, va_list ap)
{
    static const char ellipsis[] = "...";
    char line[LOG_LINE_MAX];
    size_t len, start;
    int n;

    if (level < LOG_LEVEL_ERR)
        level = LOG_LEVEL_ERR;
    if (level > LOG_LEVEL_DEBUG)
        level = LOG_LEVEL_DEBUG;
    if (level > log_get_level())
        return;
    if (tag == NULL)
        tag = "main";

    /* Room for the newline is kept back in every step below. */
    start = format_prefix(line, sizeof(line) - 1, level, tag);
    n = vsnprintf(line + start, sizeof(line) - 1 - start, fmt, ap);
    if (n < 0)
        n = 0;
    len = start + (size_t) n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
        memcpy(line + len - (sizeof(ellipsis) - 1), ellipsis, sizeof(ellipsis) - 1);
    }
    for (size_t i = start; i < len; i++)
        if ((unsigned char) line[i] < 0x20 || line[i] == 0x7f)
            line[i] = ' ';
    line[len++] = '\n';
    write_all(line, len);
}

void log_write(int level, const char *tag, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_writev(level, tag, fmt, ap);
    va_end(ap);
}
