/* train_params: the training parameters and the ONE table that describes them.
 *
 * One row per parameter (name, type, field, bounds, metavar, help) drives every place that
 * takes them: the CLI's `aescore train` options and its --help (the option is the name
 * with '_' spelt '-'), POST /retrain's JSON "params" and query parameters, the man page,
 * and train_params_check. So a name or a bound exists once, and the CLI and the HTTP API
 * accept and refuse exactly the same values.
 *
 * Values come in the forms their sources have: text (a CLI argument, a query parameter),
 * or a JSON number, boolean or array of numbers. Text numbers are read by decimal.h
 * (DECIMAL_TEXT grammar); integers are decimal digits only. A JSON string is text only for
 * the parameters whose values are words (activation, hidden, ignore_columns, reference): "10" is
 * not a number of epochs. Threads: the table is constant; the functions are reentrant. Errors: 0 or
 * TRAIN_PARAMS_E_VALUE with a one-line message in err that says what was expected and what came
 * ("expected an integer 1..100000, got '-3'"; callers put the parameter's name in front the way
 * their users spell it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aescore/model.h"
#include "aescore/nn.h"

enum {
    TRAIN_PARAMS_E_VALUE = 1, /* the value has the wrong form or is out of bounds */
};

typedef enum ThresholdMethod {
    THRESHOLD_QUANTILE = 0, /* q-quantile of validation scores */
    THRESHOLD_F1,           /* F1-optimal on validation normals + labelled anomalies */
    THRESHOLD_EXPLICIT,
} ThresholdMethod;

/* No neighbour term by default: on the shared sets it is level with the reconstruction error
 * and costs more than the issue's /score bound (README "The score"). The size is the
 * default of --reference rows|centres. */
#define TRAIN_DEFAULT_REFERENCE      MODEL_REFERENCE_NONE
#define TRAIN_DEFAULT_REFERENCE_SIZE 256

#define TRAIN_IGNORE_COLUMNS_MAX 1024 /* bytes of ignore_columns, NUL included */

typedef struct TrainParams {
    size_t hidden[NN_MAX_LAYERS - 1]; /* hidden layer sizes */
    size_t n_hidden;                  /* 0 = auto: derived from the number of features */
    NnActivation activation;
    size_t epochs;
    size_t batch;
    float lr;
    float weight_decay;
    size_t patience;        /* epochs without validation improvement; 0 = no early stop */
    float validation_split; /* share of normal rows held out, 0 < s < 1 */
    uint64_t seed;
    size_t ensemble; /* members, 1..MODEL_MAX_MEMBERS */
    ThresholdMethod threshold_method;
    double threshold_q;           /* for THRESHOLD_QUANTILE, 0 < q < 1 */
    float threshold_value;        /* for THRESHOLD_EXPLICIT, >= 0 */
    unsigned threshold_given;     /* threshold parameters set (train_params_set); at most 1 */
    size_t min_category_rows;     /* rarer categories fold into "other"; 0 = schema's default */
    ModelReferenceKind reference; /* the neighbour term of the score (model.h) */
    size_t reference_size;        /* rows sampled (rows) or k-means centres at most (centres) */
    char ignore_columns[TRAIN_IGNORE_COLUMNS_MAX]; /* comma-separated names: not fields */
    /* Not train_model's: its callers read the data set with DatasetOptions.max_rows and
     * .seed = seed (the CLI, a CSV body of /retrain) or dataset_sample_rows (JSON records),
     * so the same rows and seed keep the same sample whichever way they came; 0 = all. */
    size_t max_rows;
} TrainParams;

typedef enum TrainParamType {
    TRAIN_PARAM_SIZE = 0,   /* size_t in [min, max] */
    TRAIN_PARAM_SEED,       /* uint64_t: text 0..2^64-1; a JSON number up to 2^53 */
    TRAIN_PARAM_FLOAT,      /* float in the bounds (open ends per flags) */
    TRAIN_PARAM_QUANTILE,   /* threshold_q; chooses THRESHOLD_QUANTILE */
    TRAIN_PARAM_THRESHOLD,  /* threshold_value; chooses THRESHOLD_EXPLICIT */
    TRAIN_PARAM_F1,         /* a switch; true chooses THRESHOLD_F1 */
    TRAIN_PARAM_ACTIVATION, /* relu | tanh | sigmoid */
    TRAIN_PARAM_HIDDEN,     /* "auto", "64,16,64" or [64,16,64]; widths in [min, max] */
    TRAIN_PARAM_COLUMNS,    /* "a,b,c" into ignore_columns */
    TRAIN_PARAM_REFERENCE,  /* none | rows | centres */
} TrainParamType;

enum {
    TRAIN_PARAM_MIN_OPEN = 1 << 0, /* the value must be > min, not >= */
    TRAIN_PARAM_MAX_OPEN = 1 << 1, /* the value must be < max, not <= */
};

typedef struct TrainParamDef {
    const char *name; /* JSON and query name; the CLI option is --name with '-' for '_' */
    TrainParamType type;
    size_t offset; /* of the field in TrainParams */
    double min, max;
    unsigned flags;
    const char *metavar; /* "N", "X", ... in --help; NULL for a switch */
    const char *help;    /* one sentence, no default (--help appends it) */
} TrainParamDef;

#define TRAIN_PARAM_MAX 32 /* rows the table may have (callers size arrays by it) */

extern const TrainParamDef train_param_table[];
extern const size_t train_param_count; /* <= TRAIN_PARAM_MAX, checked at compile time */

/* The row called name (the JSON/query spelling), or NULL. */
const TrainParamDef *train_param_find(const char *name);

typedef enum TrainValueForm {
    TRAIN_VALUE_TEXT = 0, /* text: a CLI argument, a query parameter, a JSON string */
    TRAIN_VALUE_NUMBER,   /* a JSON number */
    TRAIN_VALUE_BOOL,     /* a JSON boolean, or a CLI switch (true) */
    TRAIN_VALUE_LIST,     /* a JSON array of numbers */
    TRAIN_VALUE_OTHER,    /* anything else (null, an object, a mixed array): always refused */
} TrainValueForm;

typedef struct TrainValue {
    TrainValueForm form;
    const char *text; /* TEXT: NUL-terminated */
    double number;    /* NUMBER */
    bool flag;        /* BOOL */
    const double *list;
    size_t n_list; /* LIST */
} TrainValue;

void train_params_default(TrainParams *p);

/* Sets the parameter def from v. TRAIN_PARAMS_E_VALUE (p unchanged) when v has a form
 * the parameter does not take or a value outside its bounds. */
int train_params_set(TrainParams *p, const TrainParamDef *def, const TrainValue *v, char *err,
                     size_t err_size);

/* Checks every field against the table's bounds, and that at most one threshold parameter
 * was given. 0 or TRAIN_PARAMS_E_VALUE with "name: expected ..." in err. */
int train_params_check(const TrainParams *p, char *err, size_t err_size);

/* The value of def's field in p as text, the way it is typed ("auto", "64,16,64", "tanh",
 * "0.001", "" for an empty list or an unset switch), for --help and the man page. */
void train_params_format(const TrainParams *p, const TrainParamDef *def, char *buf, size_t size);

/* The hidden layers actually used for n_features (resolves "auto"). */
void train_params_resolve_hidden(const TrainParams *p, size_t n_features, size_t *hidden,
                                 size_t *n_hidden);
