/* config: the daemon's settings. One table of keys (in config.c) drives parsing, defaults,
 * validation, --print-config and the comments of config/aescored.conf.
 * The file is INI (parsed by libinih) with bare "key = value" lines: no sections, '#' or ';'
 * comments, at most 198 bytes per line, each key at most once. Sizes take K/M/G suffixes
 * (powers of 1024), booleans yes/no (also true/false, on/off, 1/0).
 * A Config is a plain value: build it once, never patch it while threads read it.
 * Errors: 0; CONFIG_E_INVALID with "file:line: message" in err, the message being one of
 *   "unknown key 'x'", "invalid value for 'x': expected <what>",
 *   "duplicate key 'x' (first set on line N)", "syntax error: expected 'key = value'",
 *   "sections are not used: write every key at the top level", "line too long (...)";
 * -errno when the file cannot be read (err: "file: cannot read: reason"); -ENOMEM.
 * Threads: no shared state; a Config may be read by any number of threads once built.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
    CONFIG_E_INVALID = 1,
};

#define CONFIG_PATH_MAX         4096
#define CONFIG_TOP_FEATURES_MAX 100 /* top_features' bound */

/* Which process trains: exactly one per model file (DESIGN section 4, follow mode). */
typedef enum ConfigRole {
    CONFIG_ROLE_TRAINER = 0, /* POST /retrain trains and saves the model file */
    CONFIG_ROLE_REPLICA,     /* serves the file only; /retrain answers 409 not_trainer */
} ConfigRole;

/* What happens to a finished job's model (DESIGN section 3b). */
typedef enum ConfigPromotion {
    CONFIG_PROMOTION_AUTO = 0, /* served when every gate passes, else held */
    CONFIG_PROMOTION_MANUAL,   /* held until POST /model/promote */
} ConfigPromotion;

typedef struct Config {
    char listen[256];                     /* HOST:PORT; port 0 = ephemeral */
    char model[CONFIG_PATH_MAX];          /* model file served and written by retraining */
    char bootstrap_data[CONFIG_PATH_MAX]; /* CSV trained from when the model is missing */
    unsigned threads;                     /* HTTP worker threads; 0 = number of cores */
    unsigned max_connections;
    unsigned connection_timeout;    /* seconds */
    size_t connection_memory_limit; /* bytes per connection (headers + buffers) */
    size_t max_body_bytes;          /* /score and /score/batch bodies */
    size_t max_retrain_bytes;       /* /retrain bodies */
    size_t max_train_parameters;    /* a job's model; 0 = no limit (train.h's budget) */
    size_t max_train_memory;        /* bytes at a job's peak; 0 = no limit */
    size_t max_batch;               /* records in one /score/batch */
    size_t min_retrain_rows;
    unsigned top_features;                  /* k in top_features; 0 = off */
    unsigned max_missing_percent;           /* fields a scored record may miss, in % */
    bool lenient_numbers;                   /* "12.5" accepted for numeric fields */
    char model_name[64];                    /* the model's name in /v2/models/{name} */
    int log_level;                          /* LOG_LEVEL_* */
    char admin_token_file[CONFIG_PATH_MAX]; /* "" = admin endpoints open */
    char score_token_file[CONFIG_PATH_MAX]; /* "" = /score and /score/batch open */
    char tls_cert_file[CONFIG_PATH_MAX];    /* PEM; "" = plain HTTP */
    char tls_key_file[CONFIG_PATH_MAX];     /* PEM, with tls_cert_file */
    bool allow_remote;                      /* allow a non-loopback listen address */
    int role;                               /* ConfigRole */
    bool watch_model;                   /* reload the model file when it is replaced (watcher.h) */
    int promotion;                      /* ConfigPromotion */
    unsigned keep_models;               /* models in the history, served one included */
    unsigned recent_records;            /* scored records kept in memory for the gate */
    unsigned drift_window;              /* scored records GET /drift's counts cover */
    unsigned gate_max_anomaly_increase; /* percentage points over the served model's */
    unsigned gate_max_unseen_increase;  /* percentage points over the served model's */
} Config;

/* Fills every field with its default (never fails: the defaults pass their own checks). */
void config_defaults(Config *c);

/* Reads path over the current contents of *c (start from config_defaults). On failure *c
 * may hold some of the file's values: discard it. */
int config_load(Config *c, const char *path, char *err, size_t err_size);

/* Sets one key from its text form (the flags use this too); source/line name it in errors
 * ("source:line: ..." when line > 0, "source: ..." when source is not NULL). Returns 0 or
 * CONFIG_E_INVALID (*c unchanged). */
int config_set(Config *c, const char *key, const char *value, const char *source, unsigned line,
               char *err, size_t err_size);

/* Whether other hosts may reach the daemon: only when the admin endpoints are locked
 * (admin_token_file) or the operator said so (allow_remote = yes). */
bool config_remote_allowed(const Config *c);

/* The rules across keys, checked once the file and the flags are in: a listen address other
 * than loopback needs config_remote_allowed; tls_cert_file and tls_key_file come together.
 * listen_inherited: the socket comes from systemd, so the listen key is not used (the
 * caller checks the inherited socket with config_remote_allowed). Returns 0 or
 * CONFIG_E_INVALID with the reason in err. */
int config_check(const Config *c, bool listen_inherited, char *err, size_t err_size);

/* systemd credentials (LoadCredential=NAME:PATH; the files appear in $CREDENTIALS_DIRECTORY,
 * readable by the service whatever the source file's owner): for each of admin_token,
 * score_token, tls_cert and tls_key present in dir, the matching key (admin_token_file, ...)
 * is set to DIR/NAME when the config left it empty; a path the config sets wins. Stores the
 * credential names used in used[] (room for CONFIG_CREDENTIALS) and returns their count.
 * dir may be NULL or empty (none). */
#define CONFIG_CREDENTIALS 4
size_t config_use_credentials(Config *c, const char *dir, const char **used);

/* The one reader of sizes: decimal digits with an optional K, M or G suffix (powers of
 * 1024), as the KEY_SIZE keys take them ("16M"). 0 or -EINVAL (also on overflow). */
int config_parse_size(const char *s, uint64_t *out);
/* The writer: v with the largest suffix that divides it exactly ("1M", "64K", "1000"). */
void config_format_size(uint64_t v, char *buf, size_t size);

/* Writes every key with its current value, in config-file syntax, with a comment line. */
void config_print(const Config *c, FILE *out);

/* Writes the shipped config/aescored.conf: prose header, then every key commented out with
 * its default. tests/unit/test_config.c checks that the shipped file equals this text. */
void config_print_template(FILE *out);
