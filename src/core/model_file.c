/* model_file: the on-disk model format (see model_file.h for the byte layout).
 *
 * DESIGN. Every multi-byte value is written and read one byte at a time in little-endian
 * order, so the file is the same on every host and no code depends on struct layout or
 * alignment. Floats travel as their IEEE-754 bit patterns (memcpy to/from uint32_t), so a
 * round trip is bit-exact, NaN payloads included.
 *
 * The decoder trusts nothing before it has proved it. It reads the fixed header, checks each
 * count against its bound, reads the layer sizes, and computes the length the header implies
 * with overflow-checked arithmetic. Only when that length equals the buffer length does it
 * look at the CRC, and only after the CRC matches does it allocate the Model and decode the
 * contents. A hostile header therefore costs a few comparisons, never an allocation, and
 * every later read is in bounds because the total was checked first. The network shape is
 * rebuilt with nn_init(), so derived fields (offsets, parameter count) are never taken from
 * the file. The decoded Model is checked once, by model_validate, before it is returned.
 *
 * Saving goes through PATH.tmp.XXXXXX + fsync + rename + directory fsync (redis rdb.c), so a
 * crash at any instant leaves either the whole old or the whole new file at PATH.
 */
#include "aescore/model_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aescore/util.h"

#define MAGIC            "AESCORE\0"
#define MAGIC_LEN        8
#define FIXED_HEADER_V1  32                                 /* magic .. names_bytes */
#define FIXED_HEADER_V2  36                                 /* magic .. schema_bytes */
#define FIXED_HEADER_V4  40                                 /* magic .. reference_rows */
#define REF_HEAD_LEN     20                                 /* kind, m1, s1, m2, s2 */
#define META_LEN         (8 + 8 + 8 + 4 * 6 + MODEL_ID_LEN) /* rows .. model id */
#define CRC_LEN          4
#define MAX_NAMES_BYTES  (1024u * 1024u)
#define MAX_SCHEMA_BYTES (16u * 1024u * 1024u)
#define MAX_LOAD_BYTES   ((size_t) 2 << 30) /* files larger than 2 GiB are not models */

/* ---------------------------------------------------------------- little-endian bytes */

static void put_u32(unsigned char **p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *(*p)++ = (unsigned char) (v >> (8 * i));
}

static void put_u64(unsigned char **p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *(*p)++ = (unsigned char) (v >> (8 * i));
}

static void put_f32(unsigned char **p, float f)
{
    uint32_t v;

    memcpy(&v, &f, sizeof(v));
    put_u32(p, v);
}

static void put_bytes(unsigned char **p, const void *src, size_t n)
{
    memcpy(*p, src, n);
    *p += n;
}

static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint32_t get_u32(const unsigned char **p)
{
    uint32_t v = read_u32(*p);

    *p += 4;
    return v;
}

static uint64_t get_u64(const unsigned char **p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t) (*p)[i] << (8 * i);
    *p += 8;
    return v;
}

static float get_f32(const unsigned char **p)
{
    uint32_t v = get_u32(p);
    float f;

    memcpy(&f, &v, sizeof(f));
    return f;
}

static void get_f32s(const unsigned char **p, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = get_f32(p);
}

/* zlib's crc32() takes a uInt length; feed it in chunks so any size_t works. */
static uint32_t crc_of(const unsigned char *buf, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);

    while (len > 0) {
        uInt chunk = len > UINT_MAX ? UINT_MAX : (uInt) len;
        crc = crc32(crc, buf, chunk);
        buf += chunk;
        len -= chunk;
    }
    return (uint32_t) crc;
}

/* ---------------------------------------------------------------- sizes */

static bool add_ok(size_t *acc, size_t v)
{
    if (v > SIZE_MAX - *acc)
        return false;
    *acc += v;
    return true;
}

static bool mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* Counts of one file, as read from (or about to be written to) its header. */
typedef struct Counts {
    unsigned version;
    size_t f, l, m, p, names_bytes, schema_bytes, ref_rows;
    size_t sizes[NN_MAX_LAYERS + 1];
} Counts;

static size_t fixed_header(const Counts *c)
{
    return c->version == 1 ? FIXED_HEADER_V1 : c->version < 4 ? FIXED_HEADER_V2 : FIXED_HEADER_V4;
}

/* Total file length implied by c (and the floats of one member's parameter block), or false
 * when it does not fit in size_t. */
static bool total_len(const Counts *c, size_t *out, size_t *params_out)
{
    size_t total = fixed_header(c) + 4 * (2 * c->l + 1) + META_LEN + CRC_LEN;
    size_t n_params = 0, t;

    for (size_t i = 0; i < c->l; i++) {
        if (!mul_ok(c->sizes[i], c->sizes[i + 1], &t) || !add_ok(&t, c->sizes[i + 1]) ||
            !add_ok(&n_params, t))
            return false;
    }
    if (!add_ok(&total, c->names_bytes) || !add_ok(&total, c->schema_bytes) ||
        !mul_ok(c->f, 8, &t) || !add_ok(&total, t) || !mul_ok(c->p, 4, &t) || !add_ok(&total, t) ||
        !mul_ok(c->m, n_params, &t) || !mul_ok(t, 4, &t) || !add_ok(&total, t))
        return false;
    if (c->version >= 4 && (!add_ok(&total, REF_HEAD_LEN) || !mul_ok(c->ref_rows, c->f, &t) ||
                            !mul_ok(t, 4, &t) || !add_ok(&total, t)))
        return false;
    *out = total;
    *params_out = n_params;
    return true;
}

/* ---------------------------------------------------------------- schema block */

/* The schema block (version 2), after the parameters:
 *   u32 n_fields, u32 n_ignored, then per field: u8 kind (0 numeric, 1 categorical),
 *   u8 has_other, u16 0, u32 n_categories, f32 fill, the name and each category as
 *   NUL-terminated strings; then the ignored column names, NUL-terminated.
 * Version 3 appends the training distribution: u32 1 and, per field, the
 * schema_profile_len floats of its profile (schema.h); or u32 0 for a model without one.
 * Input columns are not stored: they follow from the fields' order. */
static size_t schema_block_size(const Schema *s)
{
    size_t n = 8 + 4;

    for (size_t f = 0; schema_has_profile(s) && f < s->n_fields; f++)
        n += 4 * schema_profile_len(&s->fields[f]);
    for (size_t f = 0; f < s->n_fields; f++) {
        n += 12 + strlen(s->fields[f].name) + 1;
        for (size_t k = 0; k < s->fields[f].n_categories; k++)
            n += strlen(s->fields[f].categories[k]) + 1;
    }
    for (size_t i = 0; i < s->n_ignored; i++)
        n += strlen(s->ignored[i]) + 1;
    return n;
}

static void put_schema(unsigned char **p, const Schema *s)
{
    put_u32(p, (uint32_t) s->n_fields);
    put_u32(p, (uint32_t) s->n_ignored);
    for (size_t f = 0; f < s->n_fields; f++) {
        const SchemaField *fd = &s->fields[f];
        unsigned char flags[4] = {(unsigned char) fd->kind, fd->has_other, 0, 0};

        put_bytes(p, flags, 4);
        put_u32(p, (uint32_t) fd->n_categories);
        put_f32(p, fd->fill);
        put_bytes(p, fd->name, strlen(fd->name) + 1);
        for (size_t k = 0; k < fd->n_categories; k++)
            put_bytes(p, fd->categories[k], strlen(fd->categories[k]) + 1);
    }
    for (size_t i = 0; i < s->n_ignored; i++)
        put_bytes(p, s->ignored[i], strlen(s->ignored[i]) + 1);
    put_u32(p, schema_has_profile(s) ? 1 : 0);
    for (size_t f = 0; schema_has_profile(s) && f < s->n_fields; f++)
        for (size_t k = 0; k < schema_profile_len(&s->fields[f]); k++)
            put_f32(p, s->fields[f].profile[k]);
}

/* A bounded reader over the schema block. */
typedef struct Reader {
    const unsigned char *p, *end;
} Reader;

static bool read_string(Reader *rd, char **out)
{
    const unsigned char *nul = memchr(rd->p, '\0', (size_t) (rd->end - rd->p));

    if (nul == NULL || nul == rd->p)
        return false;
    *out = strdup((const char *) rd->p);
    rd->p = nul + 1;
    return *out != NULL;
}

/* Version 3: the profiles after the ignored names (see above). false: malformed. */
static bool read_profiles(Reader *rd, Schema *s, int *r)
{
    uint32_t present;

    if (rd->end - rd->p < 4)
        return false;
    present = get_u32(&rd->p);
    if (present > 1)
        return false;
    for (size_t f = 0; present == 1 && f < s->n_fields; f++) {
        SchemaField *fd = &s->fields[f];
        size_t n = schema_profile_len(fd);

        if ((size_t) (rd->end - rd->p) < 4 * n)
            return false;
        if ((fd->profile = malloc(n * sizeof(float))) == NULL) {
            *r = -ENOMEM;
            return false;
        }
        get_f32s(&rd->p, fd->profile, n);
    }
    return true;
}

/* Parses the schema block into *out. Its invariants (schema_validate) and its fit to the
 * model are checked by model_validate and column_names_match once it is attached. */
static int decode_schema(const unsigned char *block, size_t len, unsigned version, Schema **out)
{
    Reader rd = {block, block + len};
    Schema *s = NULL;
    size_t n_fields, n_ignored, col = 0;
    int r = MODEL_FILE_E_SHAPE;

    if (len < 8)
        return r;
    n_fields = get_u32(&rd.p);
    n_ignored = get_u32(&rd.p);
    /* every field takes at least 14 bytes and every ignored name 2: bounds before calloc */
    if (n_fields == 0 || n_fields > len / 14 || n_ignored > len / 2)
        return r;
    if ((s = calloc(1, sizeof(*s))) == NULL ||
        (s->fields = calloc(n_fields, sizeof(*s->fields))) == NULL ||
        (s->ignored = calloc(n_ignored ? n_ignored : 1, sizeof(*s->ignored))) == NULL)
        goto nomem;
    while (s->n_fields < n_fields) {
        /* counted before it is filled, so schema_free frees what a failure leaves behind */
        SchemaField *fd = &s->fields[s->n_fields++];
        size_t n_categories;

        if (rd.end - rd.p < 12)
            goto fail;
        fd->kind = rd.p[0] == 1 ? SCHEMA_CATEGORICAL : SCHEMA_NUMERIC;
        fd->has_other = rd.p[1] == 1;
        if (rd.p[0] > 1 || rd.p[1] > 1 || rd.p[2] != 0 || rd.p[3] != 0)
            goto fail;
        rd.p += 4;
        n_categories = get_u32(&rd.p);
        fd->fill = get_f32(&rd.p);
        if (n_categories > SCHEMA_MAX_CATEGORIES ||
            (fd->kind == SCHEMA_NUMERIC && (n_categories != 0 || fd->has_other)))
            goto fail;
        if (!read_string(&rd, &fd->name))
            goto fail;
        if (n_categories > 0 && (fd->categories = calloc(n_categories, sizeof(char *))) == NULL)
            goto nomem;
        for (; fd->n_categories < n_categories; fd->n_categories++)
            if (!read_string(&rd, &fd->categories[fd->n_categories]))
                goto fail;
        fd->column = col;
        fd->n_columns = fd->kind == SCHEMA_NUMERIC ? 1 : n_categories + fd->has_other;
        col += fd->n_columns;
    }
    for (; s->n_ignored < n_ignored; s->n_ignored++)
        if (!read_string(&rd, &s->ignored[s->n_ignored]))
            goto fail;
    s->n_columns = col;
    if ((version >= 3 && !read_profiles(&rd, s, &r)) || rd.p != rd.end)
        goto fail;
    *out = s;
    return 0;
nomem:
    r = -ENOMEM;
fail:
    schema_free(s);
    return r;
}

/* True when the model's input column names are the ones its (valid) schema implies. */
static bool column_names_match(const Model *m)
{
    for (size_t c = 0; c < m->n_features; c++) {
        char *name = schema_column_name(m->schema, c);
        bool same = name != NULL && strcmp(name, m->names[c]) == 0;

        free(name);
        if (!same)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- encode */

/* The counts of m's file with schema s, and its total length. Returns 0, -EINVAL for a
 * model the loader would refuse (names over 1 MiB, an Nn not made by nn_init), -ENOMEM when
 * the length does not fit in size_t. */
static int encode_counts(const Model *m, const Schema *s, Counts *c, size_t *total)
{
    size_t n_params;

    *c = (Counts){
        .version = MODEL_FILE_VERSION,
        .f = m->n_features,
        .l = m->nn.n_layers,
        .m = m->n_members,
        .p = MODEL_PERCENTILES,
        .schema_bytes = schema_block_size(s),
        .ref_rows = m->ref.n,
    };
    for (size_t i = 0; i < c->f; i++)
        c->names_bytes += strlen(m->names[i]) + 1;
    if (c->names_bytes > MAX_NAMES_BYTES || c->schema_bytes > MAX_SCHEMA_BYTES ||
        c->ref_rows > MODEL_MAX_REFERENCE)
        return -EINVAL;
    for (size_t i = 0; i <= c->l; i++)
        c->sizes[i] = m->nn.sizes[i];
    if (!total_len(c, total, &n_params))
        return -ENOMEM;
    /* an Nn not made by nn_init: its parameter block has another size */
    return n_params == m->nn.n_params ? 0 : -EINVAL;
}

/* Everything from the magic to the model id. */
static void put_header(unsigned char **p, const Counts *c, const Model *m)
{
    put_bytes(p, MAGIC, MAGIC_LEN);
    put_u32(p, MODEL_FILE_VERSION);
    put_u32(p, (uint32_t) c->f);
    put_u32(p, (uint32_t) c->l);
    put_u32(p, (uint32_t) c->m);
    put_u32(p, (uint32_t) c->p);
    put_u32(p, (uint32_t) c->names_bytes);
    put_u32(p, (uint32_t) c->schema_bytes);
    put_u32(p, (uint32_t) c->ref_rows);
    for (size_t i = 0; i <= c->l; i++)
        put_u32(p, (uint32_t) c->sizes[i]);
    for (size_t i = 0; i < c->l; i++)
        put_u32(p, (uint32_t) m->nn.act[i]);
    put_u64(p, m->meta.rows);
    put_u64(p, m->meta.seed);
    put_u64(p, (uint64_t) m->meta.created);
    put_u32(p, m->meta.epochs_run);
    put_u32(p, m->meta.best_epoch);
    put_f32(p, m->meta.train_loss);
    put_f32(p, m->meta.val_loss);
    put_f32(p, m->meta.threshold_q);
    put_f32(p, m->threshold);
    put_bytes(p, m->meta.id, MODEL_ID_LEN);
}

/* The reference section (version 4): u32 kind, f32 m1, s1, m2, s2, the rows. */
static void put_reference(unsigned char **p, const Model *m)
{
    const ModelReference *ref = &m->ref;

    put_u32(p, (uint32_t) ref->kind);
    put_f32(p, ref->m1);
    put_f32(p, ref->s1);
    put_f32(p, ref->m2);
    put_f32(p, ref->s2);
    for (size_t i = 0; i < ref->n * m->n_features; i++)
        put_f32(p, ref->rows[i]);
}

/* Names, scaler, percentile table, parameters, the schema block and the reference. */
static void put_contents(unsigned char **p, const Counts *c, const Model *m, const Schema *s)
{
    for (size_t i = 0; i < c->f; i++)
        put_bytes(p, m->names[i], strlen(m->names[i]) + 1);
    for (size_t i = 0; i < c->f; i++)
        put_f32(p, m->mean[i]);
    for (size_t i = 0; i < c->f; i++)
        put_f32(p, m->std[i]);
    for (size_t i = 0; i < c->p; i++)
        put_f32(p, m->percentiles[i]);
    for (size_t i = 0; i < c->m * m->nn.n_params; i++)
        put_f32(p, m->params[i]);
    put_schema(p, s);
    put_reference(p, m);
}

int model_file_encode(const Model *m, unsigned char **buf, size_t *len)
{
    unsigned char *out = NULL, *p;
    Schema *numeric = NULL;
    const Schema *schema = m->schema;
    size_t total;
    Counts c;
    int r;

    /* A model built without a schema (by hand, in tests) takes its columns as numeric
     * fields, imputed with their mean: what a version 1 file means too. */
    if (schema == NULL) {
        r = schema_new_numeric(&numeric, m->n_features, (const char *const *) m->names, m->mean);
        if (r < 0)
            return r;
        schema = numeric;
    }
    /* Refuse to write a file the loader would refuse to read. */
    r = encode_counts(m, schema, &c, &total);
    if (r != 0)
        goto out;
    out = malloc(total);
    if (out == NULL) {
        r = -ENOMEM;
        goto out;
    }
    p = out;
    put_header(&p, &c, m);
    put_contents(&p, &c, m, schema);
    put_u32(&p, crc_of(out, total - CRC_LEN));
    *buf = out;
    *len = total;
    out = NULL;
out:
    free(out);
    schema_free(numeric);
    return r;
}

/* ---------------------------------------------------------------- decode */

/* Reads and bounds-checks the counts; on success c and *n_params are filled and len is
 * exactly the length they imply. */
static int check_header(const unsigned char *buf, size_t len, Counts *c, size_t *n_params)
{
    const unsigned char *p;
    size_t total;

    if (len < MAGIC_LEN + 4) {
        /* Too short to hold magic and version: MAGIC if what is there already differs. */
        size_t n = len < MAGIC_LEN ? len : MAGIC_LEN;
        return (n > 0 && memcmp(buf, MAGIC, n) != 0) ? MODEL_FILE_E_MAGIC : MODEL_FILE_E_TRUNCATED;
    }
    if (memcmp(buf, MAGIC, MAGIC_LEN) != 0)
        return MODEL_FILE_E_MAGIC;
    c->version = read_u32(buf + MAGIC_LEN);
    if (c->version < 1 || c->version > MODEL_FILE_VERSION)
        return MODEL_FILE_E_VERSION;
    if (len < fixed_header(c))
        return MODEL_FILE_E_TRUNCATED;

    p = buf + MAGIC_LEN + 4;
    c->f = get_u32(&p);
    c->l = get_u32(&p);
    c->m = get_u32(&p);
    c->p = get_u32(&p);
    c->names_bytes = get_u32(&p);
    c->schema_bytes = c->version >= 2 ? get_u32(&p) : 0;
    c->ref_rows = c->version >= 4 ? get_u32(&p) : 0;
    if (c->f < 1 || c->f > MODEL_MAX_FEATURES || c->l < 2 || c->l > NN_MAX_LAYERS || c->m < 1 ||
        c->m > MODEL_MAX_MEMBERS || c->p != MODEL_PERCENTILES || c->names_bytes > MAX_NAMES_BYTES ||
        c->schema_bytes > MAX_SCHEMA_BYTES || (c->version >= 2 && c->schema_bytes < 8) ||
        c->ref_rows > MODEL_MAX_REFERENCE)
        return MODEL_FILE_E_SHAPE;

    if (len - fixed_header(c) < 4 * (c->l + 1))
        return MODEL_FILE_E_TRUNCATED;
    for (size_t i = 0; i <= c->l; i++) {
        c->sizes[i] = get_u32(&p);
        if (c->sizes[i] < 1 || c->sizes[i] > NN_MAX_WIDTH)
            return MODEL_FILE_E_SHAPE;
    }

    /* A length that does not fit in size_t is longer than any buffer we could be given. */
    if (!total_len(c, &total, n_params) || total > len)
        return MODEL_FILE_E_TRUNCATED;
    if (total < len)
        return MODEL_FILE_E_SHAPE;
    return 0;
}

/* Decodes the name block of c->names_bytes bytes at *p into m: exactly n_features
 * non-empty NUL-terminated strings that fill the block. */
static int decode_names(const unsigned char **p, const Counts *c, Model *m)
{
    const char *s = (const char *) *p;
    size_t left = c->names_bytes;

    for (size_t i = 0; i < c->f; i++) {
        const char *nul = memchr(s, '\0', left);
        size_t n;
        int r;

        if (nul == NULL || nul == s)
            return MODEL_FILE_E_SHAPE;
        n = (size_t) (nul - s) + 1;
        r = model_set_name(m, i, s);
        if (r < 0)
            return r;
        s += n;
        left -= n;
    }
    if (left != 0)
        return MODEL_FILE_E_SHAPE;
    *p += c->names_bytes;
    return 0;
}

static bool is_hex_id(const unsigned char *id)
{
    for (size_t i = 0; i < MODEL_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

/* The network of a checked header: the activations at *p and the sizes in c, rebuilt with
 * nn_init so no derived field comes from the file. 0 or MODEL_FILE_E_SHAPE. */
static int decode_network(const unsigned char **p, const Counts *c, size_t n_params, Nn *nn)
{
    NnActivation act[NN_MAX_LAYERS];

    for (size_t i = 0; i < c->l; i++) {
        uint32_t a = get_u32(p);
        if (a > NN_SIGMOID)
            return MODEL_FILE_E_SHAPE;
        act[i] = (NnActivation) a;
    }
    if (act[c->l - 1] != NN_LINEAR || c->sizes[0] != c->f || c->sizes[c->l] != c->f)
        return MODEL_FILE_E_SHAPE;
    /* The parameter count must be the one the length check used, or reads could overrun. */
    if (nn_init(nn, c->l, c->sizes, act) != 0 || nn->n_params != n_params)
        return MODEL_FILE_E_SHAPE;
    return 0;
}

/* The training metadata, threshold and model id at *p. 0 or MODEL_FILE_E_SHAPE. */
static int decode_meta(const unsigned char **p, Model *m)
{
    const unsigned char *id;

    m->meta.rows = get_u64(p);
    m->meta.seed = get_u64(p);
    m->meta.created = (int64_t) get_u64(p);
    m->meta.epochs_run = get_u32(p);
    m->meta.best_epoch = get_u32(p);
    m->meta.train_loss = get_f32(p);
    m->meta.val_loss = get_f32(p);
    m->meta.threshold_q = get_f32(p);
    m->threshold = get_f32(p);
    id = *p;
    *p += MODEL_ID_LEN;
    if (!is_hex_id(id))
        return MODEL_FILE_E_SHAPE;
    memcpy(m->meta.id, id, MODEL_ID_LEN);
    m->meta.id[MODEL_ID_LEN] = '\0';
    return 0;
}

/* The reference section of a version 4 file at p (its length checked with the header):
 * a kind that agrees with the row count; the values are checked by model_validate. */
static int decode_reference(const unsigned char *p, const Counts *c, Model *m)
{
    uint32_t kind = get_u32(&p);
    float stats[4], *rows;
    int r;

    get_f32s(&p, stats, 4);
    if (kind > MODEL_REFERENCE_CENTRES || (kind == MODEL_REFERENCE_NONE) != (c->ref_rows == 0))
        return MODEL_FILE_E_SHAPE;
    if (kind == MODEL_REFERENCE_NONE)
        return 0;
    if ((rows = malloc(c->ref_rows * c->f * sizeof(*rows))) == NULL)
        return -ENOMEM;
    get_f32s(&p, rows, c->ref_rows * c->f);
    r = model_set_reference(m, (ModelReferenceKind) kind, rows, c->ref_rows);
    free(rows);
    m->ref.m1 = stats[0];
    m->ref.s1 = stats[1];
    m->ref.m2 = stats[2];
    m->ref.s2 = stats[3];
    return r == -ENOMEM ? r : (r != 0 ? MODEL_FILE_E_SHAPE : 0);
}

/* Names, scaler, percentile table, parameters, schema and reference at *p into m. */
static int decode_contents(const unsigned char **p, const Counts *c, Model *m)
{
    int r = decode_names(p, c, m);

    if (r != 0)
        return r;
    get_f32s(p, m->mean, c->f);
    get_f32s(p, m->std, c->f);
    get_f32s(p, m->percentiles, c->p);
    get_f32s(p, m->params, c->m * m->nn.n_params);
    /* version 1 files are numeric: their columns are the fields, imputed with the mean */
    if (c->version < 2)
        return model_set_numeric_schema(m);
    r = decode_schema(*p, c->schema_bytes, c->version, &m->schema);
    if (r != 0 || c->version < 4)
        return r; /* before version 4: no reference, the score is the reconstruction error */
    return decode_reference(*p + c->schema_bytes, c, m);
}

int model_file_decode(const unsigned char *buf, size_t len, Model **out)
{
    const unsigned char *p;
    Counts c = {0};
    Model *m = NULL;
    size_t n_params;
    Nn nn;
    int r;

    r = check_header(buf, len, &c, &n_params);
    if (r != 0)
        return r;
    if (read_u32(buf + len - CRC_LEN) != crc_of(buf, len - CRC_LEN))
        return MODEL_FILE_E_CHECKSUM;
    p = buf + fixed_header(&c) + 4 * (c.l + 1);
    r = decode_network(&p, &c, n_params, &nn);
    if (r != 0)
        return r;
    r = model_new(&m, &nn, c.m);
    if (r != 0)
        return r == -ENOMEM ? r : MODEL_FILE_E_SHAPE;
    r = decode_meta(&p, m);
    if (r == 0)
        r = decode_contents(&p, &c, m);
    if (r != 0)
        goto fail;
    /* the one check of the contents (model_file.h promises a valid model); a stored name
     * block must also be the input columns the stored fields imply */
    if (model_validate(m) != 0 || (c.version >= 2 && !column_names_match(m))) {
        r = MODEL_FILE_E_SHAPE;
        goto fail;
    }
    m->file_format = c.version;
    *out = m;
    return 0;

fail:
    model_unref(m);
    return r;
}

/* ---------------------------------------------------------------- files */

int model_file_load_fd(int fd, Model **out)
{
    char *buf = NULL;
    size_t len;
    int r;

    r = util_read_fd(fd, MAX_LOAD_BYTES, &buf, &len);
    if (r == -EFBIG)
        return MODEL_FILE_E_SHAPE;
    if (r < 0)
        return r;
    r = model_file_decode((const unsigned char *) buf, len, out);
    free(buf);
    return r;
}

int model_file_load(const char *path, Model **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r;

    if (fd < 0)
        return -errno;
    r = model_file_load_fd(fd, out);
    close(fd);
    return r;
}

/* malloc'd "<path><suffix>", or NULL. */
static char *path_with(const char *path, const char *suffix)
{
    size_t a = strlen(path), b = strlen(suffix);
    char *s = malloc(a + b + 1);

    if (s != NULL) {
        memcpy(s, path, a);
        memcpy(s + a, suffix, b + 1);
    }
    return s;
}

/* Hard-links the current path (if there is one) to prev, replacing an older prev. */
static int link_previous(const char *path, const char *prev)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (unlink(prev) != 0 && errno != ENOENT)
        return -errno;
    if (link(path, prev) != 0)
        return -errno;
    return 0;
}

int model_file_save(const Model *m, const char *path, bool keep_prev)
{
    char *tmp = NULL, *prev = NULL;
    unsigned char *buf = NULL;
    size_t len;
    int r;

    r = model_file_encode(m, &buf, &len);
    if (r != 0)
        return r;
    tmp = path_with(path, ".tmp.XXXXXX");
    prev = path_with(path, ".prev");
    if (tmp == NULL || prev == NULL) {
        r = -ENOMEM;
        goto out;
    }
    r = util_write_temp(tmp, buf, len);
    if (r != 0)
        goto out;
    if (keep_prev)
        r = link_previous(path, prev);
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
    if (r != 0) {
        unlink(tmp);
        goto out;
    }
    /* PATH now holds the new model; a failure here only means it may not be durable yet. */
    r = util_fsync_parent(path);
out:
    free(prev);
    free(tmp);
    free(buf);
    return r;
}

const char *model_file_strerror(int r)
{
    switch (r) {
    case 0:
        return "success";
    case MODEL_FILE_E_MAGIC:
        return "not an aescore model file (bad magic)";
    case MODEL_FILE_E_VERSION:
        return "unsupported model file format version";
    case MODEL_FILE_E_TRUNCATED:
        return "model file is truncated";
    case MODEL_FILE_E_CHECKSUM:
        return "model file checksum mismatch (damaged file)";
    case MODEL_FILE_E_SHAPE:
        return "model file has inconsistent counts or invalid contents";
    default:
        break;
    }
    if (r < 0 && r != INT_MIN)
        return strerror(-r);
    return "unknown model file error";
}
