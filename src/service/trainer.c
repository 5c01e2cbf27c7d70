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
 * The cancel flag is an atomic_bool that train_model polls every few ms of work (chunking
 * a large network's batches) and the gates before every record, so cancelling needs no
 * lock and takes effect within milliseconds whatever the layer sizes.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aescore/log.h"
#include "aescore/model_file.h"
#include "aescore/util.h"
#include "gate.h"
#include "history.h"
#include "json_buf.h"

#define TRAINER_NICE 10

struct Trainer {
    ModelSlot *slot;
    const Config *config;
    const char *path; /* config->model */
    Recent *recent;
    History *history; /* NULL for a replica; guarded by file_lock */

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
    bool allow_schema_change;
    double started_mono;

    /* the loss curve (trainer_losses), under lock */
    TrainerLoss losses[TRAINER_LOSSES_MAX];
    size_t n_losses, loss_stride;
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
    case TRAINER_HELD:
        return "held";
    }
    return "unknown";
}

const char *trainer_model_state_name(TrainerModelState s)
{
    return s == TRAINER_MODEL_SERVING     ? "serving"
           : s == TRAINER_MODEL_CANDIDATE ? "candidate"
                                          : "archived";
}

int trainer_new(Trainer **out, ModelSlot *slot, const Config *config, Recent *recent, char *err,
                size_t err_size)
{
    Trainer *t = calloc(1, sizeof(*t));
    int r;

    if (t == NULL)
        return -ENOMEM;
    if (config->role == CONFIG_ROLE_TRAINER &&
        (r = history_open(&t->history, config->model, config->keep_models, err, err_size)) != 0) {
        free(t);
        return TRAINER_E_SAVE;
    }
    t->config = config;
    t->path = config->model;
    t->recent = recent;
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
    history_free(t->history);
    free(t);
    return NULL;
}

/* Under t->lock: the curve keeps only epochs that are multiples of a stride twice as long,
 * and the last point of every member that has ended (next_member, the one of the point
 * about to come, tells whether the last point kept so far ended its member). */
static void thin_losses(Trainer *t, uint32_t next_member)
{
    size_t kept = 0;

    t->loss_stride *= 2;
    for (size_t i = 0; i < t->n_losses; i++) {
        uint32_t after = i + 1 < t->n_losses ? t->losses[i + 1].member : next_member;
        bool members_last = after != t->losses[i].member;

        if (t->losses[i].epoch % t->loss_stride == 0 || members_last)
            t->losses[kept++] = t->losses[i];
    }
    t->n_losses = kept;
}

/* Under t->lock: one epoch into the curve, thinned when full. */
static void keep_loss(Trainer *t, const TrainProgress *p)
{
    while (t->n_losses == TRAINER_LOSSES_MAX)
        thin_losses(t, (uint32_t) p->member);
    if (p->epoch % t->loss_stride != 0 && !p->member_done)
        return;
    t->losses[t->n_losses++] = (TrainerLoss){(uint32_t) p->member, (uint32_t) p->epoch,
                                             (float) p->train_loss, (float) p->val_loss};
}

int trainer_losses(Trainer *t, TrainerLoss **out, size_t *n)
{
    pthread_mutex_lock(&t->lock);
    *n = t->n_losses;
    *out = malloc((*n > 0 ? *n : 1) * sizeof(**out));
    if (*out != NULL)
        memcpy(*out, t->losses, *n * sizeof(**out));
    pthread_mutex_unlock(&t->lock);
    return *out != NULL ? 0 : -ENOMEM;
}

/* Called by train_model on the job thread after every epoch. */
static void on_progress(const TrainProgress *p, void *ctx)
{
    Trainer *t = ctx;
    char line[256];
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
    keep_loss(t, p);
    pthread_mutex_unlock(&t->lock);
    train_progress_line(p, line, sizeof(line));
    if (p->member_done)
        log_info("train", "job %llu: %s, done in %.1f s", (unsigned long long) job_id, line,
                 p->member_seconds);
    else
        log_debug("train", "job %llu: %s", (unsigned long long) job_id, line);
}

static const char *reason(int r)
{
    return r < 0 ? strerror(-r) : model_file_strerror(r);
}

/* How a job ended, for finish_job. */
typedef struct JobOutcome {
    TrainerState state;
    const char *code; /* failed or cancelled: the error code */
    char err[sizeof(((TrainerStatus *) 0)->error)];
    char reason[sizeof(((TrainerStatus *) 0)->reason)]; /* held: why */
    char candidate[MODEL_ID_LEN + 1];
    uint64_t version;
    double train_loss;
    JsonBuf evidence;
} JobOutcome;

/* Records how the job ended, wakes trainer_wait, and says so in the log. */
static void finish_job(Trainer *t, uint64_t job_id, JobOutcome *o)
{
    TrainerStatus *st = &t->status;

    pthread_mutex_lock(&t->lock);
    st->state = o->state;
    st->finished = util_now_wall();
    st->last_duration = util_now_mono() - t->started_mono;
    st->eta_seconds = 0;
    st->model_version = o->version;
    snprintf(st->error, sizeof(st->error), "%s", o->err);
    snprintf(st->error_code, sizeof(st->error_code), "%s", o->code != NULL ? o->code : "");
    snprintf(st->reason, sizeof(st->reason), "%s", o->reason);
    snprintf(st->candidate, sizeof(st->candidate), "%s", o->candidate);
    snprintf(st->evidence, sizeof(st->evidence), "%s",
             o->evidence.data != NULL && !o->evidence.oom ? o->evidence.data : "");
    if (o->state == TRAINER_SUCCEEDED) {
        st->jobs_succeeded++;
        st->promotions++;
        st->last_train_loss = o->train_loss;
    } else if (o->state == TRAINER_HELD) {
        st->last_train_loss = o->train_loss;
        if (t->config->promotion == CONFIG_PROMOTION_MANUAL)
            st->held_manual++;
        else
            st->held_gate++;
    } else if (o->state == TRAINER_CANCELLED) {
        st->jobs_cancelled++;
    } else {
        st->jobs_failed++;
    }
    t->running = false;
    pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->lock);

    if (o->state == TRAINER_SUCCEEDED)
        log_notice("train", "job %llu succeeded: serving model %s as v%llu, saved to %s",
                   (unsigned long long) job_id, o->candidate, (unsigned long long) o->version,
                   t->path);
    else if (o->state == TRAINER_HELD)
        log_notice("train", "job %llu held candidate %s: %s", (unsigned long long) job_id,
                   o->candidate, o->reason);
    else if (o->state == TRAINER_CANCELLED)
        log_notice("train", "job %llu cancelled", (unsigned long long) job_id);
    else
        log_warning("train", "job %llu failed: %s", (unsigned long long) job_id, o->err);
    json_buf_deinit(&o->evidence);
}

/* Under file_lock: m into the model file (the old one kept as PATH.prev), then the slot, then
 * the history's order. 0 and *version, or TRAINER_E_SAVE with the reason in err. */
static int serve_locked(Trainer *t, Model *m, uint64_t *version, char *err, size_t err_size)
{
    int r = model_file_save(m, t->path, true);

    if (r != 0) {
        snprintf(err, err_size, "saving %s: %s", t->path, reason(r));
        return TRAINER_E_SAVE;
    }
    *version = model_slot_publish(t->slot, model_ref(m));
    /* the model is served and in the file: a history that cannot follow is only reported
     * (trainer_register_served mends its order at the next start) */
    if (t->history != NULL && ((r = history_served(t->history, m->meta.id)) != 0 ||
                               (r = history_prune(t->history, m->meta.id)) != 0))
        log_warning("train", "the model history could not record model %s: %s", m->meta.id,
                    reason(r));
    return 0;
}

/* A trained model: the gates, the history, and promotion when it is due. */
static void judge_and_keep(Trainer *t, uint64_t job_id, Model *m, JobOutcome *o)
{
    const Config *c = t->config;
    GateLimits limits = {t->allow_schema_change, c->gate_max_anomaly_increase,
                         c->gate_max_unseen_increase};
    Model *served = model_slot_acquire(t->slot, NULL);
    GateVerdict v;
    char source[32];
    bool promote;
    int r = gate_judge(served, m, t->recent, &limits, &t->cancel, &v, &o->evidence);

    model_unref(served);
    snprintf(o->candidate, sizeof(o->candidate), "%s", m->meta.id);
    o->train_loss = m->meta.train_loss;
    o->state = TRAINER_FAILED;
    if (r == -ECANCELED) {
        o->state = TRAINER_CANCELLED;
        o->code = "cancelled";
        snprintf(o->err, sizeof(o->err), "cancelled");
        return;
    }
    if (r != 0) {
        o->code = "internal";
        snprintf(o->err, sizeof(o->err), "judging the new model: %s", strerror(-r));
        return;
    }
    if (!v.schema_ok) {
        o->code = "schema_change";
        snprintf(o->err, sizeof(o->err), "%s", v.reason);
        return;
    }
    snprintf(source, sizeof(source), "job:%llu", (unsigned long long) job_id);
    promote = v.recent_ok && c->promotion == CONFIG_PROMOTION_AUTO;
    pthread_mutex_lock(&t->file_lock);
    r = t->history != NULL
            ? history_add(t->history, m, source, true, o->evidence.data, o->err, sizeof(o->err))
            : 0;
    if (r == 0 && promote)
        r = serve_locked(t, m, &o->version, o->err, sizeof(o->err));
    pthread_mutex_unlock(&t->file_lock);
    if (r != 0) {
        o->code = "save_failed";
        return;
    }
    o->state = promote ? TRAINER_SUCCEEDED : TRAINER_HELD;
    if (!promote)
        snprintf(o->reason, sizeof(o->reason), "%s",
                 !v.recent_ok ? v.reason
                              : "promotion = manual: POST /model/promote serves the candidate");
}

static void *job_main(void *arg)
{
    Trainer *t = arg;
    Model *m = NULL;
    JobOutcome o = {.state = TRAINER_FAILED, .evidence = JSON_BUF_INIT};
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

    r = train_model(t->ds, &t->params, (int64_t) time(NULL), &t->cancel, on_progress, t, &m, o.err,
                    sizeof(o.err));
    t->ds = dataset_free(t->ds);
    if (r == TRAIN_E_CANCELLED || (r == 0 && atomic_load(&t->cancel))) {
        o.state = TRAINER_CANCELLED;
        o.code = "cancelled";
        snprintf(o.err, sizeof(o.err), "cancelled");
    } else if (r != 0) {
        o.code = "training_failed";
        if (r < 0)
            snprintf(o.err, sizeof(o.err), "training failed: %s", strerror(-r));
        else if (o.err[0] == '\0')
            snprintf(o.err, sizeof(o.err), "training failed (code %d)", r);
    } else {
        judge_and_keep(t, job_id, m, &o); /* train_model validated m */
    }
    model_unref(m);
    finish_job(t, job_id, &o);
    return NULL;
}

int trainer_start(Trainer *t, Dataset *ds, const TrainParams *p, bool allow_schema_change,
                  uint64_t *job_id)
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
    t->allow_schema_change = allow_schema_change;
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
    t->status.error[0] = t->status.error_code[0] = t->status.reason[0] = '\0';
    t->status.candidate[0] = t->status.evidence[0] = '\0';
    t->n_losses = 0;
    t->loss_stride = 1;
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

/* Loads the model file (the caller holds file_lock): by its path, or from fd >= 0 when the
 * caller opened it; model_file_load validates what it returns. 0, or TRAINER_E_MODEL with
 * the reason in err naming the file. */
static int load_model_file(Trainer *t, int fd, Model **out, char *err, size_t err_size)
{
    int r = fd >= 0 ? model_file_load_fd(fd, out) : model_file_load(t->path, out);

    if (r != 0) {
        snprintf(err, err_size, "%s: %s", t->path, model_file_strerror(r));
        return TRAINER_E_MODEL;
    }
    return 0;
}

/* The served model's id into id ("" when none) and its version. */
static void served_id(Trainer *t, char id[MODEL_ID_LEN + 1], uint64_t *version)
{
    Model *cur = model_slot_acquire(t->slot, version);

    snprintf(id, MODEL_ID_LEN + 1, "%s", cur != NULL ? cur->meta.id : "");
    model_unref(cur);
}

/* Under file_lock: m (just loaded from outside the history) becomes known to the history
 * as served from `source`. Reported, not failed: the model is served either way. */
static void record_served(Trainer *t, const Model *m, const char *source)
{
    int r = 0;

    if (t->history == NULL)
        return;
    if (history_find(t->history, m->meta.id) == NULL)
        r = history_add(t->history, m, source, false, NULL, NULL, 0);
    if (r == 0 && t->history->seq > 0 &&
        history_find(t->history, m->meta.id)->served_seq == t->history->seq)
        return; /* already the last one served */
    if (r == 0)
        r = history_served(t->history, m->meta.id);
    if (r == 0)
        r = history_prune(t->history, m->meta.id);
    if (r != 0)
        log_warning("train", "the model history could not record model %s: %s", m->meta.id,
                    reason(r));
}

void trainer_register_served(Trainer *t, const char *source)
{
    Model *m = model_slot_acquire(t->slot, NULL);

    if (m != NULL) {
        pthread_mutex_lock(&t->file_lock);
        record_served(t, m, source);
        pthread_mutex_unlock(&t->file_lock);
    }
    model_unref(m);
}

int trainer_reload(Trainer *t, uint64_t *version, char *err, size_t err_size)
{
    char id[MODEL_ID_LEN + 1];
    Model *m = NULL;
    uint64_t v;
    bool same;
    int r;

    pthread_mutex_lock(&t->file_lock);
    r = load_model_file(t, -1, &m, err, err_size);
    if (r != 0)
        goto fail;
    served_id(t, id, &v);
    same = strcmp(id, m->meta.id) == 0; /* the same model: nothing to change */
    if (!same) {
        v = model_slot_publish(t->slot, model_ref(m));
        record_served(t, m, "file");
    }
    pthread_mutex_unlock(&t->file_lock);
    model_unref(m);
    if (version != NULL)
        *version = v;
    if (same)
        log_notice("main", "reloaded %s: it holds the served model v%llu; nothing changed", t->path,
                   (unsigned long long) v);
    else
        log_notice("main", "reloaded %s: serving model v%llu", t->path, (unsigned long long) v);
    return 0;

fail:
    pthread_mutex_unlock(&t->file_lock);
    model_unref(m);
    return TRAINER_E_MODEL;
}

/* Whether the path still names the file fd has open. A save replaces the path by rename
 * under file_lock: a file opened before it is the replaced one. */
static bool still_at_path(int fd, const char *path)
{
    struct stat at_fd, at_path;

    return fstat(fd, &at_fd) == 0 && stat(path, &at_path) == 0 && at_fd.st_dev == at_path.st_dev &&
           at_fd.st_ino == at_path.st_ino;
}

int trainer_follow(Trainer *t, int fd, bool *changed, uint64_t *version, char *err, size_t err_size)
{
    Model *m = NULL, *cur;
    uint64_t v = 0;
    bool same, replaced;
    int r;

    pthread_mutex_lock(&t->file_lock);
    /* replaced while the caller waited for the lock (by this process's save, or anyone's):
     * the old file is not served again, it counts as the served one; the replacement
     * brings its own event */
    replaced = !still_at_path(fd, t->path);
    if (!replaced && (r = load_model_file(t, fd, &m, err, err_size)) != 0)
        goto fail;
    cur = model_slot_acquire(t->slot, &v);
    same = replaced || (cur != NULL && strcmp(cur->meta.id, m->meta.id) == 0);
    model_unref(cur);
    if (!same) {
        v = model_slot_publish(t->slot, m);
        m = NULL;
    }
    pthread_mutex_unlock(&t->file_lock);
    m = model_unref(m);
    if (replaced)
        log_debug("watch", "%s was replaced before it could be read: nothing to do", t->path);
    else if (!same)
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

/* Serves a model of the history: id, or when NULL the default that pick gives. Shared by
 * rollback and promote. */
static int serve_from_history(Trainer *t, const char *id, bool promote, uint64_t *version,
                              char *err, size_t err_size)
{
    char serving[MODEL_ID_LEN + 1];
    const HistoryEntry *e = NULL;
    Model *m = NULL;
    uint64_t v = 0;
    int r;

    pthread_mutex_lock(&t->file_lock);
    served_id(t, serving, &v);
    if (t->history != NULL)
        e = id != NULL ? history_find(t->history, id)
            : promote  ? history_newest_candidate(t->history)
                       : history_served_before(t->history, serving);
    if (e == NULL) {
        r = id != NULL ? TRAINER_E_UNKNOWN
            : promote  ? TRAINER_E_NO_CANDIDATE
                       : TRAINER_E_NO_PREVIOUS;
        snprintf(err, err_size, "%s",
                 id != NULL ? "no model with that model_id in the history"
                 : promote  ? "no candidate model waits for promotion"
                            : "there is no previous model to roll back to");
        goto out;
    }
    r = 0;
    if (strcmp(e->id, serving) == 0)
        goto out; /* served already: nothing changes */
    r = history_load(t->history, e->id, &m);
    if (r != 0) {
        snprintf(err, err_size, "loading model %s from the history: %s", e->id, reason(r));
        r = TRAINER_E_SAVE;
        goto out;
    }
    r = serve_locked(t, m, &v, err, err_size);
out:
    pthread_mutex_unlock(&t->file_lock);
    if (r == 0 && m != NULL) {
        pthread_mutex_lock(&t->lock);
        if (promote)
            t->status.promotions++;
        else
            t->status.rollbacks++;
        pthread_mutex_unlock(&t->lock);
        log_notice("main", "%s: serving model %s as v%llu, saved to %s",
                   promote ? "promoted" : "rolled back", m->meta.id, (unsigned long long) v,
                   t->path);
    }
    model_unref(m);
    if (r == 0 && version != NULL)
        *version = v;
    return r;
}

int trainer_rollback(Trainer *t, const char *id, uint64_t *version, char *err, size_t err_size)
{
    return serve_from_history(t, id, false, version, err, err_size);
}

int trainer_promote(Trainer *t, const char *id, uint64_t *version, char *err, size_t err_size)
{
    return serve_from_history(t, id, true, version, err, err_size);
}

void trainer_models_free(TrainerModel *models, size_t n)
{
    for (size_t i = 0; models != NULL && i < n; i++)
        free(models[i].gates);
    free(models);
}

int trainer_models(Trainer *t, TrainerModel **out, size_t *n)
{
    char serving[MODEL_ID_LEN + 1];
    TrainerModel *list;
    size_t count;
    int r = 0;

    pthread_mutex_lock(&t->file_lock);
    served_id(t, serving, NULL);
    count = t->history != NULL ? t->history->n : serving[0] != '\0';
    list = calloc(count + 1, sizeof(*list));
    for (size_t i = 0; list != NULL && t->history != NULL && i < count; i++) {
        const HistoryEntry *e = &t->history->entries[i];
        TrainerModel *tm = &list[i];

        *tm = (TrainerModel){.created = e->created, .rows = e->rows, .threshold = e->threshold};
        memcpy(tm->id, e->id, sizeof(tm->id));
        memcpy(tm->source, e->source, sizeof(tm->source));
        tm->state = strcmp(e->id, serving) == 0 ? TRAINER_MODEL_SERVING
                    : e->candidate              ? TRAINER_MODEL_CANDIDATE
                                                : TRAINER_MODEL_ARCHIVED;
        if (e->gates != NULL && (tm->gates = strdup(e->gates)) == NULL)
            r = -ENOMEM;
    }
    pthread_mutex_unlock(&t->file_lock);
    if (list == NULL || r != 0) {
        trainer_models_free(list, count);
        return -ENOMEM;
    }
    if (t->history == NULL && count == 1) { /* a replica: the served model only */
        Model *m = model_slot_acquire(t->slot, NULL);
        if (m != NULL) {
            list[0] = (TrainerModel){.created = m->meta.created,
                                     .rows = m->meta.rows,
                                     .threshold = m->threshold,
                                     .source = "file"};
            memcpy(list[0].id, m->meta.id, sizeof(list[0].id));
        }
        count = m != NULL;
        model_unref(m);
    }
    *out = list;
    *n = count;
    return 0;
}
