/* watcher: follow mode. A thread that notices when the model file is replaced (by the
 * trainer replica, an offline `aescore train --out`, a deploy) and hands it to
 * trainer_follow, which verifies it and publishes it only when it is a different model
 * (meta.id); the watcher's status counts what came of it (reloads, errors and the last
 * error) for /health and /metrics. This process's own saves are seen too and change nothing (same
 * id).
 *
 * Detection, two mechanisms at once:
 *   inotify on the file's DIRECTORY, for IN_MOVED_TO (an atomic replacement is a rename
 *     onto the name, which a watch on the file itself would never see) and IN_CLOSE_WRITE
 *     (a writer that rewrote the file in place has finished), both filtered on the file's
 *     basename, so temp files and PATH.prev are ignored;
 *   a stat of the path every poll interval, compared on (device, inode, size, mtime,
 *     ctime): the whole mechanism when inotify is unavailable (inotify_init1 or
 *     inotify_add_watch fails, or poll_only), and a safety net where inotify misses
 *     changes made by other hosts (NFS and other network filesystems).
 * Every change triggers one trainer_follow, whatever its outcome: the watcher opens the
 * file it hands over and keeps the signature of that descriptor, so a bad file is reported
 * once (not every interval, nor again when a stat got ahead of its own event), and a file
 * replaced again while it was being loaded is seen on the next look.
 *
 * Ownership: the watcher borrows the Trainer (which must outlive it) and copies the path.
 * Errors: watcher_new returns 0, or -errno (eventfd, thread creation) with nothing
 *   started; an unavailable inotify is not an error (logged, polling only).
 * Threads: watcher_new starts one thread with every signal blocked; watcher_free (from
 *   the thread that called watcher_new) wakes it through an eventfd and joins it, so no
 *   reload runs after it returns. watcher_get_status may be called from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "aescore/trainer.h"

typedef struct WatcherOptions {
    unsigned poll_ms; /* stat interval; 0 = WATCHER_POLL_MS_DEFAULT */
    bool poll_only;   /* do not use inotify (tests of the fallback) */
} WatcherOptions;

#define WATCHER_POLL_MS_DEFAULT 1000

typedef struct WatcherStatus {
    bool inotify;      /* inotify is in use (else polling only) */
    uint64_t changes;  /* changes seen, each handed to trainer_follow once */
    uint64_t reloads;  /* different models published from a replaced file */
    uint64_t errors;   /* replaced files that failed to load or validate */
    double error_time; /* unix seconds of the last such failure, 0 = none */
    char error[512];   /* its "PATH: reason"; kept after later successes */
} WatcherStatus;

typedef struct Watcher Watcher;

/* Watches path (the trainer's model file) with the given options (NULL = defaults). */
int watcher_new(Watcher **out, Trainer *trainer, const char *path, const WatcherOptions *opts);

/* Stops and joins the thread. Accepts NULL; returns NULL. */
Watcher *watcher_free(Watcher *w);

void watcher_get_status(Watcher *w, WatcherStatus *out);
