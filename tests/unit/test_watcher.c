/* Tests for watcher (follow mode) against a real trainer, slot and directory: an atomic
 * replacement is served within the deadline (inotify, and polling alone); the process's
 * own save is not published twice, nor an old file a save replaced while it waited; a
 * corrupt file is kept out and reported, once per file even when the first stat gets ahead
 * of its event; an in-place rewrite is loaded once it stands still; a file that appears
 * later is picked up; free joins promptly. In the 'concurrency' suite, so the
 * ThreadSanitizer build watches the watcher thread against the trainer's job thread and
 * the readers. */
#undef NDEBUG
#include "aescore/watcher.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aescore/model_file.h"

typedef struct Fixture {
    char dir[64];
    char path[128];
    Config config;
    char staging[128];
    ModelSlot *slot;
    Trainer *trainer;
    Watcher *watcher;
} Fixture;

static const char *const feature_names[] = {"amount", "balance", "age", "limit"};

static Dataset *synthetic(size_t rows, uint64_t seed)
{
    Dataset *ds = NULL;

    assert_int_equal(dataset_new(&ds, rows, 4, feature_names), 0);
    for (size_t i = 0; i < rows; i++) {
        float a;

        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        a = (float) ((seed >> 33) % 10000) / 10000.0f;
        ds->x[i * 4 + 0] = 100.0f * a;
        ds->x[i * 4 + 1] = 2000.0f - 500.0f * a;
        ds->x[i * 4 + 2] = 20.0f + 40.0f * a * a;
        ds->x[i * 4 + 3] = 5000.0f + a;
    }
    return ds;
}

static void quick_params(TrainParams *p, uint64_t seed)
{
    train_params_default(p);
    p->epochs = 3;
    p->batch = 32;
    p->hidden[0] = 2;
    p->n_hidden = 1;
    p->ensemble = 1;
    p->patience = 0;
    p->seed = seed;
}

/* A model that differs from every other seed's (its id differs). */
static Model *make_model(uint64_t seed)
{
    Dataset *ds = synthetic(200, seed);
    TrainParams p;
    Model *m = NULL;
    char err[256];

    quick_params(&p, seed);
    assert_int_equal(
        train_model(ds, &p, 1700000000 + (int64_t) seed, NULL, NULL, NULL, &m, err, sizeof(err)),
        0);
    dataset_free(ds);
    return m;
}

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}, NULL);
}

static uint64_t served(Fixture *f, char *id_out)
{
    uint64_t v = 0;
    Model *m = model_slot_acquire(f->slot, &v);

    if (id_out != NULL)
        strcpy(id_out, m != NULL ? m->meta.id : "");
    model_unref(m);
    return v;
}

/* Waits up to seconds for the served id to become want; returns the time it took. */
static double wait_for_id(Fixture *f, const char *want, double seconds)
{
    double t0 = now_mono();
    char id[MODEL_ID_LEN + 1];

    while (now_mono() - t0 < seconds) {
        served(f, id);
        if (strcmp(id, want) == 0)
            return now_mono() - t0;
        sleep_ms(5);
    }
    fail_msg("still serving %s, not %s, after %.1f s", id, want, seconds);
    return -1;
}

static WatcherStatus status(Fixture *f)
{
    WatcherStatus st;

    watcher_get_status(f->watcher, &st);
    return st;
}

/* The watcher counts a reload after the model is published, so a reader that saw the new
 * model may still read the old count for a moment: wait for it (or fail after seconds). */
static WatcherStatus status_after_reloads(Fixture *f, uint64_t reloads, double seconds)
{
    double t0 = now_mono();
    WatcherStatus st = status(f);

    while (st.reloads < reloads && now_mono() - t0 < seconds) {
        sleep_ms(5);
        st = status(f);
    }
    return st;
}

/* Writes m beside the model file and renames it over: how every writer must replace it. */
static void replace_atomically(Fixture *f, const Model *m)
{
    assert_int_equal(model_file_save(m, f->staging, false), 0);
    assert_int_equal(rename(f->staging, f->path), 0);
}

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));
    Model *m = make_model(1);

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aescore-watcher-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/model.aes", f->dir);
    snprintf(f->staging, sizeof(f->staging), "%s/.staging.aes", f->dir);
    assert_int_equal(model_file_save(m, f->path, false), 0);
    assert_int_equal(model_slot_new(&f->slot), 0);
    model_slot_publish(f->slot, m); /* v1, as the daemon's startup load */
    config_defaults(&f->config);
    snprintf(f->config.model, sizeof(f->config.model), "%s", f->path);
    assert_int_equal(trainer_new(&f->trainer, f->slot, &f->config, NULL, NULL, 0), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    char cmd[128];

    f->watcher = watcher_free(f->watcher);
    f->trainer = trainer_free(f->trainer);
    f->slot = model_slot_free(f->slot);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void start(Fixture *f, bool poll_only, unsigned poll_ms)
{
    WatcherOptions o = {.poll_ms = poll_ms, .poll_only = poll_only};
    WatcherStatus ws;

    assert_int_equal(watcher_new(&f->watcher, f->trainer, f->path, &o), 0);
    watcher_get_status(f->watcher, &ws);
    assert_int_equal(ws.inotify, !poll_only);
}

static void check_follows_a_replacement(Fixture *f)
{
    Model *b = make_model(2);
    char want[MODEL_ID_LEN + 1];
    double took;

    strcpy(want, b->meta.id);
    sleep_ms(50); /* the initial check has run: the file holds the served model */
    assert_int_equal(served(f, NULL), 1);
    replace_atomically(f, b);
    took = wait_for_id(f, want, 2.0);
    print_message("replacement served after %.0f ms\n", took * 1000);
    assert_int_equal(served(f, NULL), 2);
    assert_int_equal(status_after_reloads(f, 1, 2.0).reloads, 1);
    assert_int_equal(status(f).errors, 0);
    model_unref(b);
}

static void test_inotify_follows_an_atomic_replacement(void **state)
{
    Fixture *f = *state;

    start(f, false, 60000); /* no polling to help: inotify alone */
    check_follows_a_replacement(f);
}

static void test_polling_alone_follows_an_atomic_replacement(void **state)
{
    Fixture *f = *state;

    start(f, true, 50);
    check_follows_a_replacement(f);
}

static void test_own_save_is_not_published_twice(void **state)
{
    Fixture *f = *state;
    TrainParams p;
    uint64_t job_version;

    start(f, false, 50);
    quick_params(&p, 3);
    assert_int_equal(trainer_start(f->trainer, synthetic(200, 3), &p, false, NULL), 0);
    trainer_wait(f->trainer);
    {
        TrainerStatus ts;

        trainer_get_status(f->trainer, &ts);
        job_version = ts.model_version;
    }
    assert_int_equal(job_version, 2);
    sleep_ms(300); /* inotify event and several polls */
    assert_int_equal(served(f, NULL), job_version);
    assert_int_equal(status(f).reloads, 0);
    assert_int_equal(status(f).errors, 0);
}

/* The race behind a retrain's own save under load: the watcher opens the file (the link
 * to PATH.prev changed its ctime), a save replaces it and serves the new model while the
 * watcher waits for the trainer's lock, then the watcher hands over the old file. It must
 * not be served again (it was, as v3, before trainer_follow checked that the path still
 * names it). Driven by hand, without the watcher thread, so the order is certain. */
static void test_a_file_replaced_before_the_lock_is_not_served_again(void **state)
{
    Fixture *f = *state;
    Model *b = make_model(2);
    char id_b[MODEL_ID_LEN + 1], id[MODEL_ID_LEN + 1];
    bool changed = true;
    uint64_t version = 0;
    char err[256] = "";
    int stale = open(f->path, O_RDONLY | O_CLOEXEC), fresh;

    assert_true(stale >= 0);
    snprintf(id_b, sizeof(id_b), "%s", b->meta.id);
    replace_atomically(f, b);
    assert_int_equal(trainer_reload(f->trainer, &version, err, sizeof(err)), 0);
    assert_int_equal(version, 2); /* b served, as a save-and-publish leaves it */
    assert_int_equal(trainer_follow(f->trainer, stale, &changed, &version, err, sizeof(err)), 0);
    assert_false(changed);
    assert_int_equal(version, 2);
    assert_int_equal(served(f, id), 2);
    assert_string_equal(id, id_b);
    /* the file at the path now is read as before: it holds the served model */
    fresh = open(f->path, O_RDONLY | O_CLOEXEC);
    assert_true(fresh >= 0);
    assert_int_equal(trainer_follow(f->trainer, fresh, &changed, &version, err, sizeof(err)), 0);
    assert_false(changed);
    assert_int_equal(served(f, NULL), 2);
    close(fresh);
    close(stale);
    model_unref(b);
}

static void test_corrupt_file_is_kept_out_and_reported(void **state)
{
    Fixture *f = *state;
    char before[MODEL_ID_LEN + 1], after[MODEL_ID_LEN + 1];
    WatcherStatus st;
    FILE *out;

    start(f, false, 50);
    sleep_ms(50);
    served(f, before);
    out = fopen(f->staging, "w");
    assert_non_null(out);
    fputs("this is not a model\n", out);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(rename(f->staging, f->path), 0);
    for (int i = 0; i < 200 && status(f).errors == 0; i++)
        sleep_ms(10);
    sleep_ms(200); /* later polls must not count the same bad file again */
    st = status(f);
    assert_int_equal(st.errors, 1);
    assert_non_null(strstr(st.error, f->path));
    assert_true(st.error_time > 1e9);
    assert_int_equal(served(f, after), 1);
    assert_string_equal(before, after);
}

/* The watch is in place before the thread's first stat: a bad file renamed in between is
 * seen by that stat and again by its queued event. It must be tried and counted once. */
static void test_a_bad_file_at_startup_is_counted_once(void **state)
{
    enum { TRIES = 40 };
    Fixture *f = *state;
    Model *good = make_model(1);

    for (int i = 0; i < TRIES; i++) {
        struct timespec pause = {0, (i % 20) * 10000}; /* 0-190 us: around the first stat */
        FILE *out;
        WatcherStatus st;

        assert_int_equal(model_file_save(good, f->path, false), 0); /* the served model */
        out = fopen(f->staging, "w");
        assert_non_null(out);
        fprintf(out, "bad model file %d\n", i);
        assert_int_equal(fclose(out), 0);
        start(f, false, 60000); /* no timed polls */
        nanosleep(&pause, NULL);
        assert_int_equal(rename(f->staging, f->path), 0);
        for (int t = 0; t < 400 && status(f).errors == 0; t++)
            sleep_ms(5);
        sleep_ms(30); /* a duplicate would land here */
        st = status(f);
        assert_int_equal(st.errors, 1);
        assert_int_equal(served(f, NULL), 1);
        f->watcher = watcher_free(f->watcher);
    }
    model_unref(good);
}

static void test_in_place_rewrite_is_loaded_once_complete(void **state)
{
    Fixture *f = *state;
    Model *b = make_model(4);
    unsigned char *buf = NULL;
    size_t len = 0;
    int fd;

    start(f, true, 50);
    sleep_ms(50);
    assert_int_equal(model_file_encode(b, &buf, &len), 0);
    /* a careless writer: truncate, then write in two halves with a pause in between */
    fd = open(f->path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len / 2), (ssize_t) (len / 2));
    sleep_ms(20);
    assert_int_equal(write(fd, buf + len / 2, len - len / 2), (ssize_t) (len - len / 2));
    assert_int_equal(close(fd), 0);
    wait_for_id(f, b->meta.id, 2.0);
    assert_int_equal(status_after_reloads(f, 1, 2.0).reloads, 1);
    free(buf);
    model_unref(b);
}

static void test_a_file_that_appears_later_is_served(void **state)
{
    Fixture *f = *state;
    Model *b = make_model(5);

    assert_int_equal(unlink(f->path), 0);
    start(f, false, 60000);
    sleep_ms(50);
    assert_int_equal(status(f).errors, 0); /* waiting is not an error */
    replace_atomically(f, b);
    wait_for_id(f, b->meta.id, 2.0);
    model_unref(b);
}

static void test_free_is_prompt_with_a_long_interval(void **state)
{
    Fixture *f = *state;
    double t0;

    start(f, true, 60000);
    sleep_ms(20);
    t0 = now_mono();
    f->watcher = watcher_free(f->watcher);
    assert_true(now_mono() - t0 < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inotify_follows_an_atomic_replacement, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_polling_alone_follows_an_atomic_replacement, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_own_save_is_not_published_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_replaced_before_the_lock_is_not_served_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_is_kept_out_and_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_bad_file_at_startup_is_counted_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_in_place_rewrite_is_loaded_once_complete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_that_appears_later_is_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_is_prompt_with_a_long_interval, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
