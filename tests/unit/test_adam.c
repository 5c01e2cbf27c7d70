/* Unit tests for adam: steps checked against values computed by hand from the update rule
 * in adam.h (the arithmetic is written out in the comments). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "aescore/adam.h"

static void assert_near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

/* lr 0.1, p 1, g 0.5:
 *   m = 0.1 * 0.5 = 0.05            v = 0.001 * 0.25 = 0.00025
 *   m^ = 0.05 / 0.1 = 0.5           v^ = 0.00025 / 0.001 = 0.25, sqrt = 0.5
 *   p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.9 (+2e-9)                                    */
static void test_first_step_moves_by_lr(void **state)
{
    AdamParams hp = ADAM_PARAMS_DEFAULT;
    float p = 1.0f, g = 0.5f, m = 0, v = 0;
    (void) state;

    hp.lr = 0.1f;
    adam_step(&hp, 1, 1, &p, &g, &m, &v);
    assert_near(m, 0.05, 1e-7);
    assert_near(v, 0.00025, 5e-9); /* 1 - 0.999f is 0.000999987 in float */
    assert_near(p, 0.9, 1e-7);
}

/* Second step from the state above with g = -1:
 *   m = 0.9 * 0.05 - 0.1 = -0.055    v = 0.999 * 0.00025 + 0.001 = 0.00124975
 *   m^ = -0.055 / (1 - 0.81) = -0.289473684
 *   v^ = 0.00124975 / (1 - 0.998001) = 0.625187594, sqrt = 0.790688051
 *   p = 0.9 + 0.1 * 0.289473684 / 0.790688051 = 0.936610357                           */
static void test_second_step_uses_bias_corrected_moments(void **state)
{
    AdamParams hp = ADAM_PARAMS_DEFAULT;
    float p = 1.0f, g = 0.5f, m = 0, v = 0;
    (void) state;

    hp.lr = 0.1f;
    adam_step(&hp, 1, 1, &p, &g, &m, &v);
    g = -1.0f;
    adam_step(&hp, 2, 1, &p, &g, &m, &v);
    assert_near(m, -0.055, 1e-7);
    assert_near(v, 0.00124975, 3e-8);
    assert_near(p, 0.936610357, 2e-7);
}

/* Decoupled decay: with g = 0 the moment term is 0, so p = p - lr * wd * p:
 *   2 - 0.1 * 0.5 * 2 = 1.9                                                            */
static void test_weight_decay_shrinks_parameters(void **state)
{
    AdamParams hp = ADAM_PARAMS_DEFAULT;
    float p = 2.0f, g = 0.0f, m = 0, v = 0;
    (void) state;

    hp.lr = 0.1f;
    hp.weight_decay = 0.5f;
    adam_step(&hp, 1, 1, &p, &g, &m, &v);
    assert_near(p, 1.9, 1e-7);
}

/* Each element is independent: a long vector (vector body + tail) equals element-wise
 * single steps. */
static void test_vector_step_equals_element_steps(void **state)
{
    AdamParams hp = ADAM_PARAMS_DEFAULT;
    float p[37], g[37], m[37] = {0}, v[37] = {0};
    (void) state;

    for (int i = 0; i < 37; i++) {
        p[i] = (float) i * 0.1f - 1.0f;
        g[i] = (float) ((i * 7) % 11) - 5.0f;
    }
    adam_step(&hp, 1, 37, p, g, m, v);
    for (int i = 0; i < 37; i++) {
        float p1 = (float) i * 0.1f - 1.0f, m1 = 0, v1 = 0;
        adam_step(&hp, 1, 1, &p1, &g[i], &m1, &v1);
        assert_true(p1 == p[i] && m1 == m[i] && v1 == v[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_step_moves_by_lr),
        cmocka_unit_test(test_second_step_uses_bias_corrected_moments),
        cmocka_unit_test(test_weight_decay_shrinks_parameters),
        cmocka_unit_test(test_vector_step_equals_element_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
