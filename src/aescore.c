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
#include <unistd.h>
#include <time.h>

#include "aescore/config.h"
#include "aescore/dataset.h"
#include "aescore/evaluate.h"
#include "aescore/model.h"
#include "aescore/model_file.h"
#include "aescore/train.h"
#include "aescore/train_params.h"
#include "report.h"
#include "cli.h"
#include "stream.h"

#define EXIT_USAGE 2

enum {
    ARG_DATA = 0x100,
    ARG_LABEL_COLUMN,
    ARG_QUIET,
    ARG_MAX_PARAMETERS,
    ARG_MAX_MEMORY,
    ARG_OUT,
    ARG_MODEL,
    ARG_JSON,
    ARG_HELP,
    ARG_ID_COLUMN,
    ARG_TOP_FEATURES,
    ARG_TRAIN_PARAM, /* + the row of train_param_table */
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

static void help_main(FILE *out)
{
    fputs("Usage: aescore COMMAND [OPTIONS]\n"
          "Train, evaluate and apply autoencoder anomaly detectors on CSV data.\n"
          "\n"
          "Commands:\n"
          "  train    train a model on the normal rows of a CSV file\n"
          "  eval     report ROC AUC, PR AUC, precision, recall, F1 on labelled data\n"
          "  score    score every row of a CSV file (CSV out: id,score,anomaly)\n"
          "  report   write the evaluation on labelled data as a self-contained HTML page\n"
          "  inspect  describe a model file\n"
          "\n"
          "'aescore COMMAND --help' lists the options of a command; 'aescore --version' prints\n"
          "the version.\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n",
          out);
}

/* Prints text from column 27 on, wrapped at 92 columns, the first line after lead. */
static void put_wrapped(FILE *out, const char *lead, const char *text)
{
    int col = fprintf(out, "  %-24s ", lead);

    while (*text != '\0') {
        size_t word = strcspn(text, " ");

        if (col > 27 && col + 1 + (int) word > 92)
            col = fprintf(out, "\n%27s", "") - 1;
        else if (col > 27)
            col += fprintf(out, " ");
        col += fprintf(out, "%.*s", (int) word, text);
        text += word;
        text += *text == ' ';
    }
    fputc('\n', out);
}

/* --name, the table's name with '_' spelt '-'. */
static void option_name(const TrainParamDef *def, char *buf, size_t size)
{
    snprintf(buf, size, "--%s", def->name);
    for (char *c = buf; *c != '\0'; c++)
        if (*c == '_')
            *c = '-';
}

/* --name METAVAR, as --help shows it. */
static void option_lead(const TrainParamDef *def, char *buf, size_t size)
{
    size_t n;

    option_name(def, buf, size);
    n = strlen(buf);
    if (def->metavar != NULL && n + 1 < size)
        snprintf(buf + n, size - n, " %s", def->metavar);
}

static void help_train(FILE *out)
{
    TrainParams d;
    char lead[64], value[160], text[512];

    train_params_default(&d);
    fputs("Usage: aescore train --data FILE.csv --out MODEL [OPTIONS]\n"
          "Trains an autoencoder on the rows with label 0 (all rows without a label column).\n"
          "\n",
          out);
    put_wrapped(out, "--data FILE", "CSV with a header row; - for standard input (required)");
    put_wrapped(out, "--out MODEL", "model file to write, atomically (required)");
    put_wrapped(out, "--label-column NAME", "label column, 1 = anomaly [label]");
    for (size_t i = 0; i < train_param_count; i++) {
        const TrainParamDef *def = &train_param_table[i];

        option_lead(def, lead, sizeof(lead));
        train_params_format(&d, def, value, sizeof(value));
        if (def->type == TRAIN_PARAM_F1 || def->type == TRAIN_PARAM_THRESHOLD || value[0] == '\0')
            snprintf(text, sizeof(text), "%s", def->help);
        else
            snprintf(text, sizeof(text), "%s [%s]", def->help, value);
        put_wrapped(out, lead, text);
    }
    snprintf(text, sizeof(text),
             "refuse a model of more parameters, all members counted; 0 = no limit [%d]",
             TRAIN_MAX_PARAMETERS_DEFAULT);
    put_wrapped(out, "--max-train-parameters N", text);
    snprintf(text, sizeof(text),
             "refuse a job whose estimated peak memory is larger (K, M, G suffixes); 0 = no "
             "limit [%dM]",
             TRAIN_MAX_MEMORY_DEFAULT_MIB);
    put_wrapped(out, "--max-train-memory SIZE", text);
    put_wrapped(out, "--quiet",
                "no progress on stderr (else, on a terminal, a line per member rewritten "
                "every epoch; piped, a line per member when it ends)");
    fputs("\n"
          "Choose at most one of --threshold-quantile, --threshold-f1 and --threshold. The same\n"
          "parameters, with the same names (spelt with '_') and bounds, are what POST /retrain\n"
          "takes.\n"
          "Cells may be text: a column with any non-numeric cell is categorical (one-hot\n"
          "encoded); an empty cell is a missing value, imputed with the median (numbers) or\n"
          "the most frequent category. The schema is stored in the model ('aescore inspect').\n"
          "Same data, options and seed give the same model; with SOURCE_DATE_EPOCH set the\n"
          "file is byte-identical.\n",
          out);
}

static void help_eval(FILE *out)
{
    fputs("Usage: aescore eval --model MODEL --data FILE.csv [OPTIONS]\n"
          "Scores labelled rows and reports detection quality at the model's threshold.\n"
          "Reads the rows one at a time; memory: 5 bytes per row (a score and a label, which\n"
          "ROC and PR AUC need), nothing else of the data.\n"
          "\n"
          "  --model MODEL            model file (required)\n"
          "  --data FILE              CSV with the model's feature columns and a label\n"
          "                           column; - for standard input (required)\n"
          "  --label-column NAME      label column, 1 = anomaly [label]\n"
          "  --json                   one JSON object instead of text\n",
          out);
}

static void help_score(FILE *out)
{
    fputs("Usage: aescore score --model MODEL --data FILE.csv [OPTIONS]\n"
          "Writes CSV to stdout: id,score,anomaly (id = 1-based data row), a line per row as\n"
          "the rows are read: memory does not grow with the rows. After a bad row (the\n"
          "message names file:line) the rows before it are written and the exit status is 1.\n"
          "\n"
          "  --model MODEL            model file (required)\n"
          "  --data FILE              CSV with the model's feature columns; - for standard\n"
          "                           input (required)\n"
          "  --label-column NAME      column to leave out when present [label]\n"
          "  --id-column NAME         echo this column as the id (its name heads the\n"
          "                           column), so the scores join back to the records; it\n"
          "                           need not be a field of the model [the row number]\n"
          "  --top-features N         add columns top_1..top_N: the fields of the largest\n"
          "                           reconstruction errors, largest first [0]\n",
          out);
}

static void help_report(FILE *out)
{
    fputs("Usage: aescore report --model MODEL --data FILE.csv --out FILE.html [OPTIONS]\n"
          "Writes the evaluation on labelled data as one self-contained HTML page: ROC and\n"
          "precision-recall curves, score histograms of normal and anomalous rows with the\n"
          "threshold, each field's share of the reconstruction error, and eval's figures.\n"
          "\n"
          "  --model MODEL            model file (required)\n"
          "  --data FILE              CSV with the model's feature columns and labels (required)\n"
          "  --out FILE.html          page to write, atomically (required)\n"
          "  --label-column NAME      label column, 1 = anomaly [label]\n",
          out);
}

static void help_inspect(FILE *out)
{
    fputs("Usage: aescore inspect MODEL\n"
          "Prints the schema, network, threshold and training metadata of a model file.\n",
          out);
}

/* ---- train's options: the fixed ones, then one per row of train_param_table ---- */

static const struct option train_fixed_options[] = {
    {"data", required_argument, NULL, ARG_DATA},
    {"out", required_argument, NULL, ARG_OUT},
    {"label-column", required_argument, NULL, ARG_LABEL_COLUMN},
    {"quiet", no_argument, NULL, ARG_QUIET},
    {"max-train-parameters", required_argument, NULL, ARG_MAX_PARAMETERS},
    {"max-train-memory", required_argument, NULL, ARG_MAX_MEMORY},
    {"help", no_argument, NULL, ARG_HELP},
};

#define N_FIXED (sizeof(train_fixed_options) / sizeof(train_fixed_options[0]))

typedef struct TrainOptions {
    struct option opts[N_FIXED + TRAIN_PARAM_MAX + 1];
    char names[TRAIN_PARAM_MAX][32]; /* the table's names spelt with '-' */
} TrainOptions;

static void train_options_init(TrainOptions *t)
{
    size_t n = N_FIXED;

    memset(t, 0, sizeof(*t));
    memcpy(t->opts, train_fixed_options, sizeof(train_fixed_options));
    for (size_t i = 0; i < train_param_count; i++) {
        const TrainParamDef *def = &train_param_table[i];

        option_name(def, t->names[i], sizeof(t->names[i]));
        t->opts[n++] =
            (struct option){t->names[i] + 2, def->metavar != NULL ? required_argument : no_argument,
                            NULL, ARG_TRAIN_PARAM + (int) i};
    }
}

/* One table parameter from the command line. */
static int set_train_param(TrainParams *p, size_t row, const char *arg)
{
    const TrainParamDef *def = &train_param_table[row];
    TrainValue v = arg != NULL ? (TrainValue){.form = TRAIN_VALUE_TEXT, .text = arg}
                               : (TrainValue){.form = TRAIN_VALUE_BOOL, .flag = true};
    char lead[64], err[256];

    if (train_params_set(p, def, &v, err, sizeof(err)) == 0)
        return 0;
    option_name(def, lead, sizeof(lead));
    usage_error("%s: %s", lead, err);
    return -EINVAL;
}

static const struct option model_data_options[] = {
    {"id-column", required_argument, NULL, ARG_ID_COLUMN},
    {"top-features", required_argument, NULL, ARG_TOP_FEATURES},
    {"model", required_argument, NULL, ARG_MODEL},
    {"data", required_argument, NULL, ARG_DATA},
    {"label-column", required_argument, NULL, ARG_LABEL_COLUMN},
    {"json", no_argument, NULL, ARG_JSON},
    {"out", required_argument, NULL, ARG_OUT},
    {"help", no_argument, NULL, ARG_HELP},
    {0},
};

/* ---- shared steps ---- */

static int load_model(const char *path, Model **out)
{
    int r = model_file_load(path, out);

    if (r != 0) {
        cli_error("%s: %s", path, model_file_strerror(r));
        return 1;
    }
    return 0;
}

/* The whole data set at path ("-": standard input), or a sample of max_rows (0: all). */
static int load_data(const char *path, const char *label_column, size_t max_rows, uint64_t seed,
                     Dataset **out)
{
    DatasetOptions opts = {
        .label_column = label_column, .mixed = true, .max_rows = max_rows, .seed = seed};
    const char *source;
    char err[512];
    int fd, r;

    if (cli_open_data(path, &fd, &source) != 0)
        return 1;
    r = dataset_read_stream(dataset_read_fd, &fd, source, &opts, out, err, sizeof(err));
    if (fd != STDIN_FILENO)
        close(fd);
    if (r != 0) {
        cli_error("%s", err);
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
        cli_error("%s:%s", path, r == -ENOMEM ? " out of memory" : err);
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
        cli_error("out of memory");
    } else {
        model_score_batch(m, ds->x, ds->n_rows, scratch, scores);
    }
    free(scratch);
    return scores;
}

/* ---- train ---- */

/* On a terminal, one line per member rewritten in place after every epoch, with an ETA for
 * the whole job (an upper bound: early stopping ends members sooner); piped or redirected,
 * one plain line per member when it ends, so a log holds members, not epochs. ctx points to
 * a bool: stderr is a terminal. */
static void print_progress(const TrainProgress *p, void *ctx)
{
    bool tty = *(const bool *) ctx;
    char line[256];
    double per_epoch = p->member_seconds / (double) p->epoch;
    double left = per_epoch * (double) (p->epochs - p->epoch) +
                  per_epoch * (double) p->epochs * (double) (p->members - p->member - 1);

    if (!tty && !p->member_done)
        return;
    train_progress_line(p, line, sizeof(line));
    fprintf(stderr, "%s%s, ", tty ? "\r\033[K" : "", line);
    if (p->member_done)
        fprintf(stderr, "done in %.1f s\n", p->member_seconds);
    else
        fprintf(stderr, "ETA %.0f s", left);
    fflush(stderr);
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
        cli_error("ignoring SOURCE_DATE_EPOCH='%s': not a unix time", sde);
    }
    return (int64_t) time(NULL);
}

typedef struct TrainArgs {
    TrainParams params;
    TrainBudget budget;
    const char *data, *out, *label;
    bool quiet;
} TrainArgs;

/* --max-train-parameters / --max-train-memory: a size (config_parse_size). */
static int set_budget(uint64_t *limit, const char *option, const char *arg)
{
    if (config_parse_size(arg, limit) == 0)
        return 0;
    usage_error("--%s: expected a number (K, M or G suffixes; 0 = no limit), got '%s'", option,
                arg);
    return -EINVAL;
}

/* argv -> a; 0, -1 after --help (exit 0), or EXIT_USAGE with the message printed. */
static int parse_train_args(int argc, char **argv, TrainArgs *a)
{
    TrainOptions t;
    char err[512];
    int c;

    train_options_init(&t);
    *a = (TrainArgs){
        .label = "label",
        .budget = {TRAIN_MAX_PARAMETERS_DEFAULT, (uint64_t) TRAIN_MAX_MEMORY_DEFAULT_MIB << 20}};
    train_params_default(&a->params);
    while ((c = getopt_long(argc, argv, "", t.opts, NULL)) != -1) {
        if (c >= ARG_TRAIN_PARAM && (size_t) (c - ARG_TRAIN_PARAM) < train_param_count) {
            if (set_train_param(&a->params, (size_t) (c - ARG_TRAIN_PARAM), optarg) < 0)
                return EXIT_USAGE;
        } else if (c == ARG_DATA) {
            a->data = optarg;
        } else if (c == ARG_OUT) {
            a->out = optarg;
        } else if (c == ARG_LABEL_COLUMN) {
            a->label = optarg;
        } else if (c == ARG_QUIET) {
            a->quiet = true;
        } else if (c == ARG_MAX_PARAMETERS || c == ARG_MAX_MEMORY) {
            if (set_budget(c == ARG_MAX_PARAMETERS ? &a->budget.max_parameters
                                                   : &a->budget.max_memory,
                           c == ARG_MAX_PARAMETERS ? "max-train-parameters" : "max-train-memory",
                           optarg) < 0)
                return EXIT_USAGE;
        } else if (c == ARG_HELP) {
            help_train(stdout);
            return -1;
        } else {
            fputs("Try 'aescore train --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        usage_error("train: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if (a->data == NULL || a->out == NULL) {
        usage_error("train: --data and --out are required");
        return EXIT_USAGE;
    }
    if (a->params.threshold_given > 1) {
        usage_error("train: choose one of --threshold-quantile, --threshold-f1, --threshold");
        return EXIT_USAGE;
    }
    if (train_params_check(&a->params, err, sizeof(err)) != 0) {
        usage_error("train: %s", err);
        return EXIT_USAGE;
    }
    return 0;
}

static void report_trained(const Model *m, const char *out)
{
    for (size_t i = 0; i < m->schema->n_ignored; i++)
        fprintf(stderr, "aescore: left out column '%s' (asked for, empty, or unique per row)\n",
                m->schema->ignored[i]);
    fprintf(stderr,
            "aescore: wrote %s: model %s, %zu fields (%zu input columns), %" PRIu64
            " normal rows, threshold %.6g\n",
            out, m->meta.id, m->schema->n_fields, m->n_features, m->meta.rows,
            (double) m->threshold);
}

/* What --max-rows kept of the rows read. */
static void report_sample(const TrainArgs *a, const Dataset *ds)
{
    size_t anomalies = 0;

    for (size_t i = 0; ds->label != NULL && i < ds->n_rows; i++)
        anomalies += ds->label[i];
    fprintf(stderr,
            "aescore: %s: read %zu rows, kept %zu normal rows and %zu anomalies (--max-rows %zu, "
            "seed %" PRIu64 ")\n",
            a->data, ds->n_read, ds->n_rows - anomalies, anomalies, a->params.max_rows,
            a->params.seed);
}

/* The budget before any of the network's memory: 0, or 1 with the refusal printed. */
static int check_budget(const TrainArgs *a, const Dataset *ds)
{
    TrainEstimate e;
    char err[512];
    int r = train_check_budget(ds, &a->params, &a->budget, &e, err, sizeof(err));

    if (r == 0)
        return 0;
    if (r == TRAIN_E_BUDGET)
        cli_error("%s: %s (--max-train-parameters and --max-train-memory raise the limits; 0 "
                  "lifts one)",
                  a->data, err);
    else
        cli_error("%s: %s", a->data, r == -ENOMEM ? "out of memory" : err);
    return 1;
}

static int cmd_train(int argc, char **argv)
{
    TrainArgs a;
    Dataset *ds = NULL;
    Model *m = NULL;
    char err[512];
    bool tty = isatty(STDERR_FILENO);
    int r = parse_train_args(argc, argv, &a);

    if (r != 0)
        return r < 0 ? 0 : r;
    r = load_data(a.data, a.label, a.params.max_rows, a.params.seed, &ds);
    if (r != 0)
        goto done;
    if (!a.quiet && a.params.max_rows > 0)
        report_sample(&a, ds);
    r = check_budget(&a, ds);
    if (r != 0)
        goto done;
    r = train_model(ds, &a.params, creation_time(), NULL, a.quiet ? NULL : print_progress, &tty, &m,
                    err, sizeof(err));
    if (r != 0) {
        cli_error("%s: %s", a.data, r == -ENOMEM ? "out of memory" : err);
        r = 1;
        goto done;
    }
    r = model_file_save(m, a.out, false);
    if (r != 0) {
        cli_error("%s: %s", a.out, model_file_strerror(r));
        r = 1;
        goto done;
    }
    if (!a.quiet)
        report_trained(m, a.out);
done:
    model_unref(m);
    dataset_free(ds);
    return r;
}

/* ---- eval / score ---- */

typedef struct ModelDataArgs {
    const char *model, *data, *label, *out, *id_column;
    unsigned top;
    bool json;
} ModelDataArgs;

/* parse_model_data: options beyond the common ones */
enum { TAKES_JSON = 1, TAKES_OUT = 2, TAKES_ID = 4 };

/* --top-features N: 0..MODEL_MAX_FEATURES. */
static int parse_top(const char *arg, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(arg, &end, 10);
    if (arg[0] >= '0' && arg[0] <= '9' && *end == '\0' && errno == 0 && v <= MODEL_MAX_FEATURES) {
        *out = (unsigned) v;
        return 0;
    }
    usage_error("--top-features: expected an integer 0..%d, got '%s'", MODEL_MAX_FEATURES, arg);
    return -EINVAL;
}

static int parse_model_data(int argc, char **argv, const char *cmd, unsigned takes,
                            void (*help)(FILE *), ModelDataArgs *a)
{
    int c;

    *a = (ModelDataArgs){.label = "label"};
    while ((c = getopt_long(argc, argv, "", model_data_options, NULL)) != -1) {
        switch (c) {
        case ARG_ID_COLUMN:
        case ARG_TOP_FEATURES:
            if (!(takes & TAKES_ID)) {
                usage_error("%s: unknown option '--%s'", cmd,
                            c == ARG_ID_COLUMN ? "id-column" : "top-features");
                return EXIT_USAGE;
            }
            if (c == ARG_ID_COLUMN)
                a->id_column = optarg;
            else if (parse_top(optarg, &a->top) < 0)
                return EXIT_USAGE;
            break;
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
        case ARG_OUT:
            if (!(takes & (c == ARG_JSON ? TAKES_JSON : TAKES_OUT))) {
                usage_error("%s: unknown option '--%s'", cmd, c == ARG_JSON ? "json" : "out");
                return EXIT_USAGE;
            }
            if (c == ARG_JSON)
                a->json = true;
            else
                a->out = optarg;
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
    if (a->model == NULL || a->data == NULL || ((takes & TAKES_OUT) && a->out == NULL)) {
        usage_error("%s: %s are required", cmd,
                    takes & TAKES_OUT ? "--model, --data and --out" : "--model and --data");
        return EXIT_USAGE;
    }
    return 0;
}

/* report: the model, the labelled data encoded for it, its scores and their evaluation. 0,
 * or 1 with the message printed (the caller frees what is set). (eval streams: stream.c.) */
static int load_and_evaluate(const ModelDataArgs *a, Model **m, Dataset **ds, float **scores,
                             EvalReport *rep)
{
    int r = load_model(a->model, m);

    if (r == 0)
        r = load_data(a->data, a->label, 0, 0, ds);
    if (r == 0 && (*ds)->label == NULL) {
        cli_error_no_label(a->data, a->label, "report");
        r = 1;
    }
    if (r == 0)
        r = encode_for_model(*m, ds, a->data);
    if (r == 0 && (*scores = score_all(*m, *ds)) == NULL)
        r = 1;
    if (r != 0)
        return r;
    r = evaluate(*scores, (*ds)->label, (*ds)->n_rows, (*m)->threshold, rep);
    if (r != 0) {
        cli_error_evaluate(a->data, r);
        return 1;
    }
    return 0;
}

static int cmd_report(int argc, char **argv)
{
    ModelDataArgs a;
    Model *m = NULL;
    Dataset *ds = NULL;
    float *scores = NULL;
    EvalReport rep;
    char err[256];
    int r = parse_model_data(argc, argv, "report", TAKES_OUT, help_report, &a);

    if (r != 0)
        return r < 0 ? 0 : r;
    r = load_and_evaluate(&a, &m, &ds, &scores, &rep);
    if (r == 0) {
        ReportInput in = {m, ds, scores, &rep, a.model, a.data};

        if (report_write(&in, a.out, err, sizeof(err)) != 0) {
            cli_error("%s: %s", a.out, err);
            r = 1;
        }
    }
    free(scores);
    dataset_free(ds);
    model_unref(m);
    return r;
}

/* eval's figures, as text or JSON. */
static void print_eval(const ModelDataArgs *a, const Model *m, const EvalReport *rep)
{
    if (a->json)
        printf("{\"roc_auc\": %.6f, \"pr_auc\": %.6f, \"precision\": %.6f, \"recall\": %.6f, "
               "\"f1\": %.6f, \"accuracy\": %.6f, \"threshold\": %.9g, \"rows\": %zu, "
               "\"anomalies\": %zu, \"tp\": %zu, \"fp\": %zu, \"tn\": %zu, \"fn\": %zu, "
               "\"model_id\": \"%s\"}\n",
               rep->roc_auc, rep->pr_auc, rep->precision, rep->recall, rep->f1, rep->accuracy,
               (double) rep->threshold, rep->rows, rep->anomalies, rep->tp, rep->fp, rep->tn,
               rep->fn, m->meta.id);
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
               a->model, m->meta.id, a->data, rep->rows, rep->anomalies, rep->roc_auc, rep->pr_auc,
               (double) rep->threshold, rep->precision, rep->recall, rep->f1, rep->accuracy,
               rep->tp, rep->fp, rep->tn, rep->fn);
}

static int cmd_eval(int argc, char **argv)
{
    ModelDataArgs a;
    Model *m = NULL;
    float *scores = NULL;
    unsigned char *labels = NULL;
    size_t n = 0;
    EvalReport rep;
    int r = parse_model_data(argc, argv, "eval", TAKES_JSON, help_eval, &a);

    if (r != 0)
        return r < 0 ? 0 : r;
    r = load_model(a.model, &m);
    if (r == 0)
        r = stream_eval(m, &(StreamArgs){.data = a.data, .label = a.label}, &scores, &labels, &n);
    if (r == 0 && (r = evaluate(scores, labels, n, m->threshold, &rep)) != 0) {
        cli_error_evaluate(a.data, r);
        r = 1;
    }
    if (r == 0)
        print_eval(&a, m, &rep);
    free(scores);
    free(labels);
    model_unref(m);
    return r;
}

static int cmd_score(int argc, char **argv)
{
    ModelDataArgs a;
    Model *m = NULL;
    int r = parse_model_data(argc, argv, "score", TAKES_ID, help_score, &a);

    if (r != 0)
        return r < 0 ? 0 : r;
    r = load_model(a.model, &m);
    if (r == 0)
        r = stream_score(
            m,
            &(StreamArgs){
                .data = a.data, .label = a.label, .id_column = a.id_column, .top_features = a.top},
            stdout);
    model_unref(m);
    return r;
}

/* ---- inspect ---- */

/* How the score is made, and its parts (model.h "The score"). */
static void inspect_score(const Model *m)
{
    const ModelReference *ref = &m->ref;

    if (ref->kind == MODEL_REFERENCE_NONE) {
        printf("score        reconstruction error (mse); reference none\n");
        return;
    }
    printf("score        (log mse - m1)/s1 + (log knn%zu - m2)/s2\n", model_knn_k(m));
    printf("reference    %s: %zu %s, standardised like the network's inputs\n",
           model_reference_name(ref->kind), ref->n,
           ref->kind == MODEL_REFERENCE_ROWS ? "normal training rows"
                                             : "k-means centres of the normal training rows");
    printf("parts        m1 %.6g, s1 %.6g (log mse); m2 %.6g, s2 %.6g (log knn)\n",
           (double) ref->m1, (double) ref->s1, (double) ref->m2, (double) ref->s2);
}

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
    if (m->file_format < MODEL_FILE_VERSION)
        printf("format       %u (this build writes %d)\n", m->file_format, MODEL_FILE_VERSION);
    else
        printf("format       %u\n", m->file_format);
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
    inspect_score(m);
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
        {"train", cmd_train},   {"eval", cmd_eval},       {"score", cmd_score},
        {"report", cmd_report}, {"inspect", cmd_inspect},
    };

    if (argc < 2) {
        help_main(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help_main(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        puts("aescore " AESCORE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    usage_error("unknown command '%s'", argv[1]);
    return EXIT_USAGE;
}
