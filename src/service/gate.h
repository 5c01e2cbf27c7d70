/* gate: whether a candidate model may replace the served one (DESIGN section 3b), and the
 * evidence, as a JSON object, for GET /retrain and GET /models (private to src/service).
 *
 * Gates, in order:
 *  - schema: the candidate takes the served model's fields with the same kinds (dropped,
 *    added and retyped fields fail it unless allowed); category changes are listed only;
 *  - finite: train_model returns only validated models, so this records that it held;
 *  - recent_records: both models score the records the served one scored lately
 *    (recent.h); the candidate is held when its anomaly rate, or the share of records with a
 *    category it never saw, is more than the configured percentage points above the served
 *    model's. With fewer than GATE_MIN_RECORDS records the gate passes and says so.
 * Threads: reentrant (the Recent is locked by its own functions).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "aescore/model.h"
#include "aescore/recent.h"
#include "json_buf.h"

#define GATE_MIN_RECORDS 100

typedef struct GateLimits {
    bool allow_schema_change;
    unsigned max_anomaly_increase; /* percentage points */
    unsigned max_unseen_increase;  /* percentage points */
} GateLimits;

typedef struct GateVerdict {
    bool schema_ok;   /* false: the job fails with schema_change */
    bool recent_ok;   /* false: the candidate is held */
    char reason[256]; /* one line: why it failed or is held; "" when both passed */
} GateVerdict;

/* Judges cand against served (NULL: nothing served, every gate passes) and writes the
 * evidence object to *evidence. 0, -ENOMEM, or -ECANCELED soon after *cancel is set (it is
 * looked at before every record scored). */
int gate_judge(const Model *served, const Model *cand, Recent *recent, const GateLimits *limits,
               const atomic_bool *cancel, GateVerdict *v, JsonBuf *evidence);
