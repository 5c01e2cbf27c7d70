/* fuzz_config: the config parser through its public entry points only.
 *
 * config.c reads files (config_load) and single keys (config_set); it has no string entry,
 * so the input is written to a memfd and loaded through /proc/self/fd/N (no disk, no temp
 * file to clean up). Per input:
 *  - config_load of the whole input over the defaults; on failure the message must be one
 *    NUL-terminated line naming the file; on success the settings are printed with
 *    config_print and loaded again, and when that second load succeeds it must give the
 *    same settings (what --print-config shows must mean what was loaded);
 *  - config_set of every key (names taken from config_print, so new keys are fuzzed too) to
 *    the input's first line as the value, plus the input as a key; a refused value must
 *    leave the Config byte-for-byte unchanged, as the header promises.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aescore/config.h"
#include "aescore/log.h"

#include "fuzz_check.h"

#define MAX_KEYS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int input_fd = -1, print_fd = -1;
static char input_path[64], print_path[64];
static char *key_names[MAX_KEYS];
static size_t n_keys;

static int open_memfd(const char *name, char *path, size_t path_size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    FUZZ_CHECK(fd >= 0);
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

static void put_file(int fd, const void *data, size_t size)
{
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t) size);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    Config c;
    char *text = NULL, *line, *save = NULL;
    size_t len = 0;
    FILE *f;

    (void) argc;
    (void) argv;
    log_init(LOG_LEVEL_ERR);
    input_fd = open_memfd("fuzz-config", input_path, sizeof(input_path));
    print_fd = open_memfd("fuzz-config-print", print_path, sizeof(print_path));

    /* every "key = value" line config_print writes names a key */
    config_defaults(&c);
    f = open_memstream(&text, &len);
    FUZZ_CHECK(f != NULL);
    config_print(&c, f);
    FUZZ_CHECK(fclose(f) == 0);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strstr(line, " =");
        if (line[0] == '#' || eq == NULL || n_keys == MAX_KEYS)
            continue;
        key_names[n_keys] = strndup(line, (size_t) (eq - line));
        FUZZ_CHECK(key_names[n_keys] != NULL);
        n_keys++;
    }
    free(text);
    FUZZ_CHECK(n_keys >= 10);
    return 0;
}

static void check_error(const char *err, size_t err_size, const char *prefix)
{
    FUZZ_CHECK(memchr(err, '\0', err_size) != NULL);
    FUZZ_CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
    FUZZ_CHECK(strchr(err, '\n') == NULL);
}

static void check_same(const Config *a, const Config *b)
{
    FUZZ_CHECK(strcmp(a->listen, b->listen) == 0);
    FUZZ_CHECK(strcmp(a->model, b->model) == 0);
    FUZZ_CHECK(strcmp(a->bootstrap_data, b->bootstrap_data) == 0);
    FUZZ_CHECK(a->threads == b->threads);
    FUZZ_CHECK(a->max_connections == b->max_connections);
    FUZZ_CHECK(a->connection_timeout == b->connection_timeout);
    FUZZ_CHECK(a->connection_memory_limit == b->connection_memory_limit);
    FUZZ_CHECK(a->max_body_bytes == b->max_body_bytes);
    FUZZ_CHECK(a->max_retrain_bytes == b->max_retrain_bytes);
    FUZZ_CHECK(a->max_batch == b->max_batch);
    FUZZ_CHECK(a->min_retrain_rows == b->min_retrain_rows);
    FUZZ_CHECK(a->top_features == b->top_features);
    FUZZ_CHECK(a->log_level == b->log_level);
    FUZZ_CHECK(strcmp(a->admin_token_file, b->admin_token_file) == 0);
    FUZZ_CHECK(a->allow_remote == b->allow_remote);
}

/* Loads, prints, reloads: the second load, when it works, must agree with the first. */
static void fuzz_load(const uint8_t *data, size_t size)
{
    static Config c, again;
    char err[300];
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    int r;

    put_file(input_fd, data, size);
    config_defaults(&c);
    memset(err, 'x', sizeof(err));
    r = config_load(&c, input_path, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == CONFIG_E_INVALID || r == -ENOMEM || r == -EFBIG);
    if (r != 0) {
        check_error(err, sizeof(err), input_path);
        return;
    }

    f = open_memstream(&text, &len);
    FUZZ_CHECK(f != NULL);
    config_print(&c, f);
    FUZZ_CHECK(fclose(f) == 0);
    put_file(print_fd, text, len);
    free(text);
    config_defaults(&again);
    if (config_load(&again, print_path, err, sizeof(err)) == 0)
        check_same(&c, &again);
}

static void fuzz_set(const uint8_t *data, size_t size)
{
    static Config c, before;
    char err[300];
    char *value = strndup((const char *) data, size);
    char *nl;

    FUZZ_CHECK(value != NULL);
    /* the whole input (up to a NUL) as a key name: unknown unless it is exactly a key */
    config_defaults(&c);
    memcpy(&before, &c, sizeof(c));
    if (config_set(&c, value, "1", NULL, 0, err, sizeof(err)) != 0)
        FUZZ_CHECK(memcmp(&before, &c, sizeof(c)) == 0);

    nl = strchr(value, '\n');
    if (nl != NULL)
        *nl = '\0';
    for (size_t i = 0; i < n_keys; i++) {
        int r;

        memcpy(&before, &c, sizeof(c));
        memset(err, 'x', sizeof(err));
        r = config_set(&c, key_names[i], value, "fuzz", 3, err, sizeof(err));
        FUZZ_CHECK(r == 0 || r == CONFIG_E_INVALID);
        if (r != 0) {
            FUZZ_CHECK(memcmp(&before, &c, sizeof(c)) == 0);
            check_error(err, sizeof(err), "fuzz:3: ");
        }
    }
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_load(data, size);
    fuzz_set(data, size);
    return 0;
}
