/* evaluate: detection quality of scores against 0/1 labels (1 = anomaly).
 *
 * Threads: reentrant. Errors: EVALUATE_E_SINGLE_CLASS when labels hold one class only (AUCs
 * are undefined; the report is not filled), -EINVAL (n == 0), -ENOMEM.
 */
#pragma once

#include <stddef.h>

enum {
    EVALUATE_E_SINGLE_CLASS = 1,
};

typedef struct EvalReport {
    double roc_auc;   /* ties count one half (Mann-Whitney U) */
    double pr_auc;    /* average precision, ties handled as one step (scikit-learn's) */
    double precision; /* at "score > threshold"; 0 when nothing is flagged */
    double recall;
    double f1;
    double accuracy;
    float threshold;
    size_t rows;
    size_t anomalies; /* rows labelled 1 */
    size_t tp, fp, tn, fn;
} EvalReport;

int evaluate(const float *scores, const unsigned char *labels, size_t n, float threshold,
             EvalReport *out);
