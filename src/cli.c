/* cli: see cli.h. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aescore/evaluate.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;

    fputs("aescore: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_open_data(const char *path, int *fd, const char **source)
{
    if (strcmp(path, "-") == 0) {
        *fd = STDIN_FILENO;
        *source = "<stdin>";
        return 0;
    }
    *source = path;
    if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        cli_error("%s: %s", path, strerror(errno));
        return 1;
    }
    return 0;
}

void cli_error_no_label(const char *source, const char *label, const char *cmd)
{
    cli_error("%s:1: no label column '%s': %s needs labelled rows", source, label, cmd);
}

void cli_error_evaluate(const char *source, int r)
{
    cli_error("%s: %s", source,
              r == EVALUATE_E_SINGLE_CLASS
                  ? "labels hold one class only: ROC and PR AUC need normal and anomalous rows"
                  : "cannot evaluate");
}
