/* recent: the last records scored, kept in memory only, for the promotion gate (DESIGN
 * section 3b): the served model and a candidate both score them before a swap.
 *
 * A ring of at most `capacity` rows (fewer for a wide model: 64 MiB at most), each a record as the
 * served model encoded it (its n_features inputs, before scaling; schema_decode turns one back into
 * field values). The rows belong to one model: rows of another model (a different model_id) restart
 * the ring, so a gate always compares against what the model now served has seen. Nothing here is
 * ever written to disk or to the log.
 * Threads: every function is safe from any thread (a mutex held for the copy only).
 */
#pragma once

#include <stddef.h>

#include "aescore/model.h"

typedef struct Recent Recent;

/* capacity 0 gives a ring that keeps nothing. 0 or -ENOMEM. */
int recent_new(Recent **out, size_t capacity);
Recent *recent_free(Recent *r); /* accepts NULL; returns NULL */

/* Keeps the n records x[n * m->n_features] that m scored (the oldest go first). Accepts
 * r == NULL (keeps nothing). Never fails: rows that find no memory are not kept. */
void recent_add(Recent *r, const Model *m, const float *x, size_t n);

/* A copy of what is kept: *model (a new reference, NULL when nothing is kept; the caller
 * unrefs it), *rows (n * n_features floats; the caller frees) and *n. 0 or -ENOMEM. */
int recent_snapshot(Recent *r, Model **model, float **rows, size_t *n);
