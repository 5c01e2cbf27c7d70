/* reference: builds the neighbour reference a trained model stores (model.h): a seeded
 * sample of the normal training rows, or k-means centres of them, each centre the mean of at
 * least REFERENCE_MIN_ROWS rows (a model file that carries raw records is a file of personal
 * data; one that carries only such means is less so).
 *
 * Rows are standardised (the network's inputs), n x f, row-major. Deterministic: the same
 * rows and seed give the same bits. Single-threaded; cancel (may be NULL) is looked at
 * between passes over the rows.
 * Errors: 0; -EINVAL (n or cap 0, or centres from fewer than REFERENCE_MIN_ROWS rows);
 * -ENOMEM; -ECANCELED when *cancel was set.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define REFERENCE_MIN_ROWS 5  /* rows behind every centre */
#define REFERENCE_ITERS    10 /* k-means (Lloyd) iterations at most */

/* min(cap, n) distinct rows of z in a seeded random order into *out (malloc'd, caller
 * frees), their count in *n_out. */
int reference_sample(const float *z, size_t n, size_t f, size_t cap, uint64_t seed, float **out,
                     size_t *n_out);

/* At most min(k, n / REFERENCE_MIN_ROWS) k-means centres of z into *out (malloc'd), their
 * count in *n_out: seeded from a sample of rows, REFERENCE_ITERS Lloyd iterations, then
 * every cluster of fewer than REFERENCE_MIN_ROWS rows is dropped, its rows join the nearest
 * remaining centre, and each centre becomes the mean of its rows. assign, when not NULL,
 * receives n entries: the centre whose mean each row is part of. */
int reference_centres(const float *z, size_t n, size_t f, size_t k, uint64_t seed,
                      const atomic_bool *cancel, float **out, size_t *n_out, size_t *assign);
