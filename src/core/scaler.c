/* scaler: robust standardisation (see scaler.h for what is fitted and why).
 *
 * A column is fitted from a copy in the caller's scratch: its plain moments first, summed in
 * row order, then the copy is sorted and the winsorised moments are summed in sorted order.
 * Both are in double and take two passes (mean, then squared deviations), which keeps the
 * variance accurate for a column far from zero. The order of every sum is part of the
 * contract "same inputs, same bits": a model trained today must come out bit for bit as one
 * trained before this code moved here. Applying is one subtraction and one division per
 * value in float, compiled for two CPU levels (simd.h) with the same bits on both.
 */
#include "aescore/scaler.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "aescore/util.h"
#include "simd.h"

/* Mean and standard deviation of v[0..n-1], each value clamped to [lo, hi] first. */
static void clamped_moments(const float *v, size_t n, double lo, double hi, double *mean,
                            double *sd)
{
    double sum = 0, sq = 0;

    for (size_t r = 0; r < n; r++)
        sum += fmin(fmax(v[r], lo), hi);
    *mean = sum / (double) n;
    for (size_t r = 0; r < n; r++) {
        double d = fmin(fmax(v[r], lo), hi) - *mean;
        sq += d * d;
    }
    *sd = sqrt(sq / (double) n);
}

int scaler_fit(const float *x, size_t n_cols, const size_t *rows, size_t n_rows, float *scratch,
               float *mean, float *std)
{
    size_t lo_at, hi_at;

    if (n_rows == 0 || n_cols == 0)
        return -EINVAL;
    lo_at = (size_t) floor(SCALER_TAIL * (double) (n_rows - 1));
    hi_at = (size_t) ceil((1 - SCALER_TAIL) * (double) (n_rows - 1));
    for (size_t i = 0; i < n_cols; i++) {
        float *col = scratch;
        double mu, sd, plain_mu, plain_sd;

        for (size_t r = 0; r < n_rows; r++)
            col[r] = x[(rows != NULL ? rows[r] : r) * n_cols + i];
        clamped_moments(col, n_rows, -INFINITY, INFINITY, &plain_mu, &plain_sd);
        qsort(col, n_rows, sizeof(*col), util_cmp_float);
        clamped_moments(col, n_rows, col[lo_at], col[hi_at], &mu, &sd);
        sd = fmax(sd, SCALER_FLOOR * plain_sd);
        mean[i] = (float) mu;
        std[i] = sd > 1e-12 * (fabs(mu) + 1) && isfinite(sd) ? (float) sd : 1.0f;
    }
    return 0;
}

SIMD_CLONES
void scaler_apply(const float *mean, const float *std, size_t n, const float *x, float *z)
{
    for (size_t i = 0; i < n; i++)
        z[i] = (x[i] - mean[i]) / std[i];
}
