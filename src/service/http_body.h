/* http_body: the request body: accumulation under the route's cap, and the one strict
 * JSON parse (private to src/service).
 * Threads: per request; no shared state.
 */
#pragma once

#include <microhttpd.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "http_request.h"

enum {
    HTTP_BODY_MORE = 0,    /* keep reading */
    HTTP_BODY_READY = 1,   /* the whole body is in req->body */
    HTTP_BODY_REPLIED = 2, /* an error reply was queued (or tried): return its result */
};
#define HTTP_JSON_MAX_DEPTH 16

/* Takes one body chunk (upload_data, *size) into req; sets *size = 0. Returns
 * HTTP_BODY_MORE, or -ENOMEM. */
int http_body_append(HttpRequest *req, const char *data, size_t *size);

/* Parses req->body as one JSON value: valid UTF-8, nesting at most HTTP_JSON_MAX_DEPTH
 * (checked before parsing), no trailing bytes but whitespace, no duplicate object keys
 * (except inside a record's "features" object, which records.c reports by name).
 * Returns HTTP_BODY_READY with *out (caller cJSON_Deletes), or HTTP_BODY_REPLIED with
 * the 400 queued and *ret holding MHD's result. */
int http_body_parse_json(HttpRequest *req, cJSON **out, enum MHD_Result *ret);

/* Checks bytes for UTF-8 validity (no overlongs, no surrogates). */
bool json_utf8_valid(const char *s, size_t n);

/* The one walk over a JSON body before cJSON parses it: RFC 8259's grammar (one value with
 * optional whitespace around it; strings without raw control characters and with known
 * escapes; numbers as the RFC writes them: no 01, 1., .5, +1, hex) and at most max_depth
 * nested arrays and objects (the walk stops at the first container past it, so a hostile
 * body costs no more than max_depth levels). 0; -E2BIG when nested deeper; -EINVAL with
 * the byte offset and a short reason. */
int http_json_grammar(const char *s, size_t n, size_t max_depth, size_t *offset, const char **why);
