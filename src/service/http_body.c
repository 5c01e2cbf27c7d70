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

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/decimal.h"
#include "http_reply.h"
#include "json_buf.h"

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
        /* a small declared length is the size (MHD delivers no more): one small block for
         * the single record most requests are; a large one is not trusted with memory
         * before its bytes arrive */
        size_t cap = req->body_cap                                         ? req->body_cap
                     : req->body_declared > 0 && req->body_declared < 4096 ? req->body_declared + 1
                                                                           : 4096;
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

/* ---- RFC 8259, checked before cJSON sees a byte ----
 * cJSON is lenient where another parser is not: it takes raw control characters in
 * strings and numbers such as 01, 1. or -.5. A proxy, a log pipeline or the client's own
 * parser would read those differently (or refuse them), so the body must be JSON as the
 * RFC defines it; numbers are read by decimal.h's JSON grammar, the one number reader. */

typedef struct Grammar {
    const char *p, *end;
    size_t depth, max_depth; /* open containers; more than max_depth: -E2BIG */
    bool too_deep;
    const char *why; /* first problem */
} Grammar;

static bool g_fail(Grammar *g, const char *why)
{
    if (g->why == NULL)
        g->why = why;
    return false;
}

static void g_ws(Grammar *g)
{
    while (g->p < g->end && is_json_space(*g->p))
        g->p++;
}

static bool g_string(Grammar *g)
{
    for (g->p++; g->p < g->end; g->p++) {
        unsigned char c = (unsigned char) *g->p;

        if (c == '"') {
            g->p++;
            return true;
        }
        if (c < 0x20)
            return g_fail(g, "a control character inside a string (escape it)");
        if (c != '\\')
            continue;
        if (++g->p >= g->end)
            break;
        if (*g->p == 'u') {
            for (int k = 1; k <= 4; k++)
                if (g->p + k >= g->end || !isxdigit((unsigned char) g->p[k]))
                    return g_fail(g, "\\u needs four hex digits");
            g->p += 4;
        } else if (strchr("\"\\/bfnrt", *g->p) == NULL || *g->p == '\0') {
            return g_fail(g, "an unknown escape in a string");
        }
    }
    return g_fail(g, "an unterminated string");
}

static bool g_value(Grammar *g);

/* An object or an array (the cursor on '{' or '['). The nesting is counted before going
 * in, so the recursion is never deeper than max_depth, whatever the body holds. */
static bool g_container(Grammar *g)
{
    char close = *g->p == '{' ? '}' : ']';
    bool object = close == '}';

    if (++g->depth > g->max_depth) {
        g->too_deep = true;
        return g_fail(g, "nested too deeply");
    }
    g->p++;
    g_ws(g);
    if (g->p < g->end && *g->p == close) {
        g->p++;
        g->depth--;
        return true;
    }
    for (;;) {
        if (object) {
            if (g->p >= g->end || *g->p != '"')
                return g_fail(g, "an object key must be a string");
            if (!g_string(g))
                return false;
            g_ws(g);
            if (g->p >= g->end || *g->p != ':')
                return g_fail(g, "':' expected after an object key");
            g->p++;
        }
        if (!g_value(g))
            return false;
        if (g->p < g->end && *g->p == ',') {
            g->p++;
            g_ws(g);
            continue;
        }
        if (g->p < g->end && *g->p == close) {
            g->p++;
            g->depth--;
            return true;
        }
        return g_fail(g, object ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static bool g_literal(Grammar *g, const char *word)
{
    size_t n = strlen(word);

    if ((size_t) (g->end - g->p) < n || memcmp(g->p, word, n) != 0)
        return g_fail(g, "not a JSON value");
    g->p += n;
    return true;
}

static bool g_value(Grammar *g)
{
    double d;
    size_t used;
    int r;
    bool ok;

    g_ws(g);
    if (g->p >= g->end)
        return g_fail(g, "a value expected");
    switch (*g->p) {
    case '{':
    case '[':
        ok = g_container(g);
        break;
    case '"':
        ok = g_string(g);
        break;
    case 't':
        ok = g_literal(g, "true");
        break;
    case 'f':
        ok = g_literal(g, "false");
        break;
    case 'n':
        ok = g_literal(g, "null");
        break;
    default:
        /* too large for a double is still a number of the grammar (refused later) */
        r = decimal_scan(g->p, (size_t) (g->end - g->p), DECIMAL_JSON, &d, &used);
        if (r != 0 && r != DECIMAL_E_RANGE)
            return g_fail(g, "not a JSON value (numbers as RFC 8259 writes them)");
        g->p += used;
        /* a number runs into the next token: 01, 1.5.2 */
        ok = g->p >= g->end || strchr(" \t\n\r,]}", *g->p) != NULL ||
             g_fail(g, "a malformed number");
        break;
    }
    if (ok)
        g_ws(g);
    return ok;
}

int http_json_grammar(const char *s, size_t n, size_t max_depth, size_t *offset, const char **why)
{
    Grammar g = {.p = s, .end = s + n, .max_depth = max_depth};

    if (g_value(&g) && g.p == g.end)
        return 0;
    *offset = (size_t) (g.p - s);
    *why = g.why != NULL ? g.why : "unexpected bytes after the JSON value";
    return g.too_deep ? -E2BIG : -EINVAL;
}

/* cJSON keeps strings as C strings, so "a\u0000b" would be read as "a": two different keys
 * or ids would compare equal. Before cJSON reads a body whose grammar holds, each \u0000
 * escape inside a string becomes JSON_NUL (C0 80, "modified UTF-8"), which valid UTF-8 input
 * can never contain; json_buf_string writes it back as \u0000. In place: the text shrinks.
 * Returns the new length. */
static size_t hold_nul_escapes(char *s, size_t n)
{
    static const char esc[] = "\\u0000";
    size_t r = 0, w = 0;
    bool in_string = false;

    if (memmem(s, n, esc, sizeof(esc) - 1) == NULL)
        return n;
    while (r < n) {
        if (in_string && s[r] == '\\' && n - r >= 6 && memcmp(s + r, esc, 6) == 0) {
            memcpy(s + w, JSON_NUL, 2);
            w += 2;
            r += 6;
            continue;
        }
        if (in_string && s[r] == '\\') { /* any other escape: copy both bytes */
            s[w++] = s[r++];
            s[w++] = s[r++];
            continue;
        }
        if (s[r] == '"')
            in_string = !in_string;
        s[w++] = s[r++];
    }
    s[w] = '\0';
    return w;
}

int http_json_read(char *s, size_t *n, cJSON **out, size_t *offset, const char **why)
{
    const char *end = NULL;
    int r;

    *out = NULL;
    *offset = 0;
    if (*n == 0) {
        *why = "the body is empty";
        return -EINVAL;
    }
    if ((*offset = json_utf8_prefix(s, *n)) != *n) {
        *why = "not valid UTF-8";
        return -EINVAL;
    }
    r = http_json_grammar(s, *n, HTTP_JSON_MAX_DEPTH, offset, why);
    if (r != 0)
        return r;
    *n = hold_nul_escapes(s, *n);
    /* the grammar holds: cJSON fails only for want of memory or on a \u escape naming half
     * a surrogate pair, and reads exactly the one value (no trailing bytes are left) */
    *out = cJSON_ParseWithLengthOpts(s, *n, &end, 0);
    if (*out != NULL)
        return 0;
    *offset = end != NULL && end >= s ? (size_t) (end - s) : 0;
    *why = "malformed JSON";
    return -EINVAL;
}

const char *http_json_duplicate_key(const cJSON *root, int *err)
{
    *err = 0;
    return find_duplicate(root, err);
}

/* The reading both http_body_parse_json and http_json_body make: http_json_read, then no
 * duplicate key. 0 with *out; -E2BIG and -EINVAL as http_json_read (*off, *why); -EEXIST
 * with the key in *dup, which lives in *out until the caller deletes it; -ENOMEM. */
static int read_json_body(char *s, size_t *n, cJSON **out, size_t *off, const char **why,
                          const char **dup)
{
    int err = 0, r = http_json_read(s, n, out, off, why);

    if (r != 0)
        return r;
    *dup = http_json_duplicate_key(*out, &err);
    if (err) {
        cJSON_Delete(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return *dup != NULL ? -EEXIST : 0;
}

int http_body_parse_json(HttpRequest *req, cJSON **out, enum MHD_Result *ret)
{
    static char empty[1];
    const char *dup = NULL, *why = NULL;
    size_t off = 0;
    cJSON *root = NULL;
    int r;

    *out = NULL;
    r = read_json_body(req->body ? req->body : empty, &req->body_len, &root, &off, &why, &dup);
    if (r == -E2BIG) {
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, NULL, "JSON nested deeper than %d levels",
                                HTTP_JSON_MAX_DEPTH);
        return HTTP_BODY_REPLIED;
    }
    if (r == -ENOMEM) {
        *ret = http_reply_error(req, HTTP_E_INTERNAL, NULL, "out of memory");
        return HTTP_BODY_REPLIED;
    }
    if (r == -EEXIST) {
        JsonBuf d = JSON_BUF_INIT;
        json_buf_puts(&d, "\"key\":");
        json_buf_string(&d, dup, strlen(dup));
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, d.oom ? NULL : d.data,
                                "duplicate object key");
        json_buf_deinit(&d);
        cJSON_Delete(root);
        return HTTP_BODY_REPLIED;
    }
    if (r != 0) { /* -EINVAL */
        *ret = http_reply_error(req, HTTP_E_INVALID_JSON, NULL, "invalid JSON at byte %zu: %s", off,
                                why);
        return HTTP_BODY_REPLIED;
    }
    *out = root;
    return HTTP_BODY_READY;
}

cJSON *http_json_body(const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    const char *why, *dup;
    size_t at, n = len;
    cJSON *root = NULL;

    if (copy == NULL)
        return NULL;
    if (len > 0)
        memcpy(copy, body, len);
    copy[len] = '\0';
    if (read_json_body(copy, &n, &root, &at, &why, &dup) != 0) {
        cJSON_Delete(root); /* NULL, or the tree holding a duplicate key */
        root = NULL;
    }
    free(copy);
    return root;
}
