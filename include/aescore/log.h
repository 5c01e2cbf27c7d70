/* log: the one logger. Levels use syslog numbering. Under journald (JOURNAL_STREAM names our
 * stderr) lines carry sd-daemon "<N>" priority prefixes; otherwise they are plain
 * "2026-11-29T09:00:00.123Z level tag: message" lines. One write() per line.
 * Libraries (the numeric core) never log; the daemon and the CLI do.
 * Threads: every function may be called from any thread after log_init.
 * Record values (personal credit data) must never be passed to the logger.
 */
#pragma once

#include <stdarg.h>

enum {
    LOG_LEVEL_ERR = 3,
    LOG_LEVEL_WARNING = 4,
    LOG_LEVEL_NOTICE = 5,
    LOG_LEVEL_INFO = 6,
    LOG_LEVEL_DEBUG = 7,
};

/* Sets the maximum level written (default info) and detects journald. Call once, early. */
void log_init(int max_level);
int log_level_parse(const char *name, int *out); /* "err".."debug"; 0 or -EINVAL */
int log_get_level(void);

void log_write(int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_writev(int level, const char *tag, const char *fmt, va_list ap);

/* Checks the level before the arguments are evaluated. */
#define log_at(level, tag, ...)                                                                    \
    do {                                                                                           \
        if ((level) <= log_get_level())                                                            \
            log_write((level), (tag), __VA_ARGS__);                                                \
    } while (0)
#define log_err(tag, ...)     log_at(LOG_LEVEL_ERR, tag, __VA_ARGS__)
#define log_warning(tag, ...) log_at(LOG_LEVEL_WARNING, tag, __VA_ARGS__)
#define log_notice(tag, ...)  log_at(LOG_LEVEL_NOTICE, tag, __VA_ARGS__)
#define log_info(tag, ...)    log_at(LOG_LEVEL_INFO, tag, __VA_ARGS__)
#define log_debug(tag, ...)   log_at(LOG_LEVEL_DEBUG, tag, __VA_ARGS__)
