/* dataset_sample: reservoir sampling of CSV rows (dataset.h).
 *
 * DESIGN. Each kept row is one block: its input index, label, cells (12 bytes each) and a
 * copy of their texts, so replacing a row frees exactly what it took and memory stays at max_rows
 * rows of each kind however long the input. At finish the blocks are put in input order and fed to
 * a builder in copy mode (each block freed once fed), which is how the whole-input reader would
 * have built the same rows.
 */
#include "aescore/dataset.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/nn.h"

/* A cell as kept: half a DatasetCell (the sample is most of a training job's memory). */
typedef struct KeptCell {
    float number;
    uint32_t off; /* of the text, from the end of the cells */
    uint16_t len; /* <= DATASET_TEXT_MAX */
    uint8_t kind; /* DatasetCellKind */
    uint8_t has_text;
} KeptCell;

typedef struct Kept {
    uint64_t index; /* among every row offered */
    int32_t label;
    KeptCell cells[]; /* n_cols, then the texts */
} Kept;

typedef struct Reservoir {
    Kept **slots;  /* cap of them, max_rows at most */
    size_t n, cap; /* slots filled, allocated */
    uint64_t seen;
    uint64_t rng;
} Reservoir;

struct DatasetSample {
    size_t n_cols, max_rows;
    char **names;
    bool mixed;
    uint64_t offered;
    int error;        /* the first error; sticks */
    Reservoir res[2]; /* normal rows, anomalies */
};

/* A uniform draw in [0, bound) (bound >= 1) without modulo bias: draws below 2^64 mod
 * bound are refused, so every residue has the same number of draws. */
static uint64_t draw(uint64_t *rng, uint64_t bound)
{
    uint64_t floor = -bound % bound, x;

    do
        x = nn_rng_next(rng);
    while (x < floor);
    return x % bound;
}

/* The slot the next row of this kind goes to, or SIZE_MAX: not kept (algorithm R). */
static size_t reservoir_slot(Reservoir *res, size_t max_rows)
{
    uint64_t i = res->seen++;
    uint64_t j;

    if (i < max_rows)
        return (size_t) i;
    j = draw(&res->rng, i + 1);
    return j < max_rows ? (size_t) j : SIZE_MAX;
}

static void reservoir_init(Reservoir *res, uint64_t seed, uint64_t kind)
{
    res->rng = seed ^ (0xd1b54a32d192ed03ULL * (kind + 1));
    (void) nn_rng_next(&res->rng); /* spread the seed's bits before the first draw */
}

int dataset_sample_new(DatasetSample **out, size_t n_cols, const char *const *names, bool mixed,
                       size_t max_rows, uint64_t seed)
{
    DatasetSample *s;

    if (out == NULL || max_rows == 0 || max_rows > SIZE_MAX / sizeof(Kept *) ||
        (n_cols > 0 && names == NULL))
        return -EINVAL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -ENOMEM;
    s->n_cols = n_cols;
    s->max_rows = max_rows;
    s->mixed = mixed;
    s->names = calloc(n_cols + 1, sizeof(*s->names));
    if (s->names == NULL)
        goto fail;
    for (size_t c = 0; c < n_cols; c++)
        if ((s->names[c] = strdup(names[c])) == NULL)
            goto fail;
    for (uint64_t k = 0; k < 2; k++)
        reservoir_init(&s->res[k], seed, k);
    *out = s;
    return 0;

fail:
    dataset_sample_free(s);
    return -ENOMEM;
}

/* One block holding index, label, the cells and their texts, into *out. 0, -EINVAL (a text
 * longer than DATASET_TEXT_MAX), -EFBIG (past 4 GiB of text in the row), -ENOMEM. */
static int keep_row(const DatasetSample *s, const DatasetCell *cells, int label, Kept **out)
{
    size_t text = 0, head = offsetof(Kept, cells) + s->n_cols * sizeof(KeptCell);
    Kept *k;
    char *w;

    for (size_t c = 0; c < s->n_cols; c++)
        if (cells[c].text != NULL) {
            if (cells[c].len > DATASET_TEXT_MAX)
                return -EINVAL;
            if (text > UINT32_MAX - DATASET_TEXT_MAX)
                return -EFBIG;
            text += cells[c].len;
        }
    if ((k = malloc(head + text)) == NULL)
        return -ENOMEM;
    k->index = s->offered;
    k->label = label;
    w = (char *) k + head;
    text = 0;
    for (size_t c = 0; c < s->n_cols; c++) {
        k->cells[c] = (KeptCell){.number = cells[c].number,
                                 .off = (uint32_t) text,
                                 .len = (uint16_t) cells[c].len,
                                 .kind = (uint8_t) cells[c].kind,
                                 .has_text = cells[c].text != NULL};
        if (cells[c].text != NULL) {
            memcpy(w + text, cells[c].text, cells[c].len);
            text += cells[c].len;
        }
    }
    *out = k;
    return 0;
}

/* Cell c of a kept row, as it was offered. */
static DatasetCell kept_cell(const DatasetSample *s, const Kept *k, size_t c)
{
    const KeptCell *kc = &k->cells[c];
    const char *texts = (const char *) &k->cells[s->n_cols];

    return (DatasetCell){.kind = (DatasetCellKind) kc->kind,
                         .number = kc->number,
                         .text = kc->has_text ? texts + kc->off : NULL,
                         .len = kc->has_text ? kc->len : 0};
}

/* Room for one more filled slot: the slots grow with the reservoir, so a small input
 * costs little whatever max_rows. */
static int grow_slots(Reservoir *res, size_t max_rows)
{
    size_t cap;
    Kept **grown;

    if (res->n < res->cap)
        return 0;
    cap = res->cap == 0 ? 256 : res->cap * 2;
    if (cap > max_rows)
        cap = max_rows;
    if ((grown = realloc(res->slots, cap * sizeof(*grown))) == NULL)
        return -ENOMEM;
    res->slots = grown;
    res->cap = cap;
    return 0;
}

static int add_row(DatasetSample *s, const DatasetCell *cells, int label)
{
    Reservoir *res = &s->res[label == 1];
    size_t slot = reservoir_slot(res, s->max_rows);
    Kept *k;
    int r;

    if (slot == SIZE_MAX)
        return 0;
    if (slot == res->n && (r = grow_slots(res, s->max_rows)) < 0)
        return r;
    if ((r = keep_row(s, cells, label, &k)) < 0)
        return r;
    if (slot == res->n)
        res->n++;
    else
        free(res->slots[slot]);
    res->slots[slot] = k;
    return 0;
}

int dataset_sample_add(DatasetSample *s, const DatasetCell *cells, int label)
{
    if (s->error == 0)
        s->error = add_row(s, cells, label);
    s->offered++;
    return s->error;
}

static int compare_kept(const void *a, const void *b)
{
    const Kept *x = *(const Kept *const *) a, *y = *(const Kept *const *) b;

    return (x->index > y->index) - (x->index < y->index);
}

/* Feeds the kept rows, in input order, to a builder; each block is freed once fed. */
static int build(DatasetSample *s, Kept **all, size_t n, Dataset **out)
{
    DatasetBuilderOptions bopts = {.mixed = s->mixed};
    DatasetBuilder *b = NULL;
    int r = dataset_builder_new(&b, s->n_cols, (const char *const *) s->names, &bopts);

    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; r == 0 && c < s->n_cols; c++) {
            DatasetCell cell = kept_cell(s, all[i], c);

            r = dataset_builder_add(b, &cell);
        }
        if (r == 0)
            r = dataset_builder_end_row(b, all[i]->label);
        free(all[i]);
        all[i] = NULL;
    }
    if (r == 0) {
        r = dataset_builder_finish(b, out);
        b = NULL;
    }
    dataset_builder_free(b);
    return r;
}

int dataset_sample_finish(DatasetSample *s, Dataset **out)
{
    size_t n = s->res[0].n + s->res[1].n, k = 0;
    Kept **all = NULL;
    int r = s->error;

    if (r == 0 && (all = malloc((n ? n : 1) * sizeof(*all))) == NULL)
        r = -ENOMEM;
    if (r == 0) {
        for (size_t j = 0; j < 2; j++) {
            if (s->res[j].n > 0) /* an empty reservoir has no slots (NULL) */
                memcpy(all + k, s->res[j].slots, s->res[j].n * sizeof(*all));
            k += s->res[j].n;
            s->res[j].n = 0; /* the blocks belong to all now */
        }
        qsort(all, n, sizeof(*all), compare_kept);
        r = build(s, all, n, out);
    }
    if (r == 0)
        (*out)->n_read = (size_t) s->offered;
    free(all);
    dataset_sample_free(s);
    return r;
}

DatasetSample *dataset_sample_free(DatasetSample *s)
{
    if (s == NULL)
        return NULL;
    for (size_t j = 0; j < 2; j++) {
        for (size_t i = 0; i < s->res[j].n; i++)
            free(s->res[j].slots[i]);
        free(s->res[j].slots);
    }
    for (size_t c = 0; s->names != NULL && c < s->n_cols; c++)
        free(s->names[c]);
    free(s->names);
    free(s);
    return NULL;
}

/* Row i of ds as the cells the reader would have given for it. */
static void row_cells(const Dataset *ds, size_t i, DatasetCell *cells)
{
    for (size_t c = 0; c < ds->n_cols; c++) {
        size_t k = i * ds->n_cols + c;

        if (ds->is_text != NULL && ds->is_text[c] && ds->text[k] != NULL)
            cells[c] = (DatasetCell){.kind = DATASET_CELL_TEXT,
                                     .number = NAN,
                                     .text = ds->text[k],
                                     .len = strlen(ds->text[k])};
        else if (isnan(ds->x[k]))
            cells[c] = (DatasetCell){.kind = DATASET_CELL_MISSING};
        else
            cells[c] = (DatasetCell){.kind = DATASET_CELL_NUMBER, .number = ds->x[k]};
    }
}

int dataset_sample_rows(Dataset **ds, size_t max_rows, uint64_t seed)
{
    const Dataset *in = *ds;
    size_t anomalies = 0;
    DatasetSample *s = NULL;
    DatasetCell *cells = NULL;
    Dataset *out = NULL;
    int r;

    for (size_t i = 0; in->label != NULL && i < in->n_rows; i++)
        anomalies += in->label[i];
    if (max_rows == 0 || (anomalies <= max_rows && in->n_rows - anomalies <= max_rows))
        return 0;
    if ((cells = calloc(in->n_cols + 1, sizeof(*cells))) == NULL)
        return -ENOMEM;
    r = dataset_sample_new(&s, in->n_cols, (const char *const *) in->names, true, max_rows, seed);
    for (size_t i = 0; r == 0 && i < in->n_rows; i++) {
        row_cells(in, i, cells);
        r = dataset_sample_add(s, cells, in->label != NULL ? in->label[i] : -1);
    }
    if (r == 0) {
        r = dataset_sample_finish(s, &out);
        s = NULL;
    }
    dataset_sample_free(s);
    free(cells);
    if (r != 0)
        return r;
    dataset_free(*ds);
    *ds = out;
    return 0;
}
