/* fuzz_model_file: the model loader (model_file_decode) on arbitrary bytes.
 *
 * A model file ends in a CRC32 of everything before it, so nearly every mutation of a valid
 * file dies at the checksum and the checks behind it (activations, names, schema,
 * model_validate) would never be reached. Each input is therefore decoded twice: as given
 * (the checksum must reject damage) and with its last four bytes replaced by the right CRC
 * (the contents checks must reject everything else). When a decode succeeds:
 *  - re-encoding the model must give back exactly the bytes that were decoded (a loader that
 *    accepts what the writer would not write, or drops a field, shows up here); a file of an
 *    older version is written in the current one, so there the re-encoding must decode and
 *    encode again to the same bytes;
 *  - the decoded schema encodes records (every field missing; then numbers for numeric
 *    fields and a category nobody has seen for categorical ones) into finite input columns
 *    whose names are the model's;
 *  - the decoded shape is exercised by scoring: one record with model_score (per-feature
 *    errors too) and two with model_score_batch, with the documented result ranges checked.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "aescore/model.h"
#include "aescore/model_file.h"
#include "aescore/schema.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *encode(const Model *m, size_t *len)
{
    unsigned char *buf = NULL;
    int r = model_file_encode(m, &buf, len);

    FUZZ_CHECK(r == 0 || r == -ENOMEM);
    return r == 0 ? buf : NULL;
}

static void check_same_bytes(const unsigned char *a, size_t a_len, const unsigned char *b,
                             size_t b_len, const char *what)
{
    size_t i = 0;

    if (a_len == b_len && memcmp(a, b, a_len) == 0)
        return;
    while (i < a_len && i < b_len && a[i] == b[i])
        i++;
    fprintf(stderr, "round trip differs (%s): %zu bytes vs %zu, first difference at byte %zu\n",
            what, a_len, b_len, i);
    abort();
}

static void check_round_trip(const Model *m, const uint8_t *data, size_t size)
{
    size_t len = 0, len2 = 0;
    unsigned char *buf = encode(m, &len), *buf2;
    Model *again = NULL;
    int r;

    if (buf == NULL)
        return;
    /* a decoded file is at least 12 bytes: magic and version */
    if (data[8] == (MODEL_FILE_VERSION & 0xff) && data[9] == 0 && data[10] == 0 && data[11] == 0) {
        check_same_bytes(data, size, buf, len, "decoded, encoded");
        free(buf);
        return;
    }
    /* an older version: what the current writer makes of it must be a fixed point */
    r = model_file_decode(buf, len, &again);
    if (r != 0) {
        fprintf(stderr,
                "a model read from a version %u file re-encodes to bytes that do not decode: "
                "%s\n",
                (unsigned) data[8], model_file_strerror(r));
        abort();
    }
    buf2 = encode(again, &len2);
    if (buf2 != NULL)
        check_same_bytes(buf, len, buf2, len2, "upgraded, decoded, encoded again");
    free(buf2);
    model_unref(again);
    free(buf);
}

/* Encodes records through the decoded schema; each must fill the input columns. */
static void check_schema(const Model *m)
{
    const Schema *sc = m->schema;
    SchemaValue *values;
    SchemaEncodeInfo info;
    float *x;

    FUZZ_CHECK(sc != NULL);
    FUZZ_CHECK(sc->n_columns == m->n_features);
    FUZZ_CHECK(schema_validate(sc) == 0);
    values = calloc(sc->n_fields + 1, sizeof(*values)); /* SCHEMA_MISSING is 0 */
    x = malloc(m->n_features * sizeof(*x));
    FUZZ_CHECK(values != NULL && x != NULL);

    memset(&info, 0, sizeof(info));
    FUZZ_CHECK(schema_encode(sc, values, x, &info) == 0);
    FUZZ_CHECK(info.n_imputed == sc->n_fields);
    for (size_t c = 0; c < m->n_features; c++)
        FUZZ_CHECK(isfinite(x[c]));

    for (size_t f = 0; f < sc->n_fields; f++) {
        if (sc->fields[f].kind == SCHEMA_NUMERIC) {
            values[f].type = SCHEMA_NUMBER;
            values[f].number = -1.5;
        } else {
            values[f].type = SCHEMA_TEXT;
            values[f].text = "\x01never seen";
            values[f].len = 11;
        }
    }
    memset(&info, 0, sizeof(info));
    FUZZ_CHECK(schema_encode(sc, values, x, &info) == 0);
    FUZZ_CHECK(info.n_imputed == 0);
    for (size_t c = 0; c < m->n_features; c++) {
        char *name = schema_column_name(sc, c);

        FUZZ_CHECK(isfinite(x[c]));
        FUZZ_CHECK(name != NULL);
        FUZZ_CHECK(strcmp(name, m->names[c]) == 0);
        free(name);
    }
    free(x);
    free(values);
}

static void check_scoring(const Model *m)
{
    size_t f = m->n_features;
    float *x = malloc(2 * f * sizeof(*x));
    float *err = malloc(f * sizeof(*err));
    float *scratch = malloc(model_scratch_size(m) * sizeof(*scratch));
    float scores[2];
    ModelScore sc;

    FUZZ_CHECK(x != NULL && err != NULL && scratch != NULL);
    for (size_t i = 0; i < f; i++) {
        x[i] = m->mean[i];                 /* the centre: standardises to 0 */
        x[f + i] = m->mean[i] + m->std[i]; /* one standard deviation off */
    }
    model_score(m, x + f, scratch, err, &sc);
    FUZZ_CHECK(sc.threshold == m->threshold);
    FUZZ_CHECK(isnan(sc.percentile) || (sc.percentile >= 0.0 && sc.percentile <= 100.0));
    if (!isnan(sc.score))
        FUZZ_CHECK(sc.anomaly == (sc.score > sc.threshold));
    model_score(m, x, scratch, NULL, &sc);
    model_score_batch(m, x, 2, scratch, scores);
    free(scratch);
    free(err);
    free(x);
}

static void decode_one(const uint8_t *data, size_t size)
{
    Model *m = NULL;
    int r = model_file_decode(data, size, &m);

    FUZZ_CHECK(r == 0 || (r >= MODEL_FILE_E_MAGIC && r <= MODEL_FILE_E_SHAPE) || r == -ENOMEM);
    FUZZ_CHECK(model_file_strerror(r) != NULL);
    if (r != 0) {
        FUZZ_CHECK(m == NULL);
        return;
    }
    FUZZ_CHECK(m != NULL);
    FUZZ_CHECK(model_validate(m) == 0);
    check_round_trip(m, data, size);
    check_schema(m);
    check_scoring(m);
    model_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed;
    uLong crc;

    decode_one(data, size);
    if (size < 4)
        return 0;

    /* the same bytes with a correct CRC32 over all but the last four */
    fixed = malloc(size);
    FUZZ_CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, fixed, (uInt) (size - 4));
    fixed[size - 4] = (uint8_t) crc;
    fixed[size - 3] = (uint8_t) (crc >> 8);
    fixed[size - 2] = (uint8_t) (crc >> 16);
    fixed[size - 1] = (uint8_t) (crc >> 24);
    if (memcmp(fixed, data, size) != 0)
        decode_one(fixed, size);
    free(fixed);
    return 0;
}
