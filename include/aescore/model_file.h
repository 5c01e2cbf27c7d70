/* model_file: the on-disk model format, strict loading and atomic saving.
 *
 * Format version 4, every integer and float little-endian, floats IEEE-754 binary32
 * (version 3 is the same without reference_rows and the reference section, so its models
 * score by reconstruction error alone, as they always did; version 2 is version 3 without
 * the training distribution at the end of the schema block, so its models have no drift
 * profile; version 1 is without schema_bytes and the schema block, and its columns load as
 * numeric fields imputed with their mean):
 *
 *   offset  size  field
 *   0       8     magic "AESCORE\0"
 *   8       4     u32 format version (4)
 *   12      4     u32 n_features F           (1 .. MODEL_MAX_FEATURES)
 *   16      4     u32 n_layers L             (2 .. NN_MAX_LAYERS, weight layers)
 *   20      4     u32 n_members M            (1 .. MODEL_MAX_MEMBERS)
 *   24      4     u32 n_percentiles P        (= MODEL_PERCENTILES)
 *   28      4     u32 names_bytes N          (total bytes of the name block, <= 1 MiB)
 *   32      4     u32 schema_bytes S         (8 .. 16 MiB)
 *   36      4     u32 reference_rows R       (0 .. MODEL_MAX_REFERENCE)
 *   40      4*(L+1) u32 sizes[0..L]          (sizes[0] = sizes[L] = F; each 1..NN_MAX_WIDTH)
 *   ..      4*L   u32 activation of each layer (0 linear, 1 relu, 2 tanh, 3 sigmoid)
 *   ..      8     u64 rows
 *   ..      8     u64 seed
 *   ..      8     i64 created (unix seconds)
 *   ..      4     u32 epochs_run
 *   ..      4     u32 best_epoch
 *   ..      4     f32 train_loss
 *   ..      4     f32 val_loss
 *   ..      4     f32 threshold_q
 *   ..      4     f32 threshold
 *   ..      16    model id (ASCII hex, not NUL-terminated)
 *   ..      N     names: F strings, each NUL-terminated, non-empty
 *   ..      4*F   f32 mean
 *   ..      4*F   f32 std
 *   ..      4*P   f32 percentile table
 *   ..      4*M*n_params  f32 parameters, member after member, layout of nn.h
 *   ..      S     schema: u32 n_fields, u32 n_ignored; per field u8 kind (0 numeric,
 *                 1 categorical), u8 has_other, u16 0, u32 n_categories, f32 fill, the name
 *                 and each category NUL-terminated; then the ignored names NUL-terminated.
 *                 Version 3: then u32 1 and per field its training distribution
 *                 (schema.h profile: numeric 9 decile edges + 10 shares, categorical one
 *                 share per input column, all f32), or u32 0 when the model has none.
 *                 The input column names (the name block) must be those the fields imply.
 *   ..      4     u32 reference kind (0 none, 1 rows, 2 centres; 0 exactly when R = 0)
 *   ..      16    f32 m1, s1, m2, s2 (model.h "The score"; s1, s2 > 0 with a reference)
 *   ..      4*R*F f32 reference rows, standardised, row after row
 *   end-4   4     u32 CRC32 (zlib) of every byte before it
 *
 * The loader checks each count against its bound and the sizes implied by the header
 * against the file length before allocating anything; then the CRC; then the contents
 * (model_validate). Saving writes a new PATH.tmp.XXXXXX (mkostemp), fsyncs it, optionally
 * hard-links the current PATH to PATH.prev, renames the temp file over PATH and fsyncs the
 * directory, so a crash at any instant leaves PATH holding a whole old or a whole new model (and at
 * worst a stray temp file). Files larger than 2 GiB are refused by the loader.
 *
 * Threads: reentrant; no shared state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aescore/model.h"

#define MODEL_FILE_VERSION 4 /* written; versions 1 to 4 are read */

enum {
    MODEL_FILE_E_MAGIC = 1, /* not a model file */
    MODEL_FILE_E_VERSION,   /* a format version this build does not read */
    MODEL_FILE_E_TRUNCATED, /* shorter than its header says */
    MODEL_FILE_E_CHECKSUM,  /* CRC32 mismatch: the bytes were damaged */
    MODEL_FILE_E_SHAPE,     /* counts out of range or inconsistent, or invalid contents */
};

/* A short human reason for a return code of this module (either sign). */
const char *model_file_strerror(int r);

/* Encodes m into a new malloc'd buffer (*buf, *len; caller frees). 0, -ENOMEM, or -EINVAL
 * for a model the loader would refuse (names over 1 MiB, inconsistent shape). */
int model_file_encode(const Model *m, unsigned char **buf, size_t *len);

/* Decodes len bytes. Returns 0 with *out owning a new Model (refcount 1) that has passed
 * model_validate (do not validate it again), a MODEL_FILE_E_* code (MODEL_FILE_E_SHAPE also
 * for contents model_validate refuses), or -ENOMEM. Never reads outside buf. */
int model_file_decode(const unsigned char *buf, size_t len, Model **out);

/* Reads and decodes path. Returns as model_file_decode (on success a validated Model), or
 * -errno when it cannot be read. */
int model_file_load(const char *path, Model **out);

/* model_file_load on an open descriptor (not closed), for a caller that must know which
 * file it read (it fstat()s the same descriptor). */
int model_file_load_fd(int fd, Model **out);

/* Atomically writes m to path as described above (keep_prev: keep the replaced file as
 * PATH.prev). Returns 0 or -errno; on failure no temp file is left and path is untouched,
 * except when only the final directory fsync fails (path then holds the new model, which
 * may not be durable yet). */
int model_file_save(const Model *m, const char *path, bool keep_prev);
