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

enum {
    TRAIN_E_INPUT = 1, /* the data or params cannot train a model (too few rows, bad params) */
    TRAIN_E_DIVERGED,  /* a loss or parameter became non-finite */
    TRAIN_E_CANCELLED, /* *cancel was set */
};

typedef enum ThresholdMethod {
    THRESHOLD_QUANTILE = 0, /* q-quantile of validation scores */
    THRESHOLD_F1,           /* F1-optimal on validation normals + labelled anomalies */
    THRESHOLD_EXPLICIT,
} ThresholdMethod;

#define TRAIN_MIN_ROWS 10

typedef struct TrainParams {
    size_t hidden[NN_MAX_LAYERS - 1]; /* hidden layer sizes; 0 entries = "auto" (see below) */
    size_t n_hidden;                  /* 0 = auto: derived from the number of features */
    NnActivation activation;
    size_t epochs;
    size_t batch;
    float lr;
    float weight_decay;
    size_t patience;        /* epochs without validation improvement; 0 = no early stop */
    float validation_split; /* share of normal rows held out, 0 < s < 1 */
    uint64_t seed;
    size_t ensemble; /* members, 1..MODEL_MAX_MEMBERS */
    ThresholdMethod threshold_method;
    double threshold_q;        /* for THRESHOLD_QUANTILE, 0 < q < 1 */
    float threshold_value;     /* for THRESHOLD_EXPLICIT, >= 0 */
    size_t min_category_rows;  /* rarer categories fold into "other"; 0 = schema's default */
    char ignore_columns[1024]; /* comma-separated column names that are not fields */
} TrainParams;

void train_params_default(TrainParams *p);

/* Checks every field against its bounds; returns 0 or TRAIN_E_INPUT with a message. */
int train_params_check(const TrainParams *p, char *err, size_t err_size);

/* The hidden layers actually used for n_features (resolves "auto"). */
void train_params_resolve_hidden(const TrainParams *p, size_t n_features, size_t *hidden,
                                 size_t *n_hidden);

typedef struct TrainProgress {
    size_t member, members; /* 0-based member being trained, of members */
    size_t epoch, epochs;   /* 1-based epoch just finished, of at most epochs */
    double train_loss;
    double val_loss;
    double best_val_loss;
    double rows_per_sec; /* training rows per second over this epoch */
} TrainProgress;

typedef void (*TrainProgressFn)(const TrainProgress *progress, void *ctx);

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
