/* Unit tests for nn: analytic gradients against central finite differences for every
 * activation, the tiled forward pass against a plain double-precision reference, batch
 * invariance (a row scores the same alone or in a batch), seeded initialisation and shapes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/nn.h"

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static void fill_uniform(float *v, size_t n, float lo, float hi, uint64_t seed)
{
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * nn_rng_uniform(&rng);
}

static double act_ref(NnActivation act, double z)
{
    switch (act) {
    case NN_RELU:
        return z > 0 ? z : 0;
    case NN_TANH:
        return tanh(z);
    case NN_SIGMOID:
        return 1.0 / (1.0 + exp(-z));
    case NN_LINEAR:
        break;
    }
    return z;
}

/* Straightforward forward pass in double: the independent reference. Parameter `bump` is
 * read as params[bump] + delta (exactly, in double); pass SIZE_MAX for none. */
static void forward_ref_bumped(const Nn *nn, const float *params, size_t bump, double delta,
                               const float *x, size_t batch, double *out)
{
    double cur[256], next[256];

    for (size_t r = 0; r < batch; r++) {
        for (size_t i = 0; i < nn->sizes[0]; i++)
            cur[i] = x[r * nn->sizes[0] + i];
        for (size_t l = 0; l < nn->n_layers; l++) {
            size_t in = nn->sizes[l], o_n = nn->sizes[l + 1];
            for (size_t o = 0; o < o_n; o++) {
                size_t kb = nn->b_off[l] + o;
                double z = params[kb] + (kb == bump ? delta : 0);
                for (size_t i = 0; i < in; i++) {
                    size_t kw = nn->w_off[l] + i * o_n + o;
                    z += cur[i] * (params[kw] + (kw == bump ? delta : 0));
                }
                next[o] = act_ref(nn->act[l], z);
            }
            memcpy(cur, next, o_n * sizeof(double));
        }
        memcpy(out + r * nn->sizes[nn->n_layers], cur, nn->sizes[nn->n_layers] * sizeof(double));
    }
}

static void forward_ref(const Nn *nn, const float *params, const float *x, size_t batch,
                        double *out)
{
    forward_ref_bumped(nn, params, SIZE_MAX, 0, x, batch, out);
}

static double loss_ref(const Nn *nn, const float *params, size_t bump, double delta, const float *x,
                       const float *target, size_t batch)
{
    size_t n_out = nn->sizes[nn->n_layers];
    double *y = calloc(batch * n_out, sizeof(double)), loss = 0;

    assert_non_null(y);
    forward_ref_bumped(nn, params, bump, delta, x, batch, y);
    for (size_t j = 0; j < batch * n_out; j++)
        loss += (y[j] - target[j]) * (y[j] - target[j]);
    free(y);
    return loss / (double) (batch * n_out);
}

/* Checks every parameter's analytic gradient against (L(p+h) - L(p-h)) / 2h computed with
 * the double-precision reference, so float rounding in nn does not limit the comparison and
 * h can be small enough that no ReLU kink lies within it. */
static void check_gradients(NnActivation act, uint64_t seed)
{
    const size_t sizes[] = {6, 5, 3, 5, 6};
    const NnActivation acts[] = {act, act, act, NN_LINEAR};
    const size_t batch = 7;
    Nn nn;
    size_t worst = 0;
    double worst_err = 0;

    assert_int_equal(nn_init(&nn, 4, sizes, acts), 0);
    float *params = alloc_floats(nn.n_params);
    float *grads = alloc_floats(nn.n_params);
    float *x = alloc_floats(batch * 6);
    float *target = alloc_floats(batch * 6);
    float *scratch = alloc_floats(nn_scratch_size(&nn, batch));

    nn_init_params(&nn, params, seed);
    /* non-zero biases: with zero ones a row whose previous layer is all dead would sit
     * exactly on a ReLU kink */
    for (size_t l = 0; l < nn.n_layers; l++)
        fill_uniform(params + nn.b_off[l], nn.sizes[l + 1], 0.05f, 0.3f, seed + 1 + l);
    fill_uniform(x, batch * 6, -2, 2, seed + 2);
    fill_uniform(target, batch * 6, -1, 1, seed + 3);

    double loss = nn_backward(&nn, params, x, target, batch, scratch, grads);
    assert_true(fabs(loss - loss_ref(&nn, params, SIZE_MAX, 0, x, target, batch)) <
                1e-5 * (1 + loss));

    for (size_t k = 0; k < nn.n_params; k++) {
        const double h = 1e-6;
        double up = loss_ref(&nn, params, k, h, x, target, batch);
        double down = loss_ref(&nn, params, k, -h, x, target, batch);
        double numeric = (up - down) / (2.0 * h);
        double err = fabs(numeric - grads[k]) / (fabs(numeric) + fabs(grads[k]) + 1e-4);
        if (err > worst_err) {
            worst_err = err;
            worst = k;
        }
    }
    /* stated tolerance: relative error below 1e-2 for every parameter */
    if (worst_err >= 1e-2)
        fail_msg("%s: parameter %zu relative error %g", nn_activation_name(act), worst, worst_err);

    free(params);
    free(grads);
    free(x);
    free(target);
    free(scratch);
}

static void test_relu_gradients_match_finite_differences(void **state)
{
    (void) state;
    check_gradients(NN_RELU, 11);
}

static void test_tanh_gradients_match_finite_differences(void **state)
{
    (void) state;
    check_gradients(NN_TANH, 12);
}

static void test_sigmoid_gradients_match_finite_differences(void **state)
{
    (void) state;
    check_gradients(NN_SIGMOID, 13);
}

static void test_backward_adds_into_grads(void **state)
{
    const size_t hidden[] = {3};
    Nn nn;
    (void) state;

    assert_int_equal(nn_init_autoencoder(&nn, 4, hidden, 1, NN_TANH), 0);
    float *params = alloc_floats(nn.n_params), *g1 = alloc_floats(nn.n_params);
    float *g2 = alloc_floats(nn.n_params), *x = alloc_floats(8);
    float *scratch = alloc_floats(nn_scratch_size(&nn, 2));

    nn_init_params(&nn, params, 5);
    fill_uniform(x, 8, -1, 1, 6);
    nn_backward(&nn, params, x, x, 2, scratch, g1);
    nn_backward(&nn, params, x, x, 2, scratch, g2);
    nn_backward(&nn, params, x, x, 2, scratch, g2);
    for (size_t k = 0; k < nn.n_params; k++)
        assert_true(fabsf(g2[k] - 2 * g1[k]) <= 1e-6f * (1 + fabsf(g1[k])));
    free(params);
    free(g1);
    free(g2);
    free(x);
    free(scratch);
}

/* A batch done in parts (nn_backward_part, as training does for large networks) has the
 * gradient and the loss of the batch done in one pass: 37 rows as 16 + 16 + 5. */
static void test_the_parts_of_a_batch_make_its_gradient(void **state)
{
    const size_t hidden[] = {24, 5, 24}, rows = 37, parts[] = {16, 16, 5};
    Nn nn;
    double whole, sum = 0;
    (void) state;

    assert_int_equal(nn_init_autoencoder(&nn, 7, hidden, 3, NN_RELU), 0);
    float *params = alloc_floats(nn.n_params), *g1 = alloc_floats(nn.n_params);
    float *g2 = alloc_floats(nn.n_params), *x = alloc_floats(rows * 7);
    float *scratch = alloc_floats(nn_scratch_size(&nn, rows));

    nn_init_params(&nn, params, 9);
    fill_uniform(x, rows * 7, -2, 2, 10);
    whole = nn_backward(&nn, params, x, x, rows, scratch, g1);
    for (size_t i = 0, start = 0; i < 3; start += parts[i++]) {
        const float *xi = x + start * 7;

        sum +=
            nn_backward_part(&nn, params, xi, xi, parts[i], rows, scratch, g2) * (double) parts[i];
    }
    assert_true(fabs(sum / (double) rows - whole) <= 1e-6 * whole);
    for (size_t k = 0; k < nn.n_params; k++)
        assert_true(fabsf(g2[k] - g1[k]) <= 1e-5f * (1e-3f + fabsf(g1[k])));
    free(params);
    free(g1);
    free(g2);
    free(x);
    free(scratch);
}

/* Shapes chosen to hit full 4x16 tiles, leftover rows and leftover columns. */
static void check_forward(size_t n_in, size_t width, NnActivation act, size_t batch)
{
    const size_t hidden[] = {width, width / 2 + 1, width};
    Nn nn;

    assert_int_equal(nn_init_autoencoder(&nn, n_in, hidden, 3, act), 0);
    float *params = alloc_floats(nn.n_params), *x = alloc_floats(batch * n_in);
    float *scratch = alloc_floats(nn_scratch_size(&nn, batch));
    double *ref = calloc(batch * n_in, sizeof(double));

    assert_non_null(ref);
    nn_init_params(&nn, params, n_in * 31 + width);
    fill_uniform(params + nn.b_off[1], nn.sizes[2], -0.5f, 0.5f, 3);
    fill_uniform(x, batch * n_in, -3, 3, batch);
    const float *y = nn_forward(&nn, params, x, batch, scratch);
    forward_ref(&nn, params, x, batch, ref);
    for (size_t j = 0; j < batch * n_in; j++)
        if (fabs(y[j] - ref[j]) > 1e-5 * (1 + fabs(ref[j])))
            fail_msg("%zu->%zu %s batch %zu: output %zu is %g, reference %g", n_in, width,
                     nn_activation_name(act), batch, j, (double) y[j], ref[j]);
    free(params);
    free(x);
    free(scratch);
    free(ref);
}

static void test_forward_matches_double_reference(void **state)
{
    const size_t batches[] = {1, 3, 4, 5, 17, 64};
    const NnActivation acts[] = {NN_RELU, NN_TANH, NN_SIGMOID};
    (void) state;

    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
            check_forward(50, 32, acts[a], batches[b]);
            check_forward(7, 8, acts[a], batches[b]);
            check_forward(33, 40, acts[a], batches[b]);
        }
}

static void test_row_scores_the_same_alone_or_in_a_batch(void **state)
{
    const size_t hidden[] = {32, 12, 32};
    const size_t batch = 23, f = 50;
    Nn nn;
    (void) state;

    assert_int_equal(nn_init_autoencoder(&nn, f, hidden, 3, NN_SIGMOID), 0);
    float *params = alloc_floats(nn.n_params), *x = alloc_floats(batch * f);
    float *scratch = alloc_floats(nn_scratch_size(&nn, batch));
    float *all = alloc_floats(batch * f);

    nn_init_params(&nn, params, 9);
    fill_uniform(x, batch * f, -2, 2, 10);
    memcpy(all, nn_forward(&nn, params, x, batch, scratch), batch * f * sizeof(float));
    for (size_t r = 0; r < batch; r++) {
        const float *one = nn_forward(&nn, params, x + r * f, 1, scratch);
        assert_memory_equal(one, all + r * f, f * sizeof(float));
    }
    free(params);
    free(x);
    free(scratch);
    free(all);
}

static void test_sigmoid_and_tanh_are_accurate_over_their_range(void **state)
{
    const size_t n = 2001;
    const size_t sizes[] = {1, 1};
    NnActivation acts[] = {NN_SIGMOID};
    Nn nn;
    float params[2] = {1.0f, 0.0f}; /* identity weight, zero bias */
    float *x = alloc_floats(n), *scratch;
    (void) state;

    for (size_t i = 0; i < n; i++)
        x[i] = -100.0f + 0.1f * (float) i;
    for (int a = 0; a < 2; a++) {
        acts[0] = a == 0 ? NN_SIGMOID : NN_TANH;
        assert_int_equal(nn_init(&nn, 1, sizes, acts), 0);
        scratch = alloc_floats(nn_scratch_size(&nn, n));
        const float *y = nn_forward(&nn, params, x, n, scratch);
        for (size_t i = 0; i < n; i++) {
            double want = act_ref(acts[0], x[i]);
            if (fabs(y[i] - want) > 2e-7 + 1e-6 * fabs(want))
                fail_msg("%s(%g) = %.9g, want %.9g", nn_activation_name(acts[0]), (double) x[i],
                         (double) y[i], want);
        }
        free(scratch);
    }
    free(x);
}

static void test_init_is_determined_by_the_seed(void **state)
{
    const size_t hidden[] = {16, 4, 16};
    Nn nn;
    (void) state;

    assert_int_equal(nn_init_autoencoder(&nn, 10, hidden, 3, NN_RELU), 0);
    float *a = alloc_floats(nn.n_params), *b = alloc_floats(nn.n_params);
    nn_init_params(&nn, a, 7);
    nn_init_params(&nn, b, 7);
    assert_memory_equal(a, b, nn.n_params * sizeof(float));
    nn_init_params(&nn, b, 8);
    assert_memory_not_equal(a, b, nn.n_params * sizeof(float));
    /* Glorot limits hold and biases start at zero */
    float limit = sqrtf(6.0f / (10 + 16));
    for (size_t k = 0; k < 10 * 16; k++)
        assert_true(fabsf(a[nn.w_off[0] + k]) <= limit);
    for (size_t k = 0; k < 16; k++)
        assert_true(a[nn.b_off[0] + k] == 0.0f);
    free(a);
    free(b);
}

static void test_shape_offsets_are_consecutive(void **state)
{
    const size_t hidden[] = {4};
    Nn nn;
    (void) state;

    assert_int_equal(nn_init_autoencoder(&nn, 3, hidden, 1, NN_RELU), 0);
    assert_int_equal(nn.n_layers, 2);
    assert_int_equal(nn.w_off[0], 0);
    assert_int_equal(nn.b_off[0], 12);
    assert_int_equal(nn.w_off[1], 16);
    assert_int_equal(nn.b_off[1], 28);
    assert_int_equal(nn.n_params, 31);
    assert_int_equal(nn.act[1], NN_LINEAR);
}

static void test_init_rejects_bad_shapes(void **state)
{
    const size_t zero[] = {3, 0, 3};
    const size_t wide[] = {3, NN_MAX_WIDTH + 1, 3};
    const NnActivation acts[] = {NN_RELU, NN_LINEAR};
    const NnActivation bad_act[] = {(NnActivation) 9, NN_LINEAR};
    const size_t ok[] = {3, 2, 3};
    size_t many[NN_MAX_LAYERS];
    Nn nn;
    (void) state;

    assert_int_equal(nn_init(&nn, 2, zero, acts), -EINVAL);
    assert_int_equal(nn_init(&nn, 2, wide, acts), -EINVAL);
    assert_int_equal(nn_init(&nn, 0, ok, acts), -EINVAL);
    assert_int_equal(nn_init(&nn, 2, ok, bad_act), -EINVAL);
    for (size_t i = 0; i < NN_MAX_LAYERS; i++)
        many[i] = 2;
    assert_int_equal(nn_init_autoencoder(&nn, 3, many, NN_MAX_LAYERS, NN_RELU), -EINVAL);
    assert_int_equal(nn_init_autoencoder(&nn, 3, many, 0, NN_RELU), -EINVAL);
}

static void test_activation_names_round_trip(void **state)
{
    NnActivation a;
    (void) state;

    for (int i = NN_LINEAR; i <= NN_SIGMOID; i++) {
        assert_int_equal(nn_activation_parse(nn_activation_name((NnActivation) i), &a), 0);
        assert_int_equal(a, i);
    }
    assert_int_equal(nn_activation_parse("softmax", &a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu_gradients_match_finite_differences),
        cmocka_unit_test(test_the_parts_of_a_batch_make_its_gradient),
        cmocka_unit_test(test_tanh_gradients_match_finite_differences),
        cmocka_unit_test(test_sigmoid_gradients_match_finite_differences),
        cmocka_unit_test(test_backward_adds_into_grads),
        cmocka_unit_test(test_forward_matches_double_reference),
        cmocka_unit_test(test_row_scores_the_same_alone_or_in_a_batch),
        cmocka_unit_test(test_sigmoid_and_tanh_are_accurate_over_their_range),
        cmocka_unit_test(test_init_is_determined_by_the_seed),
        cmocka_unit_test(test_shape_offsets_are_consecutive),
        cmocka_unit_test(test_init_rejects_bad_shapes),
        cmocka_unit_test(test_activation_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
