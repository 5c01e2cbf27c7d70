/* trainer: one background training job at a time, and the only writer of the model file.
 *
 * Each job gets its own joinable pthread, created by trainer_start and joined before the
 * next job starts (or by trainer_free), so there is never an idle thread and never more
 * than one job. The thread lowers its own nice value (Linux applies nice per thread, hence
 * setpriority on the gettid() id) so scoring threads win the CPU.
 *
 * Locks, taken in this order only:
 *   file_lock  serialises "save the file, then publish to the slot" (job end, reload,
 *              rollback) so the file on disk and the served model never disagree, even
 *              when an HTTP reload races a finishing job. Held across file I/O, never by
 *              a scoring thread.
 *   lock       guards `status`, `running`, `joinable`; held only for copies and counters.
 * The cancel flag is an atomic_bool that train_model polls every batch, so cancelling
 * needs no lock and takes effect within one batch.
 */
#include "aescore/trainer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aescore/log.h"
#include "aescore/model_file.h"
#include "aescore/util.h"

#define TRAINER_NICE 10

struct Trainer {
    ModelSlot *slot;
    char *path;

    pthread_mutex_t file_lock;

    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when a job ends */
    TrainerStatus status;
    bool running;  /* a job thread is working */
    bool joinable; /* `thread` has not been joined yet */
    pthread_t thread;
    uint64_t next_job_id;

    /* the job, owned by the job thread while running */
    atomic_bool cancel;
    Dataset *ds;
    TrainParams params;
    double started_mono;
};

const char *trainer_state_name(TrainerState s)
{
    switch (s) {
    case TRAINER_IDLE:
        return "idle";
    case TRAINER_RUNNING:
        return "running";
    case TRAINER_SUCCEEDED:
        return "succeeded";
    case TRAINER_FAILED:
        return "failed";
    case TRAINER_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

int trainer_new(Trainer **out, ModelSlot *slot, const char *model_path)
{
    Trainer *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -ENOMEM;
    t->path = strdup(model_path);
    if (t->path == NULL) {
        free(t);
        return -ENOMEM;
    }
    t->slot = slot;
    pthread_mutex_init(&t->file_lock, NULL);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->idle, NULL);
    atomic_init(&t->cancel, false);
    t->status.state = TRAINER_IDLE;
    t->next_job_id = 1;
    *out = t;
    return 0;
}

Trainer *trainer_free(Trainer *t)
{
    if (t == NULL)
        return NULL;
    trainer_cancel(t);
    trainer_wait(t);
    pthread_mutex_lock(&t->lock);
    if (t->joinable) {
        pthread_join(t->thread, NULL);
        t->joinable = false;
    }
    pthread_mutex_unlock(&t->lock);
    dataset_free(t->ds);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->file_lock);
    free(t->path);
    free(t);
    return NULL;
}

/* Called by train_model on the job thread after every epoch. */
static void on_progress(const TrainProgress *p, void *ctx)
{
    Trainer *t = ctx;
    uint64_t job_id;
    double elapsed = util_now_mono() - t->started_mono;
    double total = (double) p->members * (double) p->epochs;
    double done = (double) p->member * (double) p->epochs + (double) p->epoch;

    pthread_mutex_lock(&t->lock);
    t->status.member = p->member;
    t->status.members = p->members;
    t->status.epoch = p->epoch;
    t->status.epochs = p->epochs;
    t->status.train_loss = p->train_loss;
    t->status.val_loss = p->val_loss;
    t->status.rows_per_sec = p->rows_per_sec;
    /* An upper bound: early stopping usually ends a member sooner. */
    t->status.eta_seconds = done > 0 && total > done ? elapsed / done * (total - done) : 0;
    job_id = t->status.job_id;
    pthread_mutex_unlock(&t->lock);
    log_debug("train", "job %llu: member %zu/%zu epoch %zu/%zu train loss %.6g val loss %.6g",
              (unsigned long long) job_id, p->member + 1, p->members, p->epoch, p->epochs,
              p->train_loss, p->val_loss);
}

static const char *reason(int r)
{
    return r < 0 ? strerror(-r) : model_file_strerror(r);
}

/* Records how the job ended, wakes trainer_wait, and says so in the log. */
static void finish_job(Trainer *t, uint64_t job_id, TrainerState state, const char *err,
                       uint64_t version, double train_loss)
{
    pthread_mutex_lock(&t->lock);
    t->status.state = state;
    t->status.finished = util_now_wall();
    t->status.last_duration = util_now_mono() - t->started_mono;
    t->status.eta_seconds = 0;
    t->status.model_version = version;
    snprintf(t->status.error, sizeof(t->status.error), "%s", state == TRAINER_SUCCEEDED ? "" : err);
    if (state == TRAINER_SUCCEEDED) {
        t->status.jobs_succeeded++;
        t->status.last_train_loss = train_loss;
    } else if (state == TRAINER_CANCELLED) {
        t->status.jobs_cancelled++;
    } else {
        t->status.jobs_failed++;
    }
    t->running = false;
    pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->lock);

    if (state == TRAINER_SUCCEEDED)
        log_notice("train", "job %llu succeeded: serving model v%llu, saved to %s",
                   (unsigned long long) job_id, (unsigned long long) version, t->path);
    else if (state == TRAINER_CANCELLED)
        log_notice("train", "job %llu cancelled", (unsigned long long) job_id);
    else
        log_warning("train", "job %llu failed: %s", (unsigned long long) job_id, err);
}

static void *job_main(void *arg)
{
    Trainer *t = arg;
    Model *m = NULL;
    TrainerState state = TRAINER_FAILED;
    char err[sizeof(t->status.error)] = "";
    uint64_t version = 0;
    double train_loss = 0;
    uint64_t job_id;
    int r;

    pthread_mutex_lock(&t->lock);
    job_id = t->status.job_id;
    pthread_mutex_unlock(&t->lock);

    /* Named for top/perf (it would inherit the creating MHD worker's name). Best effort: an
     * unprivileged process may always lower its own priority. */
    pthread_setname_np(pthread_self(), "trainer");
    if (setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), TRAINER_NICE) < 0)
        log_debug("train", "cannot lower the training thread's priority: %s", strerror(errno));

    r = train_model(t->ds, &t->params, (int64_t) time(NULL), &t->cancel, on_progress, t, &m, err,
                    sizeof(err));
    t->ds = dataset_free(t->ds);
    if (r == TRAIN_E_CANCELLED || (r == 0 && atomic_load(&t->cancel))) {
        state = TRAINER_CANCELLED;
        snprintf(err, sizeof(err), "cancelled");
        goto done;
    }
    if (r < 0)
        snprintf(err, sizeof(err), "training failed: %s", strerror(-r));
    else if (r > 0 && err[0] == '\0')
        snprintf(err, sizeof(err), "training failed (code %d)", r);
    if (r != 0)
        goto done;
    /* train_model validated m: finite weights and losses, a sane threshold */
    train_loss = m->meta.train_loss;

    pthread_mutex_lock(&t->file_lock);
    r = model_file_save(m, t->path, true);
    if (r == 0)
        version = model_slot_publish(t->slot, model_ref(m));
    pthread_mutex_unlock(&t->file_lock);
    if (r != 0) {
        snprintf(err, sizeof(err), "saving %s: %s", t->path, reason(r));
        goto done;
    }
    state = TRAINER_SUCCEEDED;

done:
    model_unref(m);
    finish_job(t, job_id, state, err, version, train_loss);
    return NULL;
}

int trainer_start(Trainer *t, Dataset *ds, const TrainParams *p, uint64_t *job_id)
{
    TrainerStatus saved;
    sigset_t all, old;
    uint64_t id;
    size_t rows = ds->n_rows;
    int r;

    pthread_mutex_lock(&t->lock);
    if (t->running) {
        pthread_mutex_unlock(&t->lock);
        dataset_free(ds);
        return TRAINER_E_BUSY;
    }
    /* The last job's thread has cleared `running` and touches nothing after unlocking, so
     * joining it under the lock cannot deadlock and takes no time. */
    if (t->joinable) {
        pthread_join(t->thread, NULL);
        t->joinable = false;
    }
    saved = t->status;
    t->ds = ds;
    t->params = *p;
    atomic_store(&t->cancel, false);
    t->started_mono = util_now_mono();
    t->status.job_id = t->next_job_id;
    t->status.state = TRAINER_RUNNING;
    t->status.rows = ds->n_rows;
    t->status.epoch = 0;
    t->status.epochs = p->epochs;
    t->status.member = 0;
    t->status.members = p->ensemble;
    t->status.train_loss = t->status.val_loss = 0;
    t->status.rows_per_sec = t->status.eta_seconds = 0;
    t->status.started = util_now_wall();
    t->status.finished = 0;
    t->status.model_version = 0;
    t->status.error[0] = '\0';
    t->running = true;

    /* The job thread must never take SIGTERM/SIGHUP: main waits for them with sigtimedwait.
     * main blocked them already; block everything here too in case a caller did not. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r = pthread_create(&t->thread, NULL, job_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        t->ds = NULL;
        t->status = saved;
        t->running = false;
        pthread_mutex_unlock(&t->lock);
        dataset_free(ds);
        return -r;
    }
    t->joinable = true;
    id = t->next_job_id++;
    pthread_mutex_unlock(&t->lock);
    /* ds belongs to the job thread now (and may be freed already): use the copies. */
    if (job_id != NULL)
        *job_id = id;
    log_notice("train", "job %llu started on %zu rows", (unsigned long long) id, rows);
    return 0;
}

int trainer_cancel(Trainer *t)
{
    int r = TRAINER_E_IDLE;

    pthread_mutex_lock(&t->lock);
    if (t->running) {
        atomic_store(&t->cancel, true);
        r = 0;
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

void trainer_wait(Trainer *t)
{
    pthread_mutex_lock(&t->lock);
    while (t->running)
        pthread_cond_wait(&t->idle, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

void trainer_get_status(Trainer *t, TrainerStatus *out)
{
    pthread_mutex_lock(&t->lock);
    *out = t->status;
    pthread_mutex_unlock(&t->lock);
}

/* Loads the model file (the caller holds file_lock); model_file_load validates what it
 * returns. 0, or TRAINER_E_MODEL with the reason in err naming the file. */
static int load_model_file(Trainer *t, Model **out, char *err, size_t err_size)
{
    int r = model_file_load(t->path, out);

    if (r != 0) {
        snprintf(err, err_size, "%s: %s", t->path, model_file_strerror(r));
        return TRAINER_E_MODEL;
    }
    return 0;
}

int trainer_reload(Trainer *t, uint64_t *version, char *err, size_t err_size)
{
    Model *m = NULL;
    uint64_t v;
    int r;

    pthread_mutex_lock(&t->file_lock);
    r = load_model_file(t, &m, err, err_size);
    if (r != 0)
        goto fail;
    v = model_slot_publish(t->slot, m);
    m = NULL;
    pthread_mutex_unlock(&t->file_lock);
    if (version != NULL)
        *version = v;
    log_notice("main", "reloaded %s: serving model v%llu", t->path, (unsigned long long) v);
    return 0;

fail:
    pthread_mutex_unlock(&t->file_lock);
    model_unref(m);
    return TRAINER_E_MODEL;
}

int trainer_follow(Trainer *t, bool *changed, uint64_t *version, char *err, size_t err_size)
{
    Model *m = NULL, *cur;
    uint64_t v = 0;
    bool same;
    int r;

    pthread_mutex_lock(&t->file_lock);
    r = load_model_file(t, &m, err, err_size);
    if (r != 0)
        goto fail;
    cur = model_slot_acquire(t->slot, &v);
    same = cur != NULL && strcmp(cur->meta.id, m->meta.id) == 0;
    model_unref(cur);
    if (!same) {
        v = model_slot_publish(t->slot, m);
        m = NULL;
    }
    pthread_mutex_unlock(&t->file_lock);
    m = model_unref(m);
    if (!same)
        log_notice("watch", "followed %s: serving model v%llu", t->path, (unsigned long long) v);
    if (changed != NULL)
        *changed = !same;
    if (version != NULL)
        *version = v;
    return 0;

fail:
    pthread_mutex_unlock(&t->file_lock);
    model_unref(m);
    return TRAINER_E_MODEL;
}

int trainer_rollback(Trainer *t, uint64_t *version, char *err, size_t err_size)
{
    Model *prev = NULL;
    uint64_t v = 0;
    int r = 0;

    pthread_mutex_lock(&t->file_lock);
    prev = model_slot_acquire_previous(t->slot);
    if (prev == NULL) {
        snprintf(err, err_size, "there is no previous model to roll back to");
        r = TRAINER_E_NO_PREVIOUS;
        goto out;
    }
    /* File first: if the save fails, nothing changes and the file still matches the slot. */
    r = model_file_save(prev, t->path, true);
    if (r != 0) {
        snprintf(err, err_size, "saving %s: %s", t->path, reason(r));
        r = TRAINER_E_SAVE;
        goto out;
    }
    /* under file_lock nothing else publishes: the previous model is still there */
    if (model_slot_rollback(t->slot, &v) != 0) {
        snprintf(err, err_size, "there is no previous model to roll back to");
        r = TRAINER_E_NO_PREVIOUS;
    }
out:
    pthread_mutex_unlock(&t->file_lock);
    model_unref(prev);
    if (r == 0) {
        if (version != NULL)
            *version = v;
        log_notice("main", "rolled back: serving model v%llu, saved to %s", (unsigned long long) v,
                   t->path);
    }
    return r;
}
