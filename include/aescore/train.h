/* train: builds a Model from normal rows. Fits the scaler, splits off a validation share,
 * trains each ensemble member with Adam on shuffled mini-batches with keep-best early
 * stopping; with p->reference, draws the neighbour reference from the standardised
 * training rows (reference.h) and standardises both score parts over the validation rows
 * (model.h "The score"); then sets the threshold and the percentile table from validation
 * scores.
 *
 * Single-threaded and deterministic: the same data, params and seed give the same bits.
 * Shared by the CLI and the daemon's trainer thread, which passes a cancel flag (checked
 * every few ms of work, whatever the layer sizes: a batch of a large network is done in
 * chunks) and a progress callback (called after every epoch, on the calling thread).
 * Errors: 0; TRAIN_E_* (message in err); -ENOMEM.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aescore/dataset.h"
#include "aescore/model.h"
#include "aescore/nn.h"
#include "aescore/train_params.h"

enum {
    TRAIN_E_INPUT = 1, /* the data or params cannot train a model (too few rows, bad params) */
    TRAIN_E_DIVERGED,  /* a loss or parameter became non-finite */
    TRAIN_E_CANCELLED, /* *cancel was set */
    TRAIN_E_BUDGET,    /* train_check_budget: the job would pass the budget */
};

#define TRAIN_MIN_ROWS 10

typedef struct TrainProgress {
    size_t member, members; /* 0-based member being trained, of members */
    size_t epoch, epochs;   /* 1-based epoch just finished, of at most epochs */
    double train_loss;
    double val_loss;
    double best_val_loss;
    double rows_per_sec;   /* training rows per second over this epoch */
    double member_seconds; /* since this member started */
    bool member_done;      /* the member's last epoch (its epochs ran out or it stopped early) */
} TrainProgress;

typedef void (*TrainProgressFn)(const TrainProgress *progress, void *ctx);

/* The one wording of progress, for the CLI and the daemon's log: "member 1/3 epoch 12/100:
 * train loss ..., validation loss ... (best ...), N rows/s". */
void train_progress_line(const TrainProgress *p, char *buf, size_t size);

/* Trains on ds: rows with label 0 (all rows when ds has no labels) train and validate;
 * labelled anomalies are used only by THRESHOLD_F1. The record schema is learnt from the
 * normal rows first (schema.h: text columns become one-hot categorical fields, missing cells
 * are imputed, id-like text columns and p->ignore_columns are left out); the network trains
 * on the encoded columns. created is the unix time stored in the
 * model. cancel and progress may be NULL. On success *out owns a new Model (refcount 1) that
 * has passed model_validate (do not validate it again); one that would not pass is
 * TRAIN_E_DIVERGED. */
int train_model(const Dataset *ds, const TrainParams *p, int64_t created, const atomic_bool *cancel,
                TrainProgressFn progress, void *ctx, Model **out, char *err, size_t err_size);

/* ---- the training budget: what a job will take, known before it allocates ----
 * A network of 4096-wide layers takes gigabytes and hours; the budget refuses it before
 * the first byte of it is allocated. The defaults (the config keys max_train_parameters
 * and max_train_memory, and `aescore train`'s options of the same names) let a 2-core,
 * 4 GiB host survive any job; 0 means no limit. */
#define TRAIN_MAX_PARAMETERS_DEFAULT 4000000 /* the model's: about 16 MB of weights */
#define TRAIN_MAX_MEMORY_DEFAULT_MIB 1024

typedef struct TrainEstimate {
    size_t inputs;       /* network inputs: the encoded columns of the learnt schema */
    uint64_t parameters; /* the model's: the network's times the ensemble members */
    uint64_t memory;     /* bytes at the job's peak: data set, encoded copy, buffers, model */
} TrainEstimate;

typedef struct TrainBudget {
    uint64_t max_parameters, max_memory; /* 0 = no limit */
} TrainBudget;

/* What train_model(ds, p) would take. Learns the schema from ds's normal rows (as
 * train_model does first; its memory is the data's order) and allocates nothing of the
 * network's size. 0; TRAIN_E_INPUT (message in err) when train_model would refuse the data
 * or params the same way; -ENOMEM. */
int train_estimate(const Dataset *ds, const TrainParams *p, TrainEstimate *out, char *err,
                   size_t err_size);

/* train_estimate into *e, then the budget: 0 within it; TRAIN_E_BUDGET when the model's
 * parameters (checked first) or the job's memory pass b's limit, with a message naming the
 * estimate, the limit and its key ("the model would have 268451841 parameters, over
 * max_train_parameters = 4000000; ..."); else train_estimate's errors. */
int train_check_budget(const Dataset *ds, const TrainParams *p, const TrainBudget *b,
                       TrainEstimate *e, char *err, size_t err_size);
