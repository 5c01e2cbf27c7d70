/* secret: see secret.h. util_read_file does the reading (and wipes what it read when it
 * fails); this file adds the shapes a token must have and the wiping on the way out. */
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/util.h"

static int read_secret(const char *path, const char *what, size_t max, char **out, size_t *len,
                       char *err, size_t err_size)
{
    int r = util_read_file(path, max, out, len);

    if (r < 0)
        snprintf(err, err_size, "%s: cannot read the %s: %s", path, what, strerror(-r));
    return r;
}

char *secret_free(char *p, size_t len)
{
    if (p != NULL) {
        explicit_bzero(p, len);
        free(p);
    }
    return NULL;
}

int secret_read_token(const char *path, const char *what, char **token, size_t *len, char *err,
                      size_t err_size)
{
    char *buf = NULL;
    size_t n = 0, read_len;
    int r = read_secret(path, what, SECRET_TOKEN_MAX, &buf, &n, err, err_size);

    if (r < 0)
        return r;
    read_len = n;
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (n == 0 || memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL) {
        snprintf(err, err_size, "%s: the %s must be one non-empty line", path, what);
        secret_free(buf, read_len);
        return -EINVAL;
    }
    explicit_bzero(buf + n, read_len - n);
    buf[n] = '\0';
    *token = buf;
    *len = n;
    return 0;
}

int secret_read_pem(const char *path, const char *what, char **pem, size_t *len, char *err,
                    size_t err_size)
{
    return read_secret(path, what, SECRET_PEM_MAX, pem, len, err, err_size);
}
