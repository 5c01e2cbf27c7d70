/* util: see util.h. */
#include "aescore/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

double util_now_mono(void)
{
    return now(CLOCK_MONOTONIC);
}

double util_now_wall(void)
{
    return now(CLOCK_REALTIME);
}

int util_read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t n;
    int r;

    f = fopen(path, "re");
    if (f == NULL) {
        r = -errno;
        goto fail;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        r = -EIO;
        goto fail;
    }
    if (n > max) {
        r = -EFBIG;
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    return 0;

fail:
    if (buf != NULL)
        explicit_bzero(buf, max + 1); /* it may have held part of a secret */
    free(buf);
    if (f != NULL)
        fclose(f);
    return r;
}

int util_cmp_float(const void *a, const void *b)
{
    float x = *(const float *) a, y = *(const float *) b;

    return (x > y) - (x < y);
}
