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

/* Parses req->body with http_json_read, then refuses duplicate object keys (except inside
 * a record's "features" object, which records.c reports by name). Returns HTTP_BODY_READY
 * with *out (caller cJSON_Deletes), or HTTP_BODY_REPLIED with the 400 queued and *ret
 * holding MHD's result. May shorten req->body (see http_json_read). */
int http_body_parse_json(HttpRequest *req, cJSON **out, enum MHD_Result *ret);

/* The one strict reader of JSON bodies, for the handlers and for the tests and fuzzers that
 * must read a body as the server does: non-empty, valid UTF-8, http_json_grammar, then
 * cJSON. s[0..*n-1] must be writable with a NUL after it: each \u0000 escape in a string is
 * rewritten in place to JSON_NUL (json_buf.h) so cJSON's C strings keep their length, and
 * *n shrinks by 4 for each. 0 with *out (caller cJSON_Deletes); -E2BIG when nested deeper
 * than HTTP_JSON_MAX_DEPTH; -EINVAL with the byte offset and a short reason; duplicate keys
 * are not checked here. */
int http_json_read(char *s, size_t *n, cJSON **out, size_t *offset, const char **why);

/* body[len] as http_body_parse_json accepts it (http_json_read on a copy, then no duplicate
 * key), or NULL where it would reply 400 or cannot allocate: the server's reading of a body
 * for the tests and fuzzers that compare other readers with it. Caller cJSON_Deletes. */
cJSON *http_json_body(const char *body, size_t len);

/* The first object key that occurs twice in root (not counting members of a "features"
 * object), or NULL; *err = -ENOMEM when it could not tell. The key is borrowed from root. */
const char *http_json_duplicate_key(const cJSON *root, int *err);

/* The one walk over a JSON body before cJSON parses it: RFC 8259's grammar (one value with
 * optional whitespace around it; strings without raw control characters and with known
 * escapes; numbers as the RFC writes them: no 01, 1., .5, +1, hex) and at most max_depth
 * nested arrays and objects (the walk stops at the first container past it, so a hostile
 * body costs no more than max_depth levels). 0; -E2BIG when nested deeper; -EINVAL with
 * the byte offset and a short reason. */
int http_json_grammar(const char *s, size_t n, size_t max_depth, size_t *offset, const char **why);
