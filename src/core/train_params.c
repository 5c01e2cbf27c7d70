/* train_params: see train_params.h.
 *
 * The table below is the whole truth about a parameter. train_params_set reads a value of
 * any form into the field the row names, checking the row's bounds on the value as it will
 * be stored (a double like 1e-50 becomes float 0, which "lr > 0" must see);
 * train_params_check walks the same rows over a whole struct, for callers that filled it
 * by hand. Messages say what was expected in the words train_params_expected builds from
 * the row, so a bound changed here changes every message and help line with it.
 */
#include "aescore/train_params.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/decimal.h"
#include "aescore/util.h"
#include "aescore/model.h"
#include "aescore/schema.h"

#define HIDDEN_MAX_WIDTH 4096
#define F(field)         offsetof(TrainParams, field)

const TrainParamDef train_param_table[] = {
    {"hidden", TRAIN_PARAM_HIDDEN, F(hidden), 1, HIDDEN_MAX_WIDTH, 0, "N,N,...",
     "hidden layer sizes, or 'auto' for one layer of max(1, features/2)"},
    {"activation", TRAIN_PARAM_ACTIVATION, F(activation), 0, 0, 0, "NAME",
     "relu | tanh | sigmoid for the hidden layers"},
    {"epochs", TRAIN_PARAM_SIZE, F(epochs), 1, 100000, 0, "N", "maximum epochs"},
    {"batch", TRAIN_PARAM_SIZE, F(batch), 1, 65536, 0, "N", "mini-batch rows"},
    /* bounded so one request cannot ask for nonsense; divergence is detected below it */
    {"lr", TRAIN_PARAM_FLOAT, F(lr), 0, 1e6, TRAIN_PARAM_MIN_OPEN, "X", "Adam learning rate"},
    {"weight_decay", TRAIN_PARAM_FLOAT, F(weight_decay), 0, 1, TRAIN_PARAM_MAX_OPEN, "X",
     "decoupled weight decay"},
    {"patience", TRAIN_PARAM_SIZE, F(patience), 0, 100000, 0, "N",
     "stop after N epochs without validation improvement; 0 = no early stopping"},
    {"validation_split", TRAIN_PARAM_FLOAT, F(validation_split), 0, 1,
     TRAIN_PARAM_MIN_OPEN | TRAIN_PARAM_MAX_OPEN, "X", "share of normal rows held out"},
    {"seed", TRAIN_PARAM_SEED, F(seed), 0, 18446744073709551615.0, 0, "N",
     "seed for initialisation and shuffling"},
    {"ensemble", TRAIN_PARAM_SIZE, F(ensemble), 1, MODEL_MAX_MEMBERS, 0, "N",
     "members trained from different seeds, scores averaged"},
    {"threshold_quantile", TRAIN_PARAM_QUANTILE, F(threshold_q), 0, 1,
     TRAIN_PARAM_MIN_OPEN | TRAIN_PARAM_MAX_OPEN, "Q",
     "threshold = Q-quantile of validation scores"},
    {"threshold_f1", TRAIN_PARAM_F1, F(threshold_method), 0, 0, 0, NULL,
     "threshold maximising F1 on validation normals and labelled anomalies"},
    {"threshold", TRAIN_PARAM_THRESHOLD, F(threshold_value), 0, FLT_MAX, 0, "X",
     "explicit threshold"},
    {"ignore_columns", TRAIN_PARAM_COLUMNS, F(ignore_columns), 0, TRAIN_IGNORE_COLUMNS_MAX - 1, 0,
     "A,B",
     "columns that are not fields (ids, names); a text column with a distinct value in every "
     "row is left out by itself"},
    {"min_category_rows", TRAIN_PARAM_SIZE, F(min_category_rows), 0, 1e9, 0, "N",
     "categories seen in fewer normal rows fold into '*other*'; 0 = 10"},
    /* a reservoir of rows, drawn in one pass: how a file larger than memory trains */
    {"max_rows", TRAIN_PARAM_SIZE, F(max_rows), 0, 1e9, 0, "N",
     "train on a uniform random sample of at most N normal rows (and N labelled anomalies), "
     "drawn with the seed in one pass over the data, which is never held whole; 0 = every "
     "row"},
    {"reference", TRAIN_PARAM_REFERENCE, F(reference), 0, 0, 0, "KIND",
     "none | rows | centres: the neighbour term of the score (a sample of training rows, "
     "k-means centres of them, or no term)"},
    {"reference_size", TRAIN_PARAM_SIZE, F(reference_size), 1, MODEL_MAX_REFERENCE, 0, "N",
     "training rows kept as the reference (rows), or k-means centres at most (centres)"},
};

const size_t train_param_count = sizeof(train_param_table) / sizeof(train_param_table[0]);
_Static_assert(sizeof(train_param_table) / sizeof(train_param_table[0]) <= TRAIN_PARAM_MAX,
               "more training parameters than TRAIN_PARAM_MAX");

void train_params_default(TrainParams *p)
{
    memset(p, 0, sizeof(*p));
    p->n_hidden = 0; /* auto */
    p->activation = NN_TANH;
    p->epochs = 100;
    p->batch = 64;
    p->lr = 1e-3f;
    p->weight_decay = 0;
    p->patience = 10;
    p->validation_split = 0.1f;
    p->seed = 42;
    p->ensemble = 3;
    p->threshold_method = THRESHOLD_QUANTILE;
    p->threshold_q = 0.99;
    p->min_category_rows = SCHEMA_DEFAULT_MIN_ROWS;
    p->reference = TRAIN_DEFAULT_REFERENCE;
    p->reference_size = TRAIN_DEFAULT_REFERENCE_SIZE;
}

const TrainParamDef *train_param_find(const char *name)
{
    for (size_t i = 0; i < train_param_count; i++)
        if (strcmp(train_param_table[i].name, name) == 0)
            return &train_param_table[i];
    return NULL;
}

static bool in_bounds(const TrainParamDef *def, double v)
{
    bool lo = (def->flags & TRAIN_PARAM_MIN_OPEN) ? v > def->min : v >= def->min;
    bool hi = (def->flags & TRAIN_PARAM_MAX_OPEN) ? v < def->max : v <= def->max;

    return isfinite(v) && lo && hi;
}

/* What form of value def takes ("an integer", "a number", ...); buf holds the words that
 * need formatting. */
static const char *form_words(const TrainParamDef *def, char *buf, size_t size)
{
    switch (def->type) {
    case TRAIN_PARAM_SIZE:
    case TRAIN_PARAM_SEED:
        return "a non-negative integer";
    case TRAIN_PARAM_FLOAT:
    case TRAIN_PARAM_QUANTILE:
    case TRAIN_PARAM_THRESHOLD:
        return "a number";
    case TRAIN_PARAM_F1:
        return "true or false";
    case TRAIN_PARAM_ACTIVATION:
        return "relu, tanh or sigmoid";
    case TRAIN_PARAM_REFERENCE:
        return "none, rows or centres";
    case TRAIN_PARAM_HIDDEN:
        snprintf(buf, size, "'auto' or up to %d sizes %.0f..%.0f like 64,16,64", NN_MAX_LAYERS - 1,
                 def->min, def->max);
        return buf;
    default:
        return "comma-separated column names";
    }
}

/* The bounds of def in words ("1..100000", "in (0, 1)"). */
static void bound_words(const TrainParamDef *def, char *buf, size_t size)
{
    switch (def->type) {
    case TRAIN_PARAM_SIZE:
        snprintf(buf, size, "%.0f..%.0f", def->min, def->max);
        break;
    case TRAIN_PARAM_SEED:
        snprintf(buf, size, "0..18446744073709551615");
        break;
    case TRAIN_PARAM_COLUMNS:
        snprintf(buf, size, "at most %.0f bytes", def->max);
        break;
    default:
        snprintf(buf, size, "in %c%g, %g%c", (def->flags & TRAIN_PARAM_MIN_OPEN) ? '(' : '[',
                 def->min, def->max, (def->flags & TRAIN_PARAM_MAX_OPEN) ? ')' : ']');
        break;
    }
}

/* "got 'text'" or "got 12.5" for a message. */
static void describe(const TrainValue *v, char *buf, size_t size)
{
    switch (v->form) {
    case TRAIN_VALUE_TEXT:
        snprintf(buf, size, "'%.40s%s'", v->text, strlen(v->text) > 40 ? "..." : "");
        break;
    case TRAIN_VALUE_NUMBER:
        snprintf(buf, size, "%.17g", v->number);
        break;
    case TRAIN_VALUE_BOOL:
        snprintf(buf, size, "%s", v->flag ? "true" : "false");
        break;
    case TRAIN_VALUE_LIST:
        snprintf(buf, size, "a list of %zu numbers", v->n_list);
        break;
    default:
        snprintf(buf, size, "a value of another type");
        break;
    }
}

/* The value has the wrong form: "expected a number, got 'fast'". */
static int refuse(const TrainParamDef *def, const TrainValue *v, char *err, size_t err_size)
{
    char got[64], form[96];

    describe(v, got, sizeof(got));
    util_set_err(err, err_size, "expected %s, got %s", form_words(def, form, sizeof(form)), got);
    return TRAIN_PARAMS_E_VALUE;
}

/* The value is of the right form but out of bounds: "epochs must be 1..100000, got 0". */
static int out_of_bounds(const TrainParamDef *def, const TrainValue *v, char *err, size_t err_size)
{
    char got[64], bounds[64];

    describe(v, got, sizeof(got));
    bound_words(def, bounds, sizeof(bounds));
    util_set_err(err, err_size, "%s must be %s, got %s", def->name, bounds, got);
    return TRAIN_PARAMS_E_VALUE;
}

/* Decimal digits only, at most max. */
static bool text_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t) (*s - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* A non-negative integer of either form: text up to 2^64 - 1, a number up to 2^53 (a
 * double beyond it no longer names one integer). */
static bool value_uint(const TrainValue *v, uint64_t *out)
{
    if (v->form == TRAIN_VALUE_TEXT)
        return text_uint(v->text, UINT64_MAX, out);
    if (v->form != TRAIN_VALUE_NUMBER || !isfinite(v->number) || v->number != floor(v->number) ||
        v->number < 0 || v->number > 9007199254740992.0)
        return false;
    *out = (uint64_t) v->number;
    return true;
}

/* A number of either form (text in DECIMAL_TEXT grammar). */
static bool value_number(const TrainValue *v, double *out)
{
    if (v->form == TRAIN_VALUE_TEXT)
        return decimal_parse(v->text, strlen(v->text), DECIMAL_TEXT, out) == 0;
    if (v->form != TRAIN_VALUE_NUMBER || !isfinite(v->number))
        return false;
    *out = v->number;
    return true;
}

static bool value_flag(const TrainValue *v, bool *out)
{
    if (v->form == TRAIN_VALUE_BOOL) {
        *out = v->flag;
        return true;
    }
    if (v->form != TRAIN_VALUE_TEXT)
        return false;
    if (strcmp(v->text, "true") == 0 || strcmp(v->text, "1") == 0 || v->text[0] == '\0')
        *out = true;
    else if (strcmp(v->text, "false") == 0 || strcmp(v->text, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* "auto", "64,16,64" or a list of numbers into sizes; false when malformed or out of bounds. */
static bool value_hidden(const TrainParamDef *def, const TrainValue *v, size_t *sizes, size_t *n)
{
    TrainValue e = {.form = TRAIN_VALUE_NUMBER};
    const char *s = v->text;
    uint64_t u;

    *n = 0;
    if (v->form == TRAIN_VALUE_LIST) {
        for (size_t i = 0; i < v->n_list; i++) {
            e.number = v->list[i];
            if (*n == NN_MAX_LAYERS - 1 || !value_uint(&e, &u) || !in_bounds(def, (double) u))
                return false;
            sizes[(*n)++] = (size_t) u;
        }
        return *n > 0;
    }
    if (v->form != TRAIN_VALUE_TEXT)
        return false;
    if (strcmp(s, "auto") == 0)
        return true;
    for (;;) {
        char digits[24];
        size_t k = strcspn(s, ",");

        if (k == 0 || k >= sizeof(digits) || *n == NN_MAX_LAYERS - 1)
            return false;
        memcpy(digits, s, k);
        digits[k] = '\0';
        if (!text_uint(digits, (uint64_t) def->max, &u) || u < (uint64_t) def->min)
            return false;
        sizes[(*n)++] = (size_t) u;
        if (s[k] == '\0')
            return true;
        s += k + 1;
    }
}

/* Stores a number into a float or double field after checking it as stored. */
static int set_real(TrainParams *p, const TrainParamDef *def, const TrainValue *v, char *err,
                    size_t err_size)
{
    double d;
    float f;

    if (!value_number(v, &d))
        return refuse(def, v, err, err_size);
    if (def->type == TRAIN_PARAM_QUANTILE) {
        if (!in_bounds(def, d))
            return out_of_bounds(def, v, err, err_size);
        p->threshold_q = d;
        p->threshold_method = THRESHOLD_QUANTILE;
        p->threshold_given++;
        return 0;
    }
    f = (float) d;
    if (!in_bounds(def, f))
        return out_of_bounds(def, v, err, err_size);
    memcpy((char *) p + def->offset, &f, sizeof(f));
    if (def->type == TRAIN_PARAM_THRESHOLD) {
        p->threshold_method = THRESHOLD_EXPLICIT;
        p->threshold_given++;
    }
    return 0;
}

static int set_words(TrainParams *p, const TrainParamDef *def, const TrainValue *v, char *err,
                     size_t err_size)
{
    size_t sizes[NN_MAX_LAYERS - 1], n;
    ModelReferenceKind kind;
    NnActivation act;

    switch (def->type) {
    case TRAIN_PARAM_REFERENCE:
        if (v->form != TRAIN_VALUE_TEXT || model_reference_parse(v->text, &kind) < 0)
            return refuse(def, v, err, err_size);
        p->reference = kind;
        return 0;
    case TRAIN_PARAM_ACTIVATION:
        if (v->form != TRAIN_VALUE_TEXT || nn_activation_parse(v->text, &act) < 0 ||
            act == NN_LINEAR)
            return refuse(def, v, err, err_size);
        p->activation = act;
        return 0;
    case TRAIN_PARAM_HIDDEN:
        if (!value_hidden(def, v, sizes, &n))
            return refuse(def, v, err, err_size);
        memcpy(p->hidden, sizes, n * sizeof(*sizes));
        p->n_hidden = n;
        return 0;
    default: /* TRAIN_PARAM_COLUMNS */
        if (v->form != TRAIN_VALUE_TEXT)
            return refuse(def, v, err, err_size);
        if (strlen(v->text) > (size_t) def->max)
            return out_of_bounds(def, v, err, err_size);
        snprintf(p->ignore_columns, sizeof(p->ignore_columns), "%s", v->text);
        return 0;
    }
}

int train_params_set(TrainParams *p, const TrainParamDef *def, const TrainValue *v, char *err,
                     size_t err_size)
{
    uint64_t u;
    bool flag;

    switch (def->type) {
    case TRAIN_PARAM_SIZE:
        if (!value_uint(v, &u))
            return refuse(def, v, err, err_size);
        if (u > (uint64_t) def->max || !in_bounds(def, (double) u))
            return out_of_bounds(def, v, err, err_size);
        *(size_t *) (void *) ((char *) p + def->offset) = (size_t) u;
        return 0;
    case TRAIN_PARAM_SEED:
        if (!value_uint(v, &u))
            return refuse(def, v, err, err_size);
        p->seed = u;
        return 0;
    case TRAIN_PARAM_FLOAT:
    case TRAIN_PARAM_QUANTILE:
    case TRAIN_PARAM_THRESHOLD:
        return set_real(p, def, v, err, err_size);
    case TRAIN_PARAM_F1:
        if (!value_flag(v, &flag))
            return refuse(def, v, err, err_size);
        if (flag) {
            p->threshold_method = THRESHOLD_F1;
            p->threshold_given++;
        }
        return 0;
    default:
        return set_words(p, def, v, err, err_size);
    }
}

/* Whether def's field in p is within the row's bounds (the switch is always valid). */
static bool field_ok(const TrainParams *p, const TrainParamDef *def)
{
    const char *field = (const char *) p + def->offset;
    float f;

    switch (def->type) {
    case TRAIN_PARAM_SIZE:
        return in_bounds(def, (double) *(const size_t *) (const void *) field);
    case TRAIN_PARAM_FLOAT:
        memcpy(&f, field, sizeof(f));
        return in_bounds(def, f);
    case TRAIN_PARAM_QUANTILE:
        return p->threshold_method != THRESHOLD_QUANTILE || in_bounds(def, p->threshold_q);
    case TRAIN_PARAM_THRESHOLD:
        return p->threshold_method != THRESHOLD_EXPLICIT || in_bounds(def, p->threshold_value);
    case TRAIN_PARAM_ACTIVATION:
        return (unsigned) p->activation <= NN_SIGMOID && p->activation != NN_LINEAR;
    case TRAIN_PARAM_REFERENCE:
        return (unsigned) p->reference <= MODEL_REFERENCE_CENTRES;
    case TRAIN_PARAM_HIDDEN:
        if (p->n_hidden >= NN_MAX_LAYERS)
            return false;
        for (size_t l = 0; l < p->n_hidden; l++)
            if (!in_bounds(def, (double) p->hidden[l]))
                return false;
        return true;
    case TRAIN_PARAM_COLUMNS:
        return memchr(p->ignore_columns, '\0', sizeof(p->ignore_columns)) != NULL;
    default: /* SEED: every value; F1: the method is checked below */
        return true;
    }
}

int train_params_check(const TrainParams *p, char *err, size_t err_size)
{
    char bounds[64];

    for (size_t i = 0; i < train_param_count; i++) {
        const TrainParamDef *def = &train_param_table[i];

        if (field_ok(p, def))
            continue;
        if (def->type == TRAIN_PARAM_HIDDEN) {
            util_set_err(err, err_size, "hidden: at most %d layers of sizes %.0f..%.0f",
                         NN_MAX_LAYERS - 1, def->min, def->max);
        } else if (def->type == TRAIN_PARAM_ACTIVATION) {
            util_set_err(err, err_size, "activation: must be relu, tanh or sigmoid");
        } else if (def->type == TRAIN_PARAM_REFERENCE) {
            util_set_err(err, err_size, "reference: must be none, rows or centres");
        } else {
            bound_words(def, bounds, sizeof(bounds));
            util_set_err(err, err_size, "%s: must be %s", def->name, bounds);
        }
        return TRAIN_PARAMS_E_VALUE;
    }
    if ((unsigned) p->threshold_method > THRESHOLD_EXPLICIT) {
        util_set_err(err, err_size, "threshold: unknown method");
        return TRAIN_PARAMS_E_VALUE;
    }
    if (p->threshold_given > 1) {
        util_set_err(err, err_size, "choose one of threshold_quantile, threshold_f1, threshold");
        return TRAIN_PARAMS_E_VALUE;
    }
    return 0;
}

void train_params_format(const TrainParams *p, const TrainParamDef *def, char *buf, size_t size)
{
    const char *field = (const char *) p + def->offset;
    size_t used = 0;
    float f;

    buf[0] = '\0';
    switch (def->type) {
    case TRAIN_PARAM_SIZE:
        snprintf(buf, size, "%zu", *(const size_t *) (const void *) field);
        break;
    case TRAIN_PARAM_SEED:
        snprintf(buf, size, "%" PRIu64, p->seed);
        break;
    case TRAIN_PARAM_FLOAT:
    case TRAIN_PARAM_THRESHOLD:
        memcpy(&f, field, sizeof(f));
        snprintf(buf, size, "%g", (double) f);
        break;
    case TRAIN_PARAM_QUANTILE:
        snprintf(buf, size, "%g", p->threshold_q);
        break;
    case TRAIN_PARAM_F1:
        snprintf(buf, size, "%s", p->threshold_method == THRESHOLD_F1 ? "true" : "false");
        break;
    case TRAIN_PARAM_ACTIVATION:
        snprintf(buf, size, "%s", nn_activation_name(p->activation));
        break;
    case TRAIN_PARAM_HIDDEN:
        if (p->n_hidden == 0)
            snprintf(buf, size, "auto");
        for (size_t l = 0; l < p->n_hidden && used < size; l++)
            used += (size_t) snprintf(buf + used, size - used, "%s%zu", l ? "," : "", p->hidden[l]);
        break;
    case TRAIN_PARAM_COLUMNS:
        snprintf(buf, size, "%s", p->ignore_columns);
        break;
    case TRAIN_PARAM_REFERENCE:
        snprintf(buf, size, "%s", model_reference_name(p->reference));
        break;
    }
}

void train_params_resolve_hidden(const TrainParams *p, size_t n_features, size_t *hidden,
                                 size_t *n_hidden)
{
    if (p->n_hidden > 0) {
        memcpy(hidden, p->hidden, p->n_hidden * sizeof(*hidden));
        *n_hidden = p->n_hidden;
        return;
    }
    /* Auto: a single bottleneck layer of half the inputs (tanh by default). On the shared
     * data sets it ranked anomalies at least as well as W,B,W nets (W = inputs clamped to
     * 8..64, B = a quarter or 2) or a single layer of a quarter, at a third of the cost. */
    size_t narrow = n_features / 2;

    hidden[0] = narrow < 1 ? 1 : narrow;
    *n_hidden = 1;
}
