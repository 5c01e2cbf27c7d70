/* fuzz_service: what fuzz_record.c, fuzz_batch.c and fuzz_infer.c share.
 *
 * 1. A fixed 4-feature model built by hand (model_new + fields, no training and no file),
 *    so the schema the seed corpora are written against never drifts.
 * 2. A fake HttpServer/HttpRequest around it, so the real handlers (api_score,
 *    api_score_batch) run on a fuzzed body exactly as MHD would hand it over.
 * 3. A stand-in for the four libmicrohttpd functions http_reply.c calls. The harness
 *    executable defines them, so the dynamic linker binds http_reply.c's calls here rather
 *    than to libmicrohttpd.so; the reply (status, content type, body) is captured instead
 *    of being sent, and the harness checks it: every reply must be one JSON document, an
 *    error must be the envelope {"error":{"code","message",...}} whose code maps to the
 *    status that was sent. A malformed reply is as much a bug as a crash.
 *
 * FUZZ_VERBOSE=1 in the environment prints every reply (handy when replaying an input).
 * Include it in exactly one translation unit (it defines functions). */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/service/api.h"
#include "../../src/service/http_body.h"
#include "../../src/service/http_reply.h"
#include "../../src/service/http_request.h"
#include "../../src/service/json_buf.h"
#include "../../src/service/records.h"
#include "aescore/log.h"
#include "aescore/model.h"
#include "fuzz_check.h"

#define FUZZ_N_FEATURES 4
#define FUZZ_HIDDEN     2

static const char *const fuzz_feature_names[FUZZ_N_FEATURES] = {"amount", "age", "limit", "pay_0"};

/* ---- the captured reply ---- */

struct MHD_Response {
    char *body;
    size_t len;
    bool owned;
    char content_type[64];
};

static struct {
    bool queued;
    unsigned status;
    char content_type[64];
    char *body;
    size_t len;
} fuzz_reply;

static void fuzz_reply_reset(void)
{
    free(fuzz_reply.body);
    memset(&fuzz_reply, 0, sizeof(fuzz_reply));
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    if (mode == MHD_RESPMEM_MUST_COPY) {
        r->body = malloc(size + 1);
        if (r->body == NULL) {
            free(r);
            return NULL;
        }
        memcpy(r->body, buffer, size);
        r->owned = true;
    } else {
        r->body = buffer;
        r->owned = mode == MHD_RESPMEM_MUST_FREE;
    }
    r->len = size;
    return r;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header,
                                        const char *content)
{
    FUZZ_CHECK(header != NULL && content != NULL);
    if (strcasecmp(header, MHD_HTTP_HEADER_CONTENT_TYPE) == 0)
        snprintf(response->content_type, sizeof(response->content_type), "%s", content);
    return MHD_YES;
}

void MHD_destroy_response(struct MHD_Response *response)
{
    if (response == NULL)
        return;
    if (response->owned)
        free(response->body);
    free(response);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
                                   struct MHD_Response *response)
{
    (void) connection;
    FUZZ_CHECK(response != NULL);
    FUZZ_CHECK(!fuzz_reply.queued); /* one reply per request */
    fuzz_reply.queued = true;
    fuzz_reply.status = status_code;
    memcpy(fuzz_reply.content_type, response->content_type, sizeof(fuzz_reply.content_type));
    fuzz_reply.body = malloc(response->len + 1);
    FUZZ_CHECK(fuzz_reply.body != NULL);
    memcpy(fuzz_reply.body, response->body, response->len);
    fuzz_reply.body[response->len] = '\0';
    fuzz_reply.len = response->len;
    return MHD_YES;
}

/* ---- the fixed model and the fake server ---- */

static Model *fuzz_make_model(void)
{
    const size_t sizes[] = {FUZZ_N_FEATURES, FUZZ_HIDDEN, FUZZ_N_FEATURES};
    const NnActivation act[] = {NN_RELU, NN_LINEAR};
    Model *m = NULL;
    Nn nn;
    uint64_t seed = 7;

    FUZZ_CHECK(nn_init(&nn, 2, sizes, act) == 0);
    FUZZ_CHECK(model_new(&m, &nn, 2) == 0);
    for (size_t i = 0; i < FUZZ_N_FEATURES; i++) {
        FUZZ_CHECK(model_set_name(m, i, fuzz_feature_names[i]) == 0);
        m->mean[i] = (float) (i * 10);
        m->std[i] = 1.0f + (float) i;
    }
    for (size_t i = 0; i < m->n_members; i++)
        nn_init_params(&m->nn, m->params + i * m->nn.n_params, seed + i);
    for (size_t k = 0; k < MODEL_PERCENTILES; k++)
        m->percentiles[k] = 0.01f * (float) k;
    m->threshold = m->percentiles[990];
    m->meta.rows = 1000;
    m->meta.seed = seed;
    m->meta.epochs_run = 1;
    m->meta.best_epoch = 1;
    m->meta.threshold_q = 0.99f;
    FUZZ_CHECK(model_set_numeric_schema(m) == 0);
    model_compute_id(m);
    FUZZ_CHECK(model_validate(m) == 0);
    return m;
}

static const char *const fuzz_endpoints[] = {"score", "score_batch", "other"};

typedef struct FuzzService {
    Config config;
    HttpServer server;
    HttpRoute route;
    Model *model; /* a reference of our own, for records_read_model */
    bool oip;     /* an Open Inference Protocol route: errors are {"error": "..."} */
} FuzzService;

/* Sets up *fs once: a served model (version 1), metrics, a small max_batch (so the cap is
 * reachable within libFuzzer's input sizes) and top_features on (its code path runs). */
static void fuzz_service_init(FuzzService *fs, HttpEndpoint ep, HttpHandler handler)
{
    log_init(LOG_LEVEL_ERR); /* the 500 path logs at info: keep the fuzzer's output clean */
    memset(fs, 0, sizeof(*fs));
    config_defaults(&fs->config);
    fs->config.max_batch = 50;
    fs->config.top_features = 3;
    fs->server.config = &fs->config;
    fs->server.listen_fd = -1;
    FUZZ_CHECK(model_slot_new(&fs->server.slot) == 0);
    FUZZ_CHECK(metrics_new(&fs->server.metrics, fuzz_endpoints, 3) == 0);
    fs->model = fuzz_make_model();
    model_slot_publish(fs->server.slot, model_ref(fs->model));
    fs->oip = ep == HTTP_EP_V2_INFER;
    fs->route = (HttpRoute){.path = ep == HTTP_EP_SCORE         ? "/score"
                                    : ep == HTTP_EP_SCORE_BATCH ? "/score/batch"
                                                                : API_OIP_MODEL "/infer",
                            .method = "POST",
                            .endpoint = ep,
                            .body = HTTP_BODY_JSON,
                            .handler = handler};
}

/* data[size] read as the server reads a body (http_json_read on a copy, which it
 * rewrites), or NULL where the server answers invalid_json for the grammar. */
static cJSON *fuzz_read_json(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    const char *why;
    size_t at, n = size;
    cJSON *root = NULL;

    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    copy[size] = '\0';
    if (http_json_read(copy, &n, &root, &at, &why) != 0)
        root = NULL;
    free(copy);
    return root;
}

/* Runs the route's handler on data[size] as the request body and checks the reply. Returns
 * the parsed reply (caller cJSON_Deletes). */
static cJSON *fuzz_service_request(FuzzService *fs, const uint8_t *data, size_t size)
{
    size_t plen = strlen(fs->route.path);
    HttpRequest *req = calloc(1, sizeof(*req) + plen + 1); /* as http_server makes it */
    cJSON *reply, *err, *code, *msg;
    unsigned status;
    bool replied;

    FUZZ_CHECK(req != NULL);
    fuzz_reply_reset();
    memcpy(req->path, fs->route.path, plen);
    req->server = &fs->server;
    req->route = &fs->route;
    req->endpoint = fs->route.endpoint;
    req->method = "POST";
    req->oip = fs->oip;
    req->body_limit = fs->config.max_body_bytes;
    /* as http_body_append leaves it: exactly len bytes plus a NUL, so ASan sees any read
     * past the terminator */
    req->body = malloc(size + 1);
    FUZZ_CHECK(req->body != NULL);
    if (size > 0)
        memcpy(req->body, data, size);
    req->body[size] = '\0';
    req->body_len = size;
    req->body_cap = size + 1;

    fs->route.handler(req);
    replied = req->replied;
    status = req->status;
    free(req->body);
    free(req);

    if (getenv("FUZZ_VERBOSE") != NULL) /* replaying a reproducer: show the reply */
        fprintf(stderr, "reply %u: %.*s", fuzz_reply.status, (int) fuzz_reply.len,
                fuzz_reply.body ? fuzz_reply.body : "");
    FUZZ_CHECK(replied && fuzz_reply.queued);
    FUZZ_CHECK(status == fuzz_reply.status);
    FUZZ_CHECK(strcmp(fuzz_reply.content_type, "application/json") == 0);
    reply = cJSON_ParseWithLength(fuzz_reply.body, fuzz_reply.len);
    if (reply == NULL) {
        fprintf(stderr, "reply %u is not JSON: %.*s\n", fuzz_reply.status, (int) fuzz_reply.len,
                fuzz_reply.body);
        abort();
    }
    FUZZ_CHECK(cJSON_IsObject(reply));
    if (fuzz_reply.status == 200) {
        FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(reply, "error") == NULL);
        return reply;
    }
    err = cJSON_GetObjectItemCaseSensitive(reply, "error");
    if (fs->oip) { /* the protocol's {"error": "..."}, and a client's fault is a 400 */
        FUZZ_CHECK(cJSON_IsString(err) && err->valuestring[0] != '\0');
        FUZZ_CHECK(fuzz_reply.status == 400);
        return reply;
    }
    FUZZ_CHECK(cJSON_IsObject(err));
    code = cJSON_GetObjectItemCaseSensitive(err, "code");
    msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    FUZZ_CHECK(cJSON_IsString(code) && cJSON_IsString(msg));
    {
        bool known = false;
        for (int e = 0; e < HTTP_E_COUNT_; e++)
            if (strcmp(http_error_code((HttpError) e), code->valuestring) == 0) {
                FUZZ_CHECK(http_error_status((HttpError) e) == fuzz_reply.status);
                known = true;
            }
        FUZZ_CHECK(known);
    }
    /* a hostile body is the client's fault: 400/413/422, never a 5xx */
    if (fuzz_reply.status >= 500) {
        fprintf(stderr, "server error on a client body: %s\n", fuzz_reply.body);
        abort();
    }
    return reply;
}
