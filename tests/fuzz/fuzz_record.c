/* fuzz_record: one JSON record against a fixed model's schema.
 *
 * Each input is used twice:
 *  - parsed with cJSON and given straight to records.c (records_training_set as a training
 *    record, records_read_model under the service's policy, records_id,
 *    records_issues_details), with its contracts checked: a training record gives one row
 *    of finite, missing (NaN) or text cells and a 0/1 label, the 422 details are valid
 *    JSON members;
 *  - sent as the body of POST /score through the real handler (UTF-8 and depth checks,
 *    duplicate keys, scoring, top_features, the reply), whose reply must be one well-formed
 *    JSON document and agree with what records.c said about the same record.
 */
#include <math.h>
#include <stdint.h>

#include "fuzz_service.h"

static FuzzService service;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_service_init(&service, HTTP_EP_SCORE, api_score);
    return 0;
}

/* The details fragment must make a valid object once wrapped in braces. */
static void check_details(RecordIssues *iss)
{
    char *details = records_issues_details(iss);
    size_t n;
    char *wrapped;
    cJSON *j;

    if (details == NULL)
        return; /* only after an allocation failure */
    n = strlen(details);
    wrapped = malloc(n + 3);
    FUZZ_CHECK(wrapped != NULL);
    wrapped[0] = '{';
    memcpy(wrapped + 1, details, n);
    wrapped[n + 1] = '}';
    wrapped[n + 2] = '\0';
    j = cJSON_Parse(wrapped);
    if (j == NULL) {
        fprintf(stderr, "422 details are not JSON members: %s\n", details);
        abort();
    }
    FUZZ_CHECK(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "missing")));
    cJSON_Delete(j);
    free(wrapped);
    free(details);
}

/* Returns what records_read_model said about rec. */
static int check_records(const cJSON *rec)
{
    const Model *m = service.model;
    size_t n = m->n_features;
    float *x = malloc(n * sizeof(*x)); /* exact size: ASan catches a write past the schema */
    RecordIssues iss;
    JsonBuf id = JSON_BUF_INIT;
    int r, r_model;

    FUZZ_CHECK(x != NULL);
    /* as a training record (POST /retrain) */
    cJSON *one = cJSON_CreateArray();
    Dataset *ds = NULL;
    FUZZ_CHECK(one != NULL && cJSON_AddItemReferenceToArray(one, (cJSON *) rec));
    records_issues_init(&iss);
    r = records_training_set(one, m->schema, &ds, &iss);
    FUZZ_CHECK(r == 0 || r == RECORDS_E_SCHEMA || r == -ENOMEM);
    if (r == 0) {
        FUZZ_CHECK(ds != NULL && ds->n_rows == 1 && ds->n_cols == n);
        FUZZ_CHECK(ds->label == NULL || ds->label[0] <= 1);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK((ds->is_text != NULL && ds->is_text[i]) || isnan(ds->x[i]) ||
                       isfinite(ds->x[i]));
        FUZZ_CHECK(iss.n_missing + iss.n_unknown + iss.n_invalid + iss.n_repeated == 0);
    } else if (r == RECORDS_E_SCHEMA) {
        FUZZ_CHECK(ds == NULL && iss.hits > 0 && iss.message[0] != '\0');
        FUZZ_CHECK(memchr(iss.message, '\0', sizeof(iss.message)) != NULL);
        FUZZ_CHECK(iss.n_missing <= RECORDS_MAX_NAMES && iss.n_unknown <= RECORDS_MAX_NAMES &&
                   iss.n_invalid <= RECORDS_MAX_NAMES && iss.n_repeated <= RECORDS_MAX_NAMES);
        check_details(&iss);
    }
    dataset_free(ds);
    cJSON_Delete(one); /* the reference only */
    records_issues_deinit(&iss);

    records_issues_init(&iss);
    /* the service's own policy, so the verdict can be compared with its reply below */
    RecordPolicy policy = {.max_missing_percent = service.config.max_missing_percent,
                           .lenient_numbers = service.config.lenient_numbers};
    RecordNotes notes;
    records_notes_init(&notes);
    r_model = records_read_model(rec, m, &policy, x, &notes, &iss);
    records_notes_deinit(&notes);
    records_issues_deinit(&iss);

    r = records_id(rec, &id);
    FUZZ_CHECK(r == 0 || r == RECORDS_E_SCHEMA || r == -ENOMEM);
    if (r == 0) {
        cJSON *j = cJSON_ParseWithLength(id.data, id.len);
        if (j == NULL) {
            fprintf(stderr, "records_id wrote no JSON value: %.*s\n", (int) id.len, id.data);
            abort();
        }
        cJSON_Delete(j);
    }
    json_buf_deinit(&id);
    free(x);
    return r_model;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *rec, *reply;
    int r_model = -1;

    rec = fuzz_read_json(data, size);
    if (rec != NULL) {
        r_model = check_records(rec);
        cJSON_Delete(rec);
    }

    reply = fuzz_service_request(&service, data, size);
    if (fuzz_reply.status == 200) {
        const cJSON *score = cJSON_GetObjectItemCaseSensitive(reply, "score");
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(reply, "top_features");

        /* the handler accepted it, so records.c must accept the same tree */
        FUZZ_CHECK(r_model == 0);
        FUZZ_CHECK(cJSON_IsNumber(score) || cJSON_IsNull(score));
        FUZZ_CHECK(cJSON_IsArray(top) && cJSON_GetArraySize(top) == 3);
        FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(reply, "id") != NULL);
    } else if (fuzz_reply.status == 422) {
        /* schema problems are records.c's verdict on a tree the body parser accepted */
        FUZZ_CHECK(r_model == RECORDS_E_SCHEMA);
    }
    cJSON_Delete(reply);
    fuzz_reply_reset();
    return 0;
}
