/* recent: a ring of the last scored records (see recent.h). The ring's storage is sized
 * for the model it holds rows of, and reallocated only when the model changes. */
#include "aescore/recent.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The ring's floats at most (64 MiB): a model of 4,096 inputs keeps 4,096 rows, not the
 * recent_records asked for. */
#define RECENT_MAX_FLOATS ((size_t) 16 * 1024 * 1024)

struct Recent {
    pthread_mutex_t lock;
    size_t asked;    /* recent_records */
    size_t capacity; /* rows for the model held: asked, within RECENT_MAX_FLOATS */
    Model *model;    /* whose rows the ring holds; NULL when empty */
    float *rows;     /* capacity * model->n_features */
    size_t next;     /* where the next row goes */
    size_t filled;   /* rows held, at most capacity */
};

int recent_new(Recent **out, size_t capacity)
{
    Recent *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return -ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    r->asked = r->capacity = capacity;
    *out = r;
    return 0;
}

Recent *recent_free(Recent *r)
{
    if (r == NULL)
        return NULL;
    model_unref(r->model);
    free(r->rows);
    pthread_mutex_destroy(&r->lock);
    free(r);
    return NULL;
}

/* Under r->lock: an empty ring for m's rows; false without memory (the ring is empty). */
static bool restart(Recent *r, const Model *m)
{
    float *rows;

    r->capacity =
        r->asked < RECENT_MAX_FLOATS / m->n_features ? r->asked : RECENT_MAX_FLOATS / m->n_features;
    rows = malloc(r->capacity * m->n_features * sizeof(*rows));

    free(r->rows);
    model_unref(r->model);
    r->rows = rows;
    /* a reference count is not the model's contents: m stays immutable */
    r->model = rows != NULL ? model_ref((Model *) m) : NULL;
    r->next = r->filled = 0;
    return rows != NULL;
}

void recent_add(Recent *r, const Model *m, const float *x, size_t n)
{
    size_t f = m->n_features;

    if (r == NULL || r->asked == 0 || n == 0)
        return;
    pthread_mutex_lock(&r->lock);
    if ((r->model != NULL && strcmp(r->model->meta.id, m->meta.id) == 0) || restart(r, m)) {
        if (n > r->capacity) { /* only the last capacity rows would stay */
            x += (n - r->capacity) * f;
            n = r->capacity;
        }
        for (size_t i = 0; i < n; i++) {
            memcpy(r->rows + r->next * f, x + i * f, f * sizeof(*x));
            r->next = (r->next + 1) % r->capacity;
        }
        r->filled = r->filled + n < r->capacity ? r->filled + n : r->capacity;
    }
    pthread_mutex_unlock(&r->lock);
}

int recent_snapshot(Recent *r, Model **model, float **rows, size_t *n)
{
    int err = 0;

    *model = NULL;
    *rows = NULL;
    *n = 0;
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->lock);
    if (r->model != NULL && r->filled > 0) {
        size_t bytes = r->filled * r->model->n_features * sizeof(float);

        *rows = malloc(bytes);
        if (*rows == NULL) {
            err = -ENOMEM;
        } else {
            memcpy(*rows, r->rows, bytes); /* order does not matter to a rate */
            *model = model_ref(r->model);
            *n = r->filled;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}
