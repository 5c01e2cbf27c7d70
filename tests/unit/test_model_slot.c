/* Tests for model_slot: the single-threaded contract, then the swap-under-load stress test
 * (8 readers acquire / read / unref while a publisher publishes thousands of fresh models
 * and rolls back now and then). Run under ThreadSanitizer in the 'concurrency' suite and
 * under ASan, whose leak checker proves that every swapped-out model is freed.
 * Reader threads never call cmocka asserts (they longjmp, which is not thread-safe): they
 * count problems and the main thread asserts the counts. */
#undef NDEBUG
#include "aescore/model_slot.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define READERS        8
#define PUBLISHES      4000
#define ROLLBACK_EVERY 7
#define MIN_READS      200     /* per reader, while swaps are still going on */
#define MAX_PUBLISHES  5000000 /* a reader that never runs fails the test, not CI */
#define MAGIC          0x9e3779b97f4a7c15ULL

/* A 2 -> 1 -> 2 autoencoder, filled by hand so the test needs nothing but model_new. Each
 * model carries a serial number and a checksum of it that a reader verifies, so a reader
 * that ever saw a freed or half-built model would notice even without a sanitizer. */
static Model *tiny_model(uint64_t serial)
{
    Nn nn = {
        .n_layers = 2,
        .sizes = {2, 1, 2},
        .act = {NN_TANH, NN_LINEAR},
        .w_off = {0, 3},
        .b_off = {2, 5},
        .n_params = 7,
        .n_units = 3,
    };
    Model *m = NULL;

    assert_int_equal(model_new(&m, &nn, 1), 0);
    m->meta.rows = serial;
    m->meta.seed = serial ^ MAGIC;
    m->params[0] = (float) (serial % 1000);
    m->threshold = 1.0f;
    return m;
}

static void test_empty_slot_serves_nothing(void **state)
{
    ModelSlot *s = NULL;
    uint64_t v = 99;

    (void) state;
    assert_int_equal(model_slot_new(&s), 0);
    assert_null(model_slot_acquire(s, &v));
    assert_int_equal(v, 0);
    assert_null(model_slot_acquire_previous(s));
    assert_int_equal(model_slot_rollback(s, &v), MODEL_SLOT_E_NO_PREVIOUS);
    s = model_slot_free(s);
    assert_null(s);
    assert_null(model_slot_free(NULL));
}

static void test_publish_bumps_version_and_keeps_previous(void **state)
{
    ModelSlot *s = NULL;
    Model *a = tiny_model(1), *b = tiny_model(2), *m;
    uint64_t v;

    (void) state;
    assert_int_equal(model_slot_new(&s), 0);
    assert_int_equal(model_slot_publish(s, a), 1);
    assert_int_equal(model_slot_rollback(s, &v), MODEL_SLOT_E_NO_PREVIOUS);
    assert_int_equal(model_slot_publish(s, b), 2);

    m = model_slot_acquire(s, &v);
    assert_ptr_equal(m, b);
    assert_int_equal(v, 2);
    model_unref(m);
    m = model_slot_acquire_previous(s);
    assert_ptr_equal(m, a);
    model_unref(m);
    s = model_slot_free(s);
}

static void test_rollback_swaps_and_still_moves_version_forward(void **state)
{
    ModelSlot *s = NULL;
    Model *a = tiny_model(1), *b = tiny_model(2), *m;
    uint64_t v = 0;

    (void) state;
    assert_int_equal(model_slot_new(&s), 0);
    model_slot_publish(s, a);
    model_slot_publish(s, b);
    assert_int_equal(model_slot_rollback(s, &v), 0);
    assert_int_equal(v, 3);
    m = model_slot_acquire(s, &v);
    assert_ptr_equal(m, a);
    assert_int_equal(v, 3);
    model_unref(m);
    /* and back again */
    assert_int_equal(model_slot_rollback(s, NULL), 0);
    m = model_slot_acquire(s, &v);
    assert_ptr_equal(m, b);
    assert_int_equal(v, 4);
    model_unref(m);
    s = model_slot_free(s);
}

static void test_reader_reference_outlives_the_swap(void **state)
{
    ModelSlot *s = NULL;
    Model *held;

    (void) state;
    assert_int_equal(model_slot_new(&s), 0);
    model_slot_publish(s, tiny_model(1));
    held = model_slot_acquire(s, NULL);
    /* two more publishes push model 1 out of the slot entirely */
    model_slot_publish(s, tiny_model(2));
    model_slot_publish(s, tiny_model(3));
    assert_int_equal(atomic_load(&held->refs), 1);
    assert_int_equal(held->meta.rows, 1);
    assert_int_equal(held->meta.seed, 1 ^ MAGIC);
    held = model_unref(held); /* the last reference: freed here (ASan checks) */
    s = model_slot_free(s);
}

typedef struct Stress {
    ModelSlot *slot;
    atomic_bool published; /* set after the first publish returned */
    atomic_bool done;
} Stress;

typedef struct ReaderResult {
    Stress *stress;
    atomic_uint_fast64_t reads; /* also read by the publisher, to know readers overlapped */
    uint64_t nulls_after_publish;
    uint64_t backwards;
    uint64_t corrupt;
} ReaderResult;

static void *reader(void *arg)
{
    ReaderResult *res = arg;
    Stress *st = res->stress;
    uint64_t last = 0;

    while (!atomic_load(&st->done)) {
        bool was_published = atomic_load(&st->published);
        uint64_t v = 0;
        Model *m = model_slot_acquire(st->slot, &v);

        if (m == NULL) {
            if (was_published)
                res->nulls_after_publish++;
            continue;
        }
        if (v < last)
            res->backwards++;
        last = v;
        /* read fields the way a scorer would, with no lock held */
        if (m->meta.seed != (m->meta.rows ^ MAGIC) ||
            m->params[0] != (float) (m->meta.rows % 1000) || m->n_features != 2)
            res->corrupt++;
        model_unref(m);
        atomic_fetch_add_explicit(&res->reads, 1, memory_order_relaxed);
    }
    return NULL;
}

static bool readers_caught_up(ReaderResult *results)
{
    for (int i = 0; i < READERS; i++)
        if (atomic_load_explicit(&results[i].reads, memory_order_relaxed) < MIN_READS)
            return false;
    return true;
}

static void test_swap_under_load_never_goes_backwards_or_leaks(void **state)
{
    Stress st = {0};
    ReaderResult results[READERS];
    pthread_t threads[READERS];
    uint64_t last_version = 0, serial, v;

    (void) state;
    assert_int_equal(model_slot_new(&st.slot), 0);
    atomic_init(&st.published, false);
    atomic_init(&st.done, false);
    for (int i = 0; i < READERS; i++) {
        results[i] = (ReaderResult){.stress = &st};
        atomic_init(&results[i].reads, 0);
        assert_int_equal(pthread_create(&threads[i], NULL, reader, &results[i]), 0);
    }

    /* At least PUBLISHES swaps, and on until every reader has read MIN_READS models, so the
     * readers really overlap the swaps even on a loaded machine where they start late. */
    for (serial = 1; serial <= PUBLISHES || !readers_caught_up(results); serial++) {
        assert_true(serial < MAX_PUBLISHES);
        v = model_slot_publish(st.slot, tiny_model(serial));
        assert_true(v > last_version);
        last_version = v;
        atomic_store(&st.published, true);
        if (serial % ROLLBACK_EVERY == 0) {
            assert_int_equal(model_slot_rollback(st.slot, &v), 0);
            assert_int_equal(v, last_version + 1);
            last_version = v;
        }
    }
    atomic_store(&st.done, true);
    serial--;
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(results[i].nulls_after_publish, 0);
        assert_int_equal(results[i].backwards, 0);
        assert_int_equal(results[i].corrupt, 0);
        assert_true(atomic_load(&results[i].reads) >= MIN_READS);
    }
    assert_int_equal(last_version, serial + serial / ROLLBACK_EVERY);
    st.slot = model_slot_free(st.slot); /* LeakSanitizer: nothing may remain */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_slot_serves_nothing),
        cmocka_unit_test(test_publish_bumps_version_and_keeps_previous),
        cmocka_unit_test(test_rollback_swaps_and_still_moves_version_forward),
        cmocka_unit_test(test_reader_reference_outlives_the_swap),
        cmocka_unit_test(test_swap_under_load_never_goes_backwards_or_leaks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
