/* labelled: validation, counting and one qsort for threshold_f1 and evaluate. NaN scores are
 * refused: they have no place in an order and would make qsort's comparison inconsistent. */
#include "labelled.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static int cmp_labelled(const void *a, const void *b)
{
    float x = ((const Labelled *) a)->score, y = ((const Labelled *) b)->score;

    return (x > y) - (x < y);
}

int labelled_sort(const float *scores, const unsigned char *labels, size_t n, Labelled **out,
                  size_t *positives)
{
    Labelled *rows;
    size_t pos = 0;

    if (scores == NULL || labels == NULL || out == NULL || n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (isnan(scores[i]) || labels[i] > 1)
            return -EINVAL;
        pos += labels[i];
    }
    if (pos == 0 || pos == n)
        return LABELLED_E_SINGLE_CLASS;
    if (n > SIZE_MAX / sizeof(*rows))
        return -ENOMEM;
    rows = malloc(n * sizeof(*rows));
    if (rows == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        rows[i] = (Labelled){scores[i], labels[i]};
    qsort(rows, n, sizeof(*rows), cmp_labelled);
    *positives = pos;
    *out = rows;
    return 0;
}
