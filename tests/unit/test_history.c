/* history (MODEL.history/) and recent (the ring of scored records): what they keep, what
 * they drop, and what survives a lost index; the ring under concurrent writers. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/service/history.h"
#include "aescore/model_file.h"
#include "aescore/recent.h"
#include "aescore/train.h"

static const char *const names[] = {"a", "b", "c"};

/* A small trained model; a different seed gives a different model_id. */
static Model *make_model(uint64_t seed)
{
    Dataset *ds = NULL;
    TrainParams p;
    Model *m = NULL;
    char err[256];
    uint64_t s = seed;

    assert_int_equal(dataset_new(&ds, 60, 3, names), 0);
    for (size_t i = 0; i < 60 * 3; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ds->x[i] = (float) ((s >> 33) % 1000) / 100.0f;
    }
    train_params_default(&p);
    p.epochs = 2;
    p.hidden[0] = 2;
    p.n_hidden = 1;
    p.ensemble = 1;
    p.seed = seed;
    assert_int_equal(train_model(ds, &p, 1700000000, NULL, NULL, NULL, &m, err, sizeof(err)), 0);
    dataset_free(ds);
    return m;
}

typedef struct Fixture {
    char dir[64], model[128];
    Model *m[4];
} Fixture;

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aescore-history-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->model, sizeof(f->model), "%s/model.aes", f->dir);
    for (size_t i = 0; i < 4; i++)
        f->m[i] = make_model(i + 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    char cmd[128];

    for (size_t i = 0; i < 4; i++)
        model_unref(f->m[i]);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static History *open_history(const Fixture *f, unsigned keep)
{
    History *h = NULL;
    char err[256];

    assert_int_equal(history_open(&h, f->model, keep, err, sizeof(err)), 0);
    return h;
}

static void test_keeps_the_newest_and_never_the_served_pair_is_pruned(void **state)
{
    Fixture *f = *state;
    History *h = open_history(f, 2);
    char path[256];

    assert_int_equal(h->n, 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(history_add(h, f->m[i], "job:1", true, NULL, NULL, 0), 0);
    assert_int_equal(history_served(h, f->m[0]->meta.id), 0); /* served first, then ... */
    assert_int_equal(history_served(h, f->m[1]->meta.id), 0); /* ... this one */
    assert_ptr_equal(history_newest_candidate(h), &h->entries[0]);
    assert_string_equal(history_newest_candidate(h)->id, f->m[2]->meta.id);
    assert_string_equal(history_served_before(h, f->m[1]->meta.id)->id, f->m[0]->meta.id);

    /* keep = 2, three entries: the candidate m[2] is the only one neither served nor the
     * rollback target, although it is the newest */
    assert_int_equal(history_prune(h, f->m[1]->meta.id), 0);
    assert_int_equal(h->n, 2);
    assert_null(history_find(h, f->m[2]->meta.id));
    snprintf(path, sizeof(path), "%s.history/%s.aes", f->model, f->m[2]->meta.id);
    assert_int_equal(access(path, F_OK), -1);
    history_free(h);

    /* reopened: the same entries, order and states */
    h = open_history(f, 2);
    assert_int_equal(h->n, 2);
    assert_string_equal(h->entries[0].id, f->m[1]->meta.id);
    assert_string_equal(h->entries[1].id, f->m[0]->meta.id);
    assert_false(h->entries[0].candidate);
    assert_int_equal(h->seq, 2);
    assert_null(history_newest_candidate(h));
    history_free(h);
}

static void test_a_lost_index_is_rebuilt_from_the_model_files(void **state)
{
    Fixture *f = *state;
    History *h = open_history(f, 5);
    char path[256];
    FILE *fp;
    Model *back = NULL;

    assert_int_equal(history_add(h, f->m[0], "bootstrap", false, "{\"x\":1}", NULL, 0), 0);
    assert_int_equal(history_add(h, f->m[1], "job:2", true, NULL, NULL, 0), 0);
    history_free(h);

    snprintf(path, sizeof(path), "%s.history/index.json", f->model);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"models\": [", fp); /* torn */
    fclose(fp);
    /* a model file the index never named (a crash between the two writes) */
    snprintf(path, sizeof(path), "%s.history/%s.aes", f->model, f->m[3]->meta.id);
    assert_int_equal(model_file_save(f->m[3], path, false), 0);

    h = open_history(f, 5);
    assert_int_equal(h->n, 3);
    for (size_t i = 0; i < h->n; i++)
        assert_string_equal(h->entries[i].source, "file");
    assert_non_null(history_find(h, f->m[3]->meta.id));
    assert_int_equal(history_load(h, f->m[1]->meta.id, &back), 0);
    assert_string_equal(back->meta.id, f->m[1]->meta.id);
    back = model_unref(back);
    assert_int_equal(history_load(h, "0123456789abcdef", &back), HISTORY_E_UNKNOWN);
    history_free(h);
}

static void test_an_entry_whose_file_is_gone_is_dropped(void **state)
{
    Fixture *f = *state;
    History *h = open_history(f, 5);
    char path[256];

    assert_int_equal(history_add(h, f->m[0], "job:1", false, NULL, NULL, 0), 0);
    assert_int_equal(history_add(h, f->m[1], "job:2", false, NULL, NULL, 0), 0);
    history_free(h);
    snprintf(path, sizeof(path), "%s.history/%s.aes", f->model, f->m[0]->meta.id);
    assert_int_equal(unlink(path), 0);
    h = open_history(f, 5);
    assert_int_equal(h->n, 1);
    assert_string_equal(h->entries[0].id, f->m[1]->meta.id);
    assert_string_equal(h->entries[0].source, "job:2");
    history_free(h);
}

/* ---- recent ---- */

static void test_the_ring_keeps_the_last_rows_of_one_model(void **state)
{
    Fixture *f = *state;
    Recent *r = NULL;
    Model *held = NULL;
    float x[7 * 3], *rows = NULL;
    size_t n = 0;

    for (size_t i = 0; i < 7 * 3; i++)
        x[i] = (float) i;
    assert_int_equal(recent_new(&r, 5), 0);
    recent_add(r, f->m[0], x, 4);
    recent_add(r, f->m[0], x + 4 * 3, 3); /* 7 rows into 5 places */
    assert_int_equal(recent_snapshot(r, &held, &rows, &n), 0);
    assert_int_equal(n, 5);
    assert_ptr_equal(held, f->m[0]);
    /* rows 2..6 are kept, in ring order (5, 6, 2, 3, 4) */
    float sum = 0;
    for (size_t i = 0; i < n * 3; i++)
        sum += rows[i];
    assert_float_equal(sum, (float) (6 + 20) * 15 / 2, 0); /* 6 + 7 + ... + 20 */
    free(rows);
    model_unref(held);

    /* another model's rows start the ring again */
    recent_add(r, f->m[1], x, 1);
    assert_int_equal(recent_snapshot(r, &held, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_ptr_equal(held, f->m[1]);
    free(rows);
    model_unref(held);
    r = recent_free(r);

    /* capacity 0 keeps nothing */
    assert_int_equal(recent_new(&r, 0), 0);
    recent_add(r, f->m[0], x, 7);
    assert_int_equal(recent_snapshot(r, &held, &rows, &n), 0);
    assert_int_equal(n, 0);
    assert_null(held);
    assert_null(rows);
    r = recent_free(r);
}

typedef struct Writer {
    Recent *r;
    Model *m;
} Writer;

static void *write_rows(void *arg)
{
    Writer *w = arg;
    float x[3] = {1, 2, 3};

    for (int i = 0; i < 2000; i++)
        recent_add(w->r, w->m, x, 1);
    return NULL;
}

static void test_the_ring_takes_concurrent_writers_and_readers(void **state)
{
    Fixture *f = *state;
    Recent *r = NULL;
    pthread_t t[4];
    Writer w[4];

    assert_int_equal(recent_new(&r, 100), 0);
    for (size_t i = 0; i < 4; i++) {
        w[i] = (Writer){r, f->m[i % 2]}; /* two models: the ring restarts under contention */
        assert_int_equal(pthread_create(&t[i], NULL, write_rows, &w[i]), 0);
    }
    for (int k = 0; k < 200; k++) {
        Model *held = NULL;
        float *rows = NULL;
        size_t n = 0;

        assert_int_equal(recent_snapshot(r, &held, &rows, &n), 0);
        assert_true(n <= 100);
        for (size_t i = 0; i < n * 3; i++)
            assert_float_equal(rows[i], (float) (i % 3 + 1), 0);
        free(rows);
        model_unref(held);
    }
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    recent_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keeps_the_newest_and_never_the_served_pair_is_pruned,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_lost_index_is_rebuilt_from_the_model_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_entry_whose_file_is_gone_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_ring_keeps_the_last_rows_of_one_model, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_ring_takes_concurrent_writers_and_readers, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
