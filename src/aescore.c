/* aescore: the offline CLI. train | eval | score | inspect on top of libaescore-core only,
 * with the very train_model() / model_score() the daemon uses, so offline and online
 * behaviour cannot drift. Exit status: 0 success, 1 runtime failure, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aescore/dataset.h"
#include "aescore/evaluate.h"
#include "aescore/model.h"
#include "aescore/model_file.h"
#include "aescore/train.h"

#define EXIT_USAGE 2

enum {
    ARG_DATA = 0x100,
    ARG_LABEL_COLUMN,
    ARG_HIDDEN,
    ARG_ACTIVATION,
    ARG_EPOCHS,
    ARG_BATCH,
    ARG_LR,
    ARG_WEIGHT_DECAY,
    ARG_PATIENCE,
    ARG_VALIDATION_SPLIT,
    ARG_SEED,
    ARG_ENSEMBLE,
    ARG_THRESHOLD_QUANTILE,
    ARG_THRESHOLD_F1,
    ARG_THRESHOLD,
    ARG_QUIET,
    ARG_IGNORE_COLUMNS,
    ARG_MIN_CATEGORY_ROWS,
    ARG_OUT,
    ARG_MODEL,
    ARG_JSON,
    ARG_HELP,
};

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("aescore: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'aescore --help'.\n", stderr);
}

static void fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail_msg(const char *fmt, ...)
{
    va_list ap;

    fputs("aescore: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void help_main(FILE *out)
{
    fputs("Usage: aescore COMMAND [OPTIONS]\n"
          "Train, evaluate and apply autoencoder anomaly detectors on CSV data.\n"
          "\n"
          "Commands:\n"
          "  train    train a model on the normal rows of a CSV file\n"
          "  eval     report ROC AUC, PR AUC, precision, recall, F1 on labelled data\n"
          "  score    score every row of a CSV file (CSV out: id,score,anomaly)\n"
          "  inspect  describe a model file\n"
          "\n"
          "'aescore COMMAND --help' lists the options of a command.\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n",
          out);
}

static void help_train(FILE *out)
{
    TrainParams d;

    train_params_default(&d);
    fprintf(out,
            "Usage: aescore train --data FILE.csv --out MODEL [OPTIONS]\n"
            "Trains an autoencoder on the rows with label 0 (all rows without a label column).\n"
            "\n"
            "  --data FILE              CSV with a header row (required)\n"
            "  --out MODEL              model file to write, atomically (required)\n"
            "  --label-column NAME      label column, 1 = anomaly [label]\n"
            "  --hidden N,N,...         hidden layer sizes, or 'auto' [auto: one layer of\n"
            "                           max(1, features/2)]\n"
            "  --activation NAME        relu | tanh | sigmoid for hidden layers [%s]\n"
            "  --epochs N               maximum epochs [%zu]\n"
            "  --batch N                mini-batch rows [%zu]\n"
            "  --lr X                   Adam learning rate [%g]\n"
            "  --weight-decay X         decoupled weight decay [%g]\n"
            "  --patience N             stop after N epochs without validation improvement;\n"
            "                           0 = no early stopping [%zu]\n"
            "  --validation-split X     share of normal rows held out [%g]\n"
            "  --seed N                 seed for initialisation and shuffling [%" PRIu64 "]\n"
            "  --ensemble N             members trained from different seeds, scores\n"
            "                           averaged [%zu]\n"
            "  --threshold-quantile Q   threshold = Q-quantile of validation scores [%g]\n"
            "  --threshold-f1           threshold maximising F1 on validation normals and\n"
            "                           labelled anomalies\n"
            "  --threshold X            explicit threshold\n"
            "  --ignore-columns A,B     columns that are not fields (ids, names) [none; a text\n"
            "                           column with a distinct value in every row is left out\n"
            "                           by itself]\n"
            "  --min-category-rows N    categories seen in fewer normal rows fold into\n"
            "                           '*other*' [%d]\n"
            "  --quiet                  no progress on stderr\n"
            "\n"
            "Cells may be text: a column with any non-numeric cell is categorical (one-hot\n"
            "encoded); an empty cell is a missing value, imputed with the median (numbers) or\n"
            "the most frequent category. The schema is stored in the model ('aescore inspect').\n"
            "Same data, options and seed give the same model; with SOURCE_DATE_EPOCH set the\n"
            "file is byte-identical.\n",
            nn_activation_name(d.activation), d.epochs, d.batch, (double) d.lr,
            (double) d.weight_decay, d.patience, (double) d.validation_split, d.seed, d.ensemble,
            d.threshold_q, SCHEMA_DEFAULT_MIN_ROWS);
}

static void help_eval(FILE *out)
{
    fputs("Usage: aescore eval --model MODEL --data FILE.csv [OPTIONS]\n"
          "Scores labelled rows and reports detection quality at the model's threshold.\n"
          "\n"
          "  --model MODEL            model file (required)\n"
          "  --data FILE              CSV with the model's feature columns and a label\n"
          "                           column (required)\n"
          "  --label-column NAME      label column, 1 = anomaly [label]\n"
          "  --json                   one JSON object instead of text\n",
          out);
}

static void help_score(FILE *out)
{
    fputs("Usage: aescore score --model MODEL --data FILE.csv [OPTIONS]\n"
          "Writes CSV to stdout: id,score,anomaly (id = 1-based data row).\n"
          "\n"
          "  --model MODEL            model file (required)\n"
          "  --data FILE              CSV with the model's feature columns (required)\n"
          "  --label-column NAME      column to leave out when present [label]\n",
          out);
}

static void help_inspect(FILE *out)
{
    fputs("Usage: aescore inspect MODEL\n"
          "Prints the schema, network, threshold and training metadata of a model file.\n",
          out);
}

/* ---- option parsing helpers ---- */

static int parse_size(const char *opt, const char *s, size_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (s[0] == '-' || s[0] == '\0')
        goto bad;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > SIZE_MAX)
        goto bad;
    *out = (size_t) v;
    return 0;
bad:
    usage_error("%s: expected a non-negative integer, got '%s'", opt, s);
    return -EINVAL;
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(*out)) {
        usage_error("%s: expected a number, got '%s'", opt, s);
        return -EINVAL;
    }
    return 0;
}

static int parse_hidden(const char *s, TrainParams *p)
{
    const char *c = s;

    if (strcmp(s, "auto") == 0) {
        p->n_hidden = 0;
        return 0;
    }
    p->n_hidden = 0;
    while (*c != '\0') {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(c, &end, 10);
        if (errno != 0 || end == c || *c == '-' || v == 0 || v > 4096 ||
            p->n_hidden >= NN_MAX_LAYERS - 1 || (*end != ',' && *end != '\0'))
            goto bad;
        p->hidden[p->n_hidden++] = v;
        c = *end == ',' ? end + 1 : end;
        if (*end == ',' && *c == '\0')
            goto bad;
    }
    if (p->n_hidden > 0)
        return 0;
bad:
    usage_error("--hidden: expected 'auto' or up to %d sizes 1..4096 like 64,16,64, got '%s'",
                NN_MAX_LAYERS - 1, s);
    return -EINVAL;
}

static const struct option train_options[] = {
    {"data", required_argument, NULL, ARG_DATA},
    {"out", required_argument, NULL, ARG_OUT},
    {"label-column", required_argument, NULL, ARG_LABEL_COLUMN},
    {"hidden", required_argument, NULL, ARG_HIDDEN},
    {"activation", required_argument, NULL, ARG_ACTIVATION},
    {"epochs", required_argument, NULL, ARG_EPOCHS},
    {"batch", required_argument, NULL, ARG_BATCH},
    {"lr", required_argument, NULL, ARG_LR},
    {"weight-decay", required_argument, NULL, ARG_WEIGHT_DECAY},
    {"patience", required_argument, NULL, ARG_PATIENCE},
    {"validation-split", required_argument, NULL, ARG_VALIDATION_SPLIT},
    {"seed", required_argument, NULL, ARG_SEED},
    {"ensemble", required_argument, NULL, ARG_ENSEMBLE},
    {"threshold-quantile", required_argument, NULL, ARG_THRESHOLD_QUANTILE},
    {"threshold-f1", no_argument, NULL, ARG_THRESHOLD_F1},
    {"threshold", required_argument, NULL, ARG_THRESHOLD},
    {"quiet", no_argument, NULL, ARG_QUIET},
    {"ignore-columns", required_argument, NULL, ARG_IGNORE_COLUMNS},
    {"min-category-rows", required_argument, NULL, ARG_MIN_CATEGORY_ROWS},
    {"help", no_argument, NULL, ARG_HELP},
    {0},
};

static const struct option model_data_options[] = {
    {"model", required_argument, NULL, ARG_MODEL},
    {"data", required_argument, NULL, ARG_DATA},
    {"label-column", required_argument, NULL, ARG_LABEL_COLUMN},
    {"json", no_argument, NULL, ARG_JSON},
    {"help", no_argument, NULL, ARG_HELP},
    {0},
};

/* ---- shared steps ---- */

static int load_model(const char *path, Model **out)
{
    int r = model_file_load(path, out);

    if (r != 0) {
        fail_msg("%s: %s", path, model_file_strerror(r));
        return 1;
    }
    return 0;
}

static int load_data(const char *path, const char *label_column, Dataset **out)
{
    DatasetOptions opts = {.label_column = label_column, .mixed = true};
    char err[512];
    int r = dataset_read_csv(path, &opts, out, err, sizeof(err));

    if (r != 0) {
        fail_msg("%s", err);
        return 1;
    }
    return 0;
}

/* Replaces *ds by its encoding into the model's input columns (schema.h): columns matched
 * to the model's fields by name, missing cells imputed, text one-hot encoded. Errors name
 * path:line. */
static int encode_for_model(const Model *m, Dataset **ds, const char *path)
{
    Dataset *enc = NULL;
    char err[512];
    int r = schema_encode_dataset(m->schema, *ds, &enc, err, sizeof(err));

    if (r != 0) {
        fail_msg("%s:%s", path, r == -ENOMEM ? " out of memory" : err);
        return 1;
    }
    dataset_free(*ds);
    *ds = enc;
    return 0;
}

static float *score_all(const Model *m, const Dataset *ds)
{
    float *scores = malloc((ds->n_rows ? ds->n_rows : 1) * sizeof(*scores));
    float *scratch = malloc(model_scratch_size(m) * sizeof(*scratch));

    if (scores == NULL || scratch == NULL) {
        free(scores);
        scores = NULL;
        fail_msg("out of memory");
    } else {
        model_score_batch(m, ds->x, ds->n_rows, scratch, scores);
    }
    free(scratch);
    return scores;
}

/* ---- train ---- */

static void print_progress(const TrainProgress *p, void *ctx)
{
    (void) ctx;
    fprintf(stderr,
            "member %zu/%zu epoch %zu/%zu: train loss %.6f, validation loss %.6f (best "
            "%.6f), %.0f rows/s\n",
            p->member + 1, p->members, p->epoch, p->epochs, p->train_loss, p->val_loss,
            p->best_val_loss, p->rows_per_sec);
}

static int64_t creation_time(void)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");

    if (sde != NULL && sde[0] != '\0') {
        char *end;
        errno = 0;
        long long v = strtoll(sde, &end, 10);
        if (errno == 0 && *end == '\0' && v >= 0)
            return v;
        fail_msg("ignoring SOURCE_DATE_EPOCH='%s': not a unix time", sde);
    }
    return (int64_t) time(NULL);
}

static int cmd_train(int argc, char **argv)
{
    TrainParams p;
    const char *data = NULL, *out = NULL, *label = "label";
    bool quiet = false;
    int thresholds = 0, c;
    Dataset *ds = NULL;
    Model *m = NULL;
    char err[512];
    double d;
    size_t z;
    int r;

    train_params_default(&p);
    while ((c = getopt_long(argc, argv, "", train_options, NULL)) != -1) {
        switch (c) {
        case ARG_DATA:
            data = optarg;
            break;
        case ARG_OUT:
            out = optarg;
            break;
        case ARG_LABEL_COLUMN:
            label = optarg;
            break;
        case ARG_HIDDEN:
            if (parse_hidden(optarg, &p) < 0)
                return EXIT_USAGE;
            break;
        case ARG_ACTIVATION:
            if (nn_activation_parse(optarg, &p.activation) < 0 || p.activation == NN_LINEAR) {
                usage_error("--activation: expected relu, tanh or sigmoid, got '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case ARG_EPOCHS:
            if (parse_size("--epochs", optarg, &p.epochs) < 0)
                return EXIT_USAGE;
            break;
        case ARG_BATCH:
            if (parse_size("--batch", optarg, &p.batch) < 0)
                return EXIT_USAGE;
            break;
        case ARG_LR:
            if (parse_double("--lr", optarg, &d) < 0)
                return EXIT_USAGE;
            p.lr = (float) d;
            break;
        case ARG_WEIGHT_DECAY:
            if (parse_double("--weight-decay", optarg, &d) < 0)
                return EXIT_USAGE;
            p.weight_decay = (float) d;
            break;
        case ARG_PATIENCE:
            if (parse_size("--patience", optarg, &p.patience) < 0)
                return EXIT_USAGE;
            break;
        case ARG_VALIDATION_SPLIT:
            if (parse_double("--validation-split", optarg, &d) < 0)
                return EXIT_USAGE;
            p.validation_split = (float) d;
            break;
        case ARG_SEED:
            if (parse_size("--seed", optarg, &z) < 0)
                return EXIT_USAGE;
            p.seed = z;
            break;
        case ARG_ENSEMBLE:
            if (parse_size("--ensemble", optarg, &p.ensemble) < 0)
                return EXIT_USAGE;
            break;
        case ARG_THRESHOLD_QUANTILE:
            if (parse_double("--threshold-quantile", optarg, &p.threshold_q) < 0)
                return EXIT_USAGE;
            p.threshold_method = THRESHOLD_QUANTILE;
            thresholds++;
            break;
        case ARG_THRESHOLD_F1:
            p.threshold_method = THRESHOLD_F1;
            thresholds++;
            break;
        case ARG_THRESHOLD:
            if (parse_double("--threshold", optarg, &d) < 0)
                return EXIT_USAGE;
            p.threshold_value = (float) d;
            p.threshold_method = THRESHOLD_EXPLICIT;
            thresholds++;
            break;
        case ARG_QUIET:
            quiet = true;
            break;
        case ARG_IGNORE_COLUMNS:
            if (strlen(optarg) >= sizeof(p.ignore_columns)) {
                usage_error("--ignore-columns: longer than %zu characters",
                            sizeof(p.ignore_columns) - 1);
                return EXIT_USAGE;
            }
            snprintf(p.ignore_columns, sizeof(p.ignore_columns), "%s", optarg);
            break;
        case ARG_MIN_CATEGORY_ROWS:
            if (parse_size("--min-category-rows", optarg, &p.min_category_rows) < 0)
                return EXIT_USAGE;
            break;
        case ARG_HELP:
            help_train(stdout);
            return 0;
        default:
            fputs("Try 'aescore train --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        usage_error("train: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if (data == NULL || out == NULL) {
        usage_error("train: --data and --out are required");
        return EXIT_USAGE;
    }
    if (thresholds > 1) {
        usage_error("train: choose one of --threshold-quantile, --threshold-f1, --threshold");
        return EXIT_USAGE;
    }
    if (train_params_check(&p, err, sizeof(err)) != 0) {
        usage_error("train: %s", err);
        return EXIT_USAGE;
    }

    r = load_data(data, label, &ds);
    if (r != 0)
        goto done;
    r = train_model(ds, &p, creation_time(), NULL, quiet ? NULL : print_progress, NULL, &m, err,
                    sizeof(err));
    if (r != 0) {
        fail_msg("%s: %s", data, r == -ENOMEM ? "out of memory" : err);
        r = 1;
        goto done;
    }
    r = model_file_save(m, out, false);
    if (r != 0) {
        fail_msg("%s: %s", out, model_file_strerror(r));
        r = 1;
        goto done;
    }
    if (!quiet) {
        for (size_t i = 0; i < m->schema->n_ignored; i++)
            fprintf(stderr, "aescore: left out column '%s' (asked for, empty, or unique per row)\n",
                    m->schema->ignored[i]);
        fprintf(stderr,
                "aescore: wrote %s: model %s, %zu fields (%zu input columns), %" PRIu64
                " normal rows, threshold %.6g\n",
                out, m->meta.id, m->schema->n_fields, m->n_features, m->meta.rows,
                (double) m->threshold);
    }
done:
    model_unref(m);
    dataset_free(ds);
    return r;
}

/* ---- eval / score ---- */

typedef struct ModelDataArgs {
    const char *model, *data, *label;
    bool json;
} ModelDataArgs;

static int parse_model_data(int argc, char **argv, const char *cmd, bool allow_json,
                            void (*help)(FILE *), ModelDataArgs *a)
{
    int c;

    a->model = a->data = NULL;
    a->label = "label";
    a->json = false;
    while ((c = getopt_long(argc, argv, "", model_data_options, NULL)) != -1) {
        switch (c) {
        case ARG_MODEL:
            a->model = optarg;
            break;
        case ARG_DATA:
            a->data = optarg;
            break;
        case ARG_LABEL_COLUMN:
            a->label = optarg;
            break;
        case ARG_JSON:
            if (!allow_json) {
                usage_error("%s: unknown option '--json'", cmd);
                return EXIT_USAGE;
            }
            a->json = true;
            break;
        case ARG_HELP:
            help(stdout);
            return -1;
        default:
            fprintf(stderr, "Try 'aescore %s --help'.\n", cmd);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
        return EXIT_USAGE;
    }
    if (a->model == NULL || a->data == NULL) {
        usage_error("%s: --model and --data are required", cmd);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    ModelDataArgs a;
    Model *m = NULL;
    Dataset *ds = NULL;
    float *scores = NULL;
    EvalReport rep;
    int r = parse_model_data(argc, argv, "eval", true, help_eval, &a);

    if (r != 0)
        return r < 0 ? 0 : r;
    r = load_model(a.model, &m);
    if (r == 0)
        r = load_data(a.data, a.label, &ds);
    if (r == 0 && ds->label == NULL) {
        fail_msg("%s:1: no label column '%s': eval needs labelled rows", a.data, a.label);
        r = 1;
    }
    if (r == 0)
        r = encode_for_model(m, &ds, a.data);
    if (r == 0 && (scores = score_all(m, ds)) == NULL)
        r = 1;
    if (r != 0)
        goto done;
    r = evaluate(scores, ds->label, ds->n_rows, m->threshold, &rep);
    if (r != 0) {
        fail_msg("%s: %s", a.data,
                 r == EVALUATE_E_SINGLE_CLASS
                     ? "labels hold one class only: ROC and PR AUC need normal and anomalous rows"
                     : "cannot evaluate");
        r = 1;
        goto done;
    }
    if (a.json)
        printf("{\"roc_auc\": %.6f, \"pr_auc\": %.6f, \"precision\": %.6f, \"recall\": %.6f, "
               "\"f1\": %.6f, \"accuracy\": %.6f, \"threshold\": %.9g, \"rows\": %zu, "
               "\"anomalies\": %zu, \"tp\": %zu, \"fp\": %zu, \"tn\": %zu, \"fn\": %zu, "
               "\"model_id\": \"%s\"}\n",
               rep.roc_auc, rep.pr_auc, rep.precision, rep.recall, rep.f1, rep.accuracy,
               (double) rep.threshold, rep.rows, rep.anomalies, rep.tp, rep.fp, rep.tn, rep.fn,
               m->meta.id);
    else
        printf("model      %s (%s)\n"
               "data       %s: %zu rows, %zu anomalies\n"
               "ROC AUC    %.4f\n"
               "PR AUC     %.4f\n"
               "threshold  %.6g\n"
               "precision  %.4f\n"
               "recall     %.4f\n"
               "F1         %.4f\n"
               "accuracy   %.4f\n"
               "confusion  tp %zu  fp %zu  tn %zu  fn %zu\n",
               a.model, m->meta.id, a.data, rep.rows, rep.anomalies, rep.roc_auc, rep.pr_auc,
               (double) rep.threshold, rep.precision, rep.recall, rep.f1, rep.accuracy, rep.tp,
               rep.fp, rep.tn, rep.fn);
done:
    free(scores);
    dataset_free(ds);
    model_unref(m);
    return r;
}

static int cmd_score(int argc, char **argv)
{
    ModelDataArgs a;
    Model *m = NULL;
    Dataset *ds = NULL;
    float *scores = NULL;
    int r = parse_model_data(argc, argv, "score", false, help_score, &a);

    if (r != 0)
        return r < 0 ? 0 : r;
    r = load_model(a.model, &m);
    if (r == 0)
        r = load_data(a.data, a.label, &ds);
    if (r == 0)
        r = encode_for_model(m, &ds, a.data);
    if (r == 0 && (scores = score_all(m, ds)) == NULL)
        r = 1;
    if (r != 0)
        goto done;
    puts("id,score,anomaly");
    for (size_t i = 0; i < ds->n_rows; i++)
        printf("%zu,%.9g,%d\n", i + 1, (double) scores[i], scores[i] > m->threshold);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fail_msg("writing the scores: %s", strerror(errno));
        r = 1;
    }
done:
    free(scores);
    dataset_free(ds);
    model_unref(m);
    return r;
}

/* ---- inspect ---- */

static int cmd_inspect(int argc, char **argv)
{
    Model *m = NULL;
    char when[64] = "?";
    time_t created;
    struct tm tm;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help_inspect(stdout);
        return 0;
    }
    if (argc != 2) {
        usage_error("inspect: expected exactly one MODEL argument");
        return EXIT_USAGE;
    }
    if (load_model(argv[1], &m) != 0)
        return 1;
    created = (time_t) m->meta.created;
    if (gmtime_r(&created, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

    printf("model        %s\n", argv[1]);
    printf("id           %s\n", m->meta.id);
    printf("format       %d\n", MODEL_FILE_VERSION);
    printf("created      %s\n", when);
    printf("network     ");
    for (size_t l = 0; l <= m->nn.n_layers; l++)
        printf(" %zu%s", m->nn.sizes[l], l < m->nn.n_layers ? " ->" : "");
    printf("  (hidden %s, output linear, %zu parameters)\n", nn_activation_name(m->nn.act[0]),
           m->nn.n_params);
    printf("ensemble     %zu\n", m->n_members);
    if (m->meta.threshold_q > 0)
        printf("threshold    %.6g (%.4g quantile of validation scores)\n", (double) m->threshold,
               (double) m->meta.threshold_q);
    else
        printf("threshold    %.6g\n", (double) m->threshold);
    printf("training     %" PRIu64 " normal rows, seed %" PRIu64 ", %u epochs run, best epoch %u\n",
           m->meta.rows, m->meta.seed, m->meta.epochs_run, m->meta.best_epoch);
    printf("loss         train %.6g, validation %.6g\n", (double) m->meta.train_loss,
           (double) m->meta.val_loss);
    printf("validation   score percentiles: 50%% %.6g, 90%% %.6g, 99%% %.6g, max %.6g\n",
           (double) m->percentiles[500], (double) m->percentiles[900], (double) m->percentiles[990],
           (double) m->percentiles[MODEL_PERCENTILES - 1]);
    printf("fields       %zu (%zu input columns)\n", m->schema->n_fields, m->n_features);
    for (size_t f = 0; f < m->schema->n_fields; f++) {
        const SchemaField *fd = &m->schema->fields[f];

        if (fd->kind == SCHEMA_NUMERIC) {
            printf("  %-24s numeric      mean %-12.6g std %-12.6g missing -> %.6g\n", fd->name,
                   (double) m->mean[fd->column], (double) m->std[fd->column], (double) fd->fill);
            continue;
        }
        printf("  %-24s categorical  %zu categories%s, missing -> %s:", fd->name, fd->n_categories,
               fd->has_other ? " + *other*" : "",
               (size_t) fd->fill < fd->n_categories ? fd->categories[(size_t) fd->fill]
                                                    : SCHEMA_OTHER);
        for (size_t k = 0; k < fd->n_categories && k < 8; k++)
            printf(" %s", fd->categories[k]);
        printf("%s\n", fd->n_categories > 8 ? " ..." : "");
    }
    for (size_t i = 0; i < m->schema->n_ignored; i++)
        printf("  %-24s ignored\n", m->schema->ignored[i]);
    model_unref(m);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"train", cmd_train},
        {"eval", cmd_eval},
        {"score", cmd_score},
        {"inspect", cmd_inspect},
    };

    if (argc < 2) {
        help_main(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help_main(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    usage_error("unknown command '%s'", argv[1]);
    return EXIT_USAGE;
}
