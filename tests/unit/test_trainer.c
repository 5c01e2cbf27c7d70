/* Tests for trainer: real jobs on a small synthetic data set. A job trains, saves (keeping
 * .prev) and publishes; progress is visible while it runs; a second start is refused; cancel
 * and every kind of failure leave the served model and the file untouched; reload refuses a
 * corrupt file; rollback writes the previous model back. In the 'concurrency' suite, so the
 * ThreadSanitizer build watches the status copy-out and the cancel flag. */
#undef NDEBUG
#include "aescore/trainer.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aescore/model_file.h"

typedef struct Fixture {
    char dir[64];
    char path[128];
    Config config;
    ModelSlot *slot;
    Trainer *trainer;
} Fixture;

static const char *const feature_names[] = {"amount", "balance", "age", "limit"};

/* Four features on a 1-D manifold plus noise: easy to reconstruct, quick to train. */
static Dataset *synthetic(size_t rows, uint64_t seed)
{
    Dataset *ds = NULL;

    assert_int_equal(dataset_new(&ds, rows, 4, feature_names), 0);
    for (size_t i = 0; i < rows; i++) {
        float a, noise;

        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        a = (float) ((seed >> 33) % 10000) / 10000.0f;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        noise = (float) ((seed >> 33) % 1000) / 100000.0f;
        ds->x[i * 4 + 0] = 100.0f * a + noise;
        ds->x[i * 4 + 1] = 2000.0f - 500.0f * a;
        ds->x[i * 4 + 2] = 20.0f + 40.0f * a * a;
        ds->x[i * 4 + 3] = 5000.0f + noise * 10.0f;
    }
    return ds;
}

static void quick_params(TrainParams *p)
{
    train_params_default(p);
    p->epochs = 5;
    p->batch = 32;
    p->hidden[0] = 2;
    p->n_hidden = 1;
    p->ensemble = 1;
    p->patience = 0;
    p->seed = 7;
}

/* Long enough to observe and cancel: many epochs on many rows, no early stop. */
static void slow_params(TrainParams *p)
{
    quick_params(p);
    p->epochs = 100000;
    p->batch = 8;
}

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aescore-trainer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/model.aes", f->dir);
    assert_int_equal(model_slot_new(&f->slot), 0);
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

    f->trainer = trainer_free(f->trainer);
    f->slot = model_slot_free(f->slot);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static TrainerStatus run_job(Fixture *f, Dataset *ds, const TrainParams *p)
{
    TrainerStatus st;
    uint64_t id = 0;

    assert_int_equal(trainer_start(f->trainer, ds, p, false, &id), 0);
    assert_true(id > 0);
    trainer_wait(f->trainer);
    trainer_get_status(f->trainer, &st);
    assert_int_equal(st.job_id, id);
    return st;
}

static uint64_t served_version(Fixture *f, char *id_out)
{
    uint64_t v = 0;
    Model *m = model_slot_acquire(f->slot, &v);

    if (id_out != NULL)
        strcpy(id_out, m != NULL ? m->meta.id : "");
    model_unref(m);
    return v;
}

static void wait_until_running_epoch(Fixture *f, uint64_t epoch)
{
    TrainerStatus st;

    for (int i = 0; i < 3000; i++) {
        trainer_get_status(f->trainer, &st);
        if (st.state != TRAINER_RUNNING || st.epoch >= epoch)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    assert_int_equal(st.state, TRAINER_RUNNING);
    assert_true(st.epoch >= epoch);
}

static void test_status_starts_idle(void **state)
{
    Fixture *f = *state;
    TrainerStatus st;

    trainer_get_status(f->trainer, &st);
    assert_int_equal(st.state, TRAINER_IDLE);
    assert_int_equal(st.job_id, 0);
    assert_string_equal(trainer_state_name(st.state), "idle");
    assert_int_equal(trainer_cancel(f->trainer), TRAINER_E_IDLE);
}

static void test_job_trains_saves_and_publishes(void **state)
{
    Fixture *f = *state;
    TrainParams p;
    TrainerStatus st;
    Model *loaded = NULL;
    char id1[MODEL_ID_LEN + 1], id2[MODEL_ID_LEN + 1], prev[160];
    struct stat sb;

    quick_params(&p);
    st = run_job(f, synthetic(400, 1), &p);
    assert_int_equal(st.state, TRAINER_SUCCEEDED);
    assert_string_equal(st.error, "");
    assert_int_equal(st.rows, 400);
    assert_int_equal(st.model_version, 1);
    assert_int_equal(st.jobs_succeeded, 1);
    assert_true(st.finished >= st.started && st.started > 0);
    assert_true(st.last_train_loss > 0);
    assert_int_equal(served_version(f, id1), 1);

    /* the file holds exactly the served model */
    assert_int_equal(model_file_load(f->path, &loaded), 0);
    assert_string_equal(loaded->meta.id, id1);
    loaded = model_unref(loaded);

    /* a second job replaces it and keeps the first as .prev */
    p.seed = 8;
    st = run_job(f, synthetic(400, 2), &p);
    assert_int_equal(st.state, TRAINER_SUCCEEDED);
    assert_int_equal(st.model_version, 2);
    assert_int_equal(st.jobs_succeeded, 2);
    assert_int_equal(served_version(f, id2), 2);
    assert_string_not_equal(id1, id2);
    snprintf(prev, sizeof(prev), "%s.prev", f->path);
    assert_int_equal(stat(prev, &sb), 0);
    assert_int_equal(model_file_load(prev, &loaded), 0);
    assert_string_equal(loaded->meta.id, id1);
    loaded = model_unref(loaded);
}

static void test_progress_is_visible_and_cancel_keeps_the_model(void **state)
{
    Fixture *f = *state;
    TrainParams p;
    TrainerStatus st;
    char before[MODEL_ID_LEN + 1], after[MODEL_ID_LEN + 1];
    uint64_t id;

    quick_params(&p);
    run_job(f, synthetic(200, 3), &p);
    assert_int_equal(served_version(f, before), 1);

    slow_params(&p);
    assert_int_equal(trainer_start(f->trainer, synthetic(2000, 4), &p, false, &id), 0);
    wait_until_running_epoch(f, 2);
    trainer_get_status(f->trainer, &st);
    assert_int_equal(st.epochs, p.epochs);
    assert_true(st.rows_per_sec > 0);
    assert_true(st.eta_seconds > 0);
    assert_true(st.train_loss > 0);

    /* one job at a time; the refused data set is freed by the trainer */
    assert_int_equal(trainer_start(f->trainer, synthetic(100, 5), &p, false, NULL), TRAINER_E_BUSY);

    assert_int_equal(trainer_cancel(f->trainer), 0);
    trainer_wait(f->trainer);
    trainer_get_status(f->trainer, &st);
    assert_int_equal(st.job_id, id);
    assert_int_equal(st.state, TRAINER_CANCELLED);
    assert_string_equal(st.error, "cancelled");
    assert_int_equal(st.model_version, 0);
    assert_int_equal(st.jobs_cancelled, 1);
    assert_true(st.epoch < p.epochs);
    assert_int_equal(served_version(f, after), 1);
    assert_string_equal(before, after);
}

static void test_training_failure_keeps_the_model(void **state)
{
    Fixture *f = *state;
    TrainParams p;
    TrainerStatus st;

    quick_params(&p);
    run_job(f, synthetic(200, 6), &p);
    /* too few rows to train on */
    st = run_job(f, synthetic(3, 7), &p);
    assert_int_equal(st.state, TRAINER_FAILED);
    assert_true(st.error[0] != '\0');
    assert_int_equal(st.jobs_failed, 1);
    assert_int_equal(st.model_version, 0);
    assert_int_equal(served_version(f, NULL), 1);
}

static void test_save_failure_keeps_the_model_and_says_why(void **state)
{
    Fixture *f = *state;
    Trainer *broken = NULL;
    TrainParams p;
    TrainerStatus st;
    Config c;
    char expected[CONFIG_PATH_MAX + 64], err[CONFIG_PATH_MAX + 64];
    uint64_t id;

    quick_params(&p);
    run_job(f, synthetic(200, 8), &p);

    /* no directory for the history: the trainer says so and is not made */
    config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/missing-dir/model.aes", f->dir);
    assert_int_equal(trainer_new(&broken, f->slot, &c, NULL, err, sizeof(err)), TRAINER_E_SAVE);
    snprintf(expected, sizeof(expected), "cannot create %s.history: No such file or directory",
             c.model);
    assert_string_equal(err, expected);

    /* a model path that cannot be replaced (a directory): the job fails, nothing changes */
    snprintf(c.model, sizeof(c.model), "%s/a-directory", f->dir);
    assert_int_equal(mkdir(c.model, 0755), 0);
    assert_int_equal(trainer_new(&broken, f->slot, &c, NULL, err, sizeof(err)), 0);
    p.seed = 8; /* another model than the one served */
    assert_int_equal(trainer_start(broken, synthetic(200, 9), &p, false, &id), 0);
    trainer_wait(broken);
    trainer_get_status(broken, &st);
    assert_int_equal(st.state, TRAINER_FAILED);
    assert_string_equal(st.error_code, "save_failed");
    /* keeping PATH.prev hard-links the old file: a directory cannot be linked */
    snprintf(expected, sizeof(expected), "saving %s: Operation not permitted", c.model);
    assert_string_equal(st.error, expected);
    assert_int_equal(served_version(f, NULL), 1);
    broken = trainer_free(broken);
}

static void test_reload_refuses_a_corrupt_file(void **state)
{
    Fixture *f = *state;
    TrainParams p;
    char err[512], id[MODEL_ID_LEN + 1];
    uint64_t v = 0;
    FILE *fp;

    quick_params(&p);
    run_job(f, synthetic(200, 10), &p);
    assert_int_equal(served_version(f, id), 1);

    /* reloading the file of the served model changes nothing */
    assert_int_equal(trainer_reload(f->trainer, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 1);
    assert_int_equal(served_version(f, NULL), 1);

    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("this is not a model\n", fp);
    fclose(fp);
    assert_int_equal(trainer_reload(f->trainer, &v, err, sizeof(err)), TRAINER_E_MODEL);
    assert_int_equal(strncmp(err, f->path, strlen(f->path)), 0);
    assert_int_equal(strncmp(err + strlen(f->path), ": ", 2), 0);
    assert_int_equal(served_version(f, NULL), 1);

    unlink(f->path);
    assert_int_equal(trainer_reload(f->trainer, &v, err, sizeof(err)), TRAINER_E_MODEL);
    assert_non_null(strstr(err, "No such file"));
}

static void test_rollback_serves_and_saves_the_previous_model(void **state)
{
    Fixture *f = *state;
    TrainParams p;
    char err[512], id1[MODEL_ID_LEN + 1], id2[MODEL_ID_LEN + 1], now[MODEL_ID_LEN + 1];
    Model *loaded = NULL;
    uint64_t v = 0;

    assert_int_equal(trainer_rollback(f->trainer, NULL, &v, err, sizeof(err)),
                     TRAINER_E_NO_PREVIOUS);
    quick_params(&p);
    run_job(f, synthetic(200, 11), &p);
    served_version(f, id1);
    assert_int_equal(trainer_rollback(f->trainer, NULL, &v, err, sizeof(err)),
                     TRAINER_E_NO_PREVIOUS);
    p.seed = 99;
    run_job(f, synthetic(200, 12), &p);
    served_version(f, id2);

    assert_int_equal(trainer_rollback(f->trainer, NULL, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_int_equal(served_version(f, now), 3);
    assert_string_equal(now, id1);
    assert_int_equal(model_file_load(f->path, &loaded), 0);
    assert_string_equal(loaded->meta.id, id1);
    loaded = model_unref(loaded);

    /* by name: back to the second; an id the history does not hold changes nothing */
    assert_int_equal(trainer_rollback(f->trainer, id2, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 4);
    assert_int_equal(served_version(f, now), 4);
    assert_string_equal(now, id2);
    assert_int_equal(trainer_rollback(f->trainer, "0123456789abcdef", &v, err, sizeof(err)),
                     TRAINER_E_UNKNOWN);
    assert_int_equal(served_version(f, now), 4);
    /* the one served already: nothing changes */
    assert_int_equal(trainer_rollback(f->trainer, id2, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 4);
}

static void test_free_cancels_a_running_job(void **state)
{
    Fixture *f = *state;
    TrainParams p;
    time_t t0;

    slow_params(&p);
    assert_int_equal(trainer_start(f->trainer, synthetic(2000, 13), &p, false, NULL), 0);
    wait_until_running_epoch(f, 1);
    t0 = time(NULL);
    f->trainer = trainer_free(f->trainer);
    assert_true(time(NULL) - t0 < 10);
    assert_int_equal(served_version(f, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_starts_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_trains_saves_and_publishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_is_visible_and_cancel_keeps_the_model, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_training_failure_keeps_the_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_failure_keeps_the_model_and_says_why, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reload_refuses_a_corrupt_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_serves_and_saves_the_previous_model, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels_a_running_job, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
