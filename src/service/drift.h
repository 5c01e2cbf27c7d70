/* drift: rolling bin counts of the fields and scores of recently scored records, and their
 * population stability index against the training distribution (DESIGN section 3d;
 * private to src/service).
 *
 * The served model's schema carries each field's training distribution (schema.h profile:
 * numeric decile bins, categorical shares); its percentile table gives the validation
 * score deciles. Every scored record adds one count per field to the bin its encoded value
 * falls in, and one to its score's decile: counts only, never a value. The window is the
 * last `window` records, kept as DRIFT_BLOCKS blocks of window / DRIFT_BLOCKS records, the
 * oldest block dropped as a new one starts. Records of another model (a different model_id)
 * restart the counts.
 *
 * PSI = sum over bins of (a - e) ln(a / e), a the recent share and e the training share,
 * each at least DRIFT_FLOOR so an empty bin counts as a rare one instead of infinity.
 * Below 0.1 a field is stable, 0.1 to 0.25 worth watching, above 0.25 shifted.
 * Threads: every function is safe from any thread (one mutex, held for counting and for
 * the copy a report is built from).
 */
#pragma once

#include <stddef.h>

#include "aescore/model.h"
#include "json_buf.h"

#define DRIFT_BLOCKS 10
#define DRIFT_FLOOR  1e-4

typedef struct Drift Drift;

/* window 0 keeps nothing (GET /drift then says so). 0 or -ENOMEM. */
int drift_new(Drift **out, size_t window);
Drift *drift_free(Drift *d); /* accepts NULL; returns NULL */

/* Counts n records: rows x (n * m->n_features, as m encoded them) and their scores. Never
 * fails: without memory for a new model's counts, nothing is counted. */
void drift_observe(Drift *d, const Model *m, const float *x, size_t n, const float *scores);

/* The GET /drift object for m, the model served: {"model_id", "window": {"records",
 * "capacity", "since"}, "floor", "score_psi", "score": {"psi", "bins"}, "features": [{"name",
 * "kind", "psi", "band", "bins": [{"edge"|"category", "expected", "recent"}]}]} with features by
 * descending PSI; psi is null while the window is empty, and "features" is empty for a
 * model whose file has no training distribution ("note" says why). 0 or -ENOMEM. */
int drift_report(Drift *d, const Model *m, JsonBuf *b);

/* Appends aescore_score_psi and aescore_feature_psi{feature="..."} in Prometheus text to
 * the malloc'd buffer *text of *len bytes (nothing while the window is empty). 0 or
 * -ENOMEM (*text is then left as it was). */
int drift_metrics(Drift *d, const Model *m, char **text, size_t *len);
