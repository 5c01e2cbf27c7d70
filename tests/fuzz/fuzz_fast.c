/* fuzz_fast: the fast record reader (records_fast.h) against the cJSON path, differentially.
 *
 * The first byte of an input picks the policy (bits 0-1: strict; 40 % missing; everything
 * missing and numbers as strings) and the form (bit 2: the rest is a {"records": [...]}
 * batch of at most FUZZ_MAX_BATCH, else one record); the rest is the body. Both readers run
 * on a model of numeric and categorical fields (one with "other", one without) and must
 * agree: whenever the fast path accepts, the cJSON path (the body checks of
 * http_body_parse_json, then records_read_model and records_id per record) accepts too, with
 * bit-identical encoded inputs, the same echoed ids and the same notes.
 */
#include <stdint.h>
#include <string.h>

#include "../../src/service/http_body.h"
#include "../../src/service/records.h"
#include "../../src/service/records_fast.h"
#include "fuzz_check.h"

#define FUZZ_MAX_BATCH 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const RecordPolicy policies[] = {
    {.max_missing_percent = 0, .lenient_numbers = false},
    {.max_missing_percent = 40, .lenient_numbers = false},
    {.max_missing_percent = 100, .lenient_numbers = true},
};

static char *copy_of(const char *s)
{
    char *d = strdup(s);

    FUZZ_CHECK(d != NULL);
    return d;
}

/* amount (numeric), housing (rent, own, *other*), age (numeric), term (short, long; no
 * other): seven input columns. Only the schema matters to the readers. */
static Model *make_model(void)
{
    static Model m;
    static SchemaField fields[4];
    static Schema sc;
    static char *housing[2], *term[2];

    housing[0] = copy_of("rent");
    housing[1] = copy_of("own");
    term[0] = copy_of("short");
    term[1] = copy_of("long");
    fields[0] = (SchemaField){.name = copy_of("amount"), .fill = 10, .n_columns = 1};
    fields[1] = (SchemaField){.name = copy_of("housing"),
                              .kind = SCHEMA_CATEGORICAL,
                              .column = 1,
                              .n_columns = 3,
                              .categories = housing,
                              .n_categories = 2,
                              .has_other = true,
                              .fill = 1};
    fields[2] = (SchemaField){.name = copy_of("age"), .column = 4, .n_columns = 1, .fill = 40};
    fields[3] = (SchemaField){.name = copy_of("term"),
                              .kind = SCHEMA_CATEGORICAL,
                              .column = 5,
                              .n_columns = 2,
                              .categories = term,
                              .n_categories = 2};
    sc = (Schema){.n_fields = 4, .fields = fields, .n_columns = 7};
    FUZZ_CHECK(schema_validate(&sc) == 0);
    m = (Model){.schema = &sc, .n_features = 7};
    return &m;
}

static bool same_buf(const JsonBuf *a, const JsonBuf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The fast path's record (x, id, notes) against the cJSON path's reading of rec. */
static void check_record(const Model *m, const RecordPolicy *policy, const cJSON *rec,
                         const float *x_fast, const RecordId *id_fast,
                         const RecordNotes *notes_fast)
{
    float x[7];
    RecordIssues iss;
    RecordNotes notes;
    JsonBuf id = JSON_BUF_INIT, id2 = JSON_BUF_INIT;

    records_issues_init(&iss);
    records_notes_init(&notes);
    FUZZ_CHECK(rec != NULL);
    FUZZ_CHECK(records_read_model(rec, m, policy, x, &notes, &iss) == 0);
    FUZZ_CHECK(memcmp(x, x_fast, sizeof(x)) == 0);
    FUZZ_CHECK(notes.n_imputed == notes_fast->n_imputed && notes.n_unseen == notes_fast->n_unseen);
    FUZZ_CHECK(same_buf(&notes.imputed, &notes_fast->imputed));
    FUZZ_CHECK(same_buf(&notes.unseen, &notes_fast->unseen));
    FUZZ_CHECK(records_id(rec, &id) == 0);
    records_put_id(&id2, id_fast);
    FUZZ_CHECK(same_buf(&id, &id2));
    json_buf_deinit(&id);
    json_buf_deinit(&id2);
    records_notes_deinit(&notes);
    records_issues_deinit(&iss);
}

static void check_single(const Model *m, const RecordPolicy *policy, const uint8_t *body,
                         size_t len, const FastKey *keys, SchemaValue *v)
{
    FastRecord fr = {m, policy, keys, v};
    float x[7];
    RecordId id;
    RecordNotes notes;
    cJSON *root;

    records_notes_init(&notes);
    if (records_fast_single((const char *) body, len, &fr, x, &id, &notes)) {
        root = http_json_body((const char *) body, len);
        FUZZ_CHECK(cJSON_IsObject(root));
        check_record(m, policy, root, x, &id, &notes);
        cJSON_Delete(root);
    }
    records_notes_deinit(&notes);
}

static void check_batch(const Model *m, const RecordPolicy *policy, const uint8_t *body, size_t len,
                        const FastKey *keys, SchemaValue *v)
{
    FastRecord fr = {m, policy, keys, v};
    FastBatch b;
    const cJSON *records, *rec;
    cJSON *root;
    size_t i = 0;

    if (!records_fast_batch((const char *) body, len, &fr, FUZZ_MAX_BATCH, &b))
        return;
    FUZZ_CHECK(b.n >= 1 && b.n <= FUZZ_MAX_BATCH);
    root = http_json_body((const char *) body, len);
    FUZZ_CHECK(cJSON_IsObject(root) && cJSON_GetArraySize(root) == 1);
    records = cJSON_GetObjectItemCaseSensitive(root, "records");
    FUZZ_CHECK(cJSON_IsArray(records) && (size_t) cJSON_GetArraySize(records) == b.n);
    cJSON_ArrayForEach(rec, records)
    {
        check_record(m, policy, rec, b.x + i * 7, &b.ids[i], &b.notes[i]);
        i++;
    }
    cJSON_Delete(root);
    records_fast_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Model *m;
    static FastKey keys[4];
    SchemaValue v[4];

    if (m == NULL) {
        m = make_model();
        records_fast_keys(m->schema, keys);
    }
    if (size == 0)
        return 0;
    const RecordPolicy *policy = &policies[(data[0] & 3) % 3];
    uint8_t *body = malloc(size - 1 ? size - 1 : 1); /* exact: ASan sees a read past it */

    FUZZ_CHECK(body != NULL);
    memcpy(body, data + 1, size - 1);
    if (data[0] & 4)
        check_batch(m, policy, body, size - 1, keys, v);
    else
        check_single(m, policy, body, size - 1, keys, v);
    free(body);
    return 0;
}
