/* history: the models kept beside the served one (DESIGN section 3b), private to the
 * trainer, which calls it under its file lock.
 *
 * Layout: the model file MODEL is the served model, as before (followers and tools need no
 * change); MODEL.history/ holds one file per model, ID.aes, and index.json, which says of
 * each where it came from, whether it is a candidate never served, the order models were
 * served in, and the evidence of the gates it was judged by. Every file is written whole
 * before it is renamed into place (util_write_atomic, model_file_save), and the index is
 * written after the model file it names and before any model file it drops is deleted, so
 * a crash at any instant leaves every model the index names loadable. An index that is
 * missing or unreadable is rebuilt from the model files present (their evidence is lost,
 * the models are not).
 * Errors: 0, -errno, or HISTORY_E_* with a message.
 * Threads: none of its own; one caller at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aescore/model.h"

enum {
    HISTORY_E_UNKNOWN = 1, /* no model with that id in the history */
};

typedef struct HistoryEntry {
    char id[MODEL_ID_LEN + 1];
    int64_t created; /* the model's own (unix seconds) */
    char source[32]; /* "bootstrap", "job:N" or "file" */
    uint64_t rows;
    float threshold;
    bool candidate;      /* made by a job and never served */
    uint64_t served_seq; /* when it last began serving (grows by one each time); 0 = never */
    char *gates;         /* the JSON object of its gates' evidence, or NULL */
} HistoryEntry;

typedef struct History {
    char *dir, *index;
    unsigned keep;
    HistoryEntry *entries; /* newest first */
    size_t n;
    uint64_t seq; /* the highest served_seq */
} History;

/* Opens (creating the directory) the history of model_path, keeping at most keep models. */
int history_open(History **out, const char *model_path, unsigned keep, char *err, size_t err_size);
History *history_free(History *h); /* accepts NULL; returns NULL */

const HistoryEntry *history_find(const History *h, const char *id);
/* The newest candidate, or NULL. */
const HistoryEntry *history_newest_candidate(const History *h);
/* The model served before serving_id (the highest served_seq among the others), or NULL. */
const HistoryEntry *history_served_before(const History *h, const char *serving_id);

/* Keeps m (its file, then the index): a new entry, or the existing one with that id given
 * source and gates anew. gates (a JSON object) may be NULL. On failure err names the file
 * ("saving PATH: reason"). */
int history_add(History *h, const Model *m, const char *source, bool candidate, const char *gates,
                char *err, size_t err_size);
/* Records that id is served from now on (no longer a candidate). Writes the index. */
int history_served(History *h, const char *id);
/* Loads id's model file. 0, HISTORY_E_UNKNOWN, or model_file_load's error. */
int history_load(const History *h, const char *id, Model **out);
/* Deletes the oldest models past `keep`, never serving_id nor the model served before it.
 * The index is written first. */
int history_prune(History *h, const char *serving_id);
