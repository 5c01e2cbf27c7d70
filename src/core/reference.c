/* reference: the neighbour reference of a model (see reference.h).
 *
 * k-means is Lloyd's algorithm over the distance kernel of the scorer (nn_kernel_nearest:
 * blocks of rows against all centres, packed in panels, in SIMD tiles). Sums are in double so the
 * mean of thousands of rows does not depend on their order more than it must. The pruning
 * step keeps the promise "each centre is the mean of at least REFERENCE_MIN_ROWS rows": after
 * the last assignment, the small clusters are dropped and their rows assigned to the nearest
 * of the centres kept; a kept centre can only gain rows (its position did not move), so every
 * final mean is over enough rows.
 */
#include "aescore/reference.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/nn.h"
#include "nn_kernels.h"

#define ASSIGN_BLOCK 64 /* rows per pass of the distance kernel */

int reference_sample(const float *z, size_t n, size_t f, size_t cap, uint64_t seed, float **out,
                     size_t *n_out)
{
    size_t k = cap < n ? cap : n, *idx = NULL;
    uint64_t rng = seed ^ 0x9e3779b97f4a7c15ULL; /* not the training shuffle's sequence */
    float *rows = NULL;

    if (n == 0 || cap == 0 || f == 0)
        return -EINVAL;
    idx = malloc(n * sizeof(*idx));
    rows = malloc(k * f * sizeof(*rows));
    if (idx == NULL || rows == NULL) {
        free(idx);
        free(rows);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    /* the first k steps of a Fisher-Yates shuffle: a uniform sample without replacement */
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t) (nn_rng_next(&rng) % (n - i)), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        memcpy(rows + i * f, z + idx[i] * f, f * sizeof(*rows));
    }
    free(idx);
    *out = rows;
    *n_out = k;
    return 0;
}

/* Working state of one k-means run. */
typedef struct Kmeans {
    const float *z;
    size_t n, f, k; /* rows, columns, live centres */
    float *c;       /* k x f centres */
    float *c_t;     /* the centres packed in panels for the kernel (nn_kernel_knn_pack) */
    size_t *assign; /* n: centre of each row */
    size_t *count;  /* k */
    double *sum;    /* k x f */
    float *tmp;     /* NN_KNN_TMP(ASSIGN_BLOCK) */
} Kmeans;

/* Each row to its nearest live centre; counts per centre. */
static void assign(Kmeans *km)
{
    nn_kernel_knn_pack(km->c, km->k, km->f, km->c_t);
    for (size_t s = 0; s < km->n; s += ASSIGN_BLOCK) {
        size_t rows = km->n - s < ASSIGN_BLOCK ? km->n - s : ASSIGN_BLOCK;
        nn_kernel_nearest(km->z + s * km->f, rows, km->f, km->c_t, km->k, km->tmp, km->assign + s,
                          NULL);
    }
    memset(km->count, 0, km->k * sizeof(*km->count));
    for (size_t r = 0; r < km->n; r++)
        km->count[km->assign[r]]++;
}

/* Keeps the centres with at least min_rows rows (in order) and renumbers the assignment
 * (rows of a dropped centre must be assigned again); true when any was dropped. */
static bool keep_clusters(Kmeans *km, size_t min_rows, size_t *map)
{
    size_t live = 0;

    for (size_t j = 0; j < km->k; j++) {
        map[j] = live;
        if (km->count[j] >= min_rows) {
            memmove(km->c + live * km->f, km->c + j * km->f, km->f * sizeof(float));
            km->count[live++] = km->count[j];
        }
    }
    if (live == km->k)
        return false;
    km->k = live;
    for (size_t r = 0; r < km->n; r++)
        km->assign[r] = map[km->assign[r]];
    return true;
}

/* Each centre the mean of its rows (every live centre has at least one). */
static void update(Kmeans *km)
{
    memset(km->sum, 0, km->k * km->f * sizeof(*km->sum));
    for (size_t r = 0; r < km->n; r++)
        for (size_t i = 0; i < km->f; i++)
            km->sum[km->assign[r] * km->f + i] += km->z[r * km->f + i];
    for (size_t j = 0; j < km->k; j++)
        for (size_t i = 0; i < km->f; i++)
            km->c[j * km->f + i] = (float) (km->sum[j * km->f + i] / (double) km->count[j]);
}

static bool stop(const atomic_bool *cancel)
{
    return cancel != NULL && atomic_load_explicit(cancel, memory_order_relaxed);
}

/* Lloyd iterations, then the pruning to clusters of REFERENCE_MIN_ROWS rows (see above). */
static int run_kmeans(Kmeans *km, size_t *map, const atomic_bool *cancel)
{
    for (int it = 0; it < REFERENCE_ITERS; it++) {
        if (stop(cancel))
            return -ECANCELED;
        assign(km);
        keep_clusters(km, 1, map); /* an empty cluster has no mean: drop it */
        update(km);
    }
    if (stop(cancel))
        return -ECANCELED;
    assign(km);
    if (keep_clusters(km, REFERENCE_MIN_ROWS, map))
        assign(km); /* the rows of dropped clusters join their nearest kept centre */
    update(km);
    return 0;
}

int reference_centres(const float *z, size_t n, size_t f, size_t k, uint64_t seed,
                      const atomic_bool *cancel, float **out, size_t *n_out, size_t *assign)
{
    Kmeans km = {.z = z, .n = n, .f = f};
    size_t *map = NULL;
    int r;

    if (k == 0 || f == 0 || n < REFERENCE_MIN_ROWS)
        return -EINVAL;
    if (k > n / REFERENCE_MIN_ROWS)
        k = n / REFERENCE_MIN_ROWS;
    r = reference_sample(z, n, f, k, seed, &km.c, &km.k);
    if (r != 0)
        return r;
    km.c_t = malloc(NN_KNN_PANEL_FLOATS(k, f) * sizeof(float));
    km.assign = malloc(n * sizeof(size_t));
    km.count = malloc(k * sizeof(size_t));
    km.sum = malloc(k * f * sizeof(double));
    km.tmp = malloc(NN_KNN_TMP(ASSIGN_BLOCK) * sizeof(float));
    map = malloc(k * sizeof(size_t));
    r = -ENOMEM;
    if (km.c_t != NULL && km.assign != NULL && km.count != NULL && km.sum != NULL &&
        km.tmp != NULL && map != NULL)
        r = run_kmeans(&km, map, cancel);
    if (r == 0) {
        if (assign != NULL)
            memcpy(assign, km.assign, n * sizeof(*assign));
        *out = km.c;
        *n_out = km.k;
        km.c = NULL;
    }
    free(km.c);
    free(km.c_t);
    free(km.assign);
    free(km.count);
    free(km.sum);
    free(km.tmp);
    free(map);
    return r;
}
