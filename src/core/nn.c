/* nn: shape bookkeeping, seeded initialisation, forward and backward passes.
 *
 * Scratch layout for a batch of B rows: the outputs of every layer one after another
 * (B * n_units floats), then two gradient buffers of B * max_width floats that the backward
 * pass ping-pongs between as it walks the layers from the output back to the input, then the
 * kernels' transpose workspace.
 */
#include "aescore/nn.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "nn_kernels.h"

int nn_init(Nn *nn, size_t n_layers, const size_t *sizes, const NnActivation *act)
{
    size_t off = 0;

    if (n_layers == 0 || n_layers > NN_MAX_LAYERS)
        return -EINVAL;
    memset(nn, 0, sizeof(*nn));
    nn->n_layers = n_layers;
    for (size_t l = 0; l <= n_layers; l++) {
        if (sizes[l] == 0 || sizes[l] > NN_MAX_WIDTH)
            return -EINVAL;
        nn->sizes[l] = sizes[l];
    }
    for (size_t l = 0; l < n_layers; l++) {
        if ((unsigned) act[l] > NN_SIGMOID)
            return -EINVAL;
        nn->act[l] = act[l];
        nn->w_off[l] = off;
        off += sizes[l] * sizes[l + 1]; /* <= 2^32 per layer: no overflow in size_t */
        nn->b_off[l] = off;
        off += sizes[l + 1];
        nn->n_units += sizes[l + 1];
    }
    nn->n_params = off;
    return 0;
}

int nn_init_autoencoder(Nn *nn, size_t n_in, const size_t *hidden, size_t n_hidden,
                        NnActivation act)
{
    size_t sizes[NN_MAX_LAYERS + 1];
    NnActivation acts[NN_MAX_LAYERS];

    if (n_hidden == 0 || n_hidden + 1 > NN_MAX_LAYERS)
        return -EINVAL;
    sizes[0] = n_in;
    for (size_t l = 0; l < n_hidden; l++) {
        sizes[l + 1] = hidden[l];
        acts[l] = act;
    }
    sizes[n_hidden + 1] = n_in;
    acts[n_hidden] = NN_LINEAR;
    return nn_init(nn, n_hidden + 1, sizes, acts);
}

uint64_t nn_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float nn_rng_uniform(uint64_t *state)
{
    return (float) (nn_rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

void nn_init_params(const Nn *nn, float *params, uint64_t seed)
{
    uint64_t rng = seed;

    for (size_t l = 0; l < nn->n_layers; l++) {
        size_t in = nn->sizes[l], out = nn->sizes[l + 1];
        float limit = sqrtf(6.0f / (float) (in + out));

        for (size_t k = 0; k < in * out; k++)
            params[nn->w_off[l] + k] = (2.0f * nn_rng_uniform(&rng) - 1.0f) * limit;
        memset(params + nn->b_off[l], 0, out * sizeof(float));
    }
}

static size_t max_width(const Nn *nn)
{
    size_t w = 0;

    for (size_t l = 0; l <= nn->n_layers; l++)
        w = nn->sizes[l] > w ? nn->sizes[l] : w;
    return w;
}

/* Workspace of the backward kernels: a transposed layer input or weight matrix. */
static size_t transpose_size(const Nn *nn, size_t batch)
{
    size_t t = 0;

    for (size_t l = 0; l < nn->n_layers; l++) {
        size_t in = nn->sizes[l], out = nn->sizes[l + 1];
        size_t need = in * (batch > out ? batch : out);
        t = need > t ? need : t;
    }
    return t;
}

size_t nn_scratch_size(const Nn *nn, size_t batch)
{
    return batch * (nn->n_units + 2 * max_width(nn)) + transpose_size(nn, batch);
}

/* Fills the per-layer outputs in scratch; returns the start of layer l's outputs via outs. */
static void forward_all(const Nn *nn, const float *params, const float *x, size_t batch,
                        float *scratch, const float **outs)
{
    const float *in = x;
    float *y = scratch;

    for (size_t l = 0; l < nn->n_layers; l++) {
        nn_kernel_forward(in, batch, nn->sizes[l], nn->sizes[l + 1], params + nn->w_off[l],
                          params + nn->b_off[l], nn->act[l], y);
        outs[l] = y;
        in = y;
        y += batch * nn->sizes[l + 1];
    }
}

const float *nn_forward(const Nn *nn, const float *params, const float *x, size_t batch,
                        float *scratch)
{
    const float *outs[NN_MAX_LAYERS];

    forward_all(nn, params, x, batch, scratch, outs);
    return outs[nn->n_layers - 1];
}

double nn_backward(const Nn *nn, const float *params, const float *x, const float *target,
                   size_t batch, float *scratch, float *grads)
{
    return nn_backward_part(nn, params, x, target, batch, batch, scratch, grads);
}

double nn_backward_part(const Nn *nn, const float *params, const float *x, const float *target,
                        size_t batch, size_t batch_rows, float *scratch, float *grads)
{
    const float *outs[NN_MAX_LAYERS];
    size_t last = nn->n_layers - 1;
    size_t n_out = nn->sizes[nn->n_layers];
    float *grad = scratch + batch * nn->n_units;
    float *grad_next = grad + batch * max_width(nn);
    float *tmp = grad_next + batch * max_width(nn);
    const float *y;
    double loss = 0;
    float k = 2.0f / (float) (batch_rows * n_out);

    forward_all(nn, params, x, batch, scratch, outs);
    y = outs[last];
    for (size_t j = 0; j < batch * n_out; j++) {
        float d = y[j] - target[j];
        loss += (double) d * d;
        grad[j] = k * d;
    }
    for (size_t l = nn->n_layers; l-- > 0;) {
        size_t in = nn->sizes[l], out = nn->sizes[l + 1];
        const float *layer_in = l == 0 ? x : outs[l - 1];
        float *swap;

        nn_kernel_activation_grad(grad, outs[l], batch * out, nn->act[l]);
        nn_kernel_weight_grad(layer_in, grad, batch, in, out, grads + nn->w_off[l],
                              grads + nn->b_off[l], tmp);
        if (l == 0)
            break;
        nn_kernel_input_grad(grad, params + nn->w_off[l], batch, in, out, grad_next, tmp);
        swap = grad;
        grad = grad_next;
        grad_next = swap;
    }
    return loss / (double) (batch * n_out);
}

int nn_activation_parse(const char *name, NnActivation *out)
{
    static const char *const names[] = {"linear", "relu", "tanh", "sigmoid"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (NnActivation) i;
            return 0;
        }
    return -EINVAL;
}

const char *nn_activation_name(NnActivation act)
{
    switch (act) {
    case NN_LINEAR:
        return "linear";
    case NN_RELU:
        return "relu";
    case NN_TANH:
        return "tanh";
    case NN_SIGMOID:
        return "sigmoid";
    }
    return "unknown";
}
