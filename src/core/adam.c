/* adam: bias-corrected Adam over flat arrays (see adam.h). The bias corrections are
 * computed once per step in double; the per-parameter loop is plain float arithmetic that the
 * compiler vectorises. */
#include "aescore/adam.h"

#include <math.h>

#include "simd.h"

SIMD_CLONES
void adam_step(const AdamParams *hp, unsigned long t, size_t n, float *restrict params,
               const float *restrict grads, float *restrict m, float *restrict v)
{
    float b1 = hp->beta1, b2 = hp->beta2;
    float step = (float) ((double) hp->lr / (1.0 - pow((double) b1, (double) t)));
    float v_corr = (float) (1.0 / (1.0 - pow((double) b2, (double) t)));
    float decay = hp->lr * hp->weight_decay;

    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= step * m[i] / (sqrtf(v[i] * v_corr) + hp->eps) + decay * params[i];
    }
}
