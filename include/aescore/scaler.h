/* scaler: robust standardisation of the network's input columns, z = (x - mean) / std.
 *
 * The scaler is two flat arrays of n_cols floats, mean and std, that the caller owns (a
 * Model carries them as m->mean and m->std). scaler_fit() learns them from rows;
 * scaler_apply() standardises one vector with them. Both are pure: no allocation, no I/O,
 * no global state.
 *
 * Why robust: the "normal" training rows of real data sets hold a few extreme values. A
 * plain standard deviation lets them inflate a column's scale and so hide deviations in
 * it. Each column is therefore winsorised first: its values are clamped to the order
 * statistics at SCALER_TAIL of the way in from either end, and mean and std are the
 * (population) moments of the clamped values. Winsorising may shrink the scale to no less
 * than SCALER_FLOOR of the plain standard deviation: a column whose non-modal values are
 * rarer than the tail would otherwise collapse to scale 0 and turn every deviation into a
 * huge error. A column still (numerically) constant gets std 1, so it standardises to 0
 * instead of dividing by zero.
 *
 * Threads: reentrant.
 */
#pragma once

#include <stddef.h>

#define SCALER_TAIL  0.005 /* share of rows winsorised at each tail */
#define SCALER_FLOOR 0.5   /* the robust scale is at least this share of the plain std */

/* Fits mean[n_cols] and std[n_cols] over n_rows rows of the row-major matrix x (n_cols
 * floats per row): the rows rows[0..n_rows-1], or the first n_rows rows when rows is NULL.
 * For each column, with its values v sorted ascending (0-based),
 *   lo = v[floor(SCALER_TAIL * (n_rows - 1))], hi = v[ceil((1 - SCALER_TAIL) * (n_rows - 1))],
 *   mean[i] = mean of clamp(v, lo, hi),
 *   std[i]  = max(sd of clamp(v, lo, hi), SCALER_FLOOR * sd of v)   (sd divides by n_rows),
 * computed in double and rounded to float; std[i] = 1 when that sd is not above
 * 1e-12 * (|mean| + 1) or not finite. Every std[i] is then > 0.
 * x must hold no NaN (it has no order). scratch: n_rows floats of the caller's, overwritten.
 * The same inputs give the same bits. Returns 0, or -EINVAL when n_rows or n_cols is 0. */
int scaler_fit(const float *x, size_t n_cols, const size_t *rows, size_t n_rows, float *scratch,
               float *mean, float *std);

/* z[i] = (x[i] - mean[i]) / std[i] for i < n, in float; z may be x. */
void scaler_apply(const float *mean, const float *std, size_t n, const float *x, float *z);
