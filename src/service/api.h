/* api: the endpoint handlers, one file per family (api_score.c, api_retrain.c,
 * api_model.c, api_health.c); http_server.c's route table names them (private to
 * src/service). Each runs once per request, on an MHD pool thread, with the whole body in
 * req->body, and replies through http_reply.h.
 */
#pragma once

#include <microhttpd.h>

#include "aescore/model.h"
#include "http_request.h"

enum MHD_Result api_score(HttpRequest *req);
enum MHD_Result api_score_batch(HttpRequest *req);
enum MHD_Result api_retrain_start(HttpRequest *req);
enum MHD_Result api_retrain_status(HttpRequest *req);
enum MHD_Result api_retrain_cancel(HttpRequest *req);
/* 409 not_trainer: what a role = replica answers to anything that would write the model file
 * (POST/DELETE /retrain, POST /model/rollback). */
enum MHD_Result api_reply_not_trainer(HttpRequest *req);
enum MHD_Result api_model_get(HttpRequest *req);
enum MHD_Result api_model_reload(HttpRequest *req);
enum MHD_Result api_model_rollback(HttpRequest *req);
enum MHD_Result api_model_promote(HttpRequest *req);
enum MHD_Result api_models(HttpRequest *req);
enum MHD_Result api_health(HttpRequest *req);
enum MHD_Result api_health_live(HttpRequest *req);
enum MHD_Result api_metrics(HttpRequest *req);

/* Scores n rows x[n * n_features] as POST /score/batch does (model_score_batch) into
 * scores[n], and lets the metrics, the recent records and drift see them: the one batch scorer,
 * shared by /score/batch and /v2/.../infer. 0 or -ENOMEM. */
int api_score_rows(HttpRequest *req, const Model *m, const float *x, size_t n, float *scores);
/* The per-field squared errors of n rows into err[n * n_fields] (a categorical field's summed
 * over its columns, as top_features reports them). 0 or -ENOMEM. */
int api_score_field_errors(const Model *m, const float *x, size_t n, float *err);

/* The Open Inference Protocol (KServe v2 REST, api_oip.c). */
#define API_OIP_MODEL "/v2/models/{name}"
/* Maps a /v2 path to its route's path in the table (*route_path) and the model's {v} into
 * version[API_OIP_VERSION_MAX] ("" without). 0; -ENOENT: not a protocol path; -ESRCH: a
 * model path of another name than model_name, or a {v} too long to be ours. */
int api_oip_path(const char *path, const char *model_name, const char **route_path, char *version);
enum MHD_Result api_oip_server(HttpRequest *req);
enum MHD_Result api_oip_live(HttpRequest *req);
enum MHD_Result api_oip_ready(HttpRequest *req);
enum MHD_Result api_oip_model(HttpRequest *req);
enum MHD_Result api_oip_model_ready(HttpRequest *req);
enum MHD_Result api_oip_infer(HttpRequest *req);
enum MHD_Result api_drift(HttpRequest *req);
enum MHD_Result api_status_page(HttpRequest *req);
