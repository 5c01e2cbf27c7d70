/* stream: `aescore score` and `aescore eval` over a CSV read one row at a time (dataset.h's
 * reader), so their memory does not grow with the rows: score writes each batch of rows as
 * soon as it is read; eval keeps a score and a label per row (5 bytes), which ROC and PR
 * AUC need, and nothing else of the data.
 *
 * Rows are encoded by schema_encode_cells (the model's fields matched by name, missing
 * cells imputed, text one-hot encoded) and scored by model_score_batch, the daemon's code.
 * Part of the CLI (links the core only). Messages ("aescore: data.csv:12:3: ...") go to
 * stderr; a failure after the first rows leaves them written.
 * Errors: 0, or 1 with the message printed.
 */
#pragma once

#include <stdio.h>

#include "aescore/model.h"

typedef struct StreamArgs {
    const char *data;      /* a path, or "-" for standard input */
    const char *label;     /* the label column's name */
    const char *id_column; /* the column echoed as each row's id; NULL: the row number */
    unsigned top_features; /* score: this many explaining fields per row (0: none) */
} StreamArgs;

/* Writes "id,score,anomaly[,top_1,...]" and a line per row to out. */
int stream_score(const Model *m, const StreamArgs *a, FILE *out);

/* The scores (*scores) and 0/1 labels (*labels) of every row, *n of them (callers free
 * both); a data set without its label column is refused. */
int stream_eval(const Model *m, const StreamArgs *a, float **scores, unsigned char **labels,
                size_t *n);
