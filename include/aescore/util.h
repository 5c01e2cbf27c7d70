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
 * *out (caller frees) and *len (the bytes, the NUL not counted; may be NULL). Returns 0,
 * -EFBIG when the file is larger than max, or the -errno of open/read (-EIO for a read
 * error). The buffer is max + 1 bytes at most; on failure nothing is allocated. Callers
 * holding secrets wipe the buffer before freeing it (a failure wipes what was read). */
int util_read_file(const char *path, size_t max, char **out, size_t *len);

/* qsort comparator for float: ascending; the caller keeps NaN out (it has no order). */
int util_cmp_float(const void *a, const void *b);
