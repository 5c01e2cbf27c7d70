/* secret: token and PEM files, read in one place (private to src/service).
 *
 * A secret is read whole (capped), kept in one buffer and wiped with explicit_bzero before
 * it is freed; nothing here logs its bytes. Messages name the file and what it is for
 * ("admin token", "TLS key").
 * Threads: reentrant. Errors: 0, or a negative errno with "PATH: cannot read the WHAT:
 * reason" (or "PATH: the WHAT must be one non-empty line", -EINVAL) in err.
 */
#pragma once

#include <stddef.h>

#define SECRET_TOKEN_MAX 4096
#define SECRET_PEM_MAX   (1024 * 1024)

/* A bearer token: one non-empty line; trailing blanks and the line end are dropped.
 * *token (NUL-terminated, *len bytes) is the caller's: free it with secret_free. */
int secret_read_token(const char *path, const char *what, char **token, size_t *len, char *err,
                      size_t err_size);

/* A PEM file (certificate or key) as text, at most SECRET_PEM_MAX bytes. */
int secret_read_pem(const char *path, const char *what, char **pem, size_t *len, char *err,
                    size_t err_size);

/* Wipes len bytes and frees; accepts NULL; returns NULL. */
char *secret_free(char *p, size_t len);
