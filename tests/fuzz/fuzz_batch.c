/* fuzz_batch: a whole POST /score/batch body through the real handler (api_score_batch):
 * body checks (UTF-8, depth, trailing bytes, duplicate keys), the batch envelope, the
 * max_batch cap (50 here, so it is reachable), every record through records.c, batch
 * scoring and the reply. The reply must be one well-formed JSON document; a 200 must carry
 * one result per record with the record's id echoed, and a 422 the indices of the records
 * that do not fit.
 */
#include <stdint.h>

#include "fuzz_service.h"

static FuzzService service;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_service_init(&service, HTTP_EP_SCORE_BATCH, api_score_batch);
    return 0;
}

/* The "records" array of the request, re-parsed on our side (the handler accepted it). */
static int request_records(const uint8_t *data, size_t size)
{
    cJSON *root = fuzz_read_json(data, size);
    const cJSON *records;
    int n;

    FUZZ_CHECK(root != NULL);
    records = cJSON_GetObjectItemCaseSensitive(root, "records");
    FUZZ_CHECK(cJSON_IsArray(records));
    n = cJSON_GetArraySize(records);
    cJSON_Delete(root);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *reply = fuzz_service_request(&service, data, size);

    if (fuzz_reply.status == 200) {
        const cJSON *results = cJSON_GetObjectItemCaseSensitive(reply, "results");
        const cJSON *res, *count;
        int n = request_records(data, size), anomalies = 0;

        FUZZ_CHECK(n >= 1 && (size_t) n <= service.config.max_batch);
        FUZZ_CHECK(cJSON_IsArray(results) && cJSON_GetArraySize(results) == n);
        cJSON_ArrayForEach(res, results)
        {
            const cJSON *anomaly = cJSON_GetObjectItemCaseSensitive(res, "anomaly");
            FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(res, "id") != NULL);
            FUZZ_CHECK(cJSON_IsBool(anomaly));
            anomalies += cJSON_IsTrue(anomaly);
        }
        count = cJSON_GetObjectItemCaseSensitive(reply, "anomalies");
        FUZZ_CHECK(cJSON_IsNumber(count) && count->valuedouble == (double) anomalies);
    } else if (fuzz_reply.status == 422) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "error");
        const cJSON *indices = cJSON_GetObjectItemCaseSensitive(err, "indices");

        FUZZ_CHECK(cJSON_IsArray(indices) && cJSON_GetArraySize(indices) >= 1);
    }
    cJSON_Delete(reply);
    fuzz_reply_reset();
    return 0;
}
