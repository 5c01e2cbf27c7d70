/* fail_write: an LD_PRELOAD shim that makes the disk misbehave for one path, so that the
 * daemon's save and load paths can be tested against faults a real disk produces.
 *
 *   AESCORE_FAULT_PATH=PATH       only the file PATH (from /proc/self/fd), its temp files
 *                                 PATH.tmp.*, and when PATH is a directory the files in it
 *   AESCORE_FAULT_FAIL=OPS        comma-separated write, fsync, read: fail with ...
 *   AESCORE_FAULT_ERRNO=NAME      ... ENOSPC (default), EIO or EDQUOT
 *   AESCORE_FAULT_KILL=POINT      SIGKILL the process at one point of a save instead:
 *                                 write (after half of the first write), fsync (before the
 *                                 file's fsync), rename (before the rename), renamed (after)
 * Nothing is done when AESCORE_FAULT_PATH is unset. Built by tests/fault/meson.build as a
 * shared module; tests/integration/test_faults.py loads it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef int (*fsync_fn)(int);
typedef int (*rename_fn)(const char *, const char *);

static bool listed(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t) (comma - p) : strlen(p);

        if (len == n && strncmp(p, word, n) == 0)
            return true;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return false;
}

static bool path_matches(const char *path)
{
    const char *want = getenv("AESCORE_FAULT_PATH");
    size_t n = want != NULL ? strlen(want) : 0;

    if (n == 0 || path == NULL || strncmp(path, want, n) != 0)
        return false;
    /* MODEL, MODEL.tmp.XXXXXX or DIR/...; never MODEL.history/..., the files beside it */
    return path[n] == '\0' || strncmp(path + n, ".tmp.", 5) == 0 || path[n] == '/';
}

static bool fd_matches(int fd)
{
    char link[64], path[4096];
    ssize_t n;

    if (getenv("AESCORE_FAULT_PATH") == NULL)
        return false;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return false;
    path[n] = '\0';
    return path_matches(path);
}

static int fault_errno(void)
{
    const char *e = getenv("AESCORE_FAULT_ERRNO");

    if (e != NULL && strcmp(e, "EIO") == 0)
        return EIO;
    if (e != NULL && strcmp(e, "EDQUOT") == 0)
        return EDQUOT;
    return ENOSPC;
}

static bool kill_at(const char *point)
{
    const char *k = getenv("AESCORE_FAULT_KILL");

    return k != NULL && strcmp(k, point) == 0;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    static write_fn real;

    if (real == NULL)
        *(void **) &real = dlsym(RTLD_NEXT, "write"); /* POSIX dlsym idiom */
    if (fd > 2 && fd_matches(fd)) {
        if (kill_at("write")) {
            if (count > 1)
                real(fd, buf, count / 2);
            raise(SIGKILL);
        }
        if (listed(getenv("AESCORE_FAULT_FAIL"), "write")) {
            errno = fault_errno();
            return -1;
        }
    }
    return real(fd, buf, count);
}

ssize_t read(int fd, void *buf, size_t count)
{
    static read_fn real;

    if (real == NULL)
        *(void **) &real = dlsym(RTLD_NEXT, "read"); /* POSIX dlsym idiom */
    if (fd > 2 && listed(getenv("AESCORE_FAULT_FAIL"), "read") && fd_matches(fd)) {
        errno = EIO; /* what an unreadable sector gives */
        return -1;
    }
    return real(fd, buf, count);
}

int fsync(int fd)
{
    static fsync_fn real;

    if (real == NULL)
        *(void **) &real = dlsym(RTLD_NEXT, "fsync"); /* POSIX dlsym idiom */
    if (fd > 2 && fd_matches(fd)) {
        if (kill_at("fsync"))
            raise(SIGKILL);
        if (listed(getenv("AESCORE_FAULT_FAIL"), "fsync")) {
            errno = fault_errno();
            return -1;
        }
    }
    return real(fd);
}

int rename(const char *from, const char *to)
{
    static rename_fn real;
    int r;

    if (real == NULL)
        *(void **) &real = dlsym(RTLD_NEXT, "rename"); /* POSIX dlsym idiom */
    if (path_matches(to) && kill_at("rename"))
        raise(SIGKILL);
    r = real(from, to);
    if (path_matches(to) && kill_at("renamed"))
        raise(SIGKILL);
    return r;
}
