/* api: the endpoint handlers, one file per family (api_score.c, api_retrain.c,
 * api_model.c, api_health.c); http_server.c's route table names them (private to
 * src/service). Each runs once per request, on an MHD pool thread, with the whole body in
 * req->body, and replies through http_reply.h.
 */
#pragma once

#include <microhttpd.h>

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
enum MHD_Result api_drift(HttpRequest *req);
enum MHD_Result api_status_page(HttpRequest *req);
