/* threshold: choosing the anomaly threshold and the percentile table stored in a model.
 *
 * Scores are reconstruction errors (>= 0); a record is an anomaly when score > threshold.
 * Threads: reentrant. Errors: -EINVAL for bad arguments, -ENOMEM, THRESHOLD_E_SINGLE_CLASS.
 */
#pragma once

#include <stddef.h>

enum {
    THRESHOLD_E_SINGLE_CLASS = 1, /* F1 needs both normal and anomalous rows */
};

/* The q-quantile (0 < q <= 1) of n scores, linear interpolation between order statistics
 * (numpy's default). Returns 0 or -EINVAL (n == 0, q out of range), -ENOMEM. */
int threshold_quantile(const float *scores, size_t n, double q, float *out);

/* The threshold t maximising F1 of "score > t" against labels (1 = anomaly), chosen
 * halfway between adjacent distinct scores. Returns 0, THRESHOLD_E_SINGLE_CLASS, -EINVAL,
 * -ENOMEM. */
int threshold_f1(const float *scores, const unsigned char *labels, size_t n, float *out);

/* table[k] = the k/(n_table-1) quantile of scores, k = 0..n_table-1 (n_table >= 2).
 * Returns 0, -EINVAL, -ENOMEM. */
int threshold_percentile_table(const float *scores, size_t n, float *table, size_t n_table);

/* Percentile (0..100) of score among the scores a table was made from: the interpolated
 * position of score in the ascending table; 0 below table[0], 100 above the last entry. */
double threshold_percentile(const float *table, size_t n_table, float score);
