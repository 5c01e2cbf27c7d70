/* util: the small helpers every layer shares: clocks, reading a whole file, the float
 * comparator for qsort.
 *
 * Threads: reentrant. Errors: as each function says (0 or a negative errno).
 */
#pragma once

#include <stddef.h>

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC): for durations and deadlines. */
double util_now_mono(void);

/* Unix seconds with fractions (CLOCK_REALTIME): for timestamps people read. */
double util_now_wall(void);

/* Reads the whole file at path (at most max bytes) into a new NUL-terminated buffer:
 * *out (caller frees) and *len (the bytes, the NUL not counted; may be NULL). Reads to the
 * end of the file with read(2), so pipes and files that grow while being read work too.
 * Returns 0, -EFBIG when the file is larger than max (a regular file's size is checked
 * before anything is allocated), -ENOMEM, or the -errno of open, fstat or read. The buffer
 * is the file's size + 1 bytes, max + 1 at most; on failure nothing is left allocated.
 * Callers holding secrets wipe the buffer before freeing it (a failure, and every buffer
 * given up while growing, is wiped here). */
int util_read_file(const char *path, size_t max, char **out, size_t *len);

/* util_read_file on an open descriptor (read from where it stands; not closed): the -errno
 * of fstat or read, and the rest as above. */
int util_read_fd(int fd, size_t max, char **out, size_t *len);

/* Formats a one-line message into err (err_size bytes; nothing when err is NULL or
 * err_size 0). Control characters that came in through the arguments (a column name with
 * a line end inside its quotes, say) become '?', so a message is always one line. */
void util_set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Durable writes (as redis writes its rdb: temp file, fsync, rename, directory fsync).
 * util_write_temp writes data to a new file named after the template tmp (its XXXXXX
 * replaced in place), mode 0644, fsynced and closed; on failure the file is gone again.
 * util_fsync_parent makes a rename in path's directory durable (a filesystem that cannot
 * fsync a directory is not an error). util_write_atomic does all of it for path: a reader
 * sees the old contents or the new, never a mix, whenever the process dies. Each returns 0
 * or -errno. */
int util_write_temp(char *tmp, const void *data, size_t len);
int util_fsync_parent(const char *path);
int util_write_atomic(const char *path, const void *data, size_t len);

/* qsort comparator for float: ascending; the caller keeps NaN out (it has no order). */
int util_cmp_float(const void *a, const void *b);
