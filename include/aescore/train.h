/* train: builds a Model from normal rows. Fits the scaler, splits off a validation share,
 * trains each ensemble member with Adam on shuffled mini-batches with keep-best early
 * stopping, then sets the threshold and the percentile table from validation scores.
 *
 * Single-threaded and deterministic: the same data, params and seed give the same bits.
 * Shared by the CLI and the daemon's trainer thread, which passes a cancel flag (checked
 * every batch) and a progress callback (called after every epoch, on the calling thread).
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
