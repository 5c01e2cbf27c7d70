/* model: the served artifact. Schema (feature names) + scaler (mean/std, scaler.h) + network +
 * parameters of one or more ensemble members + an optional neighbour reference + threshold +
 * percentile table + metadata.
 *
 * The score. Without a reference it is the reconstruction error (mse: the mean squared error
 * over standardised features, member mean). With one it combines two parts, each a log
 * standardised by its mean and deviation over the validation normals:
 *     score = (log(mse + e) - m1) / s1 + (log(knn + e) - m2) / s2,   e = MODEL_LOG_EPS
 * where knn is the mean Euclidean distance, in the network's (standardised) input space, to
 * the MODEL_KNN_K nearest reference rows. The threshold and the percentile table are of this
 * combined score over the validation normals; a combined score may be negative.
 *
 * Lifecycle: model_new() returns a zero-filled Model with refcount 1 that its builder (train
 * or model_file) fills in and validates (model_validate, once, before handing it out); once
 * handed to anyone else it is IMMUTABLE. Share it with model_ref(); let go with
 * model_unref(); the last unref frees it.
 * Threads: model_ref/model_unref are atomic and may be called from any thread; scoring only
 * reads the model and writes the caller's scratch, so any number of threads may score one
 * model at once.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aescore/nn.h"
#include "aescore/schema.h"

#define MODEL_ID_LEN       16 /* hex digits */
#define MODEL_MAX_FEATURES 4096
#define MODEL_MAX_MEMBERS  16
#define MODEL_PERCENTILES  1001 /* table entries: the 0.0, 0.1, ..., 100.0 percentiles */

#define MODEL_KNN_K         5     /* neighbours averaged (fewer when the reference is smaller) */
#define MODEL_MAX_REFERENCE 65536 /* reference rows */
#define MODEL_LOG_EPS       1e-6f /* added before the logs: a part of 0 stays finite */

typedef enum ModelReferenceKind {
    MODEL_REFERENCE_NONE = 0, /* score = reconstruction error (every file before version 4) */
    MODEL_REFERENCE_ROWS,     /* a seeded sample of the normal training rows */
    MODEL_REFERENCE_CENTRES,  /* k-means centres of them, each the mean of >= 5 rows */
} ModelReferenceKind;

typedef struct ModelReference {
    ModelReferenceKind kind;
    size_t n;             /* rows; 0 with MODEL_REFERENCE_NONE */
    float *rows;          /* n x n_features, standardised like the network's inputs */
    float *panels;        /* the same packed for the distance kernel (nn_kernels.h) */
    float m1, s1, m2, s2; /* mean and deviation of log mse and log knn, validation normals */
} ModelReference;

typedef struct ModelMeta {
    uint64_t rows; /* normal rows used (training + validation) */
    uint64_t seed;
    int64_t created;           /* unix seconds (SOURCE_DATE_EPOCH when set) */
    uint32_t epochs_run;       /* of the first member, incl. the ones after the best */
    uint32_t best_epoch;       /* 1-based epoch whose weights were kept (first member) */
    float train_loss;          /* at best_epoch, mean over members */
    float val_loss;            /* at best_epoch, mean over members */
    float threshold_q;         /* quantile used, or 0 when the threshold is F1/explicit */
    char id[MODEL_ID_LEN + 1]; /* hex content hash; the same file gives the same id */
} ModelMeta;

typedef struct Model {
    atomic_int refs;
    Schema *schema;    /* the record fields and their encoding into the n_features inputs */
    size_t n_features; /* = nn.sizes[0] = nn.sizes[n_layers] = schema->n_columns */
    char **names;      /* n_features input column names (schema_column_name) */
    float *mean;       /* n_features: the scaler (scaler.h) */
    float *std;        /* n_features, all > 0 */
    Nn nn;
    size_t n_members; /* ensemble size >= 1; scores are averaged over members */
    float *params;    /* n_members * nn.n_params */
    ModelReference ref;
    float threshold;
    float *percentiles; /* MODEL_PERCENTILES ascending validation scores */
    ModelMeta meta;
    unsigned file_format; /* format version of the file it was decoded from (model_file.h);
                             0 for a model made in this process */
} Model;

typedef struct ModelScore {
    float score;          /* the combined score (= reconstruction without a reference) */
    float reconstruction; /* mse over standardised features (member mean) */
    float neighbours;     /* knn: mean distance to the nearest reference rows; 0 without */
    float threshold;
    double percentile; /* 0..100 among validation normals */
    bool anomaly;      /* score > threshold */
} ModelScore;

/* Allocates a Model for nn with n_members members; arrays zeroed, names NULL (set them with
 * model_set_name). Returns 0, -EINVAL (shape not an autoencoder, counts out of range),
 * -ENOMEM. */
int model_new(Model **out, const Nn *nn, size_t n_members);

/* Copies name into feature slot i (builders only). Returns 0, -EINVAL, -ENOMEM. */
int model_set_name(Model *m, size_t i, const char *name);

/* Gives the model the schema a version 1 file implies: one numeric field per input column,
 * imputed with the column's mean (builders only; names and mean must be set). 0, -ENOMEM. */
int model_set_numeric_schema(Model *m);

/* Gives m the reference of n rows (n_features floats each, standardised; copied), of kind
 * ROWS or CENTRES, with 1 <= n <= MODEL_MAX_REFERENCE; m1..s2 are left for the builder to set
 * (model_score_parts needs none of them). Builders only. 0, -EINVAL, -ENOMEM. */
int model_set_reference(Model *m, ModelReferenceKind kind, const float *rows, size_t n);

/* "none", "rows", "centres"; and back (0 or -EINVAL). */
const char *model_reference_name(ModelReferenceKind kind);
int model_reference_parse(const char *name, ModelReferenceKind *out);

/* Computes meta.id from the model's contents (builders only, after every other field). */
void model_compute_id(Model *m);

Model *model_ref(Model *m);
Model *model_unref(Model *m); /* accepts NULL; returns NULL */

/* Floats of scratch model_score / model_score_batch need; model_scratch_floats is the same
 * for a model of network nn that does not exist yet (a training budget). */
size_t model_scratch_size(const Model *m);
size_t model_scratch_floats(const Nn *nn);

/* Scores one raw (unscaled) record x of n_features values. feature_err, when not NULL,
 * receives the n_features squared errors (member mean, standardised units). */
void model_score(const Model *m, const float *x, float *scratch, float *feature_err,
                 ModelScore *out);

/* Scores n raw records (row-major) into scores[n]; faster than n calls of model_score, and
 * the same bits. The neighbour distances of a block of records are one batched pass over the
 * reference (nn_kernels). */
void model_score_batch(const Model *m, const float *x, size_t n, float *scratch, float *scores);

/* The two parts of n raw records' scores: mse[n] and, when the model has a reference, knn[n]
 * (knn may be NULL; it is left alone without a reference). Same scratch as above. */
void model_score_parts(const Model *m, const float *x, size_t n, float *scratch, float *mse,
                       float *knn);

/* The combined score of the parts (mse itself without a reference). */
float model_combine(const Model *m, float mse, float knn);

/* The neighbours the score averages: MODEL_KNN_K, or every reference row when fewer. */
size_t model_knn_k(const Model *m);

/* Checks what a loader or trainer must guarantee before serving: finite parameters, scaler,
 * threshold and table; std > 0; an ascending table; distinct non-empty names; a schema (when
 * set) that passes schema_validate and has n_features columns; a threshold >= 0 without a
 * reference; with one, 1..MODEL_MAX_REFERENCE finite rows, finite m1, m2 and s1, s2 > 0.
 * Returns 0 or -EINVAL.
 * The builders call it for you: every Model returned by model_file_decode, model_file_load
 * and train_model has passed it, so their callers need not (and should not) check again.
 * It is for whoever builds a Model by other means (model_new and friends). */
int model_validate(const Model *m);
