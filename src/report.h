/* report: `aescore report`, the evaluation of a model on labelled data as one
 * self-contained HTML page (inline SVG and CSS, no script, no external URL; a CSP meta tag
 * forbids loading anything): ROC and precision-recall curves, the score histograms of
 * normal and anomalous rows with the threshold, each field's share of the reconstruction
 * error, and the figures of `aescore eval`.
 *
 * Part of the CLI (links the core only). Names from the data and the model are HTML-escaped.
 * Marks a test can read carry data-mark / data-value attributes (the AUCs, every histogram
 * bar's count, every field's share).
 * Errors: 0, or -errno with the reason in err (out of memory, writing the file).
 */
#pragma once

#include <stddef.h>

#include "aescore/dataset.h"
#include "aescore/evaluate.h"
#include "aescore/model.h"

typedef struct ReportInput {
    const Model *m;
    const Dataset *ds;    /* encoded for m, with labels */
    const float *scores;  /* ds->n_rows */
    const EvalReport *ev; /* evaluate() of scores at m's threshold */
    const char *model_path, *data_path;
} ReportInput;

/* Writes the page to out_path atomically. */
int report_write(const ReportInput *in, const char *out_path, char *err, size_t err_size);
