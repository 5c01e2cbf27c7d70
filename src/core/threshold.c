/* threshold: the anomaly threshold and the percentile table a model carries.
 *
 * Every entry point that needs order works on a sorted private copy, so callers' arrays are
 * never touched. Quantiles follow numpy's default ("linear") method exactly: position
 * q*(n-1) between order statistics, with numpy's two-sided lerp so that q = 1 lands on the
 * maximum bit for bit. The F1 sweep sorts (score, label) pairs once and moves the cut one
 * group of equal scores at a time, because "score > t" cannot separate equal scores.
 *
 * NaN scores are rejected with -EINVAL: they have no place in an order and would make qsort's
 * comparator inconsistent.
 */
#include "aescore/threshold.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/util.h"
#include "labelled.h"

static int sorted_copy(const float *scores, size_t n, float **out)
{
    float *x;

    for (size_t i = 0; i < n; i++)
        if (isnan(scores[i]))
            return -EINVAL;
    if (n > SIZE_MAX / sizeof(*x))
        return -ENOMEM;
    x = malloc(n * sizeof(*x));
    if (x == NULL)
        return -ENOMEM;
    memcpy(x, scores, n * sizeof(*x));
    qsort(x, n, sizeof(*x), util_cmp_float);
    *out = x;
    return 0;
}

/* q in [0, 1] over n >= 1 ascending values. The public function excludes q = 0; the table
 * needs it for its first entry. */
static float quantile_sorted(const float *x, size_t n, double q)
{
    double pos = q * (double) (n - 1);
    size_t lo = (size_t) floor(pos);
    double t, a, b, d;

    if (lo >= n - 1)
        return x[n - 1];
    t = pos - (double) lo;
    a = x[lo];
    b = x[lo + 1];
    /* exact endpoints also keep an infinite neighbour from producing inf * 0 */
    if (t == 0.0 || a == b)
        return (float) a;
    d = b - a;
    /* numpy's _lerp: interpolate from the nearer end so t -> 1 gives b exactly */
    return (float) (t < 0.5 ? a + d * t : b - d * (1.0 - t));
}

int threshold_quantile(const float *scores, size_t n, double q, float *out)
{
    float *x = NULL;
    int r;

    if (scores == NULL || out == NULL || n == 0 || !(q > 0.0 && q <= 1.0))
        return -EINVAL;
    r = sorted_copy(scores, n, &x);
    if (r < 0)
        return r;
    *out = quantile_sorted(x, n, q);
    free(x);
    return 0;
}

/* A threshold t with lo <= t < hi, so lo is not flagged and hi is: the midpoint, unless
 * rounding to float (adjacent floats) or an infinite hi pushes it onto hi. */
static float midpoint(float lo, float hi)
{
    float t = (float) (0.5 * (double) lo + 0.5 * (double) hi);

    if (!(t < hi) || t < lo)
        t = lo;
    return t;
}

/* A threshold below every score, for the cut that flags everything. Scores are
 * reconstruction errors, so 0 is the natural lower neighbour of the smallest one. */
static float below(float lo)
{
    if (lo > 0.0f)
        return midpoint(0.0f, lo);
    return nextafterf(lo, -INFINITY);
}

int threshold_f1(const float *scores, const unsigned char *labels, size_t n, float *out)
{
    Labelled *rows = NULL;
    size_t pos = 0, tp, fp, best_cut = 0;
    double best;

    int r;

    if (out == NULL)
        return -EINVAL;
    r = labelled_sort(scores, labels, n, &rows, &pos);
    if (r == LABELLED_E_SINGLE_CLASS)
        return THRESHOLD_E_SINGLE_CLASS;
    if (r != 0)
        return r;

    /* cut c flags rows[c..n); c = 0 flags everything */
    tp = pos;
    fp = n - pos;
    best = 2.0 * (double) tp / (double) (2 * tp + fp);
    for (size_t i = 0; i < n;) {
        size_t j = i;

        while (j < n && rows[j].score == rows[i].score) {
            if (rows[j].label)
                tp--;
            else
                fp--;
            j++;
        }
        if (j == n)
            break; /* nothing flagged: F1 = 0, never the best */
        /* exact integer ratios: equal F1 values compare equal, so ">=" really picks the
         * higher threshold on a tie */
        double f1 = 2.0 * (double) tp / (double) (2 * tp + fp + (pos - tp));
        if (f1 >= best) {
            best = f1;
            best_cut = j;
        }
        i = j;
    }
    *out = best_cut == 0 ? below(rows[0].score)
                         : midpoint(rows[best_cut - 1].score, rows[best_cut].score);
    free(rows);
    return 0;
}

int threshold_percentile_table(const float *scores, size_t n, float *table, size_t n_table)
{
    float *x = NULL;
    int r;

    if (scores == NULL || table == NULL || n == 0 || n_table < 2)
        return -EINVAL;
    r = sorted_copy(scores, n, &x);
    if (r < 0)
        return r;
    for (size_t k = 0; k < n_table; k++) {
        table[k] = quantile_sorted(x, n, (double) k / (double) (n_table - 1));
        /* the lookup bisects the table: keep it ascending even if rounding of the two-sided
         * lerp ever disagreed by one ulp across a segment midpoint */
        if (k > 0 && table[k] < table[k - 1])
            table[k] = table[k - 1];
    }
    free(x);
    return 0;
}

double threshold_percentile(const float *table, size_t n_table, float score)
{
    size_t lo = 0, hi = n_table, j;
    double frac;

    if (table == NULL || n_table == 0)
        return 0.0;
    if (isnan(score))
        return NAN;
    if (score < table[0])
        return 0.0;
    if (score >= table[n_table - 1])
        return 100.0;
    /* first entry > score; table[0] <= score < table[last] puts it in 1..n_table-1 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (table[mid] <= score)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* j is the upper end of any run of entries equal to score, so a run counts as the share
     * of validation scores <= score; table[j] < table[j + 1], no division by zero */
    j = lo - 1;
    frac =
        score == table[j] ? 0.0 : ((double) score - table[j]) / ((double) table[j + 1] - table[j]);
    return 100.0 * ((double) j + frac) / (double) (n_table - 1);
}
