/* model_slot: mutex-protected hand-off of the served Model.
 *
 * The mutex covers only pointer loads, stores and the reference increment: a reader holds
 * it for a handful of instructions, never while scoring. Taking the reference INSIDE the
 * lock is the point: with a bare atomic pointer, a reader could load the old pointer, be
 * preempted while the publisher swaps and drops the last reference, and then increment a
 * freed refcount. Models that leave the slot are unreferenced after the lock is released,
 * so a free (which may be large) never runs under the lock.
 *
 * Versions grow by one on every publish AND every rollback, so "the model I am served"
 * changes exactly when the version does and a client never sees a version go backwards.
 */
#include "aescore/model_slot.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct ModelSlot {
    pthread_mutex_t lock;
    Model *current;   /* under lock; one reference owned by the slot */
    Model *previous;  /* under lock; one reference owned by the slot */
    uint64_t version; /* under lock; of current, 0 while there is none */
};

int model_slot_new(ModelSlot **out)
{
    ModelSlot *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -ENOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

ModelSlot *model_slot_free(ModelSlot *s)
{
    if (s == NULL)
        return NULL;
    model_unref(s->current);
    model_unref(s->previous);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return NULL;
}

Model *model_slot_acquire(ModelSlot *s, uint64_t *version)
{
    Model *m;
    uint64_t v;

    pthread_mutex_lock(&s->lock);
    m = model_ref(s->current);
    v = s->version;
    pthread_mutex_unlock(&s->lock);
    if (version != NULL)
        *version = m != NULL ? v : 0;
    return m;
}

Model *model_slot_acquire_previous(ModelSlot *s)
{
    Model *m;

    pthread_mutex_lock(&s->lock);
    m = model_ref(s->previous);
    pthread_mutex_unlock(&s->lock);
    return m;
}

uint64_t model_slot_publish(ModelSlot *s, Model *m)
{
    Model *dropped;
    uint64_t v;

    pthread_mutex_lock(&s->lock);
    dropped = s->previous;
    s->previous = s->current;
    s->current = m;
    v = ++s->version;
    pthread_mutex_unlock(&s->lock);
    model_unref(dropped);
    return v;
}

int model_slot_rollback(ModelSlot *s, uint64_t *version)
{
    Model *tmp;
    int r = MODEL_SLOT_E_NO_PREVIOUS;

    pthread_mutex_lock(&s->lock);
    if (s->previous != NULL) {
        tmp = s->current;
        s->current = s->previous;
        s->previous = tmp;
        if (version != NULL)
            *version = ++s->version;
        else
            ++s->version;
        r = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}
