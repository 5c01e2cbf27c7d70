/* trainer: the background training job and the only writer of the model file.
 *
 * One job at a time on its own pthread (at lower priority): train_model with a cancel flag,
 * validate the result (model_validate), save it atomically (the replaced file kept as
 * PATH.prev), then publish it to the model slot. A failed or cancelled job leaves the
 * served model and the file untouched and records why. Reload (from the file) and rollback
 * (to the previous model, written back to the file) go through here as well, so file and
 * slot never disagree.
 * The HTTP layer sees the trainer only through trainer_get_status (a copied-out struct) and
 * these entry points.
 * Threads: every function is safe from any thread; trainer_free joins the job thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aescore/dataset.h"
#include "aescore/model_slot.h"
#include "aescore/train.h"

enum {
    TRAINER_E_BUSY = 1,    /* a job is running */
    TRAINER_E_IDLE,        /* no job to cancel */
    TRAINER_E_MODEL,       /* the model file cannot be loaded; message says why */
    TRAINER_E_NO_PREVIOUS, /* rollback: no previous model */
    TRAINER_E_SAVE,        /* rollback: the model file cannot be written; message says why */
};

typedef enum TrainerState {
    TRAINER_IDLE = 0,
    TRAINER_RUNNING,
    TRAINER_SUCCEEDED,
    TRAINER_FAILED,
    TRAINER_CANCELLED,
} TrainerState;

typedef struct TrainerStatus {
    uint64_t job_id; /* 0 before the first job */
    TrainerState state;
    uint64_t rows;
    uint64_t epoch, epochs;
    uint64_t member, members;
    double train_loss, val_loss;
    double rows_per_sec;
    double eta_seconds;     /* estimate for the running job, else 0 */
    double started;         /* unix seconds, 0 = never */
    double finished;        /* unix seconds, 0 = not yet */
    uint64_t model_version; /* version published by the job, 0 if none */
    char error[256];        /* why the last job failed ("saving PATH: reason", train_model's
                               message, ...) or "cancelled"; "" on success */
    /* counters since start, for /metrics */
    uint64_t jobs_succeeded, jobs_failed, jobs_cancelled;
    double last_duration; /* seconds of the last finished job */
    double last_train_loss;
} TrainerStatus;

typedef struct Trainer Trainer;

/* model_path: the file to save to and reload from. */
int trainer_new(Trainer **out, ModelSlot *slot, const char *model_path);
Trainer *trainer_free(Trainer *t); /* cancels a running job, joins; accepts NULL */

/* Starts a job on ds (ownership taken, also on failure) with params p (copied; train_model
 * checks them and a bad set fails the job with its message). The job thread is created
 * with every signal blocked and runs at nice +10. Returns 0 and *job_id (may be NULL),
 * TRAINER_E_BUSY, or -errno (thread creation; the status is unchanged). */
int trainer_start(Trainer *t, Dataset *ds, const TrainParams *p, uint64_t *job_id);

/* Asks the running job to stop (it ends as cancelled). 0 or TRAINER_E_IDLE. */
int trainer_cancel(Trainer *t);

/* Blocks until no job runs (tests, shutdown). */
void trainer_wait(Trainer *t);

void trainer_get_status(Trainer *t, TrainerStatus *out);
const char *trainer_state_name(TrainerState s);

/* Loads the model file, validates it and publishes it (as a new version, even when it is
 * the same model). Returns 0 and *version, or TRAINER_E_MODEL with "PATH: reason" in err
 * (the served model is unchanged). */
int trainer_reload(Trainer *t, uint64_t *version, char *err, size_t err_size);

/* Follow mode: like trainer_reload, but publishes only when the file holds a different model
 * than the served one (meta.id differs), so the watcher seeing this process's own save (a
 * finished job, a rollback) or a rewrite of the same file changes nothing: no version bump.
 * The compare and the publish happen under the same lock as the job's save-and-publish.
 * A file that fails to load leaves the served model unchanged (the watcher counts it). Returns 0
 * with *changed (may be NULL) and *version (the served version either way; may be NULL), or
 * TRAINER_E_MODEL with "PATH: reason" in err. */
int trainer_follow(Trainer *t, bool *changed, uint64_t *version, char *err, size_t err_size);

/* Writes the previous model to the model file (the replaced one kept as PATH.prev), then
 * serves it. Returns 0 and *version, TRAINER_E_NO_PREVIOUS, or TRAINER_E_SAVE with
 * "saving PATH: reason" in err (the served model is then unchanged). */
int trainer_rollback(Trainer *t, uint64_t *version, char *err, size_t err_size);
