/* test_model_file: the on-disk format, its strict loader and its atomic saver.
 *
 * Every test starts from the same small hand-built model (5 features, 5 -> 3 -> 5, two
 * members, parameters from a fixed-seed generator) so failures reproduce exactly. Damaged
 * files are made by editing an encoded buffer; when a test wants only one thing wrong it
 * recomputes the CRC trailer ("reseal") so the checksum cannot be what rejects it.
 */
#undef NDEBUG
#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "../../src/core/nn_kernels.h" /* NN_KNN_PANEL_FLOATS */
#include "aescore/model_file.h"

#define N_FEATURES 5
#define N_HIDDEN   3
#define N_MEMBERS  2

/* Header offsets of the test model (two weight layers). */
#define OFF_VERSION 8
#define OFF_F       12
#define OFF_L       16
#define OFF_M       20
#define OFF_P       24
#define OFF_N       28
#define OFF_S       32 /* schema_bytes */
#define OFF_R       36 /* reference_rows (version 4) */
#define OFF_SIZES   40
#define REF_HEAD    20 /* the reference section without rows: kind, m1, s1, m2, s2 */
#define OFF_ACT     (OFF_SIZES + 4 * 3)
#define OFF_NAMES   (OFF_ACT + 4 * 2 + 48 + MODEL_ID_LEN)

static const char *const feature_names[N_FEATURES] = {
    "bytes_in", "bytes_out", "latency_ms", "x", "error_rate",
};

static char tmpdir[64];

/* ---------------------------------------------------------------- helpers */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float) (splitmix(s) >> 40) / (float) (1u << 24);
}

/* The Nn of nn.h's documented layout, filled by hand: W_l input-major, then b_l. */
static Nn hand_nn(void)
{
    const size_t sizes[] = {N_FEATURES, N_HIDDEN, N_FEATURES};
    const NnActivation act[] = {NN_RELU, NN_LINEAR};
    Nn nn;
    size_t off = 0;

    memset(&nn, 0, sizeof(nn));
    nn.n_layers = 2;
    for (size_t l = 0; l <= nn.n_layers; l++)
        nn.sizes[l] = sizes[l];
    for (size_t l = 0; l < nn.n_layers; l++) {
        nn.act[l] = act[l];
        nn.w_off[l] = off;
        off += sizes[l] * sizes[l + 1];
        nn.b_off[l] = off;
        off += sizes[l + 1];
        nn.n_units += sizes[l + 1];
    }
    nn.n_params = off;
    return nn;
}

static Model *make_model(void)
{
    Nn nn = hand_nn();
    uint64_t seed = 42;
    Model *m = NULL;

    assert_int_equal(model_new(&m, &nn, N_MEMBERS), 0);
    for (size_t i = 0; i < N_FEATURES; i++) {
        assert_int_equal(model_set_name(m, i, feature_names[i]), 0);
        m->mean[i] = uniform(&seed, -100, 100);
        m->std[i] = uniform(&seed, 0.5f, 20);
    }
    for (size_t i = 0; i < N_MEMBERS * nn.n_params; i++)
        m->params[i] = uniform(&seed, -1, 1);
    m->percentiles[0] = 0.001f;
    for (size_t k = 1; k < MODEL_PERCENTILES; k++)
        m->percentiles[k] = m->percentiles[k - 1] + uniform(&seed, 0, 0.01f);
    m->threshold = m->percentiles[990];
    m->meta.rows = 123456789012ULL;
    m->meta.seed = 0xfedcba9876543210ULL;
    m->meta.created = -1234567890123LL; /* negative: checks the signed round trip */
    m->meta.epochs_run = 57;
    m->meta.best_epoch = 41;
    m->meta.train_loss = 0.0312f;
    m->meta.val_loss = 0.0457f;
    m->meta.threshold_q = 0.99f;
    model_compute_id(m);
    return m;
}

static void assert_models_equal(const Model *a, const Model *b)
{
    assert_int_equal(b->n_features, a->n_features);
    assert_int_equal(b->nn.n_layers, a->nn.n_layers);
    for (size_t l = 0; l <= a->nn.n_layers; l++)
        assert_int_equal(b->nn.sizes[l], a->nn.sizes[l]);
    for (size_t l = 0; l < a->nn.n_layers; l++) {
        assert_int_equal(b->nn.act[l], a->nn.act[l]);
        assert_int_equal(b->nn.w_off[l], a->nn.w_off[l]);
        assert_int_equal(b->nn.b_off[l], a->nn.b_off[l]);
    }
    assert_int_equal(b->nn.n_params, a->nn.n_params);
    assert_int_equal(b->nn.n_units, a->nn.n_units);
    assert_int_equal(b->n_members, a->n_members);
    for (size_t i = 0; i < a->n_features; i++)
        assert_string_equal(b->names[i], a->names[i]);
    assert_memory_equal(b->mean, a->mean, a->n_features * sizeof(float));
    assert_memory_equal(b->std, a->std, a->n_features * sizeof(float));
    assert_memory_equal(b->params, a->params, a->n_members * a->nn.n_params * sizeof(float));
    assert_memory_equal(b->percentiles, a->percentiles, MODEL_PERCENTILES * sizeof(float));
    assert_memory_equal(&b->threshold, &a->threshold, sizeof(float));
    assert_int_equal(b->ref.kind, a->ref.kind);
    assert_int_equal(b->ref.n, a->ref.n);
    if (a->ref.n > 0) {
        assert_memory_equal(b->ref.rows, a->ref.rows, a->ref.n * a->n_features * sizeof(float));
        assert_memory_equal(b->ref.panels, a->ref.panels,
                            NN_KNN_PANEL_FLOATS(a->ref.n, a->n_features) * sizeof(float));
        assert_memory_equal(&b->ref.m1, &a->ref.m1, sizeof(float));
        assert_memory_equal(&b->ref.s1, &a->ref.s1, sizeof(float));
        assert_memory_equal(&b->ref.m2, &a->ref.m2, sizeof(float));
        assert_memory_equal(&b->ref.s2, &a->ref.s2, sizeof(float));
    }
    assert_true(b->meta.rows == a->meta.rows);
    assert_true(b->meta.seed == a->meta.seed);
    assert_true(b->meta.created == a->meta.created);
    assert_int_equal(b->meta.epochs_run, a->meta.epochs_run);
    assert_int_equal(b->meta.best_epoch, a->meta.best_epoch);
    assert_memory_equal(&b->meta.train_loss, &a->meta.train_loss, sizeof(float));
    assert_memory_equal(&b->meta.val_loss, &a->meta.val_loss, sizeof(float));
    assert_memory_equal(&b->meta.threshold_q, &a->meta.threshold_q, sizeof(float));
    assert_string_equal(b->meta.id, a->meta.id);
    assert_int_equal(atomic_load(&b->refs), 1);
}

static void encode_model(unsigned char **buf, size_t *len)
{
    Model *m = make_model();

    assert_int_equal(model_file_encode(m, buf, len), 0);
    model_unref(m);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Recomputes the CRC trailer so only the deliberate edit is wrong. */
static void reseal(unsigned char *buf, size_t len)
{
    put_le32(buf + len - 4, (uint32_t) crc32(0L, buf, (uInt) (len - 4)));
}

/* Decodes buf and asserts it fails with code and leaves *out alone. */
static void assert_decode_fails(const unsigned char *buf, size_t len, int code)
{
    Model *m = NULL;

    assert_int_equal(model_file_decode(buf, len, &m), code);
    assert_null(m);
}

static uint32_t get_le32(const unsigned char *p);

/* Offset of member 0's first parameter in an encoded test model buf of length len. */
static size_t params_offset_of(const unsigned char *buf, size_t len)
{
    size_t ref = REF_HEAD + 4 * N_FEATURES * get_le32(buf + OFF_R);

    return len - 4 - ref - get_le32(buf + OFF_S) - 4 * N_MEMBERS * hand_nn().n_params;
}

/* The version 3 file of a model without a reference, made from its version 4 encoding buf:
 * without reference_rows in the header and the reference section. *out malloc'd. */
static void to_version_3(const unsigned char *buf, size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *v3 = malloc(len - 4 - REF_HEAD);

    assert_non_null(v3);
    assert_int_equal(get_le32(buf + OFF_R), 0);
    memcpy(v3, buf, OFF_R);
    memcpy(v3 + OFF_R, buf + OFF_R + 4, len - 4 - REF_HEAD - 4 - OFF_R);
    *out_len = len - 4 - REF_HEAD;
    put_le32(v3 + OFF_VERSION, 3);
    reseal(v3, *out_len);
    *out = v3;
}

static char *path_in_tmpdir(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    return p;
}

static size_t entries_in_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static bool file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static int setup_tmpdir(void **state)
{
    (void) state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_model_file.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

/* Empties and removes the directory (no subdirectories except the ones tests rmdir). */
static int teardown_tmpdir(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;

    (void) state;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    return rmdir(tmpdir);
}

/* ---------------------------------------------------------------- round trips */

static void test_save_then_load_gives_back_every_field_bit_for_bit(void **state)
{
    const char *path = path_in_tmpdir("roundtrip.model");
    Model *m = make_model(), *back = NULL;

    (void) state;
    assert_int_equal(model_file_save(m, path, false), 0);
    assert_int_equal(model_file_load(path, &back), 0);
    assert_models_equal(m, back);
    model_unref(back);
    model_unref(m);
    assert_int_equal(unlink(path), 0);
}

static void test_decode_of_encode_gives_back_the_same_model_and_bytes(void **state)
{
    Model *m = make_model(), *back = NULL;
    unsigned char *buf = NULL, *again = NULL;
    size_t len = 0, len2 = 0;

    (void) state;
    assert_int_equal(model_file_encode(m, &buf, &len), 0);
    assert_int_equal(model_file_decode(buf, len, &back), 0);
    assert_models_equal(m, back);
    assert_int_equal(model_file_encode(back, &again, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    free(again);
    free(buf);
    model_unref(back);
    model_unref(m);
}

static void test_encoding_is_little_endian_and_follows_the_documented_layout(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    Nn nn = hand_nn();
    size_t names_bytes = 0;

    (void) state;
    for (size_t i = 0; i < N_FEATURES; i++)
        names_bytes += strlen(feature_names[i]) + 1;
    encode_model(&buf, &len);
    assert_memory_equal(buf, "AESCORE\0", 8);
    assert_memory_equal(buf + OFF_VERSION, "\x04\x00\x00\x00", 4);
    assert_int_equal(get_le32(buf + OFF_R), 0); /* no reference */
    assert_memory_equal(buf + OFF_F, "\x05\x00\x00\x00", 4);
    assert_int_equal(get_le32(buf + OFF_L), 2);
    assert_int_equal(get_le32(buf + OFF_M), N_MEMBERS);
    assert_memory_equal(buf + OFF_P, "\xe9\x03\x00\x00", 4); /* 1001 */
    assert_int_equal(get_le32(buf + OFF_N), names_bytes);
    assert_int_equal(get_le32(buf + OFF_SIZES + 4), N_HIDDEN);
    assert_int_equal(get_le32(buf + OFF_ACT), NN_RELU);
    assert_int_equal(get_le32(buf + OFF_ACT + 4), NN_LINEAR);
    assert_memory_equal(buf + OFF_NAMES, "bytes_in\0bytes_out\0", 19);
    /* a hand-built model has no schema: its columns are written as numeric fields, with
     * no training distribution (u32 0 at the end of the block) */
    size_t schema_bytes = 8 + 12 * N_FEATURES + names_bytes + 4;
    assert_int_equal(get_le32(buf + OFF_S), schema_bytes);
    assert_int_equal(len, OFF_NAMES + names_bytes + 4 * (2 * N_FEATURES) + 4 * MODEL_PERCENTILES +
                              4 * N_MEMBERS * nn.n_params + schema_bytes + REF_HEAD + 4);
    size_t schema_at = len - 4 - REF_HEAD - schema_bytes;
    assert_int_equal(get_le32(buf + schema_at), N_FEATURES); /* n_fields */
    assert_int_equal(get_le32(buf + schema_at + 4), 0);      /* n_ignored */
    assert_memory_equal(buf + schema_at + 8, "\0\0\0\0", 4); /* numeric, no other */
    assert_int_equal(get_le32(buf + len - 8 - REF_HEAD), 0); /* no profile */
    for (size_t i = 0; i < REF_HEAD; i++)                    /* kind none, stats 0 */
        assert_int_equal(buf[len - 4 - REF_HEAD + i], 0);
    assert_int_equal(get_le32(buf + len - 4), (uint32_t) crc32(0L, buf, (uInt) (len - 4)));
    free(buf);
}

/* ---------------------------------------------------------------- damage */

static void test_a_flipped_byte_anywhere_is_never_accepted(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    for (size_t i = 0; i < len; i++) {
        Model *m = NULL;
        int r;

        buf[i] ^= 0x5a;
        r = model_file_decode(buf, len, &m);
        buf[i] ^= 0x5a;
        assert_null(m);
        if (i < OFF_VERSION)
            assert_int_equal(r, MODEL_FILE_E_MAGIC);
        else if (i < OFF_F)
            assert_int_equal(r, MODEL_FILE_E_VERSION);
        else if (i < OFF_ACT) /* a count or a size: the implied length changes */
            assert_true(r == MODEL_FILE_E_SHAPE || r == MODEL_FILE_E_TRUNCATED);
        else
            assert_int_equal(r, MODEL_FILE_E_CHECKSUM);
    }
    free(buf);
}

static void test_truncation_at_any_offset_is_reported_as_truncated(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    for (size_t cut = 0; cut < len; cut++) {
        /* A copy of exactly cut bytes, so ASan sees any read past the end. */
        unsigned char *part = malloc(cut > 0 ? cut : 1);
        assert_non_null(part);
        memcpy(part, buf, cut);
        assert_decode_fails(part, cut, MODEL_FILE_E_TRUNCATED);
        free(part);
    }
    free(buf);
}

static void test_a_short_prefix_that_is_not_the_magic_is_reported_as_magic(void **state)
{
    (void) state;
    assert_decode_fails((const unsigned char *) "{\"js", 4, MODEL_FILE_E_MAGIC);
    assert_decode_fails((const unsigned char *) "AESCORE\0\x01", 9, MODEL_FILE_E_TRUNCATED);
}

static void test_trailing_bytes_are_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL, *longer;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    longer = calloc(1, len + 4);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    reseal(longer, len + 4);
    assert_decode_fails(longer, len + 4, MODEL_FILE_E_SHAPE);
    free(longer);
    free(buf);
}

static void test_wrong_magic_is_rejected_as_magic(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    memcpy(buf, "KAN\x01\0\0\0\0", 8);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_MAGIC);
    free(buf);
}

static void test_version_5_is_rejected_even_with_a_valid_checksum(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    put_le32(buf + OFF_VERSION, 5);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_VERSION);
    free(buf);
}

/* Each case would ask for gigabytes to terabytes if the loader believed the header; under
 * ASan such an allocation aborts the test, so passing also proves nothing was allocated. */
static void test_huge_counts_are_rejected_before_allocating(void **state)
{
    static const struct {
        size_t off;
        uint32_t value;
    } cases[] = {
        {OFF_F, 0xffffffffu},
        {OFF_F, MODEL_MAX_FEATURES + 1},
        {OFF_F, 0},
        {OFF_L, 0xffffffffu},
        {OFF_L, NN_MAX_LAYERS + 1},
        {OFF_L, 1},
        {OFF_M, 0xffffffffu},
        {OFF_M, MODEL_MAX_MEMBERS + 1},
        {OFF_M, 0},
        {OFF_P, 0xffffffffu},
        {OFF_P, MODEL_PERCENTILES + 1},
        {OFF_N, 0xffffffffu},
        {OFF_N, (1u << 20) + 1},
        {OFF_S, 0xffffffffu},
        {OFF_S, (16u << 20) + 1},
        {OFF_S, 7},
        {OFF_R, 0xffffffffu},
        {OFF_R, MODEL_MAX_REFERENCE + 1},
        {OFF_R, MODEL_MAX_REFERENCE},
        {OFF_R, 1},
        {OFF_SIZES + 4, 0xffffffffu},
        {OFF_SIZES + 4, NN_MAX_WIDTH + 1},
        {OFF_SIZES + 4, NN_MAX_WIDTH},
        {OFF_SIZES + 4, 0},
    };
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        unsigned char *bad = malloc(len);
        Model *m = NULL;
        int r;

        assert_non_null(bad);
        memcpy(bad, buf, len);
        put_le32(bad + cases[k].off, cases[k].value);
        reseal(bad, len);
        r = model_file_decode(bad, len, &m);
        assert_null(m);
        assert_true(r == MODEL_FILE_E_SHAPE || r == MODEL_FILE_E_TRUNCATED);
        free(bad);
    }
    free(buf);
}

/* Widest legal header: 16 layers of NN_MAX_WIDTH and 16 members imply about 4 TiB of
 * parameters; the loader must say TRUNCATED from 32 + 33*4 bytes. */
static void test_a_maximal_header_alone_is_truncated_not_allocated(void **state)
{
    unsigned char hdr[OFF_SIZES + 4 * (NN_MAX_LAYERS + 1)];

    (void) state;
    memcpy(hdr, "AESCORE\0", 8);
    put_le32(hdr + OFF_VERSION, 4);
    put_le32(hdr + OFF_R, MODEL_MAX_REFERENCE);
    put_le32(hdr + OFF_F, MODEL_MAX_FEATURES);
    put_le32(hdr + OFF_L, NN_MAX_LAYERS);
    put_le32(hdr + OFF_M, MODEL_MAX_MEMBERS);
    put_le32(hdr + OFF_P, MODEL_PERCENTILES);
    put_le32(hdr + OFF_N, 1u << 20);
    put_le32(hdr + OFF_S, 16u << 20);
    for (size_t l = 0; l <= NN_MAX_LAYERS; l++)
        put_le32(hdr + OFF_SIZES + 4 * l, NN_MAX_WIDTH);
    assert_decode_fails(hdr, sizeof(hdr), MODEL_FILE_E_TRUNCATED);
    assert_decode_fails(hdr, OFF_SIZES + 8, MODEL_FILE_E_TRUNCATED);
}

/* ---------------------------------------------------------------- schema */

/* The test model with a schema: bytes_in numeric (fill 7.5), then "kind" one-hot over
 * {rent, own} + other, then x numeric; one ignored column. */
static Model *make_model_with_schema(void)
{
    Model *m = make_model();
    Schema *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    s->n_fields = 3;
    s->fields = calloc(3, sizeof(*s->fields));
    s->n_ignored = 1;
    s->ignored = calloc(1, sizeof(char *));
    s->ignored[0] = strdup("customer_id");
    s->fields[0] = (SchemaField){.name = strdup("bytes_in"), .fill = 7.5f};
    s->fields[1] = (SchemaField){.name = strdup("kind"),
                                 .kind = SCHEMA_CATEGORICAL,
                                 .n_categories = 2,
                                 .has_other = true,
                                 .fill = 1};
    s->fields[1].categories = calloc(2, sizeof(char *));
    s->fields[1].categories[0] = strdup("rent");
    s->fields[1].categories[1] = strdup("own");
    s->fields[2] = (SchemaField){.name = strdup("x"), .fill = -1};
    for (size_t f = 0, col = 0; f < 3; f++) {
        s->fields[f].column = col;
        s->fields[f].n_columns = f == 1 ? 3 : 1;
        col += s->fields[f].n_columns;
    }
    s->n_columns = N_FEATURES;
    for (size_t c = 0; c < N_FEATURES; c++) {
        char *name = schema_column_name(s, c);
        assert_int_equal(model_set_name(m, c, name), 0);
        free(name);
    }
    assert_int_equal(schema_validate(s), 0);
    m->schema = s;
    model_compute_id(m);
    return m;
}

static void test_a_schema_round_trips_exactly(void **state)
{
    Model *a = make_model_with_schema(), *b = NULL;
    unsigned char *buf = NULL, *again = NULL;
    size_t len = 0, len2 = 0;

    (void) state;
    assert_int_equal(model_file_encode(a, &buf, &len), 0);
    assert_int_equal(model_file_decode(buf, len, &b), 0);
    assert_models_equal(a, b);
    assert_string_equal(b->names[2], "kind=own");
    assert_string_equal(b->names[3], "kind=*other*");
    assert_int_equal(b->schema->n_fields, 3);
    assert_int_equal(b->schema->fields[1].kind, SCHEMA_CATEGORICAL);
    assert_true(b->schema->fields[1].has_other);
    assert_string_equal(b->schema->fields[1].categories[1], "own");
    assert_int_equal(b->schema->fields[1].column, 1);
    assert_int_equal(b->schema->fields[2].column, 4);
    assert_true(b->schema->fields[0].fill == 7.5f);
    assert_string_equal(b->schema->ignored[0], "customer_id");
    assert_int_equal(model_file_encode(b, &again, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    free(buf);
    free(again);
    model_unref(a);
    model_unref(b);
}

static void test_a_schema_that_disagrees_with_the_names_is_rejected_as_shape(void **state)
{
    Model *a = make_model_with_schema();
    unsigned char *buf = NULL;
    size_t len = 0;
    size_t at;

    (void) state;
    assert_int_equal(model_file_encode(a, &buf, &len), 0);
    /* rename category "rent" to "rant" inside the schema block only */
    at = len - 4 - get_le32(buf + OFF_S);
    unsigned char *hit = memmem(buf + at, len - at, "rent", 4);
    assert_non_null(hit);
    hit[1] = 'a';
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
    model_unref(a);
}

/* Found by fuzz_model_file: a schema block that breaks off inside a field (here "kind"
 * claims 200 categories and only 2 follow) must free what that field had read so far
 * (ASan: no leak). */
static void test_a_schema_field_cut_short_is_shape_and_leaks_nothing(void **state)
{
    Model *a = make_model_with_schema();
    unsigned char *buf = NULL;
    size_t len = 0, at;

    (void) state;
    assert_int_equal(model_file_encode(a, &buf, &len), 0);
    at = len - 4 - REF_HEAD - get_le32(buf + OFF_S);
    /* block header 8, field "bytes_in" 12 + 9, then kind's flags 4: its n_categories */
    assert_int_equal(get_le32(buf + at + 8 + 21 + 4), 2);
    put_le32(buf + at + 8 + 21 + 4, 200);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
    model_unref(a);
}

/* make_model_with_schema with a training distribution on each field: bytes_in's deciles
 * 1..9 with a tenth of the rows in each bin, kind's shares .5/.3/.2, x's. */
static Model *make_model_with_profile(void)
{
    Model *m = make_model_with_schema();
    static const float kind[] = {0.5f, 0.3f, 0.2f};

    for (size_t f = 0; f < 3; f++) {
        SchemaField *fd = &m->schema->fields[f];
        size_t n = schema_profile_len(fd);

        fd->profile = calloc(n, sizeof(float));
        assert_non_null(fd->profile);
        for (size_t k = 0; k < n; k++)
            fd->profile[k] = fd->kind == SCHEMA_CATEGORICAL ? kind[k]
                             : k < SCHEMA_DECILE_BINS - 1 ? (float) (k + 1) * (f == 0 ? 1.0f : 0.5f)
                                                          : 0.1f;
    }
    assert_int_equal(schema_validate(m->schema), 0);
    return m;
}

static void test_a_training_distribution_round_trips_exactly(void **state)
{
    Model *a = make_model_with_profile(), *b = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    assert_int_equal(model_file_encode(a, &buf, &len), 0);
    assert_int_equal(model_file_decode(buf, len, &b), 0);
    assert_true(schema_has_profile(b->schema));
    for (size_t f = 0; f < 3; f++)
        assert_memory_equal(a->schema->fields[f].profile, b->schema->fields[f].profile,
                            schema_profile_len(&a->schema->fields[f]) * sizeof(float));
    /* a profile that breaks its rules (shares adding up to 1.1) is refused */
    model_unref(b);
    b = NULL;
    a->schema->fields[1].profile[0] = 0.6f;
    free(buf);
    assert_int_equal(model_file_encode(a, &buf, &len), 0);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
    model_unref(a);
}

/* A version 2 file is version 3 without the distribution's u32 (and floats): it loads, and
 * its model has no profile (GET /drift then says so). */
static void test_a_version_2_file_still_loads_without_a_distribution(void **state)
{
    Model *a = make_model_with_profile(), *b = NULL;
    unsigned char *v4 = NULL, *buf = NULL, *v2;
    size_t v4_len = 0, len = 0, profile_bytes = 4, v2_len;

    (void) state;
    for (size_t f = 0; f < 3; f++)
        profile_bytes += 4 * schema_profile_len(&a->schema->fields[f]);
    assert_int_equal(model_file_encode(a, &v4, &v4_len), 0);
    to_version_3(v4, v4_len, &buf, &len);
    free(v4);
    v2_len = len - profile_bytes;
    v2 = malloc(v2_len);
    assert_non_null(v2);
    memcpy(v2, buf, len - 4 - profile_bytes);
    put_le32(v2 + OFF_VERSION, 2);
    put_le32(v2 + OFF_S, get_le32(buf + OFF_S) - (uint32_t) profile_bytes);
    reseal(v2, v2_len);
    assert_int_equal(model_file_decode(v2, v2_len, &b), 0);
    assert_models_equal(a, b);
    assert_false(schema_has_profile(b->schema));
    assert_int_equal(b->schema->n_fields, 3);
    free(v2);
    free(buf);
    model_unref(a);
    model_unref(b);
}

/* A version 1 file is the version 2 layout without schema_bytes and the schema block. */
static void test_a_version_1_file_still_loads_as_numeric_fields(void **state)
{
    Model *a = make_model(), *b = NULL;
    unsigned char *v4 = NULL, *buf = NULL, *v1;
    size_t v4_len = 0, len = 0, schema_bytes, v1_len;

    (void) state;
    assert_int_equal(model_file_encode(a, &v4, &v4_len), 0);
    to_version_3(v4, v4_len, &buf, &len);
    free(v4);
    schema_bytes = get_le32(buf + OFF_S);
    v1_len = len - 4 - schema_bytes;
    v1 = malloc(v1_len);
    assert_non_null(v1);
    memcpy(v1, buf, OFF_S);
    memcpy(v1 + OFF_S, buf + OFF_S + 4, len - 4 - schema_bytes - (OFF_S + 4));
    put_le32(v1 + OFF_VERSION, 1);
    reseal(v1, v1_len);
    assert_int_equal(model_file_decode(v1, v1_len, &b), 0);
    assert_models_equal(a, b);
    assert_int_equal(b->schema->n_fields, N_FEATURES);
    for (size_t f = 0; f < N_FEATURES; f++) {
        assert_int_equal(b->schema->fields[f].kind, SCHEMA_NUMERIC);
        assert_string_equal(b->schema->fields[f].name, a->names[f]);
        assert_true(b->schema->fields[f].fill == a->mean[f]);
    }
    free(v1);
    free(buf);
    model_unref(a);
    model_unref(b);
}

/* ---------------------------------------------------------------- invalid contents */

static void test_a_nan_parameter_with_a_valid_checksum_is_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    put_le32(buf + params_offset_of(buf, len) + 4 * 7, 0x7fc00000u);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

static void test_a_descending_percentile_table_is_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    size_t table;

    (void) state;
    encode_model(&buf, &len);
    table = params_offset_of(buf, len) - 4 * MODEL_PERCENTILES;
    put_le32(buf + table + 4 * 500, 0x7f000000u); /* a huge value mid-table */
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

static void test_a_zero_std_is_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    size_t std_off;

    (void) state;
    encode_model(&buf, &len);
    std_off = params_offset_of(buf, len) - 4 * MODEL_PERCENTILES - 4 * N_FEATURES;
    put_le32(buf + std_off + 4 * 2, 0);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

static void test_a_nonlinear_output_layer_is_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    put_le32(buf + OFF_ACT + 4, NN_SIGMOID);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

static void test_an_unknown_activation_is_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    put_le32(buf + OFF_ACT, 4);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

/* 5 -> 3 -> 5 relabelled 3 -> 5 -> 3 keeps every length but no longer matches F = 5. */
static void test_sizes_that_disagree_with_the_feature_count_are_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    put_le32(buf + OFF_SIZES, N_HIDDEN);
    put_le32(buf + OFF_SIZES + 4, N_FEATURES);
    put_le32(buf + OFF_SIZES + 8, N_HIDDEN);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

static void test_names_that_do_not_fill_their_block_are_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    size_t last_nul;

    (void) state;
    encode_model(&buf, &len);
    /* An empty name: the NUL after "bytes_in" becomes the first byte of the block. */
    buf[OFF_NAMES] = '\0';
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);

    /* One name too few: join the last two, so the block holds 4 strings. */
    encode_model(&buf, &len);
    last_nul = OFF_NAMES + get_le32(buf + OFF_N) - 1;
    assert_int_equal(buf[last_nul], '\0');
    buf[last_nul - strlen("error_rate") - 1] = '_';
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);

    /* The block's last string not terminated: replace its NUL. */
    encode_model(&buf, &len);
    buf[last_nul] = 'z';
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);

    /* Bytes left over after F names: split the last name in two ("error" "rate"). */
    encode_model(&buf, &len);
    buf[last_nul - strlen("rate") - 1] = '\0';
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

static void test_a_non_hex_model_id_is_rejected_as_shape(void **state)
{
    unsigned char *buf = NULL;
    size_t len = 0;

    (void) state;
    encode_model(&buf, &len);
    buf[OFF_NAMES - MODEL_ID_LEN] = '"';
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_SHAPE);
    free(buf);
}

/* ---------------------------------------------------------------- the neighbour reference */

#define N_REF 7

/* The test model with a reference of N_REF rows and a negative threshold (a combined score
 * can be below 0). */
static Model *make_model_with_reference(void)
{
    Model *m = make_model();
    float rows[N_REF * N_FEATURES];
    uint64_t seed = 5;

    for (size_t i = 0; i < N_REF * N_FEATURES; i++)
        rows[i] = uniform(&seed, -3, 3);
    assert_int_equal(model_set_reference(m, MODEL_REFERENCE_ROWS, rows, N_REF), 0);
    m->ref.m1 = -1.25f;
    m->ref.s1 = 0.75f;
    m->ref.m2 = 0.5f;
    m->ref.s2 = 0.3f;
    for (size_t k = 0; k < MODEL_PERCENTILES; k++)
        m->percentiles[k] -= 10.0f;
    m->threshold = m->percentiles[990];
    assert_true(m->threshold < 0);
    model_compute_id(m);
    assert_int_equal(model_validate(m), 0);
    return m;
}

static float score_of(const Model *m, const float *x)
{
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    ModelScore s;

    assert_non_null(scratch);
    model_score(m, x, scratch, NULL, &s);
    free(scratch);
    return s.score;
}

static void test_a_reference_round_trips_exactly(void **state)
{
    Model *a = make_model_with_reference(), *b = NULL;
    unsigned char *buf = NULL;
    size_t len = 0, at;
    float x[N_FEATURES], sa, sb;

    (void) state;
    assert_int_equal(model_file_encode(a, &buf, &len), 0);
    assert_int_equal(get_le32(buf + OFF_R), N_REF);
    at = len - 4 - REF_HEAD - 4 * N_REF * N_FEATURES;
    assert_int_equal(get_le32(buf + at), MODEL_REFERENCE_ROWS);
    assert_int_equal(model_file_decode(buf, len, &b), 0);
    assert_models_equal(a, b);
    for (size_t i = 0; i < N_FEATURES; i++)
        x[i] = a->mean[i] + a->std[i];
    sa = score_of(a, x);
    sb = score_of(b, x);
    assert_memory_equal(&sa, &sb, sizeof(float));
    free(buf);
    model_unref(a);
    model_unref(b);
}

/* Each edit of the reference section, resealed so only it is wrong, is refused as SHAPE;
 * unsealed, as CHECKSUM. */
static void test_a_corrupt_reference_is_refused_precisely(void **state)
{
    Model *a = make_model_with_reference();
    unsigned char *buf = NULL;
    size_t len = 0, at;
    static const struct {
        size_t off; /* from the start of the section */
        uint32_t value;
    } cases[] = {
        {0, 3},           /* an unknown kind */
        {0, 0},           /* none, with rows */
        {8, 0},           /* s1 = 0 */
        {16, 0xbf800000}, /* s2 = -1 */
        {4, 0x7f800000},  /* m1 = inf */
        {20, 0x7fc00000}, /* a NaN reference cell */
    };

    (void) state;
    assert_int_equal(model_file_encode(a, &buf, &len), 0);
    at = len - 4 - REF_HEAD - 4 * N_REF * N_FEATURES;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        unsigned char *bad = malloc(len);

        assert_non_null(bad);
        memcpy(bad, buf, len);
        put_le32(bad + at + cases[k].off, cases[k].value);
        reseal(bad, len);
        assert_decode_fails(bad, len, MODEL_FILE_E_SHAPE);
        put_le32(bad + at + cases[k].off, cases[k].value ^ 0x100); /* unsealed */
        assert_decode_fails(bad, len, MODEL_FILE_E_CHECKSUM);
        free(bad);
    }
    /* a kind "rows" with no rows: the header says 0, the section says 1 */
    {
        Model *none = make_model();
        unsigned char *nb = NULL;
        size_t nlen = 0;

        assert_int_equal(model_file_encode(none, &nb, &nlen), 0);
        put_le32(nb + nlen - 4 - REF_HEAD, MODEL_REFERENCE_ROWS);
        reseal(nb, nlen);
        assert_decode_fails(nb, nlen, MODEL_FILE_E_SHAPE);
        free(nb);
        model_unref(none);
    }
    /* one row more in the header than in the file */
    put_le32(buf + OFF_R, N_REF + 1);
    reseal(buf, len);
    assert_decode_fails(buf, len, MODEL_FILE_E_TRUNCATED);
    free(buf);
    model_unref(a);
}

/* A model file of the previous version (3) loads without a reference and scores exactly as
 * the model it was written from: the reconstruction error, bit for bit. */
static void test_a_version_3_file_loads_and_scores_as_before(void **state)
{
    Model *a = make_model(), *b = NULL;
    unsigned char *v4 = NULL, *v3 = NULL;
    size_t v4_len = 0, v3_len = 0;
    float x[N_FEATURES], sa, sb;
    float *scratch;
    ModelScore s;

    (void) state;
    assert_int_equal(model_file_encode(a, &v4, &v4_len), 0);
    to_version_3(v4, v4_len, &v3, &v3_len);
    assert_int_equal(model_file_decode(v3, v3_len, &b), 0);
    assert_models_equal(a, b);
    assert_int_equal(b->ref.kind, MODEL_REFERENCE_NONE);
    for (size_t i = 0; i < N_FEATURES; i++)
        x[i] = a->mean[i] + 2 * a->std[i];
    sa = score_of(a, x);
    sb = score_of(b, x);
    assert_memory_equal(&sa, &sb, sizeof(float));
    scratch = malloc(model_scratch_size(b) * sizeof(float));
    model_score(b, x, scratch, NULL, &s);
    assert_memory_equal(&s.score, &s.reconstruction, sizeof(float));
    assert_true(s.neighbours == 0);
    free(scratch);
    free(v4);
    free(v3);
    model_unref(a);
    model_unref(b);
}

/* ---------------------------------------------------------------- saving and loading files */

static void test_keep_prev_keeps_the_replaced_file_as_prev(void **state)
{
    const char *path = path_in_tmpdir("kp.model");
    const char *prev = path_in_tmpdir("kp.model.prev");
    Model *old = make_model(), *new = make_model(), *back = NULL;

    (void) state;
    new->threshold *= 2;
    model_compute_id(new);
    assert_string_not_equal(new->meta.id, old->meta.id);

    /* No current file yet: nothing to keep, and saving still works. */
    assert_int_equal(model_file_save(old, path, true), 0);
    assert_false(file_exists(prev));

    assert_int_equal(model_file_save(new, path, true), 0);
    assert_int_equal(model_file_load(path, &back), 0);
    assert_models_equal(new, back);
    back = model_unref(back);
    assert_int_equal(model_file_load(prev, &back), 0);
    assert_models_equal(old, back);
    back = model_unref(back);

    /* A third save replaces the stale .prev with the file it displaced. */
    assert_int_equal(model_file_save(old, path, true), 0);
    assert_int_equal(model_file_load(prev, &back), 0);
    assert_models_equal(new, back);
    back = model_unref(back);
    assert_int_equal(entries_in_tmpdir(), 2);

    assert_int_equal(unlink(prev), 0);
    assert_int_equal(unlink(path), 0);
    model_unref(new);
    model_unref(old);
}

static void test_saving_without_keep_prev_replaces_the_file_and_makes_no_prev(void **state)
{
    const char *path = path_in_tmpdir("plain.model");
    Model *old = make_model(), *new = make_model(), *back = NULL;
    struct stat st;

    (void) state;
    new->meta.epochs_run = 99;
    assert_int_equal(model_file_save(old, path, false), 0);
    assert_int_equal(model_file_save(new, path, false), 0);
    assert_int_equal(model_file_load(path, &back), 0);
    assert_models_equal(new, back);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0711, 0600); /* 0644 less the umask */
    assert_int_equal(entries_in_tmpdir(), 1);
    model_unref(back);
    model_unref(new);
    model_unref(old);
    assert_int_equal(unlink(path), 0);
}

static void
test_saving_into_a_missing_directory_returns_enoent_and_leaves_no_temp_file(void **state)
{
    const char *path = path_in_tmpdir("no/such/dir/x.model");
    Model *m = make_model();

    (void) state;
    assert_int_equal(model_file_save(m, path, true), -ENOENT);
    assert_int_equal(model_file_save(m, path, false), -ENOENT);
    assert_int_equal(entries_in_tmpdir(), 0);
    model_unref(m);
}

/* A failure after the temp file exists (here: PATH.prev is a non-empty directory, so it
 * cannot be replaced) must remove the temp file and leave PATH as it was. */
static void test_a_failed_save_leaves_the_old_file_and_no_temp_file(void **state)
{
    const char *path = path_in_tmpdir("fail.model");
    const char *prev = path_in_tmpdir("fail.model.prev");
    const char *inner = path_in_tmpdir("fail.model.prev/keep");
    Model *old = make_model(), *new = make_model(), *back = NULL;
    FILE *f;
    int r;

    (void) state;
    new->meta.best_epoch = 3;
    assert_int_equal(model_file_save(old, path, false), 0);
    assert_int_equal(mkdir(prev, 0755), 0);
    f = fopen(inner, "w");
    assert_non_null(f);
    fclose(f);

    r = model_file_save(new, path, true);
    assert_true(r < 0);
    assert_int_equal(entries_in_tmpdir(), 2); /* fail.model and fail.model.prev/ only */
    assert_int_equal(model_file_load(path, &back), 0);
    assert_models_equal(old, back);

    assert_int_equal(unlink(inner), 0);
    assert_int_equal(rmdir(prev), 0);
    assert_int_equal(unlink(path), 0);
    model_unref(back);
    model_unref(new);
    model_unref(old);
}

static void test_loading_a_missing_file_returns_enoent(void **state)
{
    Model *m = NULL;

    (void) state;
    assert_int_equal(model_file_load(path_in_tmpdir("missing.model"), &m), -ENOENT);
    assert_null(m);
}

static void test_loading_a_damaged_file_returns_the_decoder_code(void **state)
{
    const char *path = path_in_tmpdir("damaged.model");
    unsigned char *buf = NULL;
    size_t len = 0;
    Model *m = NULL;
    FILE *f;

    (void) state;
    encode_model(&buf, &len);
    buf[len / 2] ^= 1;
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(model_file_load(path, &m), MODEL_FILE_E_CHECKSUM);
    assert_null(m);

    f = fopen(path, "wb"); /* empty file */
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(model_file_load(path, &m), MODEL_FILE_E_TRUNCATED);
    assert_null(m);

    assert_int_equal(unlink(path), 0);
    free(buf);
}

static void test_loading_a_directory_returns_a_negative_errno(void **state)
{
    Model *m = NULL;

    (void) state;
    assert_int_equal(model_file_load(tmpdir, &m), -EISDIR);
    assert_null(m);
}

static void test_strerror_describes_every_code(void **state)
{
    const int codes[] = {MODEL_FILE_E_MAGIC, MODEL_FILE_E_VERSION, MODEL_FILE_E_TRUNCATED,
                         MODEL_FILE_E_CHECKSUM, MODEL_FILE_E_SHAPE};

    (void) state;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = model_file_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, model_file_strerror(codes[j]));
    }
    assert_string_equal(model_file_strerror(-ENOENT), strerror(ENOENT));
    assert_non_null(model_file_strerror(0));
    assert_non_null(model_file_strerror(1000));
    assert_non_null(model_file_strerror(-1000000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_then_load_gives_back_every_field_bit_for_bit),
        cmocka_unit_test(test_decode_of_encode_gives_back_the_same_model_and_bytes),
        cmocka_unit_test(test_encoding_is_little_endian_and_follows_the_documented_layout),
        cmocka_unit_test(test_a_flipped_byte_anywhere_is_never_accepted),
        cmocka_unit_test(test_truncation_at_any_offset_is_reported_as_truncated),
        cmocka_unit_test(test_a_short_prefix_that_is_not_the_magic_is_reported_as_magic),
        cmocka_unit_test(test_trailing_bytes_are_rejected_as_shape),
        cmocka_unit_test(test_wrong_magic_is_rejected_as_magic),
        cmocka_unit_test(test_version_5_is_rejected_even_with_a_valid_checksum),
        cmocka_unit_test(test_a_training_distribution_round_trips_exactly),
        cmocka_unit_test(test_a_version_2_file_still_loads_without_a_distribution),
        cmocka_unit_test(test_a_schema_round_trips_exactly),
        cmocka_unit_test(test_a_schema_that_disagrees_with_the_names_is_rejected_as_shape),
        cmocka_unit_test(test_a_version_1_file_still_loads_as_numeric_fields),
        cmocka_unit_test(test_a_schema_field_cut_short_is_shape_and_leaks_nothing),
        cmocka_unit_test(test_huge_counts_are_rejected_before_allocating),
        cmocka_unit_test(test_a_maximal_header_alone_is_truncated_not_allocated),
        cmocka_unit_test(test_a_nan_parameter_with_a_valid_checksum_is_rejected_as_shape),
        cmocka_unit_test(test_a_descending_percentile_table_is_rejected_as_shape),
        cmocka_unit_test(test_a_zero_std_is_rejected_as_shape),
        cmocka_unit_test(test_a_nonlinear_output_layer_is_rejected_as_shape),
        cmocka_unit_test(test_an_unknown_activation_is_rejected_as_shape),
        cmocka_unit_test(test_sizes_that_disagree_with_the_feature_count_are_rejected_as_shape),
        cmocka_unit_test(test_names_that_do_not_fill_their_block_are_rejected_as_shape),
        cmocka_unit_test(test_a_non_hex_model_id_is_rejected_as_shape),
        cmocka_unit_test(test_a_reference_round_trips_exactly),
        cmocka_unit_test(test_a_corrupt_reference_is_refused_precisely),
        cmocka_unit_test(test_a_version_3_file_loads_and_scores_as_before),
        cmocka_unit_test(test_keep_prev_keeps_the_replaced_file_as_prev),
        cmocka_unit_test(test_saving_without_keep_prev_replaces_the_file_and_makes_no_prev),
        cmocka_unit_test(
            test_saving_into_a_missing_directory_returns_enoent_and_leaves_no_temp_file),
        cmocka_unit_test(test_a_failed_save_leaves_the_old_file_and_no_temp_file),
        cmocka_unit_test(test_loading_a_missing_file_returns_enoent),
        cmocka_unit_test(test_loading_a_damaged_file_returns_the_decoder_code),
        cmocka_unit_test(test_loading_a_directory_returns_a_negative_errno),
        cmocka_unit_test(test_strerror_describes_every_code),
    };

    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
