/* cli: what the CLI's modules (aescore.c, stream.c) share. */
#pragma once

/* "aescore: " fmt "\n" on stderr: the CLI's one form of error message. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --data PATH opened for reading: "-" is standard input, named "<stdin>" in messages.
 * 0 with *fd and *source (path itself, or "<stdin>"; the caller closes an fd other than
 * STDIN_FILENO), or 1 with the message printed. */
int cli_open_data(const char *path, int *fd, const char **source);

/* The messages eval and report share: data without the label column, and labels that
 * evaluate (evaluate.h) refused with code r. */
void cli_error_no_label(const char *source, const char *label, const char *cmd);
void cli_error_evaluate(const char *source, int r);
