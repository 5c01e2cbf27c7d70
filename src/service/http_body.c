/* http_body: request bodies, from MHD's chunks to a checked cJSON tree.
 *
 * The body is capped twice: http_server refuses a too-large Content-Length on the first
 * callback, and here every chunk (chunked bodies have no length up front) is counted
 * against the route's cap; past it the bytes are dropped and the final callback answers
 * 413. Parsing is defensive in the order that costs least: UTF-8 validity and nesting depth
 * are scanned before cJSON sees the bytes (cJSON recurses, and its limit of 1000 is far
 * above what a record needs), then cJSON_ParseWithLengthOpts with an end pointer (never
 * cJSON_GetErrorPtr: it is process-global) so trailing bytes can be refused, then one walk
 * for duplicate keys, which cJSON silently keeps.
 */
#include "http_body.h"
#include "http_reply.h"
#include "json_buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int http_body_append(HttpRequest *req, const char *data, size_t *size)
{
    size_t n = *size;

    *size = 0;
    if (req->too_large || req->replied)
        return HTTP_BODY_MORE;
    if (n > req->body_limit - req->body_len) {
        req->too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return HTTP_BODY_MORE;
    }
    if (req->body_len + n + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        char *p;

        while (cap < req->body_len + n + 1)
            cap *= 2;
        if (cap > req->body_limit + 1)
            cap = req->body_limit + 1;
        p = realloc(req->body, cap);
        if (p == NULL)
            return -ENOMEM;
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
    return HTTP_BODY_MORE;
}

size_t http_json_depth(const char *s, size_t n, size_t limit)
{
    size_t depth = 0, max = 0;
    bool in_string = false;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit)
                    return max;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

static int key_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *) a, *y = *(const cJSON *const *) b;

    return strcmp(x->string, y->string);
}

/* The first key that occurs twice in object o, or NULL; -ENOMEM as *err. Small objects are
 * compared pairwise; large ones sorted, so a hostile object of 100k keys stays n log n. */
static const char *duplicate_key(const cJSON *o, int *err)
{
    size_t n = 0, i = 0;
    const cJSON *a, *b;
    const cJSON **keys;
    const char *dup = NULL;

    for (a = o->child; a != NULL; a = a->next)
        n++;
    if (n <= 16) {
        for (a = o->child; a != NULL; a = a->next)
            for (b = a->next; b != NULL; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return a->string;
        return NULL;
    }
    keys = malloc(n * sizeof(*keys));
    if (keys == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    for (a = o->child; a != NULL; a = a->next)
        keys[i++] = a;
    qsort(keys, n, sizeof(*keys), key_cmp);
    for (i = 1; i < n && dup == NULL; i++)
        if (strcmp(keys[i - 1]->string, keys[i]->string) == 0)
            dup = keys[i]->string;
    free(keys);
    return dup;
}

/* Walks the tree (depth already bounded) for duplicate keys; a "features" object is left
 * to records.c, which names repeated features in a 422. */
static const char *find_duplicate(const cJSON *v, int *err)
{
    const char *dup;

    if (cJSON_IsObject(v)) {
        dup = duplicate_key(v, err);
        if (dup != NULL || *err)
            return dup;
    }
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        for (const cJSON *c = v->child; c != NULL; c = c->next) {
            if (cJSON_IsObject(v) && cJSON_IsObject(c) && strcmp(c->string, "features") == 0) {
                for (const cJSON *f = c->child; f != NULL; f = f->next) {
                    dup = find_duplicate(f, err);
                    if (dup != NULL || *err)
                        return dup;
                }
                continue;
            }
            dup = find_duplicate(c, err);
            if (dup != NULL || *err)
                return dup;
        }
    }
    return NULL;
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int http_body_parse_json(HttpRequest *req, cJSON **out, enum MHD_Result *ret)
{
    const char *body = req->body ? req->body : "";
    size_t len = req->body_len, depth;
    const char *end = NULL, *dup;
    cJSON *root = NULL;
    int err = 0;

    *out = NULL;
    if (len == 0) {
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, NULL, "the request body is empty");
        return HTTP_BODY_REPLIED;
    }
    if (!json_utf8_valid(body, len)) {
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, NULL, "the body is not valid UTF-8");
        return HTTP_BODY_REPLIED;
    }
    depth = http_json_depth(body, len, HTTP_JSON_MAX_DEPTH);
    if (depth > HTTP_JSON_MAX_DEPTH) {
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, NULL, "JSON nested deeper than %d levels",
                                HTTP_JSON_MAX_DEPTH);
        return HTTP_BODY_REPLIED;
    }
    root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root == NULL) {
        size_t off = end != NULL && end >= body ? (size_t) (end - body) : 0;
        *ret =
            http_reply_error(req, HTTP_E_INVALID_JSON, NULL, "malformed JSON near byte %zu", off);
        return HTTP_BODY_REPLIED;
    }
    while (end < body + len && is_json_space(*end))
        end++;
    if (end != body + len) {
        cJSON_Delete(root);
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, NULL,
                                "unexpected bytes after the JSON value at byte %zu",
                                (size_t) (end - body));
        return HTTP_BODY_REPLIED;
    }
    dup = find_duplicate(root, &err);
    if (err) {
        cJSON_Delete(root);
        *ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
        return HTTP_BODY_REPLIED;
    }
    if (dup != NULL) {
        JsonBuf d = JSON_BUF_INIT;
        json_buf_puts(&d, "\"key\":");
        json_buf_string(&d, dup, strlen(dup));
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, d.oom ? NULL : d.data,
                                "duplicate object key");
        json_buf_deinit(&d);
        cJSON_Delete(root);
        return HTTP_BODY_REPLIED;
    }
    *out = root;
    return HTTP_BODY_READY;
}
