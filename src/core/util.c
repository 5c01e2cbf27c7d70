/* util: clocks, whole-file reads and the float comparator (see util.h).
 *
 * The file reader uses open/fstat/read rather than stdio: read(2) reports the errno of the
 * disk (the fault-injection tests rely on seeing it), and fstat sizes the buffer exactly for
 * a regular file, so a 2 GiB limit does not mean a 2 GiB allocation. Buffers that may hold a
 * secret are wiped whenever they are given up here.
 */
#include "aescore/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

double util_now_mono(void)
{
    return now(CLOCK_MONOTONIC);
}

double util_now_wall(void)
{
    return now(CLOCK_REALTIME);
}

/* Moves buf's n bytes into a new buffer of cap bytes; the old one is wiped and freed. */
static int grow(char **buf, size_t n, size_t cap)
{
    char *bigger = malloc(cap);

    if (bigger == NULL)
        return -ENOMEM;
    memcpy(bigger, *buf, n);
    explicit_bzero(*buf, n);
    free(*buf);
    *buf = bigger;
    return 0;
}

/* Reads fd to its end into *buf (*cap bytes, grown up to limit): the bytes read, or -errno,
 * or -EFBIG when there are limit bytes or more. */
static ssize_t read_to_end(int fd, char **buf, size_t *cap, size_t limit)
{
    size_t n = 0, bigger;
    ssize_t got;
    int r;

    for (;;) {
        if (n == *cap) {
            if (*cap == limit)
                return -EFBIG;
            bigger = *cap > limit / 2 ? limit : 2 * *cap;
            r = grow(buf, n, bigger);
            if (r < 0)
                return r;
            *cap = bigger;
        }
        got = read(fd, *buf + n, *cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return (ssize_t) n;
        n += (size_t) got;
    }
}

int util_read_fd(int fd, size_t max, char **out, size_t *len)
{
    char *buf = NULL;
    struct stat st;
    size_t cap = 0;
    ssize_t n;
    int r;

    if (max >= (size_t) SSIZE_MAX)
        max = (size_t) SSIZE_MAX - 1;
    if (fstat(fd, &st) != 0) {
        r = -errno;
        goto fail;
    }
    /* A regular file says its size: one that is too large costs no allocation, and one that
     * is not takes a single buffer (plus the byte for the NUL, which also lets read() say
     * end of file). Anything else (a pipe, a /proc file of size 0) starts small and grows. */
    if (S_ISREG(st.st_mode) && (uintmax_t) st.st_size > max) {
        r = -EFBIG;
        goto fail;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t) st.st_size + 1;
    else
        cap = max < 4096 ? max + 1 : 4096;
    buf = malloc(cap);
    if (buf == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    n = read_to_end(fd, &buf, &cap, max + 1);
    if (n < 0) {
        r = (int) n;
        goto fail;
    }
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = (size_t) n;
    return 0;

fail:
    if (buf != NULL)
        explicit_bzero(buf, cap); /* it may have held part of a secret */
    free(buf);
    return r;
}

int util_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r;

    if (fd < 0)
        return -errno;
    r = util_read_fd(fd, max, out, len);
    close(fd);
    return r;
}

void util_set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    for (char *c = err; *c != '\0'; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = '?';
}

int util_cmp_float(const void *a, const void *b)
{
    float x = *(const float *) a, y = *(const float *) b;

    return (x > y) - (x < y);
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t) n;
    }
    return 0;
}

int util_fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, r = 0;

    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t) (slash - path));
    if (dir == NULL)
        return -ENOMEM;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    /* Some filesystems cannot fsync a directory; that is not the caller's failure. */
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EBADF)
        r = -errno;
    close(fd);
    return r;
}

int util_write_temp(char *tmp, const void *data, size_t len)
{
    const unsigned char *buf = data;
    int fd, r;

    /* A unique name per call: a temp file left by a crash (or another saver) never blocks
     * this save. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, 0644) != 0) {
        r = -errno;
        goto fail;
    }
    r = write_all(fd, buf, len);
    if (r != 0)
        goto fail;
    if (fsync(fd) != 0) {
        r = -errno;
        goto fail;
    }
    r = close(fd);
    fd = -1; /* closed even when close() fails */
    if (r != 0) {
        r = -errno;
        goto fail;
    }
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return r;
}

int util_write_atomic(const char *path, const void *data, size_t len)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + sizeof(".tmp.XXXXXX"));
    int r;

    if (tmp == NULL)
        return -ENOMEM;
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    r = util_write_temp(tmp, data, len);
    if (r == 0 && rename(tmp, path) != 0) {
        r = -errno;
        unlink(tmp);
    }
    if (r == 0)
        r = util_fsync_parent(path);
    free(tmp);
    return r;
}
