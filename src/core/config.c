/* config: one table of keys drives everything.
 *
 * Each entry of `keys` names a Config field (by offset), its type, its default as TEXT, its
 * bounds and a one-line comment. Defaults are applied by parsing that text with the same
 * setter as the file and the flags use, so a default can never escape validation;
 * config_print and config_print_template (the shipped config/aescored.conf) walk the same
 * table, so the documentation cannot drift from the code.
 *
 * The file is read whole and handed to libinih (ini_parse_string). Two inih behaviours are
 * caught by a pre-scan of the lines, because inih would hide them: a "[section]" header
 * (inih accepts it and prefixes later keys, we use none) and a line longer than inih's
 * 200-byte buffer (inih silently splits it, turning a long path into two bogus lines).
 * Errors name "file:line" and say which of three things went wrong: unknown key, invalid
 * value (with what is expected) or a line that is not "key = value".
 */
#include "aescore/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aescore/listen.h"
#include "aescore/log.h"
#include "aescore/train.h"
#include "aescore/util.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define INI_LINE_MAX    200 /* inih's INI_MAX_LINE, including the newline and NUL */
#define KIB             ((uint64_t) 1024)
#define MIB             (KIB * 1024)
#define GIB             (MIB * 1024)
#define TEXT(x)         #x
#define DEFAULT_TEXT(x) TEXT(x) /* a macro's value as a default_text */

typedef enum KeyType {
    KEY_STRING, /* char[size]; may be empty when min == 0 */
    KEY_LISTEN, /* char[size] holding HOST:PORT */
    KEY_NAME,   /* char[size]: a non-empty URL path segment of [A-Za-z0-9._-], not "." or ".." */
    KEY_UINT,   /* unsigned */
    KEY_SIZE,   /* size_t, K/M/G suffixes */
    KEY_BOOL,
    KEY_LOG_LEVEL, /* int */
    KEY_CHOICE,    /* an int enum: the index of the value in the key's choices */
} KeyType;

typedef struct Key {
    const char *name;
    KeyType type;
    size_t offset;
    size_t size; /* bytes of a string field */
    const char *default_text;
    uint64_t min, max; /* numbers: bounds; strings: min 1 means non-empty */
    const char *comment;
} Key;

#define STR(field) offsetof(Config, field), sizeof(((Config *) 0)->field)
#define NUM(field) offsetof(Config, field), 0

static const Key keys[] = {
    {"listen", KEY_LISTEN, STR(listen), "127.0.0.1:8080", 0, 65535,
     "Address and port to serve HTTP on, as HOST:PORT ([::1]:PORT for IPv6); port 0 picks a "
     "free one. Ignored under systemd socket activation."},
    {"allow_remote", KEY_BOOL, NUM(allow_remote), "no", 0, 1,
     "Allow a listen address other than loopback without an admin_token_file (with one, any "
     "address is allowed). Without TLS or a token, keep this off and put a proxy in front."},
    {"model", KEY_STRING, STR(model), "/var/lib/aescored/model.aes", 1, 0,
     "Model file served at startup, reloaded on SIGHUP and replaced by retraining (the "
     "replaced file is kept as MODEL.prev)."},
    {"bootstrap_data", KEY_STRING, STR(bootstrap_data), "", 0, 0,
     "CSV of normal records to train the first model from when the model file is missing; "
     "empty = a missing model is a fatal error."},
    {"threads", KEY_UINT, NUM(threads), "0", 0, 256,
     "HTTP worker threads; 0 = one per CPU the daemon may run on (its CPU affinity: taskset, "
     "a cpuset, CPUAffinity=)."},
    {"max_connections", KEY_UINT, NUM(max_connections), "1024", 1, 65536,
     "Concurrent HTTP connections, shared among the worker threads."},
    {"connection_timeout", KEY_UINT, NUM(connection_timeout), "15", 1, 3600,
     "Seconds of inactivity after which a connection is closed."},
    {"connection_memory_limit", KEY_SIZE, NUM(connection_memory_limit), "8K", 4 * KIB, 16 * MIB,
     "Memory per connection for headers and buffers, not the body: 8K reads headers of "
     "about 7.5 KiB (431 above). Cleared on every request: larger costs CPU."},
    {"max_body_bytes", KEY_SIZE, NUM(max_body_bytes), "16M", 1 * KIB, 1 * GIB,
     "Largest request body for /score and /score/batch; larger requests get 413."},
    {"max_retrain_bytes", KEY_SIZE, NUM(max_retrain_bytes), "256M", 1 * KIB, 4 * GIB,
     "Largest request body for POST /retrain; larger requests get 413."},
    {"max_train_parameters", KEY_SIZE, NUM(max_train_parameters),
     DEFAULT_TEXT(TRAIN_MAX_PARAMETERS_DEFAULT), 0, 64 * GIB,
     "Most parameters a retrained model may have (all ensemble members); a larger job gets "
     "422 over_budget before anything is allocated. 0 = no limit."},
    {"max_train_memory", KEY_SIZE, NUM(max_train_memory),
     DEFAULT_TEXT(TRAIN_MAX_MEMORY_DEFAULT_MIB) "M", 0, 1024 * GIB,
     "Most memory a training job may take at its peak (data, buffers, model), estimated "
     "before it starts; a larger job gets 422 over_budget. 0 = no limit."},
    {"max_batch", KEY_SIZE, NUM(max_batch), "10000", 1, 1000000,
     "Most records in one POST /score/batch."},
    {"min_retrain_rows", KEY_SIZE, NUM(min_retrain_rows), "100", 10, 100000000,
     "Fewest records POST /retrain accepts."},
    {"top_features", KEY_UINT, NUM(top_features), "5", 0, CONFIG_TOP_FEATURES_MAX,
     "Features with the largest reconstruction error reported per score; 0 = none."},
    {"max_missing_percent", KEY_UINT, NUM(max_missing_percent), "0", 0, 100,
     "Percent of a scored record's fields that may be null or absent and are then imputed "
     "(the reply lists them); more gets 422. 0 = every field is required."},
    {"lenient_numbers", KEY_BOOL, NUM(lenient_numbers), "no", 0, 1,
     "Accept numbers sent as JSON strings (\"12.5\") for numeric fields, as legacy systems "
     "send them; no = such a field gets 422."},
    {"model_name", KEY_NAME, STR(model_name), "aescore", 1, 0,
     "The model's name in the Open Inference Protocol (KServe v2) paths: "
     "/v2/models/NAME/infer; other names get 404."},
    {"log_level", KEY_LOG_LEVEL, NUM(log_level), "info", 0, 0,
     "Most verbose level logged: err, warning, notice, info or debug."},
    {"admin_token_file", KEY_STRING, STR(admin_token_file), "", 0, 0,
     "File holding a bearer token required by /retrain and /model/*; empty = those "
     "endpoints are open to anyone who can connect."},
    {"score_token_file", KEY_STRING, STR(score_token_file), "", 0, 0,
     "File holding a bearer token required by /score and /score/batch (a different one from "
     "the admin token); empty = scoring is open to anyone who can connect."},
    {"tls_cert_file", KEY_STRING, STR(tls_cert_file), "", 0, 0,
     "PEM certificate (chain) to serve HTTPS with; set together with tls_key_file. Empty = "
     "plain HTTP."},
    {"tls_key_file", KEY_STRING, STR(tls_key_file), "", 0, 0,
     "PEM private key of tls_cert_file; keep it readable by the daemon only."},
    {"role", KEY_CHOICE, NUM(role), "trainer", 0, 0,
     "trainer: POST /retrain trains and writes the model file. replica: serve the file only; "
     "/retrain answers 409 not_trainer (exactly one process per model file trains)."},
    {"watch_model", KEY_BOOL, NUM(watch_model), "no", 0, 1,
     "Follow the model file: reload it (verified first; a bad file is ignored and reported) "
     "when it is replaced, for replicas sharing a file written by the trainer."},
    {"promotion", KEY_CHOICE, NUM(promotion), "auto", 0, 0,
     "auto: a finished job's model is served when every gate passes, else held as a "
     "candidate. manual: every candidate waits for POST /model/promote."},
    {"keep_models", KEY_UINT, NUM(keep_models), "5", 2, 1000,
     "Models kept in MODEL.history/ beside the model file (served, candidates, archived), "
     "for GET /models, promotion and rollback; the oldest others are deleted."},
    {"recent_records", KEY_UINT, NUM(recent_records), "1000", 0, 100000,
     "Scored records kept in memory only (never on disk or in logs) for the promotion gate: "
     "the served model and a candidate both score them. 0 turns the gate off."},
    {"drift_window", KEY_UINT, NUM(drift_window), "10000", 0, 10000000,
     "Scored records GET /drift and the PSI metrics cover (bin counts only, never values), "
     "in 10 blocks: the oldest tenth is dropped as a new one starts. 0 = no drift counts."},
    {"gate_max_anomaly_increase", KEY_UINT, NUM(gate_max_anomaly_increase), "5", 0, 100,
     "Hold a candidate flagging more than this many percentage points more recent records "
     "than the served model (both flag ~1% of normal rows: 5 more floods a review queue)."},
    {"gate_max_unseen_increase", KEY_UINT, NUM(gate_max_unseen_increase), "10", 0, 100,
     "Hold a candidate for which more than this many percentage points more of the recent "
     "records carry a category it never saw (re-coded or renamed categories in its data)."},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* The values of each KEY_CHOICE key, NULL-terminated, in the order of its enum. */
static const char *const roles[] = {"trainer", "replica", NULL};  /* ConfigRole */
static const char *const promotions[] = {"auto", "manual", NULL}; /* ConfigPromotion */
static const struct {
    size_t offset;
    const char *const *names;
} choice_lists[] = {{offsetof(Config, role), roles}, {offsetof(Config, promotion), promotions}};

static const char *const *choices(const Key *k)
{
    for (size_t i = 0; i < sizeof(choice_lists) / sizeof(choice_lists[0]); i++)
        if (choice_lists[i].offset == k->offset)
            return choice_lists[i].names;
    return NULL; /* not reached: config_defaults sets every key, so an unlisted one crashes
                  * every test */
}

static void *field(Config *c, const Key *k)
{
    return (char *) c + k->offset;
}

static const void *cfield(const Config *c, const Key *k)
{
    return (const char *) c + k->offset;
}

static const Key *key_find(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* "source:line: ", "source: " or "" in front of a message. */
static void set_error(char *err, size_t err_size, const char *source, unsigned line,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_error(char *err, size_t err_size, const char *source, unsigned line,
                      const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (err == NULL || err_size == 0)
        return;
    if (source != NULL && line > 0)
        n = snprintf(err, err_size, "%s:%u: ", source, line);
    else if (source != NULL)
        n = snprintf(err, err_size, "%s: ", source);
    if (n < 0 || (size_t) n >= err_size)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, err_size - (size_t) n, fmt, ap);
    va_end(ap);
}

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t) (*s - '0');
    }
    *out = v;
    *end = s;
    return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v, mult = 1;

    if (parse_u64(s, &v, &end) < 0)
        return -EINVAL;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = KIB;
        end++;
        break;
    case 'm':
    case 'M':
        mult = MIB;
        end++;
        break;
    case 'g':
    case 'G':
        mult = GIB;
        end++;
        break;
    default:
        return -EINVAL;
    }
    if (*end != '\0' || v > UINT64_MAX / mult)
        return -EINVAL;
    *out = v * mult;
    return 0;
}

static const char *bool_text(bool v)
{
    return v ? "yes" : "no";
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Writes a size with the largest exact suffix, the form the file uses. */
void config_format_size(uint64_t v, char *buf, size_t size)
{
    if (v != 0 && v % GIB == 0)
        snprintf(buf, size, "%lluG", (unsigned long long) (v / GIB));
    else if (v != 0 && v % MIB == 0)
        snprintf(buf, size, "%lluM", (unsigned long long) (v / MIB));
    else if (v != 0 && v % KIB == 0)
        snprintf(buf, size, "%lluK", (unsigned long long) (v / KIB));
    else
        snprintf(buf, size, "%llu", (unsigned long long) v);
}

/* What a valid value looks like, for "invalid value for 'x': expected ...". */
static void format_expected(const Key *k, char *buf, size_t size)
{
    char lo[32], hi[32];

    switch (k->type) {
    case KEY_STRING:
        if (k->min > 0)
            snprintf(buf, size, "a non-empty path shorter than %zu bytes", k->size);
        else
            snprintf(buf, size, "a path shorter than %zu bytes", k->size);
        break;
    case KEY_LISTEN:
        snprintf(buf, size, "HOST:PORT with a port 0..65535");
        break;
    case KEY_NAME:
        snprintf(buf, size, "a name of letters, digits, '.', '_' and '-' shorter than %zu bytes",
                 k->size);
        break;
    case KEY_UINT:
        snprintf(buf, size, "an integer %llu..%llu", (unsigned long long) k->min,
                 (unsigned long long) k->max);
        break;
    case KEY_SIZE:
        config_format_size(k->min, lo, sizeof(lo));
        config_format_size(k->max, hi, sizeof(hi));
        snprintf(buf, size, "a size %s..%s (bytes, or with a K, M or G suffix)", lo, hi);
        break;
    case KEY_BOOL:
        snprintf(buf, size, "yes or no");
        break;
    case KEY_LOG_LEVEL:
        snprintf(buf, size, "one of err, warning, notice, info, debug");
        break;
    case KEY_CHOICE:
        snprintf(buf, size, "one of");
        for (size_t i = 0; choices(k)[i] != NULL; i++)
            snprintf(buf + strlen(buf), size - strlen(buf), " %s", choices(k)[i]);
        break;
    }
}

/* A name that is one URL path segment as it is, with nothing to escape or resolve. */
static bool is_name(const char *s)
{
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char) *s) && strchr("._-", *s) == NULL)
            return false;
    return true;
}

static int key_set(Config *c, const Key *k, const char *value)
{
    uint64_t v;
    const char *end;
    bool b;
    int level;

    switch (k->type) {
    case KEY_STRING:
    case KEY_LISTEN:
    case KEY_NAME:
        if (strlen(value) >= k->size || (k->min > 0 && value[0] == '\0'))
            return -EINVAL;
        if (k->type == KEY_LISTEN && listen_parse(value, &(ListenAddr){0}) != 0)
            return -EINVAL;
        if (k->type == KEY_NAME && !is_name(value))
            return -EINVAL;
        memcpy(field(c, k), value, strlen(value) + 1);
        return 0;
    case KEY_UINT:
        if (parse_u64(value, &v, &end) < 0 || *end != '\0' || v < k->min || v > k->max)
            return -EINVAL;
        *(unsigned *) field(c, k) = (unsigned) v;
        return 0;
    case KEY_SIZE:
        if (config_parse_size(value, &v) < 0 || v < k->min || v > k->max || v > SIZE_MAX)
            return -EINVAL;
        *(size_t *) field(c, k) = (size_t) v;
        return 0;
    case KEY_BOOL:
        if (parse_bool(value, &b) < 0)
            return -EINVAL;
        *(bool *) field(c, k) = b;
        return 0;
    case KEY_LOG_LEVEL:
        if (log_level_parse(value, &level) < 0)
            return -EINVAL;
        *(int *) field(c, k) = level;
        return 0;
    case KEY_CHOICE:
        for (int i = 0; choices(k)[i] != NULL; i++)
            if (strcmp(value, choices(k)[i]) == 0) {
                *(int *) field(c, k) = i;
                return 0;
            }
        return -EINVAL;
    }
    return -EINVAL;
}

void config_defaults(Config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_KEYS; i++) {
        int r = key_set(c, &keys[i], keys[i].default_text);

        /* A default that fails its own validation is a bug in the table above. */
        if (r < 0)
            abort();
    }
}

int config_set(Config *c, const char *key, const char *value, const char *source, unsigned line,
               char *err, size_t err_size)
{
    const Key *k = key_find(key);
    char expected[128];

    if (k == NULL) {
        set_error(err, err_size, source, line, "unknown key '%s'", key);
        return CONFIG_E_INVALID;
    }
    if (key_set(c, k, value) < 0) {
        format_expected(k, expected, sizeof(expected));
        set_error(err, err_size, source, line, "invalid value for '%s': expected %s", key,
                  expected);
        return CONFIG_E_INVALID;
    }
    return 0;
}

typedef struct ParseCtx {
    Config *config;
    const char *path;
    const char *next;           /* unread text */
    unsigned line;              /* of the text last handed to inih */
    unsigned seen_line[N_KEYS]; /* where each key was set, 0 = not yet */
    unsigned err_line;          /* first failing line, 0 = none */
    char *err;
    size_t err_size;
} ParseCtx;

/* Debian builds inih without INI_HANDLER_LINENO, so we feed it the text ourselves (one line
 * per call, as its own string reader does) and count the lines as they go by. */
static char *read_line(char *str, int num, void *stream)
{
    ParseCtx *ctx = stream;
    size_t n = 0;

    if (*ctx->next == '\0' || num < 2)
        return NULL;
    while (n < (size_t) num - 1 && ctx->next[n] != '\0') {
        str[n] = ctx->next[n];
        if (ctx->next[n++] == '\n')
            break;
    }
    str[n] = '\0';
    ctx->next += n;
    ctx->line++;
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    ParseCtx *ctx = user;
    const Key *k;
    unsigned line = ctx->line;

    /* Keys under a section were already reported by the pre-scan, at the header's line. */
    if (ctx->err_line != 0 || section[0] != '\0')
        return 1;
    /* inih also splits at ':', so "listen 127.0.0.1:80" arrives as key "listen 127.0.0.1". */
    if (name[strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_")] != '\0') {
        set_error(ctx->err, ctx->err_size, ctx->path, line, "syntax error: expected 'key = value'");
        ctx->err_line = line;
        return 0;
    }
    k = key_find(name);
    if (k != NULL && ctx->seen_line[k - keys] != 0) {
        /* Also what an indented line (inih's multi-line continuation) turns into. */
        set_error(ctx->err, ctx->err_size, ctx->path, line,
                  "duplicate key '%s' (first set on line %u)", name, ctx->seen_line[k - keys]);
        ctx->err_line = line;
        return 0;
    }
    if (config_set(ctx->config, name, value, ctx->path, line, ctx->err, ctx->err_size) != 0) {
        ctx->err_line = line;
        return 0;
    }
    ctx->seen_line[k - keys] = line;
    return 1;
}

/* The first line inih would mishandle without telling: a section header or an overlong
 * line. 0 when there is none. */
static unsigned prescan(const char *text, bool *is_section)
{
    unsigned line = 1;

    for (const char *p = text; *p != '\0'; line++) {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t) (eol - p) : strlen(p);
        const char *s = p;

        while (s < p + len && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        if (s < p + len && *s == '[') {
            *is_section = true;
            return line;
        }
        if (len + 2 > INI_LINE_MAX) {
            *is_section = false;
            return line;
        }
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    return 0;
}

static int read_file(const char *path, char **out, char *err, size_t err_size)
{
    char *buf = NULL;
    size_t len = 0;
    int r = util_read_file(path, CONFIG_FILE_MAX, &buf, &len);

    if (r < 0) {
        set_error(err, err_size, path, 0, "cannot read: %s", strerror(-r));
        return r;
    }
    if (memchr(buf, '\0', len) != NULL) {
        set_error(err, err_size, path, 0, "not a text file (contains NUL bytes)");
        free(buf);
        return CONFIG_E_INVALID;
    }
    *out = buf;
    return 0;
}

/* The secrets systemd may hand over as credentials, by credential name. */
static const struct {
    const char *credential;
    size_t offset;
} credential_keys[CONFIG_CREDENTIALS] = {
    {"admin_token", offsetof(Config, admin_token_file)},
    {"score_token", offsetof(Config, score_token_file)},
    {"tls_cert", offsetof(Config, tls_cert_file)},
    {"tls_key", offsetof(Config, tls_key_file)},
};

size_t config_use_credentials(Config *c, const char *dir, const char **used)
{
    size_t n = 0;

    if (dir == NULL || dir[0] == '\0')
        return 0;
    for (size_t i = 0; i < CONFIG_CREDENTIALS; i++) {
        char *field = (char *) c + credential_keys[i].offset;
        char path[CONFIG_PATH_MAX];
        int len = snprintf(path, sizeof(path), "%s/%s", dir, credential_keys[i].credential);

        if (field[0] != '\0' || len < 0 || (size_t) len >= sizeof(path) || access(path, F_OK) != 0)
            continue;
        memcpy(field, path, (size_t) len + 1);
        used[n++] = credential_keys[i].credential;
    }
    return n;
}

int config_load(Config *c, const char *path, char *err, size_t err_size)
{
    ParseCtx ctx = {.config = c, .path = path, .err = err, .err_size = err_size};
    char *text = NULL;
    bool is_section = false;
    unsigned bad_line;
    int r;

    r = read_file(path, &text, err, err_size);
    if (r != 0)
        return r;
    bad_line = prescan(text, &is_section);
    ctx.next = text;
    r = ini_parse_stream(read_line, &ctx, on_key, &ctx);
    if (r < 0) {
        set_error(err, err_size, path, 0, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    /* Report whichever problem comes first in the file. */
    if (bad_line != 0 && (ctx.err_line == 0 || bad_line < ctx.err_line) &&
        (r == 0 || bad_line <= (unsigned) r)) {
        if (is_section)
            set_error(err, err_size, path, bad_line,
                      "sections are not used: write every key at the top level");
        else
            set_error(err, err_size, path, bad_line, "line too long (more than %d bytes)",
                      INI_LINE_MAX - 2);
        r = CONFIG_E_INVALID;
    } else if (ctx.err_line != 0 && (r == 0 || ctx.err_line <= (unsigned) r)) {
        r = CONFIG_E_INVALID;
    } else if (r > 0) {
        set_error(err, err_size, path, (unsigned) r, "syntax error: expected 'key = value'");
        r = CONFIG_E_INVALID;
    }
out:
    free(text);
    return r;
}

static void value_text(const Config *c, const Key *k, char *buf, size_t size)
{
    int level;

    switch (k->type) {
    case KEY_STRING:
    case KEY_LISTEN:
    case KEY_NAME:
        snprintf(buf, size, "%s", (const char *) cfield(c, k));
        break;
    case KEY_UINT:
        snprintf(buf, size, "%u", *(const unsigned *) cfield(c, k));
        break;
    case KEY_SIZE:
        config_format_size(*(const size_t *) cfield(c, k), buf, size);
        break;
    case KEY_BOOL:
        snprintf(buf, size, "%s", bool_text(*(const bool *) cfield(c, k)));
        break;
    case KEY_LOG_LEVEL:
        level = *(const int *) cfield(c, k);
        snprintf(buf, size, "%s",
                 level == LOG_LEVEL_ERR       ? "err"
                 : level == LOG_LEVEL_WARNING ? "warning"
                 : level == LOG_LEVEL_NOTICE  ? "notice"
                 : level == LOG_LEVEL_DEBUG   ? "debug"
                                              : "info");
        break;
    case KEY_CHOICE:
        snprintf(buf, size, "%s", choices(k)[*(const int *) cfield(c, k)]);
        break;
    }
}

void config_print(const Config *c, FILE *out)
{
    char value[CONFIG_PATH_MAX];

    for (size_t i = 0; i < N_KEYS; i++) {
        value_text(c, &keys[i], value, sizeof(value));
        /* "key =" for an empty value: no trailing blank in the file; and "key =;x" for a
         * value that starts with ';', which inih reads as a comment after a blank */
        fprintf(out, "# %s\n%s =%s%s\n", keys[i].comment, keys[i].name,
                value[0] != '\0' && value[0] != ';' ? " " : "", value);
    }
}

/* Wraps a comment at about 88 columns into "# " lines. */
static void print_comment(const char *text, FILE *out)
{
    const char *p = text;

    while (*p != '\0') {
        size_t len = strlen(p);
        size_t cut = len;

        if (len > 86) {
            cut = 86;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = len;
        }
        fprintf(out, "# %.*s\n", (int) cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
}

void config_print_template(FILE *out)
{
    fputs("# aescored configuration. Generated from the key table in src/core/config.c\n"
          "# (aescored --print-config shows the values in effect).\n"
          "#\n"
          "# Syntax: one \"key = value\" per line, no sections; '#' or ';' starts a comment.\n"
          "# Sizes take a K, M or G suffix (powers of 1024). Every key below is commented out\n"
          "# and shows its default; uncomment a line to change it. Command-line flags\n"
          "# (--listen, --model) override this file.\n",
          out);
    for (size_t i = 0; i < N_KEYS; i++) {
        fputc('\n', out);
        print_comment(keys[i].comment, out);
        fprintf(out, "#%s =%s%s\n", keys[i].name, keys[i].default_text[0] ? " " : "",
                keys[i].default_text);
    }
}

bool config_remote_allowed(const Config *c)
{
    return c->allow_remote || c->admin_token_file[0] != '\0';
}

int config_check(const Config *c, bool listen_inherited, char *err, size_t err_size)
{
    ListenAddr a;

    if (!listen_inherited && !config_remote_allowed(c) &&
        (listen_parse(c->listen, &a) != 0 || !listen_is_loopback(&a))) {
        snprintf(err, err_size,
                 "refusing to listen on %s: not a loopback address and no admin_token_file; "
                 "set admin_token_file (and TLS) to serve other hosts, or allow_remote = yes "
                 "to serve them without a token",
                 c->listen);
        return CONFIG_E_INVALID;
    }
    if ((c->tls_cert_file[0] == '\0') != (c->tls_key_file[0] == '\0')) {
        snprintf(err, err_size, "tls_cert_file and tls_key_file must be set together");
        return CONFIG_E_INVALID;
    }
    return 0;
}
