/* fuzz_infer: a whole POST /v2/models/{name}/infer body through the real handler
 * (api_oip_infer): the body checks, the inference request, every tensor, scoring and the
 * reply. The reply must be one well-formed JSON document; an error the protocol's
 * {"error": "..."} with 400. Differential: the same body with a "parameters" member put in
 * front always takes the cJSON reader (the one-pass reader of records_fast_tensor declines
 * it), and must get the same 200 reply byte for byte whenever the body got a 200, so the
 * one-pass reader never reads a request differently from the cJSON one.
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
    fuzz_service_init(&service, HTTP_EP_V2_INFER, api_oip_infer);
    return 0;
}

/* data with "parameters":{} as its first member, or NULL when data does not start with a
 * non-empty object (then the two bodies would not mean the same). */
static uint8_t *with_parameters(const uint8_t *data, size_t size, size_t *out_size)
{
    static const char member[] = "\"parameters\":{},";
    size_t i = 0, j;
    uint8_t *out;

    while (i < size && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r'))
        i++;
    if (i >= size || data[i] != '{')
        return NULL;
    for (j = i + 1; j < size && (data[j] == ' ' || data[j] == '\n'); j++)
        ;
    if (j >= size || data[j] == '}')
        return NULL;
    out = malloc(size + sizeof(member));
    FUZZ_CHECK(out != NULL);
    memcpy(out, data, i + 1);
    memcpy(out + i + 1, member, sizeof(member) - 1);
    memcpy(out + i + sizeof(member), data + i + 1, size - i - 1);
    *out_size = size + sizeof(member) - 1;
    return out;
}

/* Has the request a "parameters" member of its own (then it took the cJSON reader)? */
static bool has_parameters(const uint8_t *data, size_t size)
{
    cJSON *root = fuzz_read_json(data, size);
    bool has = cJSON_GetObjectItemCaseSensitive(root, "parameters") != NULL;

    cJSON_Delete(root);
    return has;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *reply = fuzz_service_request(&service, data, size);
    char *first = NULL;
    size_t first_len = fuzz_reply.len, slow_size = 0;
    uint8_t *slow;

    if (fuzz_reply.status == 200) {
        const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(reply, "outputs");

        FUZZ_CHECK(cJSON_IsArray(outputs) && cJSON_GetArraySize(outputs) >= 1);
        first = malloc(first_len + 1);
        FUZZ_CHECK(first != NULL);
        memcpy(first, fuzz_reply.body, first_len + 1);
    }
    cJSON_Delete(reply);
    slow = first != NULL && !has_parameters(data, size) ? with_parameters(data, size, &slow_size)
                                                        : NULL;
    if (slow != NULL) {
        cJSON_Delete(fuzz_service_request(&service, slow, slow_size));
        if (fuzz_reply.status != 200 || fuzz_reply.len != first_len ||
            memcmp(fuzz_reply.body, first, first_len) != 0) {
            fprintf(stderr, "the two readers differ:\n%s\n%u %s\n", first, fuzz_reply.status,
                    fuzz_reply.body);
            abort();
        }
    }
    free(slow);
    free(first);
    return 0;
}
