/* trainer: the background training job, the model history and the only writer of the
 * model file (DESIGN section 3b).
 *
 * One job at a time on its own pthread (at lower priority): train_model with a cancel flag,
 * then the gates (gate.h) judge the result against the served model. A schema change fails
 * the job (unless the job allows it); otherwise the model is a candidate, kept in the
 * history (MODEL.history/, history.h), and promoted when promotion is auto and every gate
 * passes, else the job ends held. Promoting saves the model file atomically (the replaced
 * file kept as PATH.prev) and then publishes to the model slot. A failed, held or cancelled
 * job leaves the served model and the file untouched and records why. Reload, promote and
 * rollback go through here as well, so file, history and slot never disagree. A replica
 * (role = replica) keeps no history and writes nothing.
 * The HTTP layer sees the trainer only through trainer_get_status (a copied-out struct) and
 * these entry points.
 * Threads: every function is safe from any thread; trainer_free joins the job thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aescore/config.h"
#include "aescore/dataset.h"
#include "aescore/model_slot.h"
#include "aescore/recent.h"
#include "aescore/train.h"

enum {
    TRAINER_E_BUSY = 1,     /* a job is running */
    TRAINER_E_IDLE,         /* no job to cancel */
    TRAINER_E_MODEL,        /* the model file cannot be loaded; message says why */
    TRAINER_E_NO_PREVIOUS,  /* rollback: no previous model */
    TRAINER_E_SAVE,         /* the model file or history cannot be written; message says why */
    TRAINER_E_UNKNOWN,      /* promote/rollback: no model with that id in the history */
    TRAINER_E_NO_CANDIDATE, /* promote: no candidate waits */
};

typedef enum TrainerState {
    TRAINER_IDLE = 0,
    TRAINER_RUNNING,
    TRAINER_SUCCEEDED,
    TRAINER_FAILED,
    TRAINER_CANCELLED,
    TRAINER_HELD, /* finished; kept as a candidate, not served (gates or manual promotion) */
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
    char error_code[32];    /* with error: schema_change, training_failed, save_failed, cancelled */
    char reason[256];       /* held: why ("promotion = manual", the gate's figures) */
    char candidate[MODEL_ID_LEN + 1]; /* the job's model_id, "" before it has one */
    char evidence[4096];              /* the gates' JSON object, "" before they ran */
    /* counters since start, for /metrics */
    uint64_t jobs_succeeded, jobs_failed, jobs_cancelled;
    uint64_t promotions, rollbacks, held_gate, held_manual;
    double last_duration; /* seconds of the last finished job */
    double last_train_loss;
} TrainerStatus;

typedef struct Trainer Trainer;

/* config (borrowed for the trainer's life): the model file to save to and reload from, the
 * role, promotion, keep_models and the gate limits. recent (borrowed, may be NULL): the
 * records the recent_records gate judges by. A trainer opens the history here. 0, -errno,
 * or TRAINER_E_SAVE with the reason in err. */
int trainer_new(Trainer **out, ModelSlot *slot, const Config *config, Recent *recent, char *err,
                size_t err_size);
Trainer *trainer_free(Trainer *t); /* cancels a running job, joins; accepts NULL */

/* Starts a job on ds (ownership taken, also on failure) with params p (copied; train_model
 * checks them and a bad set fails the job with its message). The job thread is created
 * with every signal blocked and runs at nice +10. Returns 0 and *job_id (may be NULL),
 * TRAINER_E_BUSY, or -errno (thread creation; the status is unchanged). */
int trainer_start(Trainer *t, Dataset *ds, const TrainParams *p, bool allow_schema_change,
                  uint64_t *job_id);

/* Records the model the slot serves at start-up in the history (source "bootstrap" or
 * "file"), so a later rollback can come back to it. A history that cannot be written is
 * logged, not fatal: the model is served either way. */
void trainer_register_served(Trainer *t, const char *source);

/* Asks the running job to stop (it ends as cancelled). 0 or TRAINER_E_IDLE. */
int trainer_cancel(Trainer *t);

/* Blocks until no job runs (tests, shutdown). */
void trainer_wait(Trainer *t);

void trainer_get_status(Trainer *t, TrainerStatus *out);

/* The loss curve of the running or last job, one point per epoch per member in the order
 * they ran. At most TRAINER_LOSSES_MAX points: when full, only the epochs that are
 * multiples of a stride twice as long are kept, from then on too, so a long job keeps its
 * whole shape; every member's last epoch is kept whatever the stride. A copy the caller
 * frees. 0 or -ENOMEM. */
#define TRAINER_LOSSES_MAX 1024

typedef struct TrainerLoss {
    uint32_t member, epoch; /* 0-based member, 1-based epoch */
    float train_loss, val_loss;
} TrainerLoss;

int trainer_losses(Trainer *t, TrainerLoss **out, size_t *n);
const char *trainer_state_name(TrainerState s);

/* Loads the model file and publishes it, unless it holds the model already served (then
 * nothing changes: *version is the served one). Returns 0 and *version, or TRAINER_E_MODEL
 * with "PATH: reason" in err (the served model is unchanged). */
int trainer_reload(Trainer *t, uint64_t *version, char *err, size_t err_size);

/* Follow mode: like trainer_reload, but reads the model from fd (the model file, opened by
 * the caller, which then knows which file it handed over; not closed) and publishes only
 * when it holds a different model than the served one (meta.id differs), so the watcher
 * seeing this process's own save (a finished job, a rollback) or a rewrite of the same file
 * changes nothing: no version bump.
 * The compare and the publish happen under the same lock as the job's save-and-publish; a
 * file that the path no longer names once that lock is held (a save replaced it meanwhile)
 * is not read: *changed false, as for the served model. A file that fails to load leaves the served
 * model unchanged (the watcher counts it). Returns 0 with *changed (may be NULL) and *version (the
 * served version either way; may be NULL), or TRAINER_E_MODEL with "PATH: reason" in err. */
int trainer_follow(Trainer *t, int fd, bool *changed, uint64_t *version, char *err,
                   size_t err_size);

/* Serves model id of the history (NULL: the one served before the current one): written to
 * the model file (the replaced one kept as PATH.prev), then published. Returns 0 and
 * *version, TRAINER_E_NO_PREVIOUS, TRAINER_E_UNKNOWN, or TRAINER_E_SAVE with the reason in
 * err (the served model is then unchanged). Serving id already: nothing changes. */
int trainer_rollback(Trainer *t, const char *id, uint64_t *version, char *err, size_t err_size);

/* Serves candidate id (NULL: the newest candidate) as rollback does. 0 and *version,
 * TRAINER_E_NO_CANDIDATE, TRAINER_E_UNKNOWN or TRAINER_E_SAVE. */
int trainer_promote(Trainer *t, const char *id, uint64_t *version, char *err, size_t err_size);

/* The history for GET /models, newest first: a copy the caller frees with
 * trainer_models_free. A replica lists only the served model. 0 or -ENOMEM. */
typedef enum TrainerModelState {
    TRAINER_MODEL_SERVING = 0,
    TRAINER_MODEL_CANDIDATE,
    TRAINER_MODEL_ARCHIVED,
} TrainerModelState;

typedef struct TrainerModel {
    char id[MODEL_ID_LEN + 1];
    int64_t created;
    char source[32];
    TrainerModelState state;
    uint64_t rows;
    float threshold;
    char *gates; /* JSON object or NULL */
} TrainerModel;

int trainer_models(Trainer *t, TrainerModel **out, size_t *n);
void trainer_models_free(TrainerModel *models, size_t n);
const char *trainer_model_state_name(TrainerModelState s);
