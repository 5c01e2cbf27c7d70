/* Unit tests for util: whole-file reads (sizes, limits, errors, pipes), the float comparator
 * and the clocks.
 */
#undef NDEBUG
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aescore/util.h"

static char tmpdir[] = "/tmp/aescore-test-util-XXXXXX";

static int setup(void **state)
{
    (void) state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[64];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes n bytes of a pattern to a file in tmpdir; returns its path (static buffer). */
static const char *write_file(const char *name, size_t n)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int) (i % 26), f);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void assert_pattern(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf[i], 'a' + (int) (i % 26));
    assert_int_equal(buf[n], '\0');
}

/* ------------------------------------------------------------------ util_read_file */

static void test_read_file_reads_everything_and_terminates_it(void **state)
{
    const char *path = write_file("all", 100000);
    char *buf = NULL;
    size_t len = 0;

    (void) state;
    assert_int_equal(util_read_file(path, 1 << 20, &buf, &len), 0);
    assert_int_equal(len, 100000);
    assert_pattern(buf, len);
    free(buf);
}

static void test_read_file_takes_exactly_max_and_refuses_one_more(void **state)
{
    const char *path = write_file("max", 4096);
    char *buf = NULL;
    size_t len = 0;

    (void) state;
    assert_int_equal(util_read_file(path, 4096, &buf, &len), 0);
    assert_int_equal(len, 4096);
    assert_pattern(buf, len);
    free(buf);
    buf = NULL;
    assert_int_equal(util_read_file(path, 4095, &buf, NULL), -EFBIG);
    assert_null(buf);
}

static void test_read_file_reads_an_empty_file(void **state)
{
    const char *path = write_file("empty", 0);
    char *buf = NULL;
    size_t len = 1;

    (void) state;
    assert_int_equal(util_read_file(path, 10, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], '\0');
    free(buf);
}

static void test_read_file_reads_a_pipe_to_its_end_within_max(void **state)
{
    int fds[2];
    char path[64], chunk[1040], *buf = NULL;
    size_t len = 0;

    (void) state;
    /* a pipe has no size: the reader must grow its buffer (64 KiB fits the pipe's buffer) */
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = 'a' + (char) (i % 26);
    assert_int_equal(pipe(fds), 0);
    for (int k = 0; k < 25; k++) /* 26000 bytes; 1040 = 40 * 26 keeps the pattern going */
        assert_int_equal(write(fds[1], chunk, sizeof(chunk)), (ssize_t) sizeof(chunk));
    close(fds[1]);
    snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
    assert_int_equal(util_read_file(path, 26000, &buf, &len), 0);
    assert_int_equal(len, 26000);
    assert_pattern(buf, len);
    free(buf);
    close(fds[0]);

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], chunk, sizeof(chunk)), (ssize_t) sizeof(chunk));
    close(fds[1]);
    snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
    buf = NULL;
    assert_int_equal(util_read_file(path, 1039, &buf, &len), -EFBIG);
    assert_null(buf);
    close(fds[0]);
}

static void test_read_file_returns_the_errno_of_open_and_read(void **state)
{
    char path[256], *buf = NULL;

    (void) state;
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    assert_int_equal(util_read_file(path, 10, &buf, NULL), -ENOENT);
    assert_int_equal(util_read_file(tmpdir, 10, &buf, NULL), -EISDIR);
    assert_null(buf);
}

/* ------------------------------------------------------------------ comparator, clocks */

static void test_cmp_float_sorts_ascending_with_equal_zeros(void **state)
{
    float v[] = {3.0f, -1.0f, 2.5f, -0.0f, 1e30f, -1e-30f, 0.0f, 2.5f};
    const float sorted[] = {-1.0f, -1e-30f, 0.0f, 0.0f, 2.5f, 2.5f, 3.0f, 1e30f};
    float a = 0.0f, b = -0.0f;

    (void) state;
    qsort(v, sizeof(v) / sizeof(v[0]), sizeof(v[0]), util_cmp_float);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_true(v[i] == sorted[i]);
    assert_int_equal(util_cmp_float(&a, &b), 0);
    a = 1.0f;
    assert_int_equal(util_cmp_float(&a, &b), 1);
    assert_int_equal(util_cmp_float(&b, &a), -1);
}

static void test_clocks_move_forward_and_the_wall_clock_is_unix_time(void **state)
{
    double m0 = util_now_mono(), w = util_now_wall(), m1 = util_now_mono();

    (void) state;
    assert_true(m1 >= m0);
    assert_true(w > 1.6e9 && w < 1e10); /* after 2020, before the year 2286 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_file_reads_everything_and_terminates_it),
        cmocka_unit_test(test_read_file_takes_exactly_max_and_refuses_one_more),
        cmocka_unit_test(test_read_file_reads_an_empty_file),
        cmocka_unit_test(test_read_file_reads_a_pipe_to_its_end_within_max),
        cmocka_unit_test(test_read_file_returns_the_errno_of_open_and_read),
        cmocka_unit_test(test_cmp_float_sorts_ascending_with_equal_zeros),
        cmocka_unit_test(test_clocks_move_forward_and_the_wall_clock_is_unix_time),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
