/* watcher: one thread that follows the model file (see watcher.h for the contract).
 *
 * The thread sleeps in poll() on an eventfd (stop) and, when available, an inotify fd
 * watching the file's directory, with the poll interval as timeout. Every wake-up ends with
 * a stat of the path; a reload happens when an inotify event named the file, or when the
 * stat signature changed. A signature change that keeps the inode is an in-place rewrite
 * that may still be under way: it is loaded only once the signature has stood still for
 * one interval (inotify's IN_CLOSE_WRITE says "finished" sooner where it works). A new
 * inode is a rename, complete by construction, and is loaded at once.
 *
 * A look can come after the change it reports was already tried: the watch is in place
 * before the initial check, and an event for another name can wake the thread just before
 * a rename lands, so the stat finds the new file ahead of its own event. The watcher opens
 * the file it hands to trainer_follow and keeps that descriptor's signature; a look that
 * finds the same file again is skipped, so one bad file is tried, logged and counted once.
 * IN_CLOSE_WRITE is never skipped: the writer says it has only now finished, and a file
 * rewritten in place within one timestamp tick keeps its signature.
 *
 * The thread also follows once when it starts (when the file exists): the daemon loaded
 * the model before the watch existed, and a file replaced in between would otherwise go
 * unnoticed. Reloading the same file publishes nothing (trainer_follow compares model ids).
 *
 * State: `lock` guards `status` only (copied out by watcher_get_status); everything else
 * belongs to the thread between watcher_new and watcher_free.
 */
#include "aescore/watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aescore/log.h"
#include "aescore/util.h"

typedef struct Signature {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} Signature;

struct Watcher {
    Trainer *trainer;
    char *path;
    char *dir;        /* directory of path ("." when path has no slash) */
    const char *base; /* inside path */
    unsigned poll_ms;
    int stop_fd;    /* eventfd: readable once watcher_free wants the thread gone */
    int inotify_fd; /* -1: polling only */
    pthread_t thread;

    Signature seen;     /* thread only: signature at the last look */
    Signature followed; /* thread only: the file last handed to trainer_follow */
    bool pending;       /* thread only: an in-place rewrite waits to stand still */

    pthread_mutex_t lock;
    WatcherStatus status; /* under lock */
};

static void signature_of(const struct stat *st, Signature *sig)
{
    sig->exists = true;
    sig->dev = st->st_dev;
    sig->ino = st->st_ino;
    sig->size = st->st_size;
    sig->mtime = st->st_mtim;
    sig->ctime = st->st_ctim;
}

static void take_signature(const char *path, Signature *sig)
{
    struct stat st;

    memset(sig, 0, sizeof(*sig));
    if (stat(path, &st) == 0) /* else missing (or unreadable): a change like any other */
        signature_of(&st, sig);
}

static bool signature_equal(const Signature *a, const Signature *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Hands the file now at the path to trainer_follow, unless it is the one handed over last
 * and `again` is false. A path that cannot be opened is an error like a bad file. */
static void follow(Watcher *w, const char *why, bool again)
{
    char err[512] = "";
    bool changed = false;
    uint64_t version = 0;
    Signature sig = {0};
    struct stat st;
    int fd = open(w->path, O_RDONLY | O_CLOEXEC);
    int r = -1, open_errno = 0;

    if (fd >= 0 && fstat(fd, &st) == 0)
        signature_of(&st, &sig);
    else
        open_errno = errno;
    if (sig.exists && !again && signature_equal(&sig, &w->followed)) {
        log_debug("watch", "%s: %s, a file already followed", w->path, why);
        close(fd);
        return;
    }
    w->followed = sig;
    pthread_mutex_lock(&w->lock);
    w->status.changes++;
    pthread_mutex_unlock(&w->lock);
    log_debug("watch", "%s: %s", w->path, why);
    if (sig.exists)
        r = trainer_follow(w->trainer, fd, &changed, &version, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "%s: %s", w->path, strerror(open_errno));
    if (fd >= 0)
        close(fd);
    if (r != 0) {
        pthread_mutex_lock(&w->lock);
        w->status.errors++;
        w->status.error_time = util_now_wall();
        snprintf(w->status.error, sizeof(w->status.error), "%s", err);
        pthread_mutex_unlock(&w->lock);
        log_warning("watch", "ignored the new model file, the served model is kept: %s", err);
    } else if (changed) {
        pthread_mutex_lock(&w->lock);
        w->status.reloads++;
        pthread_mutex_unlock(&w->lock);
    } else {
        log_debug("watch", "%s holds the served model (v%llu): nothing to do", w->path,
                  (unsigned long long) version);
    }
}

static void drop_inotify(Watcher *w, const char *why)
{
    log_warning("watch", "%s; following %s by polling every %u ms", why, w->path, w->poll_ms);
    close(w->inotify_fd);
    w->inotify_fd = -1;
    pthread_mutex_lock(&w->lock);
    w->status.inotify = false;
    pthread_mutex_unlock(&w->lock);
}

/* Reads every queued event; returns the IN_* bits of those naming the model file
 * (IN_Q_OVERFLOW when events were lost, IN_IGNORED when the watch is gone), 0 for none. */
static uint32_t drain_events(Watcher *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    uint32_t hit = 0;

    for (;;) {
        ssize_t n = read(w->inotify_fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *) p;

            if (ev->mask & IN_Q_OVERFLOW)
                hit |= IN_Q_OVERFLOW;
            else if (ev->len > 0 && strcmp(ev->name, w->base) == 0)
                hit |= ev->mask;
            if (ev->mask & IN_IGNORED) {
                /* the directory went away (deleted, unmounted): nothing more will come */
                drop_inotify(w, "the model directory is no longer watched");
                return hit | IN_IGNORED;
            }
            p += sizeof(*ev) + ev->len;
        }
    }
    return hit;
}

static void *watch_main(void *arg)
{
    Watcher *w = arg;
    Signature now;

    pthread_setname_np(pthread_self(), "watcher");

    /* Closes the gap between the daemon's own load and the watch being in place. */
    take_signature(w->path, &w->seen);
    if (w->seen.exists) /* a missing file is no error yet: a replica waits for it to land */
        follow(w, "initial check", false);

    for (;;) {
        struct pollfd fds[2] = {{.fd = w->stop_fd, .events = POLLIN},
                                {.fd = w->inotify_fd, .events = POLLIN}};
        uint32_t event = 0;
        int n = poll(fds, w->inotify_fd >= 0 ? 2 : 1, (int) w->poll_ms);

        if (n < 0 && errno != EINTR) {
            log_err("watch", "poll: %s; no longer following %s", strerror(errno), w->path);
            break;
        }
        if (fds[0].revents != 0)
            break;
        if (w->inotify_fd >= 0 && (fds[1].revents & POLLIN))
            event = drain_events(w);

        take_signature(w->path, &now);
        if (event) {
            w->seen = now;
            w->pending = false;
            follow(w, "inotify event", (event & IN_CLOSE_WRITE) != 0);
        } else if (!signature_equal(&now, &w->seen)) {
            bool in_place =
                now.exists && w->seen.exists && now.dev == w->seen.dev && now.ino == w->seen.ino;

            w->seen = now;
            w->pending = in_place;
            if (!in_place)
                follow(w, "replaced (stat)", false);
        } else if (w->pending) {
            w->pending = false;
            follow(w, "rewritten in place and unchanged for one interval (stat)", false);
        }
    }
    return NULL;
}

static int split_path(Watcher *w)
{
    const char *slash = strrchr(w->path, '/');

    if (slash == NULL) {
        w->dir = strdup(".");
        w->base = w->path;
    } else {
        w->dir = slash == w->path ? strdup("/") : strndup(w->path, (size_t) (slash - w->path));
        w->base = slash + 1;
    }
    return w->dir == NULL ? -ENOMEM : 0;
}

static void setup_inotify(Watcher *w, bool poll_only)
{
    if (poll_only) {
        log_info("watch", "following %s by polling every %u ms (inotify off)", w->path, w->poll_ms);
        return;
    }
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->inotify_fd < 0) {
        log_warning("watch", "inotify unavailable (%s); following %s by polling every %u ms",
                    strerror(errno), w->path, w->poll_ms);
        return;
    }
    if (inotify_add_watch(w->inotify_fd, w->dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
        int e = errno;

        close(w->inotify_fd);
        w->inotify_fd = -1;
        log_warning("watch", "cannot watch %s (%s); following %s by polling every %u ms", w->dir,
                    strerror(e), w->path, w->poll_ms);
        return;
    }
    w->status.inotify = true;
    log_info("watch", "following %s (inotify on %s, and a stat every %u ms)", w->path, w->dir,
             w->poll_ms);
}

int watcher_new(Watcher **out, Trainer *trainer, const char *path, const WatcherOptions *opts)
{
    Watcher *w = calloc(1, sizeof(*w));
    sigset_t all, old;
    int r;

    if (w == NULL)
        return -ENOMEM;
    w->trainer = trainer;
    w->stop_fd = -1;
    w->inotify_fd = -1;
    w->poll_ms = opts != NULL && opts->poll_ms > 0 ? opts->poll_ms : WATCHER_POLL_MS_DEFAULT;
    if (w->poll_ms > INT_MAX)
        w->poll_ms = INT_MAX;
    pthread_mutex_init(&w->lock, NULL);
    w->path = strdup(path);
    if (w->path == NULL || split_path(w) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->stop_fd < 0) {
        r = -errno;
        goto fail;
    }
    setup_inotify(w, opts != NULL && opts->poll_only);

    /* main waits for SIGTERM/SIGHUP with sigtimedwait: this thread must never take them */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        r = -r;
        goto fail;
    }
    *out = w;
    return 0;

fail:
    if (w->inotify_fd >= 0)
        close(w->inotify_fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    pthread_mutex_destroy(&w->lock);
    free(w->dir);
    free(w->path);
    free(w);
    return r;
}

Watcher *watcher_free(Watcher *w)
{
    uint64_t one = 1;

    if (w == NULL)
        return NULL;
    while (write(w->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(w->thread, NULL);
    if (w->inotify_fd >= 0)
        close(w->inotify_fd);
    close(w->stop_fd);
    pthread_mutex_destroy(&w->lock);
    free(w->dir);
    free(w->path);
    free(w);
    return NULL;
}

void watcher_get_status(Watcher *w, WatcherStatus *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->status;
    pthread_mutex_unlock(&w->lock);
}
