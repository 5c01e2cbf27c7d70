/* Unit tests of records_fast.h: the fast record readers answer exactly as the cJSON path.
 *
 * The cJSON path is what api_score / api_score_batch run when the fast path declines: the
 * body checks of http_body_parse_json (UTF-8, depth, one JSON value and only whitespace
 * after it, no duplicate keys), then records_read_model and records_id on the tree (for a
 * batch: an object with only "records", an array of 1..max records that all fit), under
 * three policies (nothing missing and numbers only; 40 % of the fields may be missing;
 * everything may be, and numbers may come as strings). For every input of a corpus, on
 * several models, numeric and categorical:
 *  - when the fast path accepts, the cJSON path accepts too, with bit-identical x, the
 *    same echoed ids (records_put_id against records_id) and the same notes (imputed,
 *    unseen), record for record;
 *  - so when the cJSON path rejects, the fast path has declined.
 * The corpus is every file of tests/fuzz/corpus/record and tests/fuzz/corpus/batch (the
 * directory comes from AESCORE_CORPUS_DIR, set by tests/unit/meson.build), each also
 * wrapped as a one-record batch, plus records and batches generated from a fixed seed:
 * member and field orders shuffled, whitespace variants, ids of every kind, numbers near
 * the float and double limits, long digit strings, escaped keys, categories known, unseen,
 * empty, escaped and beyond ASCII, nulls, duplicate, unknown and missing fields, arrays of the
 * wrong length, trailing garbage, nested junk, truncations, batches empty, at and past max and past
 * the fast path's first allocation. The generator knows which inputs lie in the subset
 * records_fast.h documents (those must take the fast path, with x equal to (float) strtod of each
 * number's text) and which break a rule (those the cJSON path must reject), so the test can pass
 * neither by the fast path declining everything nor by a generator that only makes valid records.
 */
#undef NDEBUG
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/service/http_body.h"
#include "../../src/service/json_buf.h"
#include "../../src/service/records.h"
#include "../../src/service/records_fast.h"
#include "aescore/model.h"

#define SEED             UINT64_C(0x5eed2024f00d)
#define SINGLES_PER      4000 /* generated records per model */
#define BATCHES_PER      700  /* generated batches per model */
#define MAX_BATCH        300  /* the largest max_batch tried: past the fast path's first 256 */
#define CORPUS_MAX_FILES 256
#define CORPUS_MAX_SIZE  (1u << 20)

/* ---- models ---- */

typedef struct TestModel {
    const char *label;
    Model *m;
    bool plain; /* every field numeric (built by numeric_model) */
} TestModel;

static const char *const fuzz_names[] = {"amount", "age", "limit", "pay_0"}; /* the corpus's */
static const char *const one_name[] = {"x"};
/* names that are member names, prefixes and case variants of one another, and around the
 * 15 bytes a key word of records_fast_keys holds (two of them alike in their first eight) */
static const char *const tricky_names[] = {"a",
                                           "ab",
                                           "id",
                                           "values",
                                           "features",
                                           "with space",
                                           "A",
                                           "a.b",
                                           "records",
                                           "fifteen_bytes_x",
                                           "fifteen_bytes_y",
                                           "sixteen_bytes_xx",
                                           "a name longer than two key words"};
#define N_TRICKY (sizeof(tricky_names) / sizeof(tricky_names[0]))

/* A numeric model of n fields named names[] (only the schema matters to the readers). */
static Model *numeric_model(const char *const *names, size_t n)
{
    const size_t sizes[] = {n, 2, n};
    const NnActivation act[] = {NN_RELU, NN_LINEAR};
    Model *m = NULL;
    Nn nn;

    assert_int_equal(nn_init(&nn, 2, sizes, act), 0);
    assert_int_equal(model_new(&m, &nn, 1), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(model_set_name(m, i, names[i]), 0);
        m->mean[i] = (float) i;
        m->std[i] = 1;
    }
    assert_int_equal(model_set_numeric_schema(m), 0);
    return m;
}

/* Fields amount (numeric), housing (rent/own + other, three columns) and age (numeric):
 * five input columns, so a "values" array of five numbers fits the columns but not the
 * fields. Built by hand as test_records.c does; freed by free_categorical_model. */
static Model *categorical_model(void)
{
    static const char *const columns[] = {"amount", "housing=rent", "housing=own",
                                          "housing=*other*", "age"};
    Model *m = calloc(1, sizeof(*m));
    Schema *sc = calloc(1, sizeof(*sc));

    assert_non_null(m);
    assert_non_null(sc);
    sc->n_fields = 3;
    sc->fields = calloc(3, sizeof(*sc->fields));
    assert_non_null(sc->fields);
    sc->fields[0] = (SchemaField){.name = strdup("amount"), .fill = 10, .n_columns = 1};
    sc->fields[1] = (SchemaField){.name = strdup("housing"),
                                  .kind = SCHEMA_CATEGORICAL,
                                  .column = 1,
                                  .n_columns = 3,
                                  .n_categories = 2,
                                  .has_other = true,
                                  .fill = 1};
    sc->fields[1].categories = calloc(2, sizeof(char *));
    assert_non_null(sc->fields[1].categories);
    sc->fields[1].categories[0] = strdup("rent");
    sc->fields[1].categories[1] = strdup("own");
    sc->fields[2] = (SchemaField){.name = strdup("age"), .column = 4, .n_columns = 1, .fill = 40};
    sc->n_columns = 5;
    assert_int_equal(schema_validate(sc), 0);
    m->schema = sc;
    m->n_features = 5;
    m->names = calloc(5, sizeof(char *));
    assert_non_null(m->names);
    for (size_t i = 0; i < 5; i++)
        m->names[i] = strdup(columns[i]);
    return m;
}

static void free_categorical_model(Model *m)
{
    for (size_t i = 0; i < m->n_features; i++)
        free(m->names[i]);
    free(m->names);
    schema_free(m->schema);
    free(m);
}

typedef struct Models {
    TestModel tm[5];
    size_t n;
    char *wide_names[64];
} Models;

static void models_init(Models *ms)
{
    const char *wide[64];

    memset(ms, 0, sizeof(*ms));
    for (size_t i = 0; i < 64; i++) {
        ms->wide_names[i] = malloc(8);
        assert_non_null(ms->wide_names[i]);
        snprintf(ms->wide_names[i], 8, "f%zu", i);
        wide[i] = ms->wide_names[i];
    }
    ms->tm[ms->n++] = (TestModel){"corpus schema", numeric_model(fuzz_names, 4), true};
    ms->tm[ms->n++] = (TestModel){"one field", numeric_model(one_name, 1), true};
    ms->tm[ms->n++] = (TestModel){"tricky names", numeric_model(tricky_names, N_TRICKY), true};
    ms->tm[ms->n++] = (TestModel){"64 fields", numeric_model(wide, 64), true};
    ms->tm[ms->n++] = (TestModel){"categorical", categorical_model(), false};
}

static void models_free(Models *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        if (ms->tm[i].plain)
            model_unref(ms->tm[i].m);
        else
            free_categorical_model(ms->tm[i].m);
    }
    for (size_t i = 0; i < 64; i++)
        free(ms->wide_names[i]);
}

/* ---- text ---- */

typedef struct Text {
    char *p;
    size_t len, cap;
} Text;

static void put(Text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (t->len + n + 1 > cap)
            cap *= 2;
        t->p = realloc(t->p, cap);
        assert_non_null(t->p);
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void puts_(Text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void putc_(Text *t, char c)
{
    put(t, &c, 1);
}

static void putf(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(Text *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t) n < sizeof(buf));
    put(t, buf, (size_t) n);
}

/* An input as a C string literal (for failure messages), cut after 600 bytes. */
static const char *shown(const char *s, size_t n)
{
    static char out[4 * 600 + 64];
    size_t o = 0;

    for (size_t i = 0; i < n && i < 600; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\')
            o += (size_t) snprintf(out + o, sizeof(out) - o, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            out[o++] = (char) c;
        else
            o += (size_t) snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
    }
    snprintf(out + o, sizeof(out) - o, "%s (%zu bytes)", n > 600 ? "..." : "", n);
    return out;
}

/* ---- the cJSON path ---- */

/* The policies tried: the strictest, then missing fields imputed and numbers as strings. */
static const RecordPolicy policies[] = {
    {.max_missing_percent = 0, .lenient_numbers = false},
    {.max_missing_percent = 40, .lenient_numbers = false},
    {.max_missing_percent = 100, .lenient_numbers = true},
};
#define N_POLICIES (sizeof(policies) / sizeof(policies[0]))
static const RecordPolicy *policy = &policies[0]; /* of the input being made and checked */

/* One record rec into x, its echoed id into *id and its notes: true when it fits the model. */
static bool cjson_record(const cJSON *rec, const Model *m, float *x, JsonBuf *id,
                         RecordNotes *notes)
{
    RecordIssues iss;
    int r;

    records_issues_init(&iss);
    r = records_read_model(rec, m, policy, x, notes, &iss);
    records_issues_deinit(&iss);
    assert_true(r == 0 || r == RECORDS_E_SCHEMA);
    if (r != 0)
        return false;
    assert_int_equal(records_id(rec, id), 0); /* an accepted record has an id to echo */
    return true;
}

/* api_score without the fast path: true when it would score the body. */
static bool cjson_single(const char *body, size_t len, const Model *m, float *x, JsonBuf *id,
                         RecordNotes *notes)
{
    cJSON *root = http_json_body(body, len); /* as the server reads it */
    bool ok = root != NULL && cJSON_IsObject(root) && cjson_record(root, m, x, id, notes);

    cJSON_Delete(root);
    return ok;
}

/* api_score_batch without the fast path: true when it would score the body; then *n
 * records, *xs (n * n_features) and ids[n] (caller frees xs, ids and their buffers). */
static bool cjson_batch(const char *body, size_t len, const Model *m, size_t max, float **xs,
                        JsonBuf **ids, RecordNotes **notes, size_t *n)
{
    cJSON *root = http_json_body(body, len); /* as the server reads it */
    const cJSON *records = NULL, *rec;
    size_t f = m->n_features, i = 0;
    bool ok = false;

    *xs = NULL;
    *ids = NULL;
    *notes = NULL;
    *n = 0;
    if (root == NULL || !cJSON_IsObject(root))
        goto out;
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        if (strcmp(c->string, "records") != 0)
            goto out;
        records = c;
    }
    if (!cJSON_IsArray(records))
        goto out;
    cJSON_ArrayForEach(rec, records)(*n)++;
    if (*n == 0 || *n > max)
        goto out;
    *xs = malloc(*n * f * sizeof(float));
    *ids = calloc(*n, sizeof(JsonBuf));
    *notes = calloc(*n, sizeof(RecordNotes));
    assert_non_null(*xs);
    assert_non_null(*ids);
    assert_non_null(*notes);
    cJSON_ArrayForEach(rec, records)
    {
        if (!cjson_record(rec, m, *xs + i * f, &(*ids)[i], &(*notes)[i]))
            goto out;
        i++;
    }
    ok = true;
out:
    cJSON_Delete(root);
    return ok;
}

static void free_ids(JsonBuf *ids, RecordNotes *notes, size_t n)
{
    for (size_t i = 0; ids != NULL && i < n; i++)
        json_buf_deinit(&ids[i]);
    for (size_t i = 0; notes != NULL && i < n; i++)
        records_notes_deinit(&notes[i]);
    free(ids);
    free(notes);
}

/* ---- the comparison ---- */

typedef enum Expect {
    EXPECT_NOTHING = 0, /* no promise beyond agreement */
    EXPECT_FAST,        /* inside the documented subset: the fast path must take it */
    EXPECT_REJECT,      /* breaks a rule: the cJSON path must reject it */
} Expect;

typedef struct Tally {
    size_t inputs, fast, cjson, expect_fast, expect_reject;
} Tally;

static void tally_add(Tally *t, const Tally *u)
{
    t->inputs += u->inputs;
    t->fast += u->fast;
    t->cjson += u->cjson;
    t->expect_fast += u->expect_fast;
    t->expect_reject += u->expect_reject;
}

static void assert_same_id(const RecordId *fast, const JsonBuf *cjson, const char *what,
                           const char *body, size_t len)
{
    JsonBuf b = JSON_BUF_INIT;

    records_put_id(&b, fast);
    assert_false(b.oom);
    if (b.len != cjson->len || memcmp(b.data, cjson->data, b.len) != 0)
        fail_msg("%s: the fast path echoes id %s, the cJSON path %s, for %s", what, b.data,
                 cjson->data, shown(body, len));
    json_buf_deinit(&b);
}

static void assert_same_x(const float *fast, const float *cjson, size_t n, const char *what,
                          const char *body, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&fast[i], &cjson[i], sizeof(float)) != 0)
            fail_msg("%s: x[%zu] is %a on the fast path, %a on the cJSON path, for %s", what, i,
                     (double) fast[i], (double) cjson[i], shown(body, len));
}

static bool same_buf(const JsonBuf *a, const JsonBuf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void assert_same_notes(const RecordNotes *fast, const RecordNotes *cjson, const char *what,
                              const char *body, size_t len)
{
    if (fast->n_imputed != cjson->n_imputed || fast->n_unseen != cjson->n_unseen ||
        !same_buf(&fast->imputed, &cjson->imputed) || !same_buf(&fast->unseen, &cjson->unseen))
        fail_msg("%s: the fast path notes %zu imputed and %zu unseen, the cJSON path %zu and "
                 "%zu, for %s",
                 what, fast->n_imputed, fast->n_unseen, cjson->n_imputed, cjson->n_unseen,
                 shown(body, len));
}

/* Copies text[len] into an allocation of exactly len bytes (ASan catches a read past the
 * body: the fast path must not need a terminator) and one with a NUL (the cJSON path's). */
static void copies(const char *text, size_t len, char **exact, char **with_nul)
{
    *exact = malloc(len ? len : 1);
    *with_nul = malloc(len + 1);
    assert_non_null(*exact);
    assert_non_null(*with_nul);
    memcpy(*exact, text, len);
    memcpy(*with_nul, text, len);
    (*with_nul)[len] = '\0';
}

/* Reads text as one record both ways and checks they agree; want (may be NULL) is what x
 * must be when expect is EXPECT_FAST. */
static void check_single(const TestModel *tm, const char *text, size_t len, Expect expect,
                         const float *want, Tally *t)
{
    const Model *m = tm->m;
    size_t f = m->n_features;
    float *x_fast = malloc(f * sizeof(float)), *x_cjson = malloc(f * sizeof(float));
    char *exact, *with_nul;
    JsonBuf id_cjson = JSON_BUF_INIT;
    RecordNotes notes_fast, notes_cjson;
    SchemaValue *v = malloc(m->schema->n_fields * sizeof(*v));
    FastKey *keys = malloc(m->schema->n_fields * sizeof(*keys));
    FastRecord fr = {m, policy, keys, v};
    RecordId id_fast;
    bool fast, cjson;

    assert_non_null(x_fast);
    assert_non_null(x_cjson);
    assert_non_null(v);
    assert_non_null(keys);
    records_fast_keys(m->schema, keys);
    records_notes_init(&notes_fast);
    records_notes_init(&notes_cjson);
    copies(text, len, &exact, &with_nul);
    fast = records_fast_single(exact, len, &fr, x_fast, &id_fast, &notes_fast);
    cjson = cjson_single(with_nul, len, m, x_cjson, &id_cjson, &notes_cjson);
    t->inputs++;
    t->fast += fast;
    t->cjson += cjson;
    t->expect_fast += expect == EXPECT_FAST;
    t->expect_reject += expect == EXPECT_REJECT;
    if (fast && !cjson)
        fail_msg("%s: the fast path accepts a record the cJSON path rejects: %s", tm->label,
                 shown(text, len));
    if (fast) {
        assert_same_x(x_fast, x_cjson, f, tm->label, text, len);
        assert_same_id(&id_fast, &id_cjson, tm->label, text, len);
        assert_same_notes(&notes_fast, &notes_cjson, tm->label, text, len);
    }
    if (expect == EXPECT_FAST && !fast)
        fail_msg("%s: the fast path declines a record of its subset: %s", tm->label,
                 shown(text, len));
    if (expect == EXPECT_FAST && want != NULL)
        assert_same_x(x_fast, want, f, "x against strtod", text, len);
    if (expect == EXPECT_REJECT && cjson)
        fail_msg("%s: the cJSON path accepts a record made to break a rule: %s", tm->label,
                 shown(text, len));
    json_buf_deinit(&id_cjson);
    records_notes_deinit(&notes_fast);
    records_notes_deinit(&notes_cjson);
    free(v);
    free(keys);
    free(exact);
    free(with_nul);
    free(x_fast);
    free(x_cjson);
}

/* The same for a batch body against max records. */
static void check_batch(const TestModel *tm, const char *text, size_t len, size_t max,
                        Expect expect, const float *want, Tally *t)
{
    const Model *m = tm->m;
    size_t f = m->n_features, n_cjson = 0;
    float *x_cjson = NULL;
    JsonBuf *id_cjson = NULL;
    RecordNotes *notes_cjson = NULL;
    SchemaValue *v = malloc(m->schema->n_fields * sizeof(*v));
    FastKey *keys = malloc(m->schema->n_fields * sizeof(*keys));
    FastRecord fr = {m, policy, keys, v};
    FastBatch b;
    char *exact, *with_nul;
    bool fast, cjson;

    assert_non_null(v);
    assert_non_null(keys);
    records_fast_keys(m->schema, keys);
    copies(text, len, &exact, &with_nul);
    fast = records_fast_batch(exact, len, &fr, max, &b);
    cjson = cjson_batch(with_nul, len, m, max, &x_cjson, &id_cjson, &notes_cjson, &n_cjson);
    t->inputs++;
    t->fast += fast;
    t->cjson += cjson;
    t->expect_fast += expect == EXPECT_FAST;
    t->expect_reject += expect == EXPECT_REJECT;
    if (fast && !cjson)
        fail_msg("%s (max %zu): the fast path accepts a batch the cJSON path rejects: %s",
                 tm->label, max, shown(text, len));
    if (fast) {
        if (b.n != n_cjson)
            fail_msg("%s: %zu records on the fast path, %zu on the cJSON path: %s", tm->label, b.n,
                     n_cjson, shown(text, len));
        assert_same_x(b.x, x_cjson, b.n * f, tm->label, text, len);
        for (size_t i = 0; i < b.n; i++) {
            assert_same_id(&b.ids[i], &id_cjson[i], tm->label, text, len);
            assert_same_notes(&b.notes[i], &notes_cjson[i], tm->label, text, len);
        }
    }
    if (expect == EXPECT_FAST && !fast)
        fail_msg("%s (max %zu): the fast path declines a batch of its subset: %s", tm->label, max,
                 shown(text, len));
    if (expect == EXPECT_FAST && want != NULL)
        assert_same_x(b.x, want, b.n * f, "x against strtod", text, len);
    if (expect == EXPECT_REJECT && cjson)
        fail_msg("%s (max %zu): the cJSON path accepts a batch made to break a rule: %s", tm->label,
                 max, shown(text, len));
    if (fast)
        records_fast_batch_free(&b);
    free(v);
    free(keys);
    free(x_cjson);
    free_ids(id_cjson, notes_cjson, n_cjson);
    free(exact);
    free(with_nul);
}

/* ---- the corpus ---- */

typedef struct Corpus {
    char *text[CORPUS_MAX_FILES];
    size_t len[CORPUS_MAX_FILES];
    size_t n;
} Corpus;

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every file of $AESCORE_CORPUS_DIR/sub, in name order. */
static void corpus_load(Corpus *c, const char *sub)
{
    const char *root = getenv("AESCORE_CORPUS_DIR");
    char dir[1024], path[2048], *names[CORPUS_MAX_FILES];
    size_t n = 0;
    struct dirent *e;
    DIR *d;

    if (root == NULL)
        fail_msg("AESCORE_CORPUS_DIR is not set (tests/unit/meson.build sets it)");
    snprintf(dir, sizeof(dir), "%s/%s", root, sub);
    d = opendir(dir);
    if (d == NULL)
        fail_msg("cannot open the corpus directory %s", dir);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        assert_true(n < CORPUS_MAX_FILES);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), compare_names);
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        FILE *fp;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        fp = fopen(path, "rb");
        assert_non_null(fp);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        long size = ftell(fp);
        assert_true(size >= 0 && size < CORPUS_MAX_SIZE);
        rewind(fp);
        c->text[i] = malloc((size_t) size + 1);
        assert_non_null(c->text[i]);
        c->len[i] = fread(c->text[i], 1, (size_t) size, fp);
        assert_true(c->len[i] == (size_t) size && !ferror(fp));
        fclose(fp);
        free(names[i]);
    }
    c->n = n;
    if (n == 0)
        fail_msg("the corpus directory %s is empty", dir);
}

static void corpus_free(Corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->text[i]);
}

/* ---- the generator ---- */

static uint64_t next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
    return (size_t) (next(s) % n);
}

static bool chance(uint64_t *s, unsigned percent)
{
    return below(s, 100) < percent;
}

/* What one generated input holds, for its expectation. */
typedef struct Traits {
    size_t missing; /* fields of the record being made that are null or left out */
    bool rejected;  /* breaks a rule of the cJSON path */
    bool declined;  /* valid for the cJSON path but outside the fast path's subset */
    bool wild;      /* truncated, flipped or otherwise unpredictable */
} Traits;

static Expect expectation(const Traits *tr)
{
    if (tr->wild)
        return EXPECT_NOTHING;
    if (tr->rejected)
        return EXPECT_REJECT;
    return tr->declined ? EXPECT_NOTHING : EXPECT_FAST;
}

/* The end of one record's making: more missing fields than the policy imputes is a 422. */
static void record_made(Traits *tr, size_t n_fields)
{
    if (tr->missing * 100 > (size_t) policy->max_missing_percent * n_fields)
        tr->rejected = true;
    tr->missing = 0;
}

/* x as the schema encodes a record with every field missing: what want starts from. */
static void want_fills(const Schema *sc, float *want)
{
    for (size_t f = 0; f < sc->n_fields; f++) {
        const SchemaField *fd = &sc->fields[f];

        if (fd->kind == SCHEMA_NUMERIC) {
            want[fd->column] = fd->fill;
            continue;
        }
        for (size_t c = 0; c < fd->n_columns; c++)
            want[fd->column + c] = 0;
        want[fd->column + (size_t) fd->fill] = 1;
    }
}

/* A category value for fd (the categorical model's "housing": rent, own, other): known,
 * unseen, empty, or spelt in a way only the cJSON path reads; want gets its columns. */
static void gen_category(uint64_t *s, const SchemaField *fd, Text *t, Traits *tr, float *want)
{
    static const char *const cats[] = {"\"rent\"", "\"own\"",  "\"boat\"",       "\"\"",
                                       "\"Rent\"", "\"own \"", "\"r\\u0065nt\"", "\"caf\xc3\xa9\""};
    size_t k = below(s, sizeof(cats) / sizeof(cats[0]));

    puts_(t, cats[k]);
    if (k >= 6) {
        tr->declined = true; /* an escape or a byte past ASCII */
        return;
    }
    if (want == NULL)
        return;
    for (size_t c = 0; c < fd->n_columns; c++)
        want[fd->column + c] = 0;
    want[fd->column + (k < 2 ? k : fd->n_categories)] = 1; /* unseen: "other" */
}

/* Numbers in strict JSON grammar, written out: the float and double limits and their
 * neighbours, denormals, signed zeros, values on both sides of the exact shortcut. */
static const char *const strict_numbers[] = {"0",
                                             "-0",
                                             "0.0",
                                             "-0.0",
                                             "0e0",
                                             "-0E+0",
                                             "1",
                                             "-1",
                                             "1e38",
                                             "-1e38",
                                             "3.4028234e38",
                                             "3.4028235e38",
                                             "3.4028236e38",
                                             "-3.4028235e38",
                                             "3.40282346638528859811704183484516925440e+38",
                                             "3.4028234663852886e+38",
                                             "3.4028234663852887e+38",
                                             "3.4028234663852890e+38",
                                             "340282346638528859811704183484516925440",
                                             "340282356779733661637539395458142568448",
                                             "1e39",
                                             "-1e39",
                                             "1e-46",
                                             "-1e-46",
                                             "1e-45",
                                             "7e-46",
                                             "7.1e-46",
                                             "1.401298464324817e-45",
                                             "1.1754943508222875e-38",
                                             "1.1754942e-38",
                                             "1e-38",
                                             "2e-40",
                                             "4.9e-324",
                                             "5e-324",
                                             "2.4703282292062327e-324",
                                             "2.2250738585072014e-308",
                                             "1e-310",
                                             "1e-400",
                                             "-1e-400",
                                             "1e308",
                                             "1.7976931348623157e308",
                                             "1.7976931348623159e308",
                                             "1e309",
                                             "1e400",
                                             "-1e400",
                                             "0e400",
                                             "9007199254740992",
                                             "9007199254740993",
                                             "9007199254740993e-5",
                                             "18446744073709551615",
                                             "18446744073709551616",
                                             "123456789012345678901234567890",
                                             "0.1",
                                             "0.30000000000000004",
                                             "1e22",
                                             "1e23",
                                             "1e-22",
                                             "1e-23",
                                             "1.5e-22",
                                             "123456789e-22",
                                             "9007199254740992e22",
                                             "9007199254740992e-22",
                                             "1E+2",
                                             "1e+0",
                                             "1E-0",
                                             "1e007",
                                             "-1.25e-3",
                                             "4.35e-7",
                                             "0.000000000000000000000000000001e30",
                                             "6.000000000000001e+30",
                                             "3.0000000000000003e+30",
                                             "120.5",
                                             "33",
                                             "2000",
                                             "-1",
                                             "1.5",
                                             "3e2",
                                             "-4"};

/* Not strict JSON: some cJSON reads anyway (leading zeros, "1."), the rest it refuses. */
static const char *const lax_numbers[] = {
    "01",   "-01",   "00",       "1.",        "-",    "+1",  ".5",    "1e",     "1e+",   "1.e5",
    "0x10", "NaN",   "Infinity", "-Infinity", "1_0",  "--1", "1.5.5", "1e5e5",  "0.5e",  "1ee5",
    "-.5",  "1E+-5", "\xd9\xa3", "1-2",       "0.5-", "nan", "inf",   "0x1p-3", "1e+5.5"};

/* A random number in strict grammar: int part, optional fraction and exponent. */
static void random_strict(uint64_t *s, Text *t, bool small)
{
    size_t digits;

    if (chance(s, 30))
        put(t, "-", 1);
    if (chance(s, 15)) {
        put(t, "0", 1);
    } else {
        digits = 1 + below(s, small ? 8 : 20);
        putc_(t, (char) ('1' + below(s, 9)));
        for (size_t i = 1; i < digits; i++)
            putc_(t, (char) ('0' + below(s, 10)));
    }
    if (chance(s, 50)) {
        digits = 1 + below(s, small ? 8 : 20);
        put(t, ".", 1);
        for (size_t i = 0; i < digits; i++)
            putc_(t, (char) ('0' + below(s, 10)));
    }
    if (chance(s, 40)) {
        static const char *const sign[] = {"", "+", "-"};
        size_t range = small ? 20 : (chance(s, 70) ? 26 : (chance(s, 50) ? 60 : 400));
        putf(t, "%c%s%s%zu", chance(s, 50) ? 'e' : 'E', sign[below(s, 3)],
             chance(s, 10) ? "00" : "", below(s, range));
    }
}

/* A number of n characters in strict grammar: digits with an optional "-" and "0.". */
static void long_strict(uint64_t *s, Text *t, size_t n)
{
    size_t start = t->len;

    if (chance(s, 30))
        put(t, "-", 1);
    if (chance(s, 50))
        put(t, "0.", 2);
    else
        putc_(t, (char) ('1' + below(s, 9)));
    while (t->len - start < n)
        putc_(t, (char) ('0' + below(s, 10)));
}

typedef enum NumberUse { AS_FEATURE, AS_ID } NumberUse;

/* Appends a number and notes what it does to the input; *want gets (float) strtod of it
 * when it is a valid feature value. clean: only short numbers well inside float range. */
static void gen_number(uint64_t *s, Text *t, NumberUse use, bool clean, Traits *tr, float *want)
{
    size_t start = t->len, kind = clean ? 0 : below(s, 100);
    bool strict_grammar = true;

    if (kind < 55) {
        random_strict(s, t, clean);
    } else if (kind < 80) {
        puts_(t, strict_numbers[below(s, sizeof(strict_numbers) / sizeof(strict_numbers[0]))]);
    } else if (kind < 85) {
        float v;
        uint32_t bits;
        do {
            bits = (uint32_t) next(s);
            memcpy(&v, &bits, sizeof(v));
        } while (!isfinite(v));
        putf(t, "%.9g", (double) v);
    } else if (kind < 90) {
        double v;
        uint64_t bits;
        do {
            bits = next(s);
            memcpy(&v, &bits, sizeof(v));
        } while (!isfinite(v));
        putf(t, "%.17g", v);
    } else if (kind < 95) {
        static const size_t lengths[] = {62, 63, 64, 65, 100, 400};
        long_strict(s, t, lengths[below(s, 6)]);
    } else {
        puts_(t, lax_numbers[below(s, sizeof(lax_numbers) / sizeof(lax_numbers[0]))]);
        strict_grammar = false;
    }

    size_t n = t->len - start;
    if (!strict_grammar || n > 63) {
        /* outside the subset; what cJSON makes of it is not this test's concern */
        tr->declined = true;
        tr->wild = true;
        return;
    }
    double d = strtod(t->p + start, NULL);
    if (use == AS_FEATURE) {
        if (!isfinite(d) || fabs(d) > FLT_MAX)
            tr->rejected = true; /* not finite as a float: an invalid feature */
        else if (want != NULL)
            *want = (float) d;
    } else if (!isfinite(d)) {
        tr->rejected = true; /* an id beyond a double: refused, not echoed as null */
    }
}

/* Whitespace between two tokens; with odd, sometimes bytes cJSON skips but JSON does not
 * allow (the fast path must decline those). */
static void gen_ws(uint64_t *s, Text *t, bool odd, Traits *tr)
{
    static const char *const ws[] = {" ", "\t", "\n", "\r", "\r\n", "  ", " \n\t "};
    static const char *const odd_ws[] = {"\f", "\v", "\x01", "\x1f", " \f "};

    if (odd && chance(s, 3)) {
        size_t k = below(s, 6);
        if (k == 5)
            put(t, "\0", 1); /* cJSON skips a NUL too */
        else
            puts_(t, odd_ws[k]);
        tr->declined = true;
        return;
    }
    if (chance(s, 60))
        return;
    puts_(t, ws[below(s, sizeof(ws) / sizeof(ws[0]))]);
}

/* A key as a JSON string; with escape, one character written as \u00XX: the same key to
 * cJSON, one the fast path declines. */
static void gen_key(uint64_t *s, Text *t, const char *name, bool escape, Traits *tr)
{
    size_t n = strlen(name), at = n ? below(s, n) : 0;

    put(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (escape && i == at)
            putf(t, chance(s, 50) ? "\\u%04x" : "\\u%04X", (unsigned char) name[i]);
        else
            put(t, &name[i], 1);
    }
    put(t, "\"", 1);
    if (escape && n > 0)
        tr->declined = true;
}

/* An id value: a number, null or a string the fast path reads; with any, also strings it
 * declines and types the cJSON path refuses. */
static void gen_id(uint64_t *s, Text *t, bool any, Traits *tr)
{
    size_t k = below(s, any ? 100 : 85);

    if (k < 30) {
        gen_number(s, t, AS_ID, !any, tr, NULL);
    } else if (k < 40) {
        puts_(t, "null");
    } else if (k < 85) {
        size_t n = chance(s, 5) ? 200 + below(s, 200) : below(s, 20);
        put(t, "\"", 1);
        for (size_t i = 0; i < n; i++) {
            char c;
            do
                c = (char) (0x20 + below(s, 0x5f));
            while (c == '"' || c == '\\');
            put(t, &c, 1);
        }
        put(t, "\"", 1);
    } else if (k < 93) {
        /* valid for cJSON, outside the fast path's strings */
        static const char *const strs[] = {
            "\"a\\\"b\"",         "\"\\\\\"",        "\"line\\nbreak\"", "\"caf\\u00e9\"",
            "\"\\ud83d\\ude00\"", "\"caf\xc3\xa9\"", "\"tab\\tx\"",      "\"\\/\""};
        puts_(t, strs[below(s, sizeof(strs) / sizeof(strs[0]))]);
        tr->declined = true;
    } else if (k < 96) {
        static const char *const bad[] = {"true", "false", "[]", "{}", "[1]", "{\"a\":1}"};
        puts_(t, bad[below(s, sizeof(bad) / sizeof(bad[0]))]);
        tr->rejected = true;
    } else if (k < 98) {
        puts_(t, "\"\xff\xfe\""); /* not UTF-8: the body check refuses it */
        tr->rejected = true;
    } else {
        puts_(t, "\"ctl\x01\x1f\""); /* raw control characters: the fast path declines */
        tr->declined = true;
        tr->wild = true;
    }
}

enum Mutation {
    MUT_NONE = 0,
    MUT_MISSING,   /* a field left out */
    MUT_UNKNOWN,   /* a field the model lacks */
    MUT_REPEATED,  /* a field twice */
    MUT_NULL,      /* a value null (missing: the strict policy refuses it) */
    MUT_NOT_NUM,   /* a value of another type */
    MUT_LENGTH,    /* "values" one too short or too long */
    MUT_MEMBER,    /* an unexpected member ("label" included) */
    MUT_DUPLICATE, /* "id" twice, or "features" and "values" */
    MUT_EMPTY,     /* "features":{} or "values":[] */
    MUT_TRAILING,  /* bytes after the record */
    MUT_NESTED,    /* a value that is deep junk */
    MUT_TOP_ARRAY, /* the record inside an array */
    MUT_ESCAPE,    /* an escaped key (valid; fast declines) */
    MUT_BOM,       /* a UTF-8 byte order mark (cJSON skips it; fast declines) */
    MUT_ODD_WS,    /* whitespace JSON does not allow (cJSON skips it; fast declines) */
    MUT_TRUNCATE,  /* cut short */
    MUT_FLIP,      /* one byte changed */
    MUT_COUNT_
};

/* Appends the data member's value ("features" object or "values" array) of a record. */
static void gen_data(uint64_t *s, const TestModel *tm, Text *t, bool values, bool columns,
                     enum Mutation mut, bool clean, Traits *tr, float *want)
{
    const Schema *sc = tm->m->schema;
    size_t n = columns ? tm->m->n_features : sc->n_fields, order[64], count = n;
    size_t target = below(s, n);        /* the field a mutation hits */
    size_t escape_at = below(s, n + 2); /* MUT_ESCAPE: this field's key (when < n) */
    bool odd = mut == MUT_ODD_WS, first = true;

    assert_true(n <= 64);
    if (want != NULL && !columns)
        want_fills(sc, want);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (!values && chance(s, 60)) /* else schema order, the fast path's first guess */
        for (size_t i = n; i > 1; i--) {
            size_t j = below(s, i), tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
    if (mut == MUT_LENGTH && values) {
        count = n > 1 && chance(s, 50) ? n - 1 : n + 1;
        tr->rejected = true;
    }
    if (mut == MUT_EMPTY) {
        count = 0;
        if (values)
            tr->rejected = true;
        else
            tr->missing += n;
    }
    if (mut == MUT_MISSING && !values) {
        for (size_t k = 0; k < n; k++)
            if (order[k] == target)
                order[k] = order[--count]; /* left out */
        tr->missing++;
    }
    put(t, values ? "[" : "{", 1);
    gen_ws(s, t, odd, tr);
    for (size_t k = 0; k < count + (mut == MUT_REPEATED && !values && count > 0); k++) {
        size_t i = k < count && k < n ? order[k] : target; /* past the end: again, or extra */
        bool categorical = !columns && sc->fields[i].kind == SCHEMA_CATEGORICAL;

        if (k >= n)
            tr->rejected = true; /* a repeated field or one value too many */
        if (!first) {
            put(t, ",", 1);
            gen_ws(s, t, odd, tr);
        }
        first = false;
        if (!values) {
            const char *name = columns ? tm->m->names[i] : sc->fields[i].name;
            gen_key(s, t, name, mut == MUT_ESCAPE && escape_at == i, tr);
            gen_ws(s, t, odd, tr);
            put(t, ":", 1);
            gen_ws(s, t, odd, tr);
        }
        if (i == target && mut == MUT_NULL) {
            puts_(t, "null"); /* missing: imputed if the policy allows */
            tr->missing++;
        } else if (i == target && mut == MUT_NOT_NUM) {
            static const char *const other[] = {"\"1\"", "true", "false", "[]",
                                                "{}",    "[1]",  "\"\"",  "\" 2.5\""};
            size_t o = below(s, sizeof(other) / sizeof(other[0]));

            puts_(t, other[o]);
            if (categorical)
                tr->wild = true; /* a string is a category (unseen); the rest are invalid */
            else if (policy->lenient_numbers && (o == 0 || o == 7))
                tr->declined = true; /* a number as a string: only the cJSON path reads it */
            else
                tr->rejected = true;
        } else if (i == target && mut == MUT_NESTED) {
            puts_(t,
                  chance(s, 50) ? "{\"a\":[[[[1]]]]}" : "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]");
            tr->rejected = true;
        } else if (categorical) {
            gen_category(s, &sc->fields[i], t, tr, want != NULL && k < n ? want : NULL);
        } else {
            gen_number(s, t, AS_FEATURE, clean, tr,
                       want != NULL && !columns && k < n ? &want[sc->fields[i].column] : NULL);
        }
        gen_ws(s, t, odd, tr);
    }
    if (mut == MUT_UNKNOWN && !values) {
        /* no model has these: case variants, one past the last, the empty name */
        static const char *const unknown[] = {"zz_unknown", "Amount", "X", "f64", "a b", ""};
        if (!first) {
            put(t, ",", 1);
            gen_ws(s, t, odd, tr);
        }
        gen_key(s, t, unknown[below(s, sizeof(unknown) / sizeof(unknown[0]))], false, tr);
        put(t, ":1", 2);
        tr->rejected = true;
    }
    put(t, values ? "]" : "}", 1);
}

/* Appends one generated record for tm to t: with probability mutate % one mutation, with
 * probability clean % only subset numbers and ids. want (n_features, may be NULL) gets
 * what x must be when the record lies inside the subset. */
static void gen_record(uint64_t *s, const TestModel *tm, Text *t, unsigned mutate,
                       unsigned clean_pct, Traits *tr, float *want)
{
    enum Mutation mut =
        chance(s, mutate) ? (enum Mutation)(1 + below(s, MUT_COUNT_ - 1)) : MUT_NONE;
    /* the input columns as if they were fields: a mistake, as often as a mutation */
    bool columns = !tm->plain && mut == MUT_NONE && chance(s, mutate * 3 / 5);
    bool values = chance(s, 30), has_id = chance(s, 75), id_first = chance(s, 50);
    bool clean = chance(s, clean_pct), odd = mut == MUT_ODD_WS;
    size_t start = t->len, escape_at = below(s, 3); /* MUT_ESCAPE: "id", data key, a field */
    enum { MEMBER_ID, MEMBER_DATA } members[2];
    size_t n_members = 0;

    if (columns && mut == MUT_EMPTY && !values)
        columns = false; /* "features":{} names nothing */
    if (columns)
        tr->rejected = true; /* names and counts of columns, not of the fields */
    if (has_id && id_first)
        members[n_members++] = MEMBER_ID;
    members[n_members++] = MEMBER_DATA;
    if (has_id && !id_first)
        members[n_members++] = MEMBER_ID;

    if (mut == MUT_BOM) {
        puts_(t, "\xef\xbb\xbf"); /* cJSON skips it at the start of a body */
        tr->declined = true;
    }
    if (mut == MUT_TOP_ARRAY) {
        put(t, "[", 1);
        tr->rejected = true;
    }
    gen_ws(s, t, odd, tr);
    put(t, "{", 1);
    gen_ws(s, t, odd, tr);
    for (size_t k = 0; k < n_members; k++) {
        if (k > 0) {
            put(t, ",", 1);
            gen_ws(s, t, odd, tr);
        }
        if (members[k] == MEMBER_ID) {
            gen_key(s, t, "id", mut == MUT_ESCAPE && escape_at == 0, tr);
            gen_ws(s, t, odd, tr);
            put(t, ":", 1);
            gen_ws(s, t, odd, tr);
            gen_id(s, t, !clean, tr);
        } else {
            gen_key(s, t, values ? "values" : "features", mut == MUT_ESCAPE && escape_at == 1, tr);
            gen_ws(s, t, odd, tr);
            put(t, ":", 1);
            gen_ws(s, t, odd, tr);
            gen_data(s, tm, t, values, columns,
                     mut == MUT_ESCAPE && escape_at != 2 ? MUT_NONE : mut, clean, tr, want);
        }
        gen_ws(s, t, odd, tr);
    }
    record_made(tr, tm->m->schema->n_fields);
    if (mut == MUT_MEMBER) {
        static const char *const extra[] = {",\"label\":0", ",\"extra\":1", ",\"idx\":\"a\"",
                                            ",\"Features\":{}", ",\"records\":[]"};
        puts_(t, extra[below(s, sizeof(extra) / sizeof(extra[0]))]);
        tr->rejected = true;
    }
    if (mut == MUT_DUPLICATE) {
        if (chance(s, 50))
            puts_(t, has_id ? ",\"id\":1" : ",\"id\":null,\"id\":2");
        else
            puts_(t, values ? ",\"features\":{}" : ",\"values\":[]");
        tr->rejected = true;
    }
    put(t, "}", 1);
    if (mut == MUT_TOP_ARRAY)
        put(t, "]", 1);
    gen_ws(s, t, false, tr);
    if (mut == MUT_TRAILING) {
        static const char *const junk[] = {"x", "}", ",", "{}", "[]", "1", "\"s\"", "null"};
        if (chance(s, 10)) {
            put(t, "\0", 1); /* refused after a body, but whitespace to cJSON within one */
            tr->wild = true;
        } else {
            puts_(t, junk[below(s, sizeof(junk) / sizeof(junk[0]))]);
            tr->rejected = true;
        }
    }
    if (mut == MUT_TRUNCATE && t->len > start + 1) {
        t->len = start + below(s, t->len - start);
        t->p[t->len] = '\0';
        tr->wild = true;
    }
    if (mut == MUT_FLIP && t->len > start) {
        t->p[start + below(s, t->len - start)] = (char) next(s);
        tr->wild = true;
    }
}

/* ---- the tests ---- */

static void report(const char *what, const Tally *t)
{
    print_message("%-34s %6zu inputs, %6zu fast path, %6zu cJSON path accepts; %zu must take "
                  "the fast path, %zu must be rejected\n",
                  what, t->inputs, t->fast, t->cjson, t->expect_fast, t->expect_reject);
}

/* Wraps a record as a one-record batch. */
static void as_batch(const char *text, size_t len, Text *out)
{
    out->len = 0;
    puts_(out, "{\"records\":[");
    put(out, text, len);
    puts_(out, "]}");
}

static void test_fast_single_reads_the_corpus_as_cjson_does(void **state)
{
    Models ms;
    Corpus c[2];
    Tally t = {0}, on_corpus_schema = {0};
    (void) state;

    models_init(&ms);
    corpus_load(&c[0], "record");
    corpus_load(&c[1], "batch");
    for (size_t p = 0; p < N_POLICIES; p++)
        for (size_t k = 0; k < 2; k++)
            for (size_t i = 0; i < c[k].n; i++)
                for (size_t j = 0; j < ms.n; j++) {
                    policy = &policies[p];
                    check_single(&ms.tm[j], c[k].text[i], c[k].len[i], EXPECT_NOTHING, NULL,
                                 j == 0 && p == 0 ? &on_corpus_schema : &t);
                }
    policy = &policies[0];
    tally_add(&t, &on_corpus_schema);
    report("corpus, single", &t);
    /* features_ok, values_ok, fast_path_float_limits and fast_path_shuffled_whitespace are
     * plain records of the corpus schema */
    assert_true(on_corpus_schema.fast >= 4);
    corpus_free(&c[0]);
    corpus_free(&c[1]);
    models_free(&ms);
}

static void test_fast_batch_reads_the_corpus_as_cjson_does(void **state)
{
    static const size_t maxes[] = {1, 3, 50, MAX_BATCH};
    Models ms;
    Corpus c[2];
    Text wrapped = {0};
    Tally t = {0}, on_corpus_schema = {0};
    (void) state;

    models_init(&ms);
    corpus_load(&c[0], "record");
    corpus_load(&c[1], "batch");
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < c[k].n; i++)
            for (size_t j = 0; j < ms.n; j++)
                for (size_t mx = 0; mx < 4; mx++) {
                    Tally *tt = j == 0 && maxes[mx] == 50 ? &on_corpus_schema : &t;

                    policy = &policies[mx % N_POLICIES];
                    check_batch(&ms.tm[j], c[k].text[i], c[k].len[i], maxes[mx], EXPECT_NOTHING,
                                NULL, tt);
                    as_batch(c[k].text[i], c[k].len[i], &wrapped);
                    check_batch(&ms.tm[j], wrapped.p, wrapped.len, maxes[mx], EXPECT_NOTHING, NULL,
                                tt);
                }
    policy = &policies[0];
    tally_add(&t, &on_corpus_schema);
    report("corpus, batch (and wrapped)", &t);
    /* two_ok, at_max_batch_extreme_values, fast_path_ids_and_orders and the four plain
     * records wrapped */
    assert_true(on_corpus_schema.fast >= 7);
    free(wrapped.p);
    corpus_free(&c[0]);
    corpus_free(&c[1]);
    models_free(&ms);
}

/* Every listed number alone, as the value of a one-field record, as its id and inside a
 * batch: the limits of float and double must not depend on the draw of the generator. */
static void test_fast_paths_read_every_listed_number_as_cjson_does(void **state)
{
    const size_t n_strict = sizeof(strict_numbers) / sizeof(strict_numbers[0]);
    const size_t n_lax = sizeof(lax_numbers) / sizeof(lax_numbers[0]);
    Models ms;
    Text text = {0};
    Tally t = {0};
    (void) state;

    models_init(&ms);
    policy = &policies[0];
    const TestModel *one = &ms.tm[1];
    for (size_t k = 0; k < n_strict + n_lax; k++) {
        const char *num = k < n_strict ? strict_numbers[k] : lax_numbers[k - n_strict];
        Traits as_value = {0}, as_id = {0};
        float want = 0;
        double d = strtod(num, NULL);

        if (k >= n_strict || strlen(num) > 63)
            as_value.wild = as_id.wild = true;
        else if (!isfinite(d) || fabs(d) > FLT_MAX)
            as_value.rejected = true;
        else
            want = (float) d;
        /* an id must fit a double: one that does not is refused, not echoed as null */
        if (!as_id.wild && !isfinite(d))
            as_id.rejected = true;
        text.len = 0;
        putf(&text, "{\"values\":[%s]}", num);
        check_single(one, text.p, text.len, expectation(&as_value), &want, &t);
        text.len = 0;
        putf(&text, "{\"records\":[{\"values\":[%s]},{\"values\":[%s]}]}", num, num);
        float both[2] = {want, want};
        check_batch(one, text.p, text.len, 2, expectation(&as_value), both, &t);
        text.len = 0;
        putf(&text, "{\"id\":%s,\"features\":{\"x\":1}}", num);
        check_single(one, text.p, text.len, expectation(&as_id), NULL, &t);
    }
    report("listed numbers", &t);
    assert_true(t.expect_fast * 2 >= t.inputs);
    free(text.p);
    models_free(&ms);
}

/* The in-place key match (records_fast_keys) takes a key only when the whole name and its
 * quote are there: the tricky names in schema order (each hinted name matches), reversed
 * (none does), in pairs swapped (a name followed by one it is a prefix of, or shares its
 * first eight bytes with), compact and spaced, and reversed to the body's last bytes
 * (compared byte by byte there): every field lands where its name says. */
static void test_fast_keys_take_whole_names_only(void **state)
{
    Models ms;
    Text text = {0};
    Tally t = {0};
    float want[N_TRICKY];
    (void) state;

    models_init(&ms);
    policy = &policies[0];
    const TestModel *tricky = &ms.tm[2];
    for (size_t order = 0; order < 3; order++)
        for (size_t l = 0; l < 2; l++) {
            text.len = 0;
            puts_(&text, "{\"features\":{");
            for (size_t k = 0; k < N_TRICKY; k++) {
                size_t f = order == 0 ? k : order == 1 ? N_TRICKY - 1 - k : k ^ 1;

                if (f >= N_TRICKY) /* an odd count: the last one stays */
                    f = k;
                if (k > 0)
                    putc_(&text, ',');
                putf(&text, "\"%s\"%s:%s%zu", tricky_names[f], l ? " " : "", l ? " " : "", f + 1);
                want[f] = (float) (f + 1);
            }
            puts_(&text, "}}");
            check_single(tricky, text.p, text.len, EXPECT_FAST, want, &t);
        }
    report("key match", &t);
    assert_int_equal(t.fast, t.inputs);
    free(text.p);
    models_free(&ms);
}

static void test_fast_single_reads_generated_records_as_cjson_does(void **state)
{
    Models ms;
    Text text = {0};
    Tally all = {0};
    uint64_t s = SEED;
    (void) state;

    models_init(&ms);
    for (size_t j = 0; j < ms.n; j++) {
        const TestModel *tm = &ms.tm[j];
        float *want = malloc(tm->m->n_features * sizeof(float));
        Tally t = {0};

        assert_non_null(want);
        for (size_t i = 0; i < SINGLES_PER; i++) {
            Traits tr = {0};
            policy = &policies[below(&s, N_POLICIES)];
            text.len = 0;
            gen_record(&s, tm, &text, 50, 70, &tr, want);
            check_single(tm, text.p, text.len, expectation(&tr), want, &t);
        }
        report(tm->label, &t);
        /* the subset is a large part of what was generated, and the rule breakers too (a
         * third of the categorical model's records name its columns, not its fields) */
        assert_true(t.expect_fast * (tm->plain ? 3 : 4) >= t.inputs);
        assert_true(t.expect_reject * 8 >= t.inputs);
        tally_add(&all, &t);
        free(want);
    }
    report("generated, single", &all);
    assert_true(all.fast * 3 >= all.inputs);
    free(text.p);
    models_free(&ms);
}

/* Appends a generated batch of about max records for tm to t; want (max + 1 records) gets
 * what x must be when the batch lies inside the subset. */
static void gen_batch(uint64_t *s, const TestModel *tm, Text *t, size_t max, Traits *tr,
                      float *want)
{
    enum {
        ENV_OK,
        ENV_MEMBER_BEFORE, /* a member besides "records" */
        ENV_MEMBER_AFTER,
        ENV_TWICE,          /* "records" twice */
        ENV_NOT_ARRAY,      /* "records" not an array */
        ENV_TRAILING_COMMA, /* [..., ] */
        ENV_TOP_ARRAY,      /* the body an array */
        ENV_GARBAGE,        /* bytes after the body */
        ENV_ESCAPE,         /* "records" escaped (valid; fast declines) */
        ENV_TRUNCATE,
        ENV_COUNT_
    } env = chance(s, 20) ? (int) (1 + below(s, ENV_COUNT_ - 1)) : ENV_OK;
    size_t f = tm->m->n_features, n, k = below(s, 100), start = t->len;
    bool odd = chance(s, 5);

    if (k < 70)
        n = 1 + below(s, max < 8 ? max : 8);
    else if (k < 80)
        n = max; /* exactly the limit */
    else if (k < 85)
        n = max + 1;
    else if (k < 88)
        n = 0;
    else /* past the fast path's first 256 records, when max allows */
        n = max > 256 ? 257 + below(s, max - 256) : 1 + below(s, max);
    if (n == 0 || n > max)
        tr->rejected = true;
    if (env != ENV_OK && env != ENV_ESCAPE && env != ENV_TRUNCATE)
        tr->rejected = true;

    if (env == ENV_TOP_ARRAY)
        put(t, "[", 1);
    if (odd && chance(s, 30)) {
        puts_(t, "\xef\xbb\xbf");
        tr->declined = true;
    }
    gen_ws(s, t, odd, tr);
    put(t, "{", 1);
    gen_ws(s, t, odd, tr);
    if (env == ENV_MEMBER_BEFORE)
        puts_(t, "\"model\":1,");
    gen_key(s, t, "records", env == ENV_ESCAPE, tr);
    gen_ws(s, t, odd, tr);
    put(t, ":", 1);
    gen_ws(s, t, odd, tr);
    if (env == ENV_NOT_ARRAY) {
        static const char *const not_array[] = {"{}", "1", "\"x\"", "null", "{\"values\":[1]}"};
        puts_(t, not_array[below(s, sizeof(not_array) / sizeof(not_array[0]))]);
    } else {
        put(t, "[", 1);
        gen_ws(s, t, odd, tr);
        for (size_t i = 0; i < n; i++) {
            if (i > 0) {
                put(t, ",", 1);
                gen_ws(s, t, odd, tr);
            }
            /* big batches stay clean, or hardly any would be inside the subset */
            gen_record(s, tm, t, n > 50 ? 0 : 4, n > 50 ? 100 : 90, tr, want + i * f);
        }
        if (env == ENV_TRAILING_COMMA)
            put(t, ",", 1);
        put(t, "]", 1);
    }
    gen_ws(s, t, odd, tr);
    if (env == ENV_MEMBER_AFTER)
        puts_(t, ",\"extra\":[]");
    if (env == ENV_TWICE)
        puts_(t, ",\"records\":[]");
    put(t, "}", 1);
    if (env == ENV_TOP_ARRAY)
        put(t, "]", 1);
    gen_ws(s, t, false, tr);
    if (env == ENV_GARBAGE)
        puts_(t, chance(s, 50) ? "x" : "{}");
    if (env == ENV_TRUNCATE) {
        t->len = start + below(s, t->len - start);
        tr->wild = true;
    }
}

static void test_fast_batch_reads_generated_batches_as_cjson_does(void **state)
{
    static const size_t maxes[] = {1, 3, 50, MAX_BATCH};
    Models ms;
    Text text = {0};
    Tally all = {0};
    uint64_t s = SEED + 1;
    (void) state;

    models_init(&ms);
    for (size_t j = 0; j < ms.n; j++) {
        const TestModel *tm = &ms.tm[j];
        float *want = malloc((MAX_BATCH + 1) * tm->m->n_features * sizeof(float));
        Tally t = {0};

        assert_non_null(want);
        for (size_t b = 0; b < BATCHES_PER; b++) {
            size_t max = maxes[below(&s, 4)];
            Traits tr = {0};
            policy = &policies[below(&s, N_POLICIES)];
            text.len = 0;
            gen_batch(&s, tm, &text, max, &tr, want);
            check_batch(tm, text.p, text.len, max, expectation(&tr), want, &t);
        }
        report(tm->label, &t);
        assert_true(t.expect_fast * (tm->plain ? 3 : 5) >= t.inputs);
        assert_true(t.expect_reject * 8 >= t.inputs);
        tally_add(&all, &t);
        free(want);
    }
    report("generated, batch", &all);
    assert_true(all.fast * 3 >= all.inputs);
    free(text.p);
    models_free(&ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_single_reads_the_corpus_as_cjson_does),
        cmocka_unit_test(test_fast_batch_reads_the_corpus_as_cjson_does),
        cmocka_unit_test(test_fast_paths_read_every_listed_number_as_cjson_does),
        cmocka_unit_test(test_fast_keys_take_whole_names_only),
        cmocka_unit_test(test_fast_single_reads_generated_records_as_cjson_does),
        cmocka_unit_test(test_fast_batch_reads_generated_batches_as_cjson_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
