/* cli: what the CLI's modules (aescore.c, stream.c) share. */
#pragma once

/* "aescore: " fmt "\n" on stderr: the CLI's one form of error message. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
