/* evaluate: ROC AUC, average precision and the confusion matrix at one threshold.
 *
 * One sort of (score, label) pairs serves both curves; each group of equal scores is
 * handled as a unit, which is what makes ties exact. ROC AUC is the Mann-Whitney U with
 * average ranks, computed as 2U = sum over groups of (2 * positives * negatives below +
 * positives * negatives in the group): integer-valued doubles, so it is exact until 2^53.
 * Average precision walks the groups from the highest score down as scikit-learn's
 * average_precision_score does: AP = sum (R_k - R_{k-1}) P_k, one step per distinct score.
 * The threshold metrics need no order and come from one pass over the caller's arrays.
 */
#include "aescore/evaluate.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "labelled.h"

/* rows ascending by score; pos/neg > 0 */
static double roc_auc(const Labelled *rows, size_t n, size_t pos, size_t neg)
{
    double u2 = 0.0, neg_below = 0.0;

    for (size_t i = 0; i < n;) {
        double pg = 0.0, ng = 0.0;
        size_t j = i;

        for (; j < n && rows[j].score == rows[i].score; j++) {
            if (rows[j].label)
                pg += 1.0;
            else
                ng += 1.0;
        }
        u2 += 2.0 * pg * neg_below + pg * ng; /* a tie is half a win */
        neg_below += ng;
        i = j;
    }
    return u2 / (2.0 * (double) pos * (double) neg);
}

static double average_precision(const Labelled *rows, size_t n, size_t pos)
{
    double ap = 0.0, tp = 0.0, fp = 0.0;

    for (size_t i = n; i > 0;) {
        double pg = 0.0;
        size_t j = i;

        for (; j > 0 && rows[j - 1].score == rows[i - 1].score; j--) {
            if (rows[j - 1].label)
                pg += 1.0;
            else
                fp += 1.0;
        }
        tp += pg;
        /* recall grows by pg/pos; the division by pos is done once at the end */
        ap += pg * (tp / (tp + fp));
        i = j;
    }
    return ap / (double) pos;
}

int evaluate(const float *scores, const unsigned char *labels, size_t n, float threshold,
             EvalReport *out)
{
    Labelled *rows = NULL;
    size_t pos = 0, tp = 0, fp = 0, tn = 0, fn = 0;
    int r;

    if (out == NULL || isnan(threshold))
        return -EINVAL;
    r = labelled_sort(scores, labels, n, &rows, &pos);
    if (r == LABELLED_E_SINGLE_CLASS)
        return EVALUATE_E_SINGLE_CLASS;
    if (r != 0)
        return r;

    for (size_t i = 0; i < n; i++) {
        int flagged = scores[i] > threshold;

        if (labels[i] && flagged)
            tp++;
        else if (labels[i])
            fn++;
        else if (flagged)
            fp++;
        else
            tn++;
    }

    out->roc_auc = roc_auc(rows, n, pos, n - pos);
    out->pr_auc = average_precision(rows, n, pos);
    out->precision = tp + fp == 0 ? 0.0 : (double) tp / (double) (tp + fp);
    out->recall = (double) tp / (double) pos;
    /* 2TP + FP + FN >= pos > 0 */
    out->f1 = 2.0 * (double) tp / (double) (2 * tp + fp + fn);
    out->accuracy = (double) (tp + tn) / (double) n;
    out->threshold = threshold;
    out->rows = n;
    out->anomalies = pos;
    out->tp = tp;
    out->fp = fp;
    out->tn = tn;
    out->fn = fn;
    free(rows);
    return 0;
}
