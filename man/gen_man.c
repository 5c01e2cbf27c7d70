/* gen_man: fills a man page template with the lists the code itself uses, so the pages
 * cannot drift from the binaries.
 *
 *   gen_man TEMPLATE OUTPUT VERSION SYSCONFDIR LOCALSTATEDIR DATADIR
 *
 * Copies TEMPLATE to OUTPUT, replacing a line that is exactly
 *   @TRAIN_OPTIONS@   by one .TP entry per row of train_param_table (aescore train --NAME,
 *                     with its metavar, help, bounds and train_params_default's value),
 *   @CONFIG_KEYS@     by one .TP entry per key that config_print_template prints (its
 *                     "# help" lines and its "key = default" line),
 * and inside any line @VERSION@, @SYSCONFDIR@, @LOCALSTATEDIR@ and @DATADIR@.
 * Built for the build machine only; never installed. Exit status 0, or 1 with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/config.h"
#include "aescore/train_params.h"

/* Writes text with troff's special characters escaped: a backslash, a '-' (so options
 * are real minus signs, and searchable), and a '.' or '\'' at the start of a line. */
static void put_text(FILE *out, const char *s, size_t n)
{
    if (n > 0 && (s[0] == '.' || s[0] == '\''))
        fputs("\\&", out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            fputs("\\e", out);
        else if (s[i] == '-')
            fputs("\\-", out);
        else
            fputc(s[i], out);
    }
}

static void put_str(FILE *out, const char *s)
{
    put_text(out, s, strlen(s));
}

/* A bound as a person reads it: integers without a fraction, large ones as is. */
static void format_bound(double v, char *buf, size_t size)
{
    if (v >= 18446744073709551615.0)
        snprintf(buf, size, "18446744073709551615");
    else if (v == (double) (long long) v && v < 1e15)
        snprintf(buf, size, "%lld", (long long) v);
    else
        snprintf(buf, size, "%g", v);
}

static void write_train_options(FILE *out)
{
    TrainParams defaults;
    train_params_default(&defaults);
    for (size_t i = 0; i < train_param_count; i++) {
        const TrainParamDef *def = &train_param_table[i];
        char option[128], value[256], lo[64], hi[64];
        snprintf(option, sizeof(option), "%s", def->name);
        for (char *c = option; *c != '\0'; c++)
            if (*c == '_')
                *c = '-';
        fputs(".TP\n\\fB\\-\\-", out);
        put_str(out, option);
        fputs("\\fR", out);
        if (def->metavar != NULL) {
            fputs(" \\fI", out);
            put_str(out, def->metavar);
            fputs("\\fR", out);
        }
        fputc('\n', out);
        put_str(out, def->help);
        fputc('.', out);
        format_bound(def->min, lo, sizeof(lo));
        format_bound(def->max, hi, sizeof(hi));
        switch (def->type) {
        case TRAIN_PARAM_SIZE:
        case TRAIN_PARAM_SEED:
            fprintf(out, " An integer from %s to %s.", lo, hi);
            break;
        case TRAIN_PARAM_FLOAT:
        case TRAIN_PARAM_QUANTILE:
        case TRAIN_PARAM_THRESHOLD:
            fprintf(out, " A number %s %s and %s %s.",
                    (def->flags & TRAIN_PARAM_MIN_OPEN) ? "above" : "from", lo,
                    (def->flags & TRAIN_PARAM_MAX_OPEN) ? "below" : "up to", hi);
            break;
        case TRAIN_PARAM_HIDDEN:
            fprintf(out, " Each width from %s to %s.", lo, hi);
            break;
        default:
            break;
        }
        train_params_format(&defaults, def, value, sizeof(value));
        if (value[0] != '\0') {
            fputs(" Default: \\fB", out);
            put_str(out, value);
            fputs("\\fR.", out);
        }
        fprintf(out, "\nIn \\fBPOST /retrain\\fR: \\fB%s\\fR.\n", def->name);
    }
}

/* config_print_template's output: a header, then per key a blank line, "# help" lines
 * and "#key = default". */
static int write_config_keys(FILE *out)
{
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    if (mem == NULL)
        return -1;
    config_print_template(mem);
    if (fclose(mem) != 0)
        return -1;

    int keys = 0;
    char *help[64];
    size_t n_help = 0;
    char *next = text;
    while (next != NULL && *next != '\0') {
        char *line = next;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] == '\0') { /* a blank line starts a key's block */
            n_help = 0;
            continue;
        }
        const char *eq = strstr(line, " =");
        size_t key_len = eq != NULL ? (size_t) (eq - line - 1) : 0;
        if (line[0] == '#' && eq != NULL && key_len > 0 &&
            strspn(line + 1, "abcdefghijklmnopqrstuvwxyz_") == key_len) {
            const char *def = eq[2] == ' ' ? eq + 3 : eq + 2;
            fputs(".TP\n\\fB", out);
            put_text(out, line + 1, key_len);
            fputs("\\fR = \\fI", out);
            put_str(out, def[0] != '\0' ? def : "(empty)");
            fputs("\\fR\n", out);
            for (size_t i = 0; i < n_help; i++) {
                const char *h = help[i] + 1;
                if (*h == ' ')
                    h++;
                put_str(out, h);
                fputc('\n', out);
            }
            n_help = 0;
            keys++;
        } else if (line[0] == '#' && n_help < sizeof(help) / sizeof(help[0])) {
            help[n_help++] = line;
        }
    }
    free(text);
    return keys > 0 ? 0 : -1;
}

static void put_substituted(FILE *out, const char *line, const char *const *vars)
{
    while (*line != '\0') {
        int done = 0;
        for (size_t i = 0; vars[i] != NULL; i += 2) {
            size_t n = strlen(vars[i]);
            if (strncmp(line, vars[i], n) == 0) {
                fputs(vars[i + 1], out);
                line += n;
                done = 1;
                break;
            }
        }
        if (!done)
            fputc(*line++, out);
    }
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr,
                "usage: gen_man TEMPLATE OUTPUT VERSION SYSCONFDIR LOCALSTATEDIR DATADIR\n");
        return 1;
    }
    const char *vars[] = {"@VERSION@",       argv[3], "@SYSCONFDIR@", argv[4],
                          "@LOCALSTATEDIR@", argv[5], "@DATADIR@",    argv[6],
                          NULL};
    FILE *in = fopen(argv[1], "r");
    if (in == NULL) {
        perror(argv[1]);
        return 1;
    }
    FILE *out = fopen(argv[2], "w");
    if (out == NULL) {
        perror(argv[2]);
        fclose(in);
        return 1;
    }
    char line[4096];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), in) != NULL) {
        if (strcmp(line, "@TRAIN_OPTIONS@\n") == 0)
            write_train_options(out);
        else if (strcmp(line, "@CONFIG_KEYS@\n") == 0)
            rc = write_config_keys(out);
        else
            put_substituted(out, line, vars);
    }
    fclose(in);
    if (fclose(out) != 0 || rc != 0) {
        fprintf(stderr, "gen_man: %s: could not write the page\n", argv[2]);
        return 1;
    }
    return 0;
}
