/* history: MODEL.history/ (see history.h for the layout and the crash rules). */
#include "history.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "aescore/log.h"
#include "aescore/model_file.h"
#include "aescore/util.h"
#include "json_buf.h"

#define HISTORY_INDEX_MAX (4 * 1024 * 1024)

static char *model_path_of(const History *h, const char *id)
{
    size_t n = strlen(h->dir) + MODEL_ID_LEN + sizeof("/.aes");
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s.aes", h->dir, id);
    return p;
}

static bool is_model_id(const char *s)
{
    size_t i = 0;

    for (; s[i] != '\0' && i < MODEL_ID_LEN; i++)
        if (!isxdigit((unsigned char) s[i]))
            return false;
    return i == MODEL_ID_LEN && s[i] == '\0';
}

const HistoryEntry *history_find(const History *h, const char *id)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->entries[i].id, id) == 0)
            return &h->entries[i];
    return NULL;
}

const HistoryEntry *history_newest_candidate(const History *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->entries[i].candidate)
            return &h->entries[i];
    return NULL;
}

const HistoryEntry *history_served_before(const History *h, const char *serving_id)
{
    const HistoryEntry *best = NULL;

    for (size_t i = 0; i < h->n; i++) {
        const HistoryEntry *e = &h->entries[i];
        if (e->served_seq > 0 && strcmp(e->id, serving_id) != 0 &&
            (best == NULL || e->served_seq > best->served_seq))
            best = e;
    }
    return best;
}

/* ---- the index ---- */

static void put_entry(JsonBuf *b, const HistoryEntry *e)
{
    json_buf_printf(b, "{\"model_id\":\"%s\",\"created\":%lld,\"source\":", e->id,
                    (long long) e->created);
    json_buf_string(b, e->source, strlen(e->source));
    json_buf_printf(b, ",\"rows\":%llu,\"threshold\":", (unsigned long long) e->rows);
    json_buf_float(b, e->threshold);
    json_buf_printf(b, ",\"candidate\":%s,\"served_seq\":%llu,\"gates\":%s}",
                    e->candidate ? "true" : "false", (unsigned long long) e->served_seq,
                    e->gates != NULL ? e->gates : "null");
}

static int write_index(const History *h)
{
    JsonBuf b = JSON_BUF_INIT;
    char *text;
    size_t len;
    int r;

    json_buf_printf(&b, "{\"version\":1,\"seq\":%llu,\"models\":[", (unsigned long long) h->seq);
    for (size_t i = 0; i < h->n; i++) {
        if (i > 0)
            json_buf_puts(&b, ",");
        put_entry(&b, &h->entries[i]);
    }
    json_buf_puts(&b, "]}\n");
    text = json_buf_steal(&b, &len);
    if (text == NULL)
        return -ENOMEM;
    r = util_write_atomic(h->index, text, len);
    free(text);
    return r;
}

static bool file_exists(const History *h, const char *id)
{
    char *p = model_path_of(h, id);
    struct stat st;
    bool ok = p != NULL && stat(p, &st) == 0 && S_ISREG(st.st_mode);

    free(p);
    return ok;
}

/* Appends e (taking its gates) at the end: the oldest. */
static int push_entry(History *h, HistoryEntry *e)
{
    HistoryEntry *grown = realloc(h->entries, (h->n + 1) * sizeof(*grown));

    if (grown == NULL) {
        free(e->gates);
        return -ENOMEM;
    }
    h->entries = grown;
    h->entries[h->n++] = *e;
    if (e->served_seq > h->seq)
        h->seq = e->served_seq;
    return 0;
}

/* One entry of index.json; false when it is not one we wrote (skipped with a warning). */
static bool read_entry(const cJSON *o, HistoryEntry *e)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "model_id");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source");
    const cJSON *gates = cJSON_GetObjectItemCaseSensitive(o, "gates");
    const cJSON *num[4] = {cJSON_GetObjectItemCaseSensitive(o, "created"),
                           cJSON_GetObjectItemCaseSensitive(o, "rows"),
                           cJSON_GetObjectItemCaseSensitive(o, "threshold"),
                           cJSON_GetObjectItemCaseSensitive(o, "served_seq")};

    *e = (HistoryEntry){0};
    if (!cJSON_IsString(id) || !is_model_id(id->valuestring) || !cJSON_IsString(src) ||
        strlen(src->valuestring) >= sizeof(e->source))
        return false;
    for (size_t i = 0; i < 4; i++)
        if (!cJSON_IsNumber(num[i]) || (i != 2 && num[i]->valuedouble < 0))
            return false;
    memcpy(e->id, id->valuestring, MODEL_ID_LEN + 1);
    snprintf(e->source, sizeof(e->source), "%s", src->valuestring);
    e->created = (int64_t) num[0]->valuedouble;
    e->rows = (uint64_t) num[1]->valuedouble;
    e->threshold = (float) num[2]->valuedouble;
    e->served_seq = (uint64_t) num[3]->valuedouble;
    e->candidate = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "candidate"));
    e->gates = cJSON_IsObject(gates) ? cJSON_PrintUnformatted(gates) : NULL;
    return true;
}

/* The entries index.json names whose model file is there; 0 also when there is no index. */
static int read_index(History *h)
{
    char *text = NULL;
    cJSON *root = NULL;
    const cJSON *o;
    int r = util_read_file(h->index, HISTORY_INDEX_MAX, &text, NULL);

    if (r == -ENOENT)
        return 0;
    if (r == 0 && (root = cJSON_Parse(text)) == NULL)
        log_warning("train", "%s is not JSON: rebuilding it from the model files", h->index);
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(root, "models"))
    {
        HistoryEntry e;

        if (!read_entry(o, &e) || history_find(h, e.id) != NULL || !file_exists(h, e.id)) {
            log_warning("train", "%s: an entry without its model file is dropped", h->index);
            free(e.gates);
            continue;
        }
        if ((r = push_entry(h, &e)) != 0)
            break;
    }
    cJSON_Delete(root);
    free(text);
    return r == -ENOENT ? 0 : r;
}

/* Model files in the directory the index does not name (a crash between writing one and
 * the index, or a lost index): kept as archived models from a file. */
static int adopt_orphans(History *h)
{
    DIR *d = opendir(h->dir);
    struct dirent *de;
    int r = 0;

    if (d == NULL)
        return -errno;
    while (r == 0 && (de = readdir(d)) != NULL) {
        char id[MODEL_ID_LEN + 1];
        HistoryEntry e = {0};
        Model *m = NULL;
        char *path;

        if (strlen(de->d_name) != MODEL_ID_LEN + 4 || strcmp(de->d_name + MODEL_ID_LEN, ".aes"))
            continue;
        memcpy(id, de->d_name, MODEL_ID_LEN);
        id[MODEL_ID_LEN] = '\0';
        if (!is_model_id(id) || history_find(h, id) != NULL ||
            (path = model_path_of(h, id)) == NULL)
            continue;
        if (model_file_load(path, &m) == 0 && strcmp(m->meta.id, id) == 0) {
            e = (HistoryEntry){.created = m->meta.created,
                               .rows = m->meta.rows,
                               .threshold = m->threshold,
                               .source = "file"};
            memcpy(e.id, id, sizeof(id));
            r = push_entry(h, &e);
        } else {
            log_warning("train", "%s does not hold model %s: left alone", path, id);
        }
        model_unref(m);
        free(path);
    }
    closedir(d);
    return r;
}

int history_open(History **out, const char *model_path, unsigned keep, char *err, size_t err_size)
{
    History *h = calloc(1, sizeof(*h));
    size_t n = strlen(model_path);
    int r = -ENOMEM;

    if (h == NULL)
        return -ENOMEM;
    h->keep = keep;
    h->dir = malloc(n + sizeof(".history"));
    h->index = malloc(n + sizeof(".history/index.json"));
    if (h->dir == NULL || h->index == NULL)
        goto fail;
    snprintf(h->dir, n + sizeof(".history"), "%s.history", model_path);
    snprintf(h->index, n + sizeof(".history/index.json"), "%s/index.json", h->dir);
    if (mkdir(h->dir, 0755) != 0 && errno != EEXIST) {
        r = -errno;
        util_set_err(err, err_size, "cannot create %s: %s", h->dir, strerror(errno));
        goto fail;
    }
    r = read_index(h);
    if (r == 0)
        r = adopt_orphans(h);
    if (r != 0) {
        util_set_err(err, err_size, "cannot read %s: %s", h->dir, strerror(-r));
        goto fail;
    }
    *out = h;
    return 0;

fail:
    history_free(h);
    return r;
}

History *history_free(History *h)
{
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < h->n; i++)
        free(h->entries[i].gates);
    free(h->entries);
    free(h->dir);
    free(h->index);
    free(h);
    return NULL;
}

int history_add(History *h, const Model *m, const char *source, bool candidate, const char *gates,
                char *err, size_t err_size)
{
    HistoryEntry *e = (HistoryEntry *) history_find(h, m->meta.id);
    char *path = model_path_of(h, m->meta.id);
    char *copy = gates != NULL ? strdup(gates) : NULL;
    int r = -ENOMEM;

    if (path == NULL || (gates != NULL && copy == NULL))
        goto fail;
    if (e == NULL && (r = model_file_save(m, path, false)) != 0) {
        util_set_err(err, err_size, "saving %s: %s", path,
                     r < 0 ? strerror(-r) : model_file_strerror(r));
        goto fail;
    }
    if (e == NULL) {
        HistoryEntry *grown = realloc(h->entries, (h->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        h->entries = grown;
        memmove(h->entries + 1, h->entries, h->n * sizeof(*grown));
        h->n++;
        e = &h->entries[0];
        *e = (HistoryEntry){.created = m->meta.created,
                            .rows = m->meta.rows,
                            .threshold = m->threshold,
                            .candidate = candidate};
        memcpy(e->id, m->meta.id, sizeof(e->id));
    }
    snprintf(e->source, sizeof(e->source), "%s", source);
    free(e->gates);
    e->gates = copy;
    free(path);
    r = write_index(h);
    if (r != 0)
        util_set_err(err, err_size, "saving %s: %s", h->index, strerror(-r));
    return r;

fail:
    if (r == -ENOMEM)
        util_set_err(err, err_size, "out of memory");
    free(copy);
    free(path);
    return r;
}

int history_served(History *h, const char *id)
{
    HistoryEntry *e = (HistoryEntry *) history_find(h, id);

    if (e == NULL)
        return HISTORY_E_UNKNOWN;
    e->candidate = false;
    e->served_seq = ++h->seq;
    return write_index(h);
}

int history_load(const History *h, const char *id, Model **out)
{
    char *path;
    int r;

    if (history_find(h, id) == NULL)
        return HISTORY_E_UNKNOWN;
    if ((path = model_path_of(h, id)) == NULL)
        return -ENOMEM;
    r = model_file_load(path, out);
    free(path);
    return r;
}

int history_prune(History *h, const char *serving_id)
{
    const HistoryEntry *before = history_served_before(h, serving_id);
    char before_id[MODEL_ID_LEN + 1] = "";
    char **doomed = NULL;
    size_t n_doomed = 0;
    int r = 0;

    if (before != NULL)
        memcpy(before_id, before->id, sizeof(before_id));
    if (h->n > h->keep && (doomed = calloc(h->n, sizeof(*doomed))) == NULL)
        return -ENOMEM;
    /* from the oldest: entries past `keep` go, except the served one and its predecessor */
    for (size_t i = h->n; i-- > 0 && h->n > h->keep;) {
        HistoryEntry *e = &h->entries[i];
        if (strcmp(e->id, serving_id) == 0 || strcmp(e->id, before_id) == 0)
            continue;
        doomed[n_doomed++] = model_path_of(h, e->id);
        free(e->gates);
        memmove(e, e + 1, (h->n - i - 1) * sizeof(*e));
        h->n--;
    }
    if (n_doomed > 0)
        r = write_index(h);
    for (size_t i = 0; i < n_doomed; i++) {
        if (r == 0 && doomed[i] != NULL)
            unlink(doomed[i]);
        free(doomed[i]);
    }
    free(doomed);
    return r;
}
