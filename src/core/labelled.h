/* labelled: (score, label) pairs sorted by score, the common first step of threshold_f1 and
 * evaluate (private to src/core).
 * Threads: reentrant.
 */
#pragma once

#include <stddef.h>

enum {
    LABELLED_E_SINGLE_CLASS = 1, /* every label is 0, or every label is 1 */
};

typedef struct Labelled {
    float score;
    unsigned char label;
} Labelled;

/* Checks the input (no NaN score, labels 0 or 1, n > 0), counts the 1 labels into
 * *positives and returns in *out a malloc'd copy ascending by score (caller frees).
 * Returns 0, LABELLED_E_SINGLE_CLASS (nothing allocated), -EINVAL or -ENOMEM. */
int labelled_sort(const float *scores, const unsigned char *labels, size_t n, Labelled **out,
                  size_t *positives);
