/* fuzz_model_file: the model loader (model_file_decode) on arbitrary bytes.
 *
 * A model file ends in a CRC32 of everything before it, so nearly every mutation of a valid
 * file dies at the checksum and the checks behind it (activations, names, model_validate)
 * would never be reached. Each input is therefore decoded twice: as given (the checksum
 * must reject damage) and with its last four bytes replaced by the right CRC (the contents
 * checks must reject everything else). When a decode succeeds:
 *  - re-encoding the model must give back exactly the bytes that were decoded (a loader that
 *    accepts what the writer would not write, or drops a field, shows up here);
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

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const Model *m, const uint8_t *data, size_t size)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int r = model_file_encode(m, &buf, &len);

    CHECK(r == 0 || r == -ENOMEM);
    if (r != 0)
        return;
    if (len != size || memcmp(buf, data, size) != 0) {
        size_t i = 0;
        while (i < len && i < size && buf[i] == data[i])
            i++;
        fprintf(stderr, "round trip differs: decoded %zu bytes, encoded %zu, first difference "
                        "at byte %zu\n",
                size, len, i);
        abort();
    }
    free(buf);
}

static void check_scoring(const Model *m)
{
    size_t f = m->n_features;
    float *x = malloc(2 * f * sizeof(*x));
    float *err = malloc(f * sizeof(*err));
    float *scratch = malloc(model_scratch_size(m) * sizeof(*scratch));
    float scores[2];
    ModelScore sc;

    CHECK(x != NULL && err != NULL && scratch != NULL);
    for (size_t i = 0; i < f; i++) {
        x[i] = m->mean[i];                  /* the centre: standardises to 0 */
        x[f + i] = m->mean[i] + m->std[i]; /* one standard deviation off */
    }
    model_score(m, x + f, scratch, err, &sc);
    CHECK(sc.threshold == m->threshold);
    CHECK(isnan(sc.percentile) || (sc.percentile >= 0.0 && sc.percentile <= 100.0));
    if (!isnan(sc.score))
        CHECK(sc.anomaly == (sc.score > sc.threshold));
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

    CHECK(r == 0 || (r >= MODEL_FILE_E_MAGIC && r <= MODEL_FILE_E_SHAPE) || r == -ENOMEM);
    CHECK(model_file_strerror(r) != NULL);
    if (r != 0) {
        CHECK(m == NULL);
        return;
    }
    CHECK(m != NULL);
    CHECK(model_validate(m) == 0);
    check_round_trip(m, data, size);
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
    CHECK(fixed != NULL);
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
