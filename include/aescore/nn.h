/* nn: a dense feed-forward network over ONE flat parameter block.
 *
 * An Nn is a plain value (shape plus derived offsets); the parameters live in a float array
 * the caller owns, so snapshot, clone, checksum and save are each a memcpy or a loop.
 * Layer l (0-based) maps sizes[l] inputs to sizes[l+1] outputs: its weights W_l are stored
 * input-major (W_l[i][o] at params[w_off[l] + i * sizes[l+1] + o]) followed by its biases
 * b_l[o] at params[b_off[l] + o]. Output of layer l = act[l](x . W_l + b_l).
 *
 * Forward and backward write every activation into caller-supplied scratch, never into the
 * network, so one parameter block can be used by many threads at once.
 * Threads: every function is reentrant; nothing here allocates, logs or locks.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define NN_MAX_LAYERS 16 /* weight layers */
#define NN_MAX_WIDTH  65536

typedef enum NnActivation {
    NN_LINEAR = 0,
    NN_RELU = 1,
    NN_TANH = 2,
    NN_SIGMOID = 3,
} NnActivation;

typedef struct Nn {
    size_t n_layers;                 /* weight layers */
    size_t sizes[NN_MAX_LAYERS + 1]; /* sizes[0] inputs ... sizes[n_layers] outputs */
    NnActivation act[NN_MAX_LAYERS]; /* activation of each layer's output */
    size_t w_off[NN_MAX_LAYERS];     /* offset of W_l in the parameter block */
    size_t b_off[NN_MAX_LAYERS];     /* offset of b_l in the parameter block */
    size_t n_params;                 /* floats in the parameter block */
    size_t n_units;                  /* sum of sizes[1..n_layers] */
} Nn;

/* Fills *nn for n_layers weight layers with sizes[0..n_layers] and act[0..n_layers-1].
 * Returns 0, or -EINVAL when a count or size is 0 or out of range (NN_MAX_*). */
int nn_init(Nn *nn, size_t n_layers, const size_t *sizes, const NnActivation *act);

/* Autoencoder shape: n_in -> hidden[0] -> ... -> hidden[n_hidden-1] -> n_in, hidden layers
 * with activation act, linear output. Returns 0 or -EINVAL. */
int nn_init_autoencoder(Nn *nn, size_t n_in, const size_t *hidden, size_t n_hidden,
                        NnActivation act);

/* Seeded initialisation (own PRNG, independent of libc): weights uniform in
 * +-sqrt(6 / (fan_in + fan_out)) (Glorot), biases 0. Same seed -> same bits. */
void nn_init_params(const Nn *nn, float *params, uint64_t seed);

/* Floats of scratch that nn_forward / nn_backward need for a batch of `batch` rows. */
size_t nn_scratch_size(const Nn *nn, size_t batch);

/* Forward pass of `batch` rows x (row-major, sizes[0] each). Returns a pointer into scratch
 * to the batch x sizes[n_layers] outputs (valid until scratch is reused). */
const float *nn_forward(const Nn *nn, const float *params, const float *x, size_t batch,
                        float *scratch);

/* Forward + backward of the loss  L = sum over rows and outputs of (y - target)^2 / (batch *
 * n_out)  for `batch` rows. ADDS dL/dparams into grads (the caller zeroes it) and returns L.
 * target may equal x (an autoencoder). */
double nn_backward(const Nn *nn, const float *params, const float *x, const float *target,
                   size_t batch, float *scratch, float *grads);

/* The same for `batch` rows that are part of a mini-batch of batch_rows: ADDS their share
 * of that batch's gradient (the loss normalised by batch_rows * n_out), so the parts of a
 * batch, one after another into the same grads, make its gradient. Returns the mean loss
 * over these rows. A batch of a large network is done in parts to stop within ms. */
double nn_backward_part(const Nn *nn, const float *params, const float *x, const float *target,
                        size_t batch, size_t batch_rows, float *scratch, float *grads);

/* "relu" | "tanh" | "sigmoid" | "linear" <-> NnActivation. nn_activation_parse returns 0 or
 * -EINVAL. */
int nn_activation_parse(const char *name, NnActivation *out);
const char *nn_activation_name(NnActivation act);

/* Own small PRNG (splitmix64), used for init and shuffling so results do not depend on
 * libc. nn_rng_uniform returns a float in [0, 1). */
uint64_t nn_rng_next(uint64_t *state);
float nn_rng_uniform(uint64_t *state);
