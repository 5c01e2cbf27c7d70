/* adam: bias-corrected Adam (Kingma & Ba 2015) as a pure function over flat arrays.
 *
 * Threads: reentrant; the caller owns every array.
 */
#pragma once

#include <stddef.h>

typedef struct AdamParams {
    float lr;           /* step size, e.g. 1e-3 */
    float beta1;        /* 0.9 */
    float beta2;        /* 0.999 */
    float eps;          /* 1e-8 */
    float weight_decay; /* decoupled (AdamW-style) decay per step, 0 = off */
} AdamParams;

#define ADAM_PARAMS_DEFAULT                                                                        \
    {                                                                                              \
        .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f                                  \
    }

/* One step t (1-based: the first step is t = 1) over n parameters:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + lr * weight_decay * p
 * m and v start zeroed and are updated in place, as is params. */
void adam_step(const AdamParams *hp, unsigned long t, size_t n, float *params, const float *grads,
               float *m, float *v);
