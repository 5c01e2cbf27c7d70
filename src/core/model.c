/* model: lifecycle, validation and scoring of the immutable served Model.
 *
 * Scoring standardises the raw record into scratch, runs every ensemble member's forward pass
 * and averages the per-feature squared errors. Batches go through the network a block of
 * rows at a time so the weights stay in cache and the kernels see matrix-matrix work; the
 * same block of standardised rows then goes through the distance kernel against the whole
 * reference (nn_kernel_knn), and the two parts are combined row by row (model.h).
 */
#include "aescore/model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/scaler.h"
#include "aescore/threshold.h"
#include "nn_kernels.h"
#include "simd.h"

#define SCORE_BLOCK 64 /* rows per forward pass in model_score_batch */

int model_new(Model **out, const Nn *nn, size_t n_members)
{
    Model *m = NULL;
    size_t f = nn->sizes[0];

    if (f == 0 || f > MODEL_MAX_FEATURES || nn->sizes[nn->n_layers] != f || n_members == 0 ||
        n_members > MODEL_MAX_MEMBERS || nn->act[nn->n_layers - 1] != NN_LINEAR)
        return -EINVAL;

    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    atomic_init(&m->refs, 1);
    m->n_features = f;
    m->nn = *nn;
    m->n_members = n_members;
    m->names = calloc(f, sizeof(*m->names));
    m->mean = calloc(f, sizeof(*m->mean));
    m->std = calloc(f, sizeof(*m->std));
    m->params = calloc(n_members * nn->n_params, sizeof(*m->params));
    m->percentiles = calloc(MODEL_PERCENTILES, sizeof(*m->percentiles));
    if (m->names == NULL || m->mean == NULL || m->std == NULL || m->params == NULL ||
        m->percentiles == NULL)
        goto fail;
    *out = m;
    return 0;

fail:
    model_unref(m);
    return -ENOMEM;
}

int model_set_name(Model *m, size_t i, const char *name)
{
    char *copy;

    if (i >= m->n_features || name == NULL || name[0] == '\0')
        return -EINVAL;
    copy = strdup(name);
    if (copy == NULL)
        return -ENOMEM;
    free(m->names[i]);
    m->names[i] = copy;
    return 0;
}

int model_set_numeric_schema(Model *m)
{
    Schema *s = NULL;
    int r = schema_new_numeric(&s, m->n_features, (const char *const *) m->names, m->mean);

    if (r == 0) {
        schema_free(m->schema);
        m->schema = s;
    }
    return r;
}

int model_set_reference(Model *m, ModelReferenceKind kind, const float *rows, size_t n)
{
    size_t f = m->n_features;
    float *copy, *t;

    if ((kind != MODEL_REFERENCE_ROWS && kind != MODEL_REFERENCE_CENTRES) || n == 0 ||
        n > MODEL_MAX_REFERENCE)
        return -EINVAL;
    copy = malloc(n * f * sizeof(*copy));
    t = malloc(NN_KNN_PANEL_FLOATS(n, f) * sizeof(*t));
    if (copy == NULL || t == NULL) {
        free(copy);
        free(t);
        return -ENOMEM;
    }
    memcpy(copy, rows, n * f * sizeof(*copy));
    nn_kernel_knn_pack(copy, n, f, t);
    free(m->ref.rows);
    free(m->ref.panels);
    m->ref.kind = kind;
    m->ref.n = n;
    m->ref.rows = copy;
    m->ref.panels = t;
    return 0;
}

static const char *const reference_names[] = {"none", "rows", "centres"};

const char *model_reference_name(ModelReferenceKind kind)
{
    return (unsigned) kind <= MODEL_REFERENCE_CENTRES ? reference_names[kind] : "?";
}

int model_reference_parse(const char *name, ModelReferenceKind *out)
{
    for (unsigned k = 0; k <= MODEL_REFERENCE_CENTRES; k++)
        if (strcmp(name, reference_names[k]) == 0) {
            *out = (ModelReferenceKind) k;
            return 0;
        }
    return -EINVAL;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void model_compute_id(Model *m)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < m->n_features; i++)
        h = fnv1a(h, m->names[i], strlen(m->names[i]) + 1);
    h = fnv1a(h, m->mean, m->n_features * sizeof(float));
    h = fnv1a(h, m->std, m->n_features * sizeof(float));
    h = fnv1a(h, m->params, m->n_members * m->nn.n_params * sizeof(float));
    h = fnv1a(h, &m->threshold, sizeof(m->threshold));
    h = fnv1a(h, &m->meta.created, sizeof(m->meta.created));
    /* only with a reference, so a model without one keeps the id it always had */
    if (m->ref.kind != MODEL_REFERENCE_NONE) {
        const float stats[4] = {m->ref.m1, m->ref.s1, m->ref.m2, m->ref.s2};

        h = fnv1a(h, &m->ref.kind, sizeof(m->ref.kind));
        h = fnv1a(h, m->ref.rows, m->ref.n * m->n_features * sizeof(float));
        h = fnv1a(h, stats, sizeof(stats));
    }
    for (int i = MODEL_ID_LEN - 1; i >= 0; i--) {
        m->meta.id[i] = hex[h & 0xf];
        h >>= 4;
    }
    m->meta.id[MODEL_ID_LEN] = '\0';
}

Model *model_ref(Model *m)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

Model *model_unref(Model *m)
{
    if (m == NULL)
        return NULL;
    /* acq_rel: every reader's last use happens before the free below. */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return NULL;
    schema_free(m->schema);
    if (m->names != NULL)
        for (size_t i = 0; i < m->n_features; i++)
            free(m->names[i]);
    free(m->names);
    free(m->mean);
    free(m->std);
    free(m->params);
    free(m->percentiles);
    free(m->ref.rows);
    free(m->ref.panels);
    free(m);
    return NULL;
}

static bool all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

/* A reference the scorer can use: in range, finite, with deviations that divide. */
static bool reference_ok(const Model *m)
{
    const ModelReference *ref = &m->ref;

    if (ref->kind == MODEL_REFERENCE_NONE)
        return ref->n == 0 && m->threshold >= 0; /* an mse is never negative */
    return (unsigned) ref->kind <= MODEL_REFERENCE_CENTRES && ref->n >= 1 &&
           ref->n <= MODEL_MAX_REFERENCE && ref->rows != NULL &&
           all_finite(ref->rows, ref->n * m->n_features) && isfinite(ref->m1) &&
           isfinite(ref->m2) && isfinite(ref->s1) && isfinite(ref->s2) && ref->s1 > 0 &&
           ref->s2 > 0;
}

int model_validate(const Model *m)
{
    if (!all_finite(m->mean, m->n_features) || !all_finite(m->std, m->n_features) ||
        !all_finite(m->params, m->n_members * m->nn.n_params) ||
        !all_finite(m->percentiles, MODEL_PERCENTILES) || !isfinite(m->threshold) ||
        !reference_ok(m))
        return -EINVAL;
    for (size_t i = 0; i < m->n_features; i++) {
        if (!(m->std[i] > 0) || m->names[i] == NULL || m->names[i][0] == '\0')
            return -EINVAL;
        /* a duplicate name would make named records ambiguous */
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->names[i], m->names[j]) == 0)
                return -EINVAL;
    }
    for (size_t k = 1; k < MODEL_PERCENTILES; k++)
        if (m->percentiles[k] < m->percentiles[k - 1])
            return -EINVAL;
    if (m->schema != NULL &&
        (schema_validate(m->schema) != 0 || m->schema->n_columns != m->n_features))
        return -EINVAL;
    return 0;
}

size_t model_scratch_floats(const Nn *nn)
{
    /* scaled inputs of one block, its neighbour distances and the distance kernel's
     * workspace, then the network's own scratch for that block */
    return SCORE_BLOCK * nn->sizes[0] + SCORE_BLOCK + NN_KNN_TMP(SCORE_BLOCK) +
           nn_scratch_size(nn, SCORE_BLOCK);
}

size_t model_scratch_size(const Model *m)
{
    return model_scratch_floats(&m->nn);
}

/* The model's scaler over n rows of x into z. */
static void standardise(const Model *m, const float *x, size_t n, float *z)
{
    size_t f = m->n_features;

    for (size_t r = 0; r < n; r++)
        scaler_apply(m->mean, m->std, f, x + r * f, z + r * f);
}

/* Squared errors of one member's reconstruction y of z, added row by row into mse[rows]
 * and, for one row with feature_err, per feature (times share). */
static void add_errors(const float *y, const float *z, size_t rows, size_t f, float share,
                       float *feature_err, float *mse)
{
    for (size_t r = 0; r < rows; r++) {
        float s = 0;
        if (feature_err != NULL)
            for (size_t i = 0; i < f; i++) {
                float d = y[i] - z[i];
                s += d * d;
                feature_err[i] += d * d * share;
            }
        else
            for (size_t i = 0; i < f; i++) {
                float d = y[r * f + i] - z[r * f + i];
                s += d * d;
            }
        mse[r] += s;
    }
}

/* The parts of rows <= SCORE_BLOCK raw records x: mse[rows] and, with a reference and knn,
 * knn[rows]. feature_err (rows == 1 only; may be NULL) receives the per-feature errors. Every
 * row's parts are the same bits whatever block it is scored in. */
SIMD_CLONES
static void block_parts(const Model *m, const float *x, size_t rows, float *scratch,
                        float *feature_err, float *mse, float *knn)
{
    size_t f = m->n_features;
    float *z = scratch, *knn_tmp = scratch + SCORE_BLOCK * f + SCORE_BLOCK;
    float *net_scratch = knn_tmp + NN_KNN_TMP(SCORE_BLOCK);
    float inv = 1.0f / (float) (f * m->n_members), share = 1.0f / (float) m->n_members;

    standardise(m, x, rows, z);
    memset(mse, 0, rows * sizeof(*mse));
    if (feature_err != NULL)
        memset(feature_err, 0, f * sizeof(*feature_err));
    for (size_t k = 0; k < m->n_members; k++) {
        const float *y = nn_forward(&m->nn, m->params + k * m->nn.n_params, z, rows, net_scratch);
        add_errors(y, z, rows, f, share, feature_err, mse);
    }
    for (size_t r = 0; r < rows; r++)
        mse[r] *= inv;
    if (m->ref.kind != MODEL_REFERENCE_NONE && knn != NULL) {
        size_t k = model_knn_k(m);
        nn_kernel_knn(z, rows, f, m->ref.panels, m->ref.n, k, knn_tmp, knn);
    }
}

size_t model_knn_k(const Model *m)
{
    return m->ref.n < MODEL_KNN_K ? m->ref.n : MODEL_KNN_K;
}

float model_combine(const Model *m, float mse, float knn)
{
    const ModelReference *ref = &m->ref;

    if (ref->kind == MODEL_REFERENCE_NONE)
        return mse;
    return (logf(mse + MODEL_LOG_EPS) - ref->m1) / ref->s1 +
           (logf(knn + MODEL_LOG_EPS) - ref->m2) / ref->s2;
}

void model_score(const Model *m, const float *x, float *scratch, float *feature_err,
                 ModelScore *out)
{
    float mse, knn = 0;

    block_parts(m, x, 1, scratch, feature_err, &mse, &knn);
    out->reconstruction = mse;
    out->neighbours = knn;
    out->score = model_combine(m, mse, knn);
    out->threshold = m->threshold;
    out->anomaly = out->score > m->threshold;
    out->percentile = threshold_percentile(m->percentiles, MODEL_PERCENTILES, out->score);
}

void model_score_parts(const Model *m, const float *x, size_t n, float *scratch, float *mse,
                       float *knn)
{
    size_t f = m->n_features;

    for (size_t start = 0; start < n; start += SCORE_BLOCK) {
        size_t rows = n - start < SCORE_BLOCK ? n - start : SCORE_BLOCK;

        block_parts(m, x + start * f, rows, scratch, NULL, mse + start,
                    knn != NULL ? knn + start : NULL);
    }
}

void model_score_batch(const Model *m, const float *x, size_t n, float *scratch, float *scores)
{
    size_t f = m->n_features;
    float *knn = scratch + SCORE_BLOCK * f; /* the block's distances, beside its inputs */

    for (size_t start = 0; start < n; start += SCORE_BLOCK) {
        size_t rows = n - start < SCORE_BLOCK ? n - start : SCORE_BLOCK;

        block_parts(m, x + start * f, rows, scratch, NULL, scores + start, knn);
        for (size_t r = 0; m->ref.kind != MODEL_REFERENCE_NONE && r < rows; r++)
            scores[start + r] = model_combine(m, scores[start + r], knn[r]);
    }
}
