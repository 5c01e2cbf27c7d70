/* model_slot: the ONLY hand-off of models between threads.
 *
 * Holds the served Model, the previous one (for rollback) and a version counter that grows
 * by one on every publish. A reader takes a counted reference under a short mutex (a bare
 * atomic pointer would race with a reader that loaded but has not yet referenced the old
 * model), scores with no lock held, and lets go with model_unref. The old model is freed by
 * whoever drops the last reference.
 * Threads: every function is safe from any thread.
 */
#pragma once

#include <stdint.h>

#include "aescore/model.h"

enum {
    MODEL_SLOT_E_NO_PREVIOUS = 1,
};

typedef struct ModelSlot ModelSlot;

int model_slot_new(ModelSlot **out);      /* 0 or -ENOMEM */
ModelSlot *model_slot_free(ModelSlot *s); /* drops both models; accepts NULL; returns NULL */

/* A new reference to the served model (NULL when none) and, when version is not NULL, its
 * version (0 when none). The caller must model_unref it. */
Model *model_slot_acquire(ModelSlot *s, uint64_t *version);

/* A new reference to the previous model, or NULL. The caller must model_unref it. */
Model *model_slot_acquire_previous(ModelSlot *s);

/* Takes over the caller's reference to m (not NULL, fully built: it is immutable from now
 * on), makes it the served model and the served one the previous; the old previous is
 * unreferenced outside the lock. Returns the new version (1 for the first publish). */
uint64_t model_slot_publish(ModelSlot *s, Model *m);

/* Swaps served and previous. The version still grows by one (a rollback serves a different
 * model, and versions never go backwards). Returns 0 and *version (may be NULL), or
 * MODEL_SLOT_E_NO_PREVIOUS (nothing changed). */
int model_slot_rollback(ModelSlot *s, uint64_t *version);
