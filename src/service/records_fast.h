/* records_fast: the scoring fast path, a strict single-pass reader for the bodies clients
 * send to POST /score and /score/batch (private to src/service).
 *
 * It accepts only a narrow, common subset of JSON and declines everything else:
 *   record = {"features": {name: value, ...}} or {"values": [value, ...]} (one per field, in
 *            field order), plus an optional "id" that is null, a number finite as a double or
 *            a string; members in any order;
 *   value  = null (missing), a string for a categorical field, a number for a numeric one;
 *            fields left out of "features" are missing too;
 *   batch  = {"records": [record, ...]};
 *   names, ids and categories printable ASCII without escapes, numbers in strict JSON grammar
 *   (at most 63 characters, finite as a float; longer ones go to cJSON), JSON whitespace only,
 *   nothing after. Within that subset it produces exactly what the cJSON path does: the same
 *   field values go through the same two steps of records.h (the missing share against the
 *   policy, then the encoding and its notes), numbers through the same correctly rounded
 *   double (decimal.h). It succeeds only when the cJSON path would too: any feature unknown or
 *   repeated, a value of the wrong kind (a number sent as a string included), too many missing,
 *   any duplicate member, any other shape makes it decline, and the caller then runs the full
 *   cJSON path, which produces the error reply. So replies never depend on which path ran.
 * Why: cJSON allocates two blocks per member and the checks around it (UTF-8, depth, duplicate
 * keys) walk the body three more times; this path allocates nothing for a record (the notes
 * only when a field is imputed or a category unseen).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aescore/model.h"
#include "json_buf.h"
#include "records.h"

typedef enum RecordIdKind {
    RECORD_ID_ABSENT = 0,
    RECORD_ID_NULL,
    RECORD_ID_STRING, /* text[len]: printable ASCII, no '"' or '\\' */
    RECORD_ID_NUMBER, /* number */
} RecordIdKind;

typedef struct RecordId {
    RecordIdKind kind;
    const char *text;
    size_t len;
    double number;
} RecordId;

/* A field's key as the in-order match reads it: the name and its closing quote as up to 16
 * bytes in two words (the body's bytes loaded the same way), with masks for the bytes that
 * count, so a record's keys in field order cost two compares each. len 0: the name is
 * matched byte by byte (longer than 15 bytes, or not plain ASCII, which no key read here
 * can equal). */
typedef struct FastKey {
    uint64_t word[2], mask[2];
    size_t len; /* the bytes matched: the name and its quote */
} FastKey;

/* keys[s->n_fields] for s: made once per model by whoever reads many of its records. */
void records_fast_keys(const Schema *s, FastKey *keys);

/* What reading a record needs beside the body: the model, the policy, its schema's keys,
 * and room for one record's field values (v[m->schema->n_fields], the caller's scratch). */
typedef struct FastRecord {
    const Model *m;
    const RecordPolicy *policy;
    const FastKey *keys; /* records_fast_keys of m->schema */
    SchemaValue *v;
} FastRecord;

/* One record as the whole body into x[m->n_features] and *notes (records_notes_init'ed by the
 * caller, who deinits it either way). False: decline (x undefined). */
bool records_fast_single(const char *body, size_t len, const FastRecord *r, float *x, RecordId *id,
                         RecordNotes *notes);

/* A batch as read: n records, x[n * n_features], ids[n], notes[n]. */
typedef struct FastBatch {
    float *x;
    RecordId *ids;
    RecordNotes *notes;
    size_t n, cap;
} FastBatch;

/* A {"records": [...]} body of 1..max records into *b (records_fast_batch_free it after a
 * success); false: decline (nothing to free). */
bool records_fast_batch(const char *body, size_t len, const FastRecord *r, size_t max,
                        FastBatch *b);
void records_fast_batch_free(FastBatch *b);

/* An Open Inference Protocol request (api_oip.c) of the narrow, common form
 *   {"id"?: string, "inputs": [{"name": "record", "datatype": "FP32"|"FP64",
 *    "shape": [N, F], "data": [N * F numbers] or [[F numbers], ...N rows]}],
 *    "outputs"?: [{"name": string}, ...at most RECORDS_FAST_OUTPUTS]}
 * (members in any order, except that "shape" comes before "data"; each at most once), for a
 * plain schema of F fields and 1 <= N <= max. The same promise as above: it succeeds only
 * where api_oip.c's cJSON path would read the same rows, and the output names are left to
 * the caller, which declines (runs that path) for a name it does not know or gets twice. */
#define RECORDS_FAST_OUTPUTS 5

typedef struct RecordsTensor {
    float *x; /* n * n_features, the caller frees */
    size_t n;
    RecordId id; /* RECORD_ID_ABSENT or RECORD_ID_STRING, borrowed from the body */
    const char *outputs[RECORDS_FAST_OUTPUTS]; /* names as sent, borrowed; no escapes */
    size_t outputs_len[RECORDS_FAST_OUTPUTS];
    size_t n_outputs;
    bool has_outputs; /* "outputs" was given */
} RecordsTensor;

bool records_fast_tensor(const char *body, size_t len, const Model *m, size_t max,
                         RecordsTensor *out);

/* Appends the id as records_id does for the same record. */
void records_put_id(JsonBuf *out, const RecordId *id);
