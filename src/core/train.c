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
 * The neighbour term (model.h "The score"): after the members, the reference is drawn from
 * the standardised training rows (never the validation rows, whose distances must be those
 * of unseen records); the validation rows' two parts give m1, s1, m2, s2, and the threshold
 * and the table are of their combined scores.
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
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/adam.h"
#include "aescore/config.h"
#include "aescore/reference.h"
#include "aescore/scaler.h"
#include "aescore/threshold.h"
#include "aescore/util.h"

#define VAL_BLOCK     256  /* validation rows per forward pass */
#define OUTPUT_SHRINK 0.5f /* share of each member's output shrunk towards the mean */

/* Multiply-adds of network work between two looks at the cancel flag (a few ms), whatever
 * the layer sizes: a pass over more rows than that is done in chunks of fewer rows. */
#define WORK_PER_CHECK ((size_t) 1 << 22)

/* Rows of a network of n_params parameters that make one such stretch of work, at most
 * `rows`. Networks small enough for a whole batch per look keep the exact arithmetic of
 * one pass; only the large ones are chunked. */
static size_t rows_per_check(size_t n_params, size_t rows)
{
    size_t n = WORK_PER_CHECK / (n_params > 0 ? n_params : 1);

    return n < 1 ? 1 : (n < rows ? n : rows);
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

/* The caller's side of one run: what to train with, when to stop, whom to tell. */
typedef struct Run {
    const TrainParams *p;
    const atomic_bool *cancel;
    TrainProgressFn progress;
    void *ctx;
    char *err;
    size_t err_size;
} Run;

/* Everything one training run needs, allocated once by work_alloc, freed by work_free. */
typedef struct Work {
    const Nn *nn;
    size_t f;
    float *z;          /* standardised normal rows: n_train training rows, then n_val */
    size_t *train_idx; /* rows of z used for training */
    size_t n_train;
    const float *z_val; /* validation rows, contiguous (the tail of z) */
    size_t n_val;
    float *val_raw;    /* the validation rows unscaled, for scoring with the finished model */
    float *val_scores; /* n_val */
    float *params, *grads, *m, *v;
    float *best;      /* the current member's block of the model's params (not owned) */
    float *batch;     /* batch * f */
    float *scratch;   /* nn scratch for max(pass_rows, val_rows), or a model's for scoring */
    size_t pass_rows; /* rows per forward/backward pass: the batch, or a part of it */
    size_t val_rows;  /* validation rows per forward pass */
    double baseline;  /* loss of reconstructing every row as the mean: mean z^2 */
} Work;

/* A loss this many times the baseline is no fit at all: the weights have blown up (with
 * tanh or sigmoid a huge learning rate saturates the units and the loss stays finite). */
#define DIVERGED_FACTOR 1e4

/* True, with "cancelled" in err, when the caller has asked the run to stop. */
static bool cancelled(const Run *run)
{
    if (run->cancel == NULL || !atomic_load_explicit(run->cancel, memory_order_relaxed))
        return false;
    snprintf(run->err, run->err_size, "cancelled");
    return true;
}

/* The mean loss over the validation rows into *loss. 0 or TRAIN_E_CANCELLED. */
static int validation_loss(const Work *w, const Run *run, const float *params, double *loss)
{
    double total = 0;

    for (size_t start = 0; start < w->n_val; start += w->val_rows) {
        size_t rows = w->n_val - start < w->val_rows ? w->n_val - start : w->val_rows;
        const float *x = w->z_val + start * w->f;
        const float *y;

        if (cancelled(run))
            return TRAIN_E_CANCELLED;
        y = nn_forward(w->nn, params, x, rows, w->scratch);
        for (size_t j = 0; j < rows * w->f; j++) {
            double d = (double) y[j] - (double) x[j];
            total += d * d;
        }
    }
    *loss = total / (double) (w->n_val * w->f);
    return 0;
}

/* The gradient of the mean loss over the `rows` rows in w->batch into w->grads (zeroed
 * here); returns that loss, or NAN when cancelled. In one pass when the rows fit
 * w->pass_rows, else in parts that add up to it, with a look at the cancel flag before
 * each. */
static double batch_gradient(Work *w, const Run *run, size_t rows)
{
    const Nn *nn = w->nn;
    double loss = 0;

    memset(w->grads, 0, nn->n_params * sizeof(float));
    if (rows <= w->pass_rows)
        return nn_backward(nn, w->params, w->batch, w->batch, rows, w->scratch, w->grads);
    for (size_t start = 0; start < rows; start += w->pass_rows) {
        size_t n = rows - start < w->pass_rows ? rows - start : w->pass_rows;
        const float *x = w->batch + start * w->f;

        if (cancelled(run))
            return NAN;
        loss += nn_backward_part(nn, w->params, x, x, n, rows, w->scratch, w->grads) * (double) n;
    }
    return loss / (double) rows;
}

/* One pass over the shuffled training rows, one Adam step per mini-batch. *train_loss is
 * the mean loss over the pass. Returns 0 or TRAIN_E_CANCELLED (checked before every batch). */
static int run_epoch(Work *w, const Run *run, const AdamParams *hp, uint64_t *rng,
                     unsigned long *step, double *train_loss)
{
    const Nn *nn = w->nn;
    size_t batch = run->p->batch;
    double loss_sum = 0;

    shuffle(w->train_idx, w->n_train, rng);
    for (size_t start = 0; start < w->n_train; start += batch) {
        size_t rows = w->n_train - start < batch ? w->n_train - start : batch;
        double loss;

        if (cancelled(run))
            return TRAIN_E_CANCELLED;
        for (size_t r = 0; r < rows; r++)
            memcpy(w->batch + r * w->f, w->z + w->train_idx[start + r] * w->f,
                   w->f * sizeof(float));
        loss = batch_gradient(w, run, rows);
        if (cancelled(run))
            return TRAIN_E_CANCELLED;
        loss_sum += loss * (double) rows;
        adam_step(hp, ++*step, nn->n_params, w->params, w->grads, w->m, w->v);
    }
    *train_loss = loss_sum / (double) w->n_train;
    return 0;
}

/* TRAIN_E_DIVERGED (with the reason in err) when the epoch's losses or parameters say the
 * fit has blown up, else 0. */
static int check_diverged(const Work *w, const Run *run, size_t epoch, double train_loss,
                          double val_loss)
{
    if (isfinite(train_loss) && isfinite(val_loss) && all_finite(w->params, w->nn->n_params) &&
        !(train_loss > DIVERGED_FACTOR * w->baseline))
        return 0;
    if (isfinite(train_loss) && isfinite(val_loss))
        snprintf(run->err, run->err_size,
                 "training diverged at epoch %zu (loss %.3g, %.0f times that of "
                 "predicting the mean); try a smaller lr",
                 epoch, train_loss, train_loss / w->baseline);
    else
        snprintf(run->err, run->err_size,
                 "training diverged at epoch %zu (loss is not finite); try a smaller lr", epoch);
    return TRAIN_E_DIVERGED;
}

void train_progress_line(const TrainProgress *p, char *buf, size_t size)
{
    snprintf(buf, size,
             "member %zu/%zu epoch %zu/%zu: train loss %.6f, validation loss %.6f (best %.6f), "
             "%.0f rows/s",
             p->member + 1, p->members, p->epoch, p->epochs, p->train_loss, p->val_loss,
             p->best_val_loss, p->rows_per_sec);
}

static void report_progress(const Run *run, TrainProgress *pr)
{
    pr->members = run->p->ensemble;
    pr->epochs = run->p->epochs;
    if (run->progress != NULL)
        run->progress(pr, run->ctx);
}

typedef struct MemberResult {
    size_t epochs_run, best_epoch;
    double train_loss, val_loss; /* at best_epoch */
} MemberResult;

/* Trains member `member` from its own seed into w->best: the parameters of the epoch with
 * the lowest validation loss, stopping after p->patience epochs without improvement. */
static int train_member(Work *w, const Run *run, size_t member, MemberResult *res)
{
    const TrainParams *p = run->p;
    const Nn *nn = w->nn;
    AdamParams hp = ADAM_PARAMS_DEFAULT;
    uint64_t rng = p->seed ^ (0x9e3779b97f4a7c15ULL * (member + 1));
    double best_val = INFINITY, started = util_now_mono();
    size_t since_best = 0;
    unsigned long step = 0;
    int r;

    hp.lr = p->lr;
    hp.weight_decay = p->weight_decay;
    nn_init_params(nn, w->params, nn_rng_next(&rng));
    memcpy(w->best, w->params, nn->n_params * sizeof(float));
    memset(w->m, 0, nn->n_params * sizeof(float));
    memset(w->v, 0, nn->n_params * sizeof(float));
    memset(res, 0, sizeof(*res));

    for (size_t epoch = 1; epoch <= p->epochs; epoch++) {
        double t0 = util_now_mono(), train_loss, val_loss, elapsed;

        r = run_epoch(w, run, &hp, &rng, &step, &train_loss);
        if (r == 0)
            r = validation_loss(w, run, w->params, &val_loss);
        if (r != 0)
            return r;
        elapsed = util_now_mono() - t0;
        r = check_diverged(w, run, epoch, train_loss, val_loss);
        if (r != 0)
            return r;
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
        bool stop = p->patience > 0 && since_best >= p->patience;
        report_progress(run, &(TrainProgress){
                                 .member = member,
                                 .epoch = epoch,
                                 .train_loss = train_loss,
                                 .val_loss = val_loss,
                                 .best_val_loss = best_val,
                                 .rows_per_sec = elapsed > 0 ? (double) w->n_train / elapsed : 0,
                                 .member_seconds = util_now_mono() - started,
                                 .member_done = stop || epoch == p->epochs,
                             });
        if (stop)
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

/* Scores n raw rows x with m into scores, in stretches of WORK_PER_CHECK with a look at the
 * cancel flag before each (a row's score does not depend on the rows scored with it). 0 or
 * TRAIN_E_CANCELLED. */
static int score_rows(const Run *run, const Model *m, const float *x, size_t n, float *scratch,
                      float *scores)
{
    size_t step = rows_per_check(m->nn.n_params * m->n_members, n);

    for (size_t start = 0; start < n; start += step) {
        if (cancelled(run))
            return TRAIN_E_CANCELLED;
        model_score_batch(m, x + start * m->n_features, n - start < step ? n - start : step,
                          scratch, scores + start);
    }
    return 0;
}

/* Gives m its neighbour reference from the training rows of w (p->reference), or none. */
static int build_reference(const Work *w, const Run *run, Model *m)
{
    const TrainParams *p = run->p;
    float *rows = NULL;
    size_t n = 0;
    int r;

    if (p->reference == MODEL_REFERENCE_NONE)
        return 0;
    if (p->reference == MODEL_REFERENCE_ROWS)
        r = reference_sample(w->z, w->n_train, w->f, p->reference_size, p->seed, &rows, &n);
    else
        r = reference_centres(w->z, w->n_train, w->f, p->reference_size, p->seed, run->cancel,
                              &rows, &n, NULL);
    if (r == -ECANCELED) {
        snprintf(run->err, run->err_size, "cancelled");
        return TRAIN_E_CANCELLED;
    }
    if (r == -EINVAL) {
        snprintf(run->err, run->err_size,
                 "reference centres: %zu training rows, at least %d are needed", w->n_train,
                 REFERENCE_MIN_ROWS);
        return TRAIN_E_INPUT;
    }
    if (r == 0)
        r = model_set_reference(m, p->reference, rows, n);
    free(rows);
    return r;
}

/* Mean and deviation of log(v + MODEL_LOG_EPS) over n values. The deviation has a floor:
 * a part that is constant over the validation rows must not divide by ~0. */
static void log_moments(const float *v, size_t n, float *mean, float *dev)
{
    double s = 0, ss = 0;

    for (size_t i = 0; i < n; i++)
        s += log((double) v[i] + MODEL_LOG_EPS);
    s /= (double) n;
    for (size_t i = 0; i < n; i++) {
        double d = log((double) v[i] + MODEL_LOG_EPS) - s;
        ss += d * d;
    }
    *mean = (float) s;
    *dev = (float) fmax(sqrt(ss / (double) n), 1e-3);
}

/* With a reference: the parts of the validation rows fix m's m1..s2, then scores[] receive
 * their combined scores. Without one: the reconstruction errors. 0, TRAIN_E_CANCELLED,
 * -ENOMEM. */
static int validation_scores(const Work *w, const Run *run, Model *m, float *scores)
{
    size_t n = w->n_val, f = w->f, step = rows_per_check(m->nn.n_params * m->n_members, n);
    float *knn;

    if (m->ref.kind == MODEL_REFERENCE_NONE)
        return score_rows(run, m, w->val_raw, n, w->scratch, scores);
    if ((knn = malloc(n * sizeof(*knn))) == NULL)
        return -ENOMEM;
    for (size_t start = 0; start < n; start += step) {
        if (cancelled(run)) {
            free(knn);
            return TRAIN_E_CANCELLED;
        }
        model_score_parts(m, w->val_raw + start * f, n - start < step ? n - start : step,
                          w->scratch, scores + start, knn + start);
    }
    log_moments(scores, n, &m->ref.m1, &m->ref.s1);
    log_moments(knn, n, &m->ref.m2, &m->ref.s2);
    for (size_t i = 0; i < n; i++)
        scores[i] = model_combine(m, scores[i], knn[i]);
    free(knn);
    return 0;
}

/* Scores the validation rows with the finished model m and sets its percentile table and
 * threshold by p->threshold_method (F1 also scores ds's labelled anomalies). */
static int set_threshold(const Work *w, const Run *run, const Dataset *ds, Model *m)
{
    const TrainParams *p = run->p;
    size_t f = ds->n_cols, n_val = w->n_val;
    float *val_scores = w->val_scores, *scratch = w->scratch;
    char *err = run->err;
    size_t err_size = run->err_size;
    int r = 0;

    r = validation_scores(w, run, m, val_scores);
    if (r != 0)
        return r;
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
    r = score_rows(run, m, anom, n_anom, scratch, scores + n_val);
    if (r != 0)
        goto out;
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

/* The network for f input columns and p's hidden layers, or TRAIN_E_INPUT. */
static int make_network(size_t f, const TrainParams *p, Nn *nn, char *err, size_t err_size)
{
    size_t hidden[NN_MAX_LAYERS], n_hidden;

    if (f == 0 || f > MODEL_MAX_FEATURES) {
        snprintf(err, err_size, "%zu feature columns: must be 1..%d", f, MODEL_MAX_FEATURES);
        return TRAIN_E_INPUT;
    }
    train_params_resolve_hidden(p, f, hidden, &n_hidden);
    if (nn_init_autoencoder(nn, f, hidden, n_hidden, p->activation) < 0) {
        snprintf(err, err_size, "invalid network shape");
        return TRAIN_E_INPUT;
    }
    return 0;
}

/* A new model for nn named after ds's columns, its scaler fitted on the training rows. */
static int new_model(const Dataset *ds, const Nn *nn, const TrainParams *p, const size_t *normal,
                     size_t n_train, Model **out)
{
    Model *m = NULL;
    int r;

    r = model_new(&m, nn, p->ensemble);
    if (r < 0)
        return r;
    for (size_t i = 0; i < ds->n_cols && r == 0; i++)
        r = model_set_name(m, i, ds->names[i]);
    if (r == 0)
        r = fit_scaler(ds, normal, n_train, m);
    if (r < 0) {
        model_unref(m);
        return r;
    }
    *out = m;
    return 0;
}

static void work_free(Work *w)
{
    free(w->z);
    free(w->val_raw);
    free(w->val_scores);
    free(w->train_idx);
    free(w->params);
    free(w->grads);
    free(w->m);
    free(w->v);
    free(w->batch);
    free(w->scratch);
}

/* The rows per pass and the scratch floats of a run of nn with p: one place for work_alloc
 * and train_estimate. The scratch serves both the network in training and the model when
 * scoring. */
static void work_shape(const Nn *nn, const TrainParams *p, size_t *pass_rows, size_t *val_rows,
                       size_t *scratch)
{
    size_t nn_scratch, score_scratch = model_scratch_floats(nn);

    *pass_rows = rows_per_check(nn->n_params, p->batch);
    *val_rows = rows_per_check(nn->n_params, VAL_BLOCK);
    nn_scratch = nn_scratch_size(nn, *pass_rows > *val_rows ? *pass_rows : *val_rows);
    *scratch = nn_scratch > score_scratch ? nn_scratch : score_scratch;
}

/* Allocates w's buffers for training m's network with p (w->n_train, w->n_val set).
 * 0 or -ENOMEM. */
static int work_alloc(Work *w, const Model *m, const TrainParams *p)
{
    size_t f = m->n_features, n_params = m->nn.n_params, scratch;

    work_shape(&m->nn, p, &w->pass_rows, &w->val_rows, &scratch);
    w->nn = &m->nn;
    w->f = f;
    w->z = malloc((w->n_train + w->n_val) * f * sizeof(float));
    w->val_raw = malloc(w->n_val * f * sizeof(float));
    w->val_scores = malloc(w->n_val * sizeof(float));
    w->train_idx = malloc(w->n_train * sizeof(size_t));
    w->params = malloc(n_params * sizeof(float));
    w->grads = malloc(n_params * sizeof(float));
    w->m = malloc(n_params * sizeof(float));
    w->v = malloc(n_params * sizeof(float));
    w->batch = malloc(p->batch * f * sizeof(float));
    w->scratch = malloc(scratch * sizeof(float));
    if (w->z == NULL || w->val_raw == NULL || w->val_scores == NULL || w->train_idx == NULL ||
        w->params == NULL || w->grads == NULL || w->m == NULL || w->v == NULL || w->batch == NULL ||
        w->scratch == NULL)
        return -ENOMEM;
    return 0;
}

/* Standardises ds's rows normal[] into w->z with m's scaler (training rows first, validation
 * rows last), keeps the raw validation rows and computes the baseline loss. */
static void standardise_rows(Work *w, const Dataset *ds, const size_t *normal, const Model *m)
{
    size_t f = w->f, n_normal = w->n_train + w->n_val;

    for (size_t r = 0; r < n_normal; r++)
        scaler_apply(m->mean, m->std, f, ds->x + normal[r] * f, w->z + r * f);
    for (size_t r = 0; r < w->n_val; r++)
        memcpy(w->val_raw + r * f, ds->x + normal[w->n_train + r] * f, f * sizeof(float));
    w->z_val = w->z + w->n_train * f;
    w->baseline = 0;
    for (size_t k = 0; k < w->n_train * f; k++)
        w->baseline += (double) w->z[k] * w->z[k];
    /* at least 1: constant columns standardise to 0 and would make the baseline tiny */
    w->baseline = fmax(w->baseline / (double) (w->n_train * f), 1.0);
}

/* Trains every ensemble member into m's params, each from the same row order, and records
 * the first member's epochs and the members' mean losses in m->meta. */
static int train_members(Work *w, const Run *run, Model *m)
{
    const TrainParams *p = run->p;
    double train_loss = 0, val_loss = 0;
    int r;

    for (size_t k = 0; k < p->ensemble; k++) {
        MemberResult res;

        for (size_t i = 0; i < w->n_train; i++)
            w->train_idx[i] = i;
        w->best = m->params + k * m->nn.n_params;
        r = train_member(w, run, k, &res);
        if (r != 0)
            return r;
        shrink_output(&m->nn, w->best);
        if (k == 0) {
            m->meta.epochs_run = (uint32_t) res.epochs_run;
            m->meta.best_epoch = (uint32_t) res.best_epoch;
        }
        train_loss += res.train_loss / (double) p->ensemble;
        val_loss += res.val_loss / (double) p->ensemble;
    }
    m->meta.train_loss = (float) train_loss;
    m->meta.val_loss = (float) val_loss;
    return 0;
}

/* Of n_normal >= 2 rows, those held out for validation: at least one, never all. */
static size_t validation_rows(size_t n_normal, const TrainParams *p)
{
    size_t n_val = (size_t) lround((double) n_normal * p->validation_split);

    return n_val < 1 ? 1 : (n_val > n_normal - 1 ? n_normal - 1 : n_val);
}

/* Trains on a purely numeric data set whose columns are the network's inputs, from its rows
 * normal[0..n_normal-1] (ascending; shuffled here in place, n_normal >= TRAIN_MIN_ROWS).
 * The model has no schema yet and is not validated: train_model does both. */
static int train_numeric(const Dataset *ds, size_t *normal, size_t n_normal, const Run *run,
                         int64_t created, Model **out)
{
    const TrainParams *p = run->p;
    Model *m = NULL;
    Work w = {0};
    uint64_t rng = p->seed;
    Nn nn;
    int r;

    r = make_network(ds->n_cols, p, &nn, run->err, run->err_size);
    if (r != 0)
        return r;
    shuffle(normal, n_normal, &rng);
    w.n_val = validation_rows(n_normal, p);
    w.n_train = n_normal - w.n_val;

    r = new_model(ds, &nn, p, normal, w.n_train, &m);
    if (r == 0)
        r = work_alloc(&w, m, p);
    if (r != 0)
        goto out;
    standardise_rows(&w, ds, normal, m);
    r = train_members(&w, run, m);
    if (r != 0)
        goto out;
    m->meta.rows = n_normal;
    m->meta.seed = p->seed;
    m->meta.created = created;
    r = build_reference(&w, run, m);
    if (r == 0)
        r = set_threshold(&w, run, ds, m);
    if (r != 0)
        goto out;
    model_compute_id(m);
    *out = m;
    m = NULL;
out:
    model_unref(m);
    work_free(&w);
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

/* train_model's first step: the normal rows of ds (*normal, n_normal, the caller frees
 * it) and the schema learnt from them. 0, TRAIN_E_INPUT (message in err) or -ENOMEM. */
static int learn_schema(const Dataset *ds, const TrainParams *p, size_t **normal, size_t *n_normal,
                        Schema **schema, char *err, size_t err_size)
{
    char ignore_copy[sizeof(p->ignore_columns)];
    const char *ignore[MODEL_MAX_FEATURES];
    SchemaOptions opts = {.min_category_rows = p->min_category_rows, .ignore = ignore};
    size_t n = 0;
    int r;

    if (train_params_check(p, err, err_size) != 0)
        return TRAIN_E_INPUT;
    *normal = malloc((ds->n_rows ? ds->n_rows : 1) * sizeof(**normal));
    if (*normal == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < ds->n_rows; i++)
        if (ds->label == NULL || ds->label[i] == 0)
            (*normal)[n++] = i;
    *n_normal = n;
    if (n < TRAIN_MIN_ROWS) {
        snprintf(err, err_size, "%zu normal rows: at least %d are needed", n, TRAIN_MIN_ROWS);
        return TRAIN_E_INPUT;
    }
    opts.n_ignore = split_ignore(p, ignore_copy, sizeof(ignore_copy), ignore, MODEL_MAX_FEATURES);
    r = schema_learn(ds, *normal, n, &opts, schema, err, err_size);
    return r == SCHEMA_E_INPUT ? TRAIN_E_INPUT : r;
}

int train_model(const Dataset *ds, const TrainParams *p, int64_t created, const atomic_bool *cancel,
                TrainProgressFn progress, void *ctx, Model **out, char *err, size_t err_size)
{
    Run run = {.p = p,
               .cancel = cancel,
               .progress = progress,
               .ctx = ctx,
               .err = err,
               .err_size = err_size};
    size_t *normal = NULL, n_normal = 0;
    Schema *schema = NULL;
    Dataset *encoded = NULL;
    Model *m = NULL;
    int r;

    r = learn_schema(ds, p, &normal, &n_normal, &schema, err, err_size);
    if (r == 0 && !schema_is_identity(schema, ds))
        r = schema_encode_dataset(schema, ds, &encoded, err, err_size);
    if (r == SCHEMA_E_INPUT)
        r = TRAIN_E_INPUT;
    if (r != 0)
        goto out;
    r = train_numeric(encoded != NULL ? encoded : ds, normal, n_normal, &run, created, &m);
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

/* Bytes of a job's buffers while its members train (the peak: the scaler's scratch before
 * and the threshold's after are smaller), given the network and the row counts. */
static uint64_t job_bytes(const Dataset *ds, const TrainParams *p, const Nn *nn, bool encoded,
                          size_t n_normal)
{
    uint64_t f = nn->sizes[0], n_params = nn->n_params, rows = ds->n_rows;
    uint64_t n_val = validation_rows(n_normal, p), n_train = n_normal - n_val;
    uint64_t indexes = rows + n_train; /* normal, train_idx */
    size_t pass_rows, val_rows, scratch;
    uint64_t floats, bytes;

    work_shape(nn, p, &pass_rows, &val_rows, &scratch);
    floats = (uint64_t) p->ensemble * n_params + 2 * f; /* the model: members, scaler */
    floats += (n_normal + n_val) * f + n_val;           /* z, val_raw, val_scores */
    floats += 4 * n_params;                             /* params, grads, Adam's m and v */
    floats += p->batch * f + scratch;
    if (p->reference != MODEL_REFERENCE_NONE) {
        /* the reference (rows and panels), k-means' sums in double (twice the centres again)
         * and the validation rows' distances; the sample's shuffled index of the training
         * rows, and k-means' assignment of each */
        floats += 4 * (uint64_t) p->reference_size * f + n_val;
        indexes += (p->reference == MODEL_REFERENCE_CENTRES ? 2 : 1) * n_train;
    }
    if (encoded)
        floats += rows * f;
    bytes = floats * sizeof(float) + indexes * sizeof(size_t);
    /* the data set itself: values, labels, and a cell pointer per text column cell */
    bytes += rows * ds->n_cols * sizeof(float) + (ds->label != NULL ? rows : 0);
    if (ds->is_text != NULL)
        bytes += rows * ds->n_cols * sizeof(char *);
    return bytes;
}

int train_estimate(const Dataset *ds, const TrainParams *p, TrainEstimate *out, char *err,
                   size_t err_size)
{
    size_t *normal = NULL, n_normal = 0;
    Schema *schema = NULL;
    Nn nn;
    int r = learn_schema(ds, p, &normal, &n_normal, &schema, err, err_size);

    if (r != 0)
        goto out;
    r = make_network(schema->n_columns, p, &nn, err, err_size);
    if (r != 0)
        goto out;
    out->inputs = schema->n_columns;
    out->parameters = (uint64_t) nn.n_params * p->ensemble;
    out->memory = job_bytes(ds, p, &nn, !schema_is_identity(schema, ds), n_normal);
out:
    if (r == -ENOMEM)
        snprintf(err, err_size, "out of memory");
    schema_free(schema);
    free(normal);
    return r;
}

int train_check_budget(const Dataset *ds, const TrainParams *p, const TrainBudget *b,
                       TrainEstimate *e, char *err, size_t err_size)
{
    int r = train_estimate(ds, p, e, err, err_size);

    if (r != 0)
        return r;
    if (b->max_parameters > 0 && e->parameters > b->max_parameters) {
        snprintf(err, err_size,
                 "the model would have %" PRIu64 " parameters, over max_train_parameters = "
                 "%" PRIu64 "; choose smaller hidden layers or fewer ensemble members",
                 e->parameters, b->max_parameters);
        return TRAIN_E_BUDGET;
    }
    if (b->max_memory > 0 && e->memory > b->max_memory) {
        char limit[32];

        config_format_size(b->max_memory, limit, sizeof(limit));
        snprintf(err, err_size,
                 "the job would take %.1f MiB at its peak, over max_train_memory = %s; train "
                 "on fewer rows or a smaller network",
                 (double) e->memory / (1024.0 * 1024.0), limit);
        return TRAIN_E_BUDGET;
    }
    return 0;
}
