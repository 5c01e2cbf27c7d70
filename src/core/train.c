/* train: from normal rows to a served Model (see train.h).
 *
 * Steps: pick the normal rows; shuffle them with the seed and hold out the validation share;
 * fit the scaler on the training part and standardise everything once; train each ensemble
 * member from its own seed with Adam on shuffled mini-batches, keeping the parameters of the
 * epoch with the lowest validation loss (early stopping after `patience` epochs without
 * improvement); shrink each member's output towards the training mean; then score the
 * validation rows with the finished model to set the threshold and the percentile table.
 * Nothing here allocates per batch.
 *
 * Two choices beyond a plain autoencoder, both chosen for detection quality on data sets not
 * seen while choosing them (scripts/quality.sh measures them on ../shared/data):
 *  - The scaler is robust (scaler.h): moments of each column winsorised at its tails, so a
 *    few extreme rows among the "normal" training rows do not inflate a column's scale and
 *    hide deviations in it.
 *  - The output is shrunk: each member's output layer is scaled by (1 - OUTPUT_SHRINK), so
 *    the member reconstructs mean + (1 - s) (f(z) - mean) in standardised space. A bottleneck
 *    autoencoder's error sees only the deviation off the manifold it learned (PCA's SPE / Q
 *    statistic) and misses a row that is far out along it; for a reconstruction close to a
 *    projection, the shrunk error is that residual plus s^2 times the squared distance along
 *    the manifold (the T^2 side). With s = 0.5 the along-manifold part weighs 1/4. This keeps
 *    the model format and model_score untouched: it is only a rescaling of the last layer.
 */
#include "aescore/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/adam.h"
#include "aescore/scaler.h"
#include "aescore/threshold.h"
#include "aescore/util.h"

#define VAL_BLOCK     256  /* validation rows per forward pass */
#define OUTPUT_SHRINK 0.5f /* share of each member's output shrunk towards the mean */

void train_params_default(TrainParams *p)
{
    memset(p, 0, sizeof(*p));
    p->n_hidden = 0; /* auto */
    p->activation = NN_TANH;
    p->epochs = 100;
    p->batch = 64;
    p->lr = 1e-3f;
    p->weight_decay = 0;
    p->patience = 10;
    p->validation_split = 0.1f;
    p->seed = 42;
    p->ensemble = 3;
    p->threshold_method = THRESHOLD_QUANTILE;
    p->threshold_q = 0.99;
}

void train_params_resolve_hidden(const TrainParams *p, size_t n_features, size_t *hidden,
                                 size_t *n_hidden)
{
    if (p->n_hidden > 0) {
        memcpy(hidden, p->hidden, p->n_hidden * sizeof(*hidden));
        *n_hidden = p->n_hidden;
        return;
    }
    /* Auto: a single bottleneck layer of half the inputs (tanh by default). On the shared
     * data sets it ranked anomalies at least as well as W,B,W nets (W = inputs clamped to
     * 8..64, B = a quarter or 2) or a single layer of a quarter, at a third of the cost. */
    size_t narrow = n_features / 2;

    hidden[0] = narrow < 1 ? 1 : narrow;
    *n_hidden = 1;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf(err, err_size, __VA_ARGS__);                                                  \
            return TRAIN_E_INPUT;                                                                  \
        }                                                                                          \
    } while (0)

int train_params_check(const TrainParams *p, char *err, size_t err_size)
{
    CHECK(p->n_hidden < NN_MAX_LAYERS, "hidden: at most %d layers", NN_MAX_LAYERS - 1);
    for (size_t l = 0; l < p->n_hidden; l++)
        CHECK(p->hidden[l] >= 1 && p->hidden[l] <= 4096, "hidden: sizes must be 1..4096");
    CHECK((unsigned) p->activation <= NN_SIGMOID, "activation: unknown");
    CHECK(p->epochs >= 1 && p->epochs <= 100000, "epochs: must be 1..100000");
    CHECK(p->batch >= 1 && p->batch <= 65536, "batch: must be 1..65536");
    /* no upper bound: a huge rate is the caller's experiment, and divergence is detected */
    CHECK(isfinite(p->lr) && p->lr > 0, "lr: must be a finite number > 0");
    CHECK(isfinite(p->weight_decay) && p->weight_decay >= 0 && p->weight_decay < 1,
          "weight_decay: must be in [0, 1)");
    CHECK(p->patience <= 100000, "patience: must be 0..100000");
    CHECK(isfinite(p->validation_split) && p->validation_split > 0 && p->validation_split < 1,
          "validation_split: must be in (0, 1)");
    CHECK(p->ensemble >= 1 && p->ensemble <= MODEL_MAX_MEMBERS, "ensemble: must be 1..%d",
          MODEL_MAX_MEMBERS);
    CHECK(p->threshold_method <= THRESHOLD_EXPLICIT, "threshold: unknown method");
    CHECK(p->threshold_method != THRESHOLD_QUANTILE ||
              (isfinite(p->threshold_q) && p->threshold_q > 0 && p->threshold_q < 1),
          "threshold_quantile: must be in (0, 1)");
    CHECK(p->min_category_rows <= 1000000000, "min_category_rows: must be 0..1000000000");
    CHECK(memchr(p->ignore_columns, '\0', sizeof(p->ignore_columns)) != NULL,
          "ignore_columns: too long");
    CHECK(p->threshold_method != THRESHOLD_EXPLICIT ||
              (isfinite(p->threshold_value) && p->threshold_value >= 0),
          "threshold: must be a finite number >= 0");
    return 0;
}

static void shuffle(size_t *idx, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t) (nn_rng_next(rng) % i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

static bool all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

/* Everything one training run needs, allocated once. */
typedef struct Work {
    const Nn *nn;
    size_t f;
    const float *z;    /* standardised normal rows */
    size_t *train_idx; /* rows of z used for training */
    size_t n_train;
    const float *z_val; /* validation rows, contiguous */
    size_t n_val;
    float *params, *best, *grads, *m, *v;
    float *batch;    /* batch * f */
    float *scratch;  /* nn scratch for max(batch, VAL_BLOCK) rows */
    double baseline; /* loss of reconstructing every row as the mean: mean z^2 */
} Work;

/* A loss this many times the baseline is no fit at all: the weights have blown up (with
 * tanh or sigmoid a huge learning rate saturates the units and the loss stays finite). */
#define DIVERGED_FACTOR 1e4

static double validation_loss(const Work *w, const float *params)
{
    double total = 0;

    for (size_t start = 0; start < w->n_val; start += VAL_BLOCK) {
        size_t rows = w->n_val - start < VAL_BLOCK ? w->n_val - start : VAL_BLOCK;
        const float *x = w->z_val + start * w->f;
        const float *y = nn_forward(w->nn, params, x, rows, w->scratch);

        for (size_t j = 0; j < rows * w->f; j++) {
            double d = (double) y[j] - (double) x[j];
            total += d * d;
        }
    }
    return total / (double) (w->n_val * w->f);
}

typedef struct MemberResult {
    size_t epochs_run, best_epoch;
    double train_loss, val_loss; /* at best_epoch */
} MemberResult;

static int train_member(Work *w, const TrainParams *p, size_t member, const atomic_bool *cancel,
                        TrainProgressFn progress, void *ctx, MemberResult *res, char *err,
                        size_t err_size)
{
    const Nn *nn = w->nn;
    AdamParams hp = ADAM_PARAMS_DEFAULT;
    uint64_t rng = p->seed ^ (0x9e3779b97f4a7c15ULL * (member + 1));
    double best_val = INFINITY;
    size_t since_best = 0;
    unsigned long step = 0;

    hp.lr = p->lr;
    hp.weight_decay = p->weight_decay;
    nn_init_params(nn, w->params, nn_rng_next(&rng));
    memcpy(w->best, w->params, nn->n_params * sizeof(float));
    memset(w->m, 0, nn->n_params * sizeof(float));
    memset(w->v, 0, nn->n_params * sizeof(float));
    memset(res, 0, sizeof(*res));

    for (size_t epoch = 1; epoch <= p->epochs; epoch++) {
        double t0 = util_now_mono(), loss_sum = 0;

        shuffle(w->train_idx, w->n_train, &rng);
        for (size_t start = 0; start < w->n_train; start += p->batch) {
            size_t rows = w->n_train - start < p->batch ? w->n_train - start : p->batch;

            if (cancel != NULL && atomic_load_explicit(cancel, memory_order_relaxed)) {
                snprintf(err, err_size, "cancelled");
                return TRAIN_E_CANCELLED;
            }
            for (size_t r = 0; r < rows; r++)
                memcpy(w->batch + r * w->f, w->z + w->train_idx[start + r] * w->f,
                       w->f * sizeof(float));
            memset(w->grads, 0, nn->n_params * sizeof(float));
            loss_sum += nn_backward(nn, w->params, w->batch, w->batch, rows, w->scratch, w->grads) *
                        (double) rows;
            adam_step(&hp, ++step, nn->n_params, w->params, w->grads, w->m, w->v);
        }
        double train_loss = loss_sum / (double) w->n_train;
        double val_loss = validation_loss(w, w->params);
        double elapsed = util_now_mono() - t0;

        if (!isfinite(train_loss) || !isfinite(val_loss) || !all_finite(w->params, nn->n_params) ||
            train_loss > DIVERGED_FACTOR * w->baseline) {
            if (isfinite(train_loss) && isfinite(val_loss))
                snprintf(err, err_size,
                         "training diverged at epoch %zu (loss %.3g, %.0f times that of "
                         "predicting the mean); try a smaller lr",
                         epoch, train_loss, train_loss / w->baseline);
            else
                snprintf(err, err_size,
                         "training diverged at epoch %zu (loss is not finite); try a smaller lr",
                         epoch);
            return TRAIN_E_DIVERGED;
        }
        res->epochs_run = epoch;
        if (val_loss < best_val) {
            best_val = val_loss;
            since_best = 0;
            memcpy(w->best, w->params, nn->n_params * sizeof(float));
            res->best_epoch = epoch;
            res->train_loss = train_loss;
            res->val_loss = val_loss;
        } else {
            since_best++;
        }
        if (progress != NULL) {
            TrainProgress pr = {
                .member = member,
                .members = p->ensemble,
                .epoch = epoch,
                .epochs = p->epochs,
                .train_loss = train_loss,
                .val_loss = val_loss,
                .best_val_loss = best_val,
                .rows_per_sec = elapsed > 0 ? (double) w->n_train / elapsed : 0,
            };
            progress(&pr, ctx);
        }
        if (p->patience > 0 && since_best >= p->patience)
            break;
    }
    return 0;
}

/* Fits the model's scaler on the training rows rows[0..n-1] of ds. 0 or -ENOMEM. */
static int fit_scaler(const Dataset *ds, const size_t *rows, size_t n, Model *m)
{
    float *scratch = malloc(n * sizeof(*scratch));
    int r;

    if (scratch == NULL)
        return -ENOMEM;
    r = scaler_fit(ds->x, ds->n_cols, rows, n, scratch, m->mean, m->std);
    free(scratch);
    return r;
}

/* Scales the output layer of one member's parameters by (1 - OUTPUT_SHRINK): the
 * reconstruction moves that share of the way towards the training mean (0 after scaling). */
static void shrink_output(const Nn *nn, float *params)
{
    size_t l = nn->n_layers - 1;
    float keep = 1.0f - OUTPUT_SHRINK;

    for (size_t j = 0; j < nn->sizes[l] * nn->sizes[l + 1]; j++)
        params[nn->w_off[l] + j] *= keep;
    for (size_t j = 0; j < nn->sizes[l + 1]; j++)
        params[nn->b_off[l] + j] *= keep;
}

static int set_threshold(const Dataset *ds, const TrainParams *p, Model *m, const float *val_raw,
                         size_t n_val, float *val_scores, float *scratch, char *err,
                         size_t err_size)
{
    size_t f = ds->n_cols;
    int r = 0;

    model_score_batch(m, val_raw, n_val, scratch, val_scores);
    r = threshold_percentile_table(val_scores, n_val, m->percentiles, MODEL_PERCENTILES);
    if (r < 0)
        return r;

    switch (p->threshold_method) {
    case THRESHOLD_QUANTILE:
        m->meta.threshold_q = (float) p->threshold_q;
        return threshold_quantile(val_scores, n_val, p->threshold_q, &m->threshold);
    case THRESHOLD_EXPLICIT:
        m->threshold = p->threshold_value;
        return 0;
    case THRESHOLD_F1:
        break;
    }

    /* F1: validation normals plus every labelled anomaly. */
    size_t n_anom = 0;
    for (size_t i = 0; ds->label != NULL && i < ds->n_rows; i++)
        n_anom += ds->label[i];
    if (n_anom == 0) {
        snprintf(err, err_size, "threshold-f1 needs labelled anomalies (label 1 rows)");
        return TRAIN_E_INPUT;
    }
    float *scores = malloc((n_val + n_anom) * sizeof(float));
    float *anom = malloc(n_anom * f * sizeof(float));
    unsigned char *labels = calloc(n_val + n_anom, 1);
    if (scores == NULL || anom == NULL || labels == NULL) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0, k = 0; i < ds->n_rows; i++)
        if (ds->label[i])
            memcpy(anom + f * k++, ds->x + i * f, f * sizeof(float));
    memcpy(scores, val_scores, n_val * sizeof(float));
    model_score_batch(m, anom, n_anom, scratch, scores + n_val);
    memset(labels + n_val, 1, n_anom);
    r = threshold_f1(scores, labels, n_val + n_anom, &m->threshold);
    if (r == THRESHOLD_E_SINGLE_CLASS) {
        snprintf(err, err_size, "threshold-f1 needs both normal and anomalous rows");
        r = TRAIN_E_INPUT;
    }
out:
    free(scores);
    free(anom);
    free(labels);
    return r;
}

/* Trains on a purely numeric data set whose columns are the network's inputs, from its rows
 * normal[0..n_normal-1] (ascending; shuffled here in place, n_normal >= TRAIN_MIN_ROWS).
 * The model has no schema yet and is not validated: train_model does both. */
static int train_numeric(const Dataset *ds, size_t *normal, size_t n_normal, const TrainParams *p,
                         int64_t created, const atomic_bool *cancel, TrainProgressFn progress,
                         void *ctx, Model **out, char *err, size_t err_size)
{
    size_t f = ds->n_cols, n_val, hidden[NN_MAX_LAYERS], n_hidden;
    float *z = NULL, *z_val = NULL, *val_raw = NULL, *val_scores = NULL, *block = NULL;
    Model *m = NULL;
    Nn nn;
    Work w = {0};
    double train_loss = 0, val_loss = 0;
    uint64_t rng = p->seed;
    int r;

    if (f == 0 || f > MODEL_MAX_FEATURES) {
        snprintf(err, err_size, "%zu feature columns: must be 1..%d", f, MODEL_MAX_FEATURES);
        return TRAIN_E_INPUT;
    }
    train_params_resolve_hidden(p, f, hidden, &n_hidden);
    if (nn_init_autoencoder(&nn, f, hidden, n_hidden, p->activation) < 0) {
        snprintf(err, err_size, "invalid network shape");
        return TRAIN_E_INPUT;
    }

    shuffle(normal, n_normal, &rng);
    n_val = (size_t) lround((double) n_normal * p->validation_split);
    n_val = n_val < 1 ? 1 : (n_val > n_normal - 1 ? n_normal - 1 : n_val);
    w.n_train = n_normal - n_val;
    w.n_val = n_val;

    r = model_new(&m, &nn, p->ensemble);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < f; i++) {
        r = model_set_name(m, i, ds->names[i]);
        if (r < 0)
            goto fail;
    }
    /* training rows first, validation rows last */
    r = fit_scaler(ds, normal, w.n_train, m);
    if (r < 0)
        goto fail;

    size_t scratch_rows = p->batch > VAL_BLOCK ? p->batch : VAL_BLOCK;
    size_t score_scratch = model_scratch_size(m);
    size_t nn_scratch = nn_scratch_size(&nn, scratch_rows);
    z = malloc(n_normal * f * sizeof(float));
    val_raw = malloc(n_val * f * sizeof(float));
    val_scores = malloc(n_val * sizeof(float));
    w.train_idx = malloc(w.n_train * sizeof(size_t));
    w.params = malloc(nn.n_params * sizeof(float));
    w.grads = malloc(nn.n_params * sizeof(float));
    w.m = malloc(nn.n_params * sizeof(float));
    w.v = malloc(nn.n_params * sizeof(float));
    w.batch = malloc(p->batch * f * sizeof(float));
    block = malloc((nn_scratch > score_scratch ? nn_scratch : score_scratch) * sizeof(float));
    if (z == NULL || val_raw == NULL || val_scores == NULL || w.train_idx == NULL ||
        w.params == NULL || w.grads == NULL || w.m == NULL || w.v == NULL || w.batch == NULL ||
        block == NULL)
        goto nomem;
    for (size_t r_ = 0; r_ < n_normal; r_++)
        scaler_apply(m->mean, m->std, f, ds->x + normal[r_] * f, z + r_ * f);
    for (size_t r_ = 0; r_ < n_val; r_++)
        memcpy(val_raw + r_ * f, ds->x + normal[w.n_train + r_] * f, f * sizeof(float));
    z_val = z + w.n_train * f;
    w.nn = &nn;
    w.f = f;
    w.z = z;
    for (size_t k = 0; k < w.n_train * f; k++)
        w.baseline += (double) z[k] * z[k];
    /* at least 1: constant columns standardise to 0 and would make the baseline tiny */
    w.baseline = fmax(w.baseline / (double) (w.n_train * f), 1.0);
    w.z_val = z_val;
    w.scratch = block;

    for (size_t k = 0; k < p->ensemble; k++) {
        MemberResult res;

        for (size_t i = 0; i < w.n_train; i++)
            w.train_idx[i] = i;
        w.best = m->params + k * nn.n_params;
        r = train_member(&w, p, k, cancel, progress, ctx, &res, err, err_size);
        if (r != 0)
            goto fail;
        shrink_output(&nn, w.best);
        if (k == 0) {
            m->meta.epochs_run = (uint32_t) res.epochs_run;
            m->meta.best_epoch = (uint32_t) res.best_epoch;
        }
        train_loss += res.train_loss / (double) p->ensemble;
        val_loss += res.val_loss / (double) p->ensemble;
    }

    m->meta.rows = n_normal;
    m->meta.seed = p->seed;
    m->meta.created = created;
    m->meta.train_loss = (float) train_loss;
    m->meta.val_loss = (float) val_loss;
    r = set_threshold(ds, p, m, val_raw, n_val, val_scores, block, err, err_size);
    if (r != 0)
        goto fail;
    model_compute_id(m);
    *out = m;
    m = NULL;
    r = 0;
    goto done;

nomem:
    r = -ENOMEM;
fail:
    if (r == -ENOMEM)
        snprintf(err, err_size, "out of memory");
done:
    model_unref(m);
    free(z);
    free(val_raw);
    free(val_scores);
    free(w.train_idx);
    free(w.params);
    free(w.grads);
    free(w.m);
    free(w.v);
    free(w.batch);
    free(block);
    return r;
}

/* Splits p->ignore_columns ("a,b,c") into names pointing into copy. Returns the count. */
static size_t split_ignore(const TrainParams *p, char *copy, size_t copy_size, const char **names,
                           size_t max)
{
    size_t n = 0;
    char *save = NULL;

    snprintf(copy, copy_size, "%s", p->ignore_columns);
    for (char *t = strtok_r(copy, ",", &save); t != NULL && n < max; t = strtok_r(NULL, ",", &save))
        names[n++] = t;
    return n;
}

/* The learnt schema is the identity when every column is a numeric field and no cell is
 * missing: then ds already is the network's input and needs no encoded copy. */
static bool schema_is_identity(const Schema *s, const Dataset *ds)
{
    if (ds->is_text != NULL || s->n_fields != ds->n_cols || s->n_columns != ds->n_cols)
        return false;
    for (size_t k = 0; k < ds->n_rows * ds->n_cols; k++)
        if (isnan(ds->x[k]))
            return false;
    return true;
}

int train_model(const Dataset *ds, const TrainParams *p, int64_t created, const atomic_bool *cancel,
                TrainProgressFn progress, void *ctx, Model **out, char *err, size_t err_size)
{
    char ignore_copy[sizeof(p->ignore_columns)];
    const char *ignore[MODEL_MAX_FEATURES];
    SchemaOptions opts = {.min_category_rows = p->min_category_rows, .ignore = ignore};
    size_t *normal = NULL, n_normal = 0;
    Schema *schema = NULL;
    Dataset *encoded = NULL;
    Model *m = NULL;
    int r;

    r = train_params_check(p, err, err_size);
    if (r != 0)
        return r;
    normal = malloc((ds->n_rows ? ds->n_rows : 1) * sizeof(*normal));
    if (normal == NULL) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ds->n_rows; i++)
        if (ds->label == NULL || ds->label[i] == 0)
            normal[n_normal++] = i;
    if (n_normal < TRAIN_MIN_ROWS) {
        snprintf(err, err_size, "%zu normal rows: at least %d are needed", n_normal,
                 TRAIN_MIN_ROWS);
        r = TRAIN_E_INPUT;
        goto out;
    }
    opts.n_ignore = split_ignore(p, ignore_copy, sizeof(ignore_copy), ignore, MODEL_MAX_FEATURES);
    r = schema_learn(ds, normal, n_normal, &opts, &schema, err, err_size);
    if (r == 0 && !schema_is_identity(schema, ds))
        r = schema_encode_dataset(schema, ds, &encoded, err, err_size);
    if (r == SCHEMA_E_INPUT)
        r = TRAIN_E_INPUT;
    if (r != 0)
        goto out;
    r = train_numeric(encoded != NULL ? encoded : ds, normal, n_normal, p, created, cancel,
                      progress, ctx, &m, err, err_size);
    if (r != 0)
        goto out;
    m->schema = schema;
    schema = NULL;
    /* the one check of the finished model (train.h promises a valid one) */
    if (model_validate(m) != 0) {
        snprintf(err, err_size, "the trained model is not valid (non-finite values or schema)");
        r = TRAIN_E_DIVERGED;
        goto out;
    }
    *out = m;
    m = NULL;
out:
    if (r == -ENOMEM)
        snprintf(err, err_size, "out of memory");
    model_unref(m);
    schema_free(schema);
    dataset_free(encoded);
    free(normal);
    return r;
}
