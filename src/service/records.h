/* records: a JSON record (a cJSON tree) -> field values against a model's schema, for
 * scoring, and training records -> the values of a mixed Dataset (private to src/service;
 * see records.c for the rules).
 * Threads: reentrant; every function works on its arguments only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "aescore/dataset.h"
#include "aescore/model.h"
#include "aescore/schema.h"
#include "json_buf.h"

#define RECORDS_MAX_NAMES 64 /* names listed per category in a 422 */

typedef struct RecordIssues {
    JsonBuf missing, unknown, invalid, repeated; /* comma-separated JSON strings */
    size_t n_missing, n_unknown, n_invalid, n_repeated;
    JsonBuf indices;   /* batch: comma-separated record indices, the first RECORDS_MAX_NAMES */
    size_t n_indices;  /* indices listed */
    size_t n_bad;      /* records that did not fit, listed or not */
    size_t hits;       /* problems seen, counting repeats the lists leave out */
    char message[200]; /* first problem, human readable, never a record value */
} RecordIssues;

enum {
    RECORDS_E_SCHEMA = 1, /* the record does not fit: issues say how */
    RECORDS_E_NO_NAMES,   /* training without a served model: the first record names no features */
    RECORDS_E_TOO_WIDE,   /* training: more features than MODEL_MAX_FEATURES */
};

void records_issues_init(RecordIssues *iss);
void records_issues_deinit(RecordIssues *iss);
/* Counts a record that did not fit (batch index `index`), listing the first
 * RECORDS_MAX_NAMES indices. */
void records_issues_add_index(RecordIssues *iss, size_t index);
/* Lists a Dataset's mismatch with a schema as missing, unknown and invalid (a numeric field
 * sent as text) names. */
void records_issues_from_mismatch(RecordIssues *iss, const SchemaMismatch *mm);
/* Renders issues as envelope details ("missing":[..],"unknown":[..],...). Caller frees. */
char *records_issues_details(RecordIssues *iss);

/* How strictly scoring records are read (from the Config). */
typedef struct RecordPolicy {
    unsigned max_missing_percent; /* more missing fields than this share: 422 */
    bool lenient_numbers;         /* "12.5" accepted for a numeric field */
} RecordPolicy;

/* What reading a record did besides filling x: fields imputed, categories never seen. */
typedef struct RecordNotes {
    JsonBuf imputed, unseen; /* comma-separated JSON strings (field names) */
    size_t n_imputed, n_unseen;
} RecordNotes;

void records_notes_init(RecordNotes *notes);
void records_notes_deinit(RecordNotes *notes);
/* Appends ,"imputed":[...] and ,"unseen":[...] when they are not empty. */
void records_put_notes(JsonBuf *out, const RecordNotes *notes);

/* The two steps after a record's field values v[s->n_fields] are read and checked against
 * their fields, shared by this reader and the fast one (records_fast.h) so both answer
 * alike: whether the missing share is within policy, then the encoding into x[n_columns]
 * with the notes (may be NULL; allocates only when there is something to note). */
bool records_missing_allowed(const Schema *s, const RecordPolicy *policy, const SchemaValue *v);
int records_encode(const Schema *s, const SchemaValue *v, float *x, RecordNotes *notes);

/* Reads one scoring record against the model's schema (fields by name, or "values" in field
 * order; see records.c) and encodes it into x[m->n_features]. notes (may be NULL) collects
 * the imputed fields and unseen categories. Returns 0, RECORDS_E_SCHEMA (iss says why) or
 * -ENOMEM. */
int records_read_model(const cJSON *rec, const Model *m, const RecordPolicy *policy, float *x,
                       RecordNotes *notes, RecordIssues *iss);

/* Training records (POST /retrain) -> a mixed Dataset through the core's builder
 * (dataset.h), so JSON records and CSV mean the same. Columns: with a served schema its
 * fields then the columns it ignored ("values" arrays fill the fields in order); without
 * one, the first record's feature names. A record is {"features": {name: value}} or
 * {"values": [...]}; values are numbers, strings (a column with any string is a text
 * column), null or absent (missing); "label": 0|1 and "id" are allowed. Every record is
 * checked before anything is built. Returns 0 and *out; RECORDS_E_SCHEMA (iss names the
 * records by index, n_bad counts them, and the fields); RECORDS_E_NO_NAMES;
 * RECORDS_E_TOO_WIDE; or -ENOMEM. */
int records_training_set(const cJSON *records, const Schema *served, Dataset **out,
                         RecordIssues *iss);

/* Appends a numeric id as it is echoed: integers as integers (7, not 7.0000000000). */
void records_put_id_number(JsonBuf *out, double v);

/* The record's "id" (string or number) as a JSON fragment for echoing ("null" when
 * absent). Returns 0 or RECORDS_E_SCHEMA for another type. */
int records_id(const cJSON *rec, JsonBuf *out);
