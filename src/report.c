/* report: the evaluation as one self-contained HTML page (see report.h). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/util.h"

#define HIST_BINS  40
#define PLOT       260 /* side of a curve's plot area, px */
#define CURVE_STEP 0.004

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "style-src 'unsafe-inline'; img-src data:\">\n<title>aescore report</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f4f6f9}\n"
    "header{background:#1d2430;color:#fff;padding:10px 20px}header h1{font-size:18px;margin:0}\n"
    "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(390px,1fr));gap:14px;"
    "padding:14px 20px}\nsection{background:#fff;border-radius:6px;padding:10px 14px;"
    "box-shadow:0 1px 2px #0002}\nh2{font-size:13px;text-transform:uppercase;color:#5a6678;"
    "margin:0 0 8px}\ntable{border-collapse:collapse;width:100%}td,th{text-align:left;"
    "padding:3px 6px;border-bottom:1px solid #e6e9ee}td.num{text-align:right}\n"
    "svg{width:100%;height:auto}td svg{width:100px;display:inline-block;vertical-align:middle}"
    "svg text{font:10px system-ui,sans-serif;fill:#5a6678}\n"
    ".note{color:#5a6678;font-size:12px}\n</style>\n</head>\n<body>\n";

static void put_escaped(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* qsort_r orders of row and field indexes: by descending score, by descending share. */
static int by_score_desc(const void *a, const void *b, void *scores)
{
    const float *v = scores;
    float x = v[*(const size_t *) a], y = v[*(const size_t *) b];

    return x < y ? 1 : x > y ? -1 : 0;
}

/* One curve in a PLOT x PLOT box at (ox, 10): points (x, y) in [0, 1]^2. */
static void put_curve(FILE *f, const double *x, const double *y, size_t n, int ox,
                      const char *colour, const char *mark, double value)
{
    fprintf(f,
            "<polyline data-mark=\"%s\" data-value=\"%.6f\" fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"2\" points=\"",
            mark, value, colour);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.1f,%.1f ", ox + x[i] * PLOT, 10 + (1 - y[i]) * PLOT);
    fputs("\"/>\n", f);
}

static void put_axes(FILE *f, int ox, const char *xlabel, const char *ylabel)
{
    fprintf(
        f,
        "<rect x=\"%d\" y=\"10\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#b8c4d6\"/>\n",
        ox, PLOT, PLOT);
    fprintf(f, "<text x=\"%d\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\">1</text>\n", ox - 8,
            PLOT + 14, ox + PLOT - 4, PLOT + 22);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", ox + PLOT / 2,
            PLOT + 24, xlabel);
    fprintf(f, "<text x=\"%d\" y=\"16\">%s</text>\n", ox + 4, ylabel);
}

/* ROC (false positive rate, true positive rate) and precision-recall, one point per
 * distinct score from the highest down, thinned to steps of CURVE_STEP. */
static int put_curves(FILE *f, const ReportInput *in)
{
    size_t n = in->ds->n_rows, pos = in->ev->anomalies, neg = n - pos, tp = 0, fp = 0, k = 0;
    size_t *order = malloc(n * sizeof(*order));
    double *buf = malloc(4 * (n + 2) * sizeof(*buf));
    double *fx = buf, *fy = buf + n + 2, *rx = buf + 2 * (n + 2), *ry = buf + 3 * (n + 2);

    if (order == NULL || buf == NULL) {
        free(order);
        free(buf);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof(*order), by_score_desc, (void *) in->scores);
    fx[0] = fy[0] = 0;
    rx[0] = 0, ry[0] = 1;
    k = 1;
    for (size_t i = 0; i < n; i++) {
        bool last_of_score = i + 1 == n || in->scores[order[i + 1]] != in->scores[order[i]];

        in->ds->label[order[i]] ? tp++ : fp++;
        if (!last_of_score)
            continue;
        double x = (double) fp / (double) neg, y = (double) tp / (double) pos;
        if (i + 1 == n || x - fx[k - 1] >= CURVE_STEP || y - fy[k - 1] >= CURVE_STEP) {
            fx[k] = x, fy[k] = y;
            rx[k] = y, ry[k] = (double) tp / (double) (tp + fp);
            k++;
        }
    }
    fputs("<section><h2>ROC and precision-recall</h2>\n<svg viewBox=\"0 0 600 300\">\n", f);
    put_axes(f, 20, "false positive rate", "true positive rate");
    put_axes(f, 320, "recall", "precision");
    put_curve(f, fx, fy, k, 20, "#2f6feb", "roc", in->ev->roc_auc);
    put_curve(f, rx, ry, k, 320, "#8250df", "pr", in->ev->pr_auc);
    fprintf(f,
            "</svg>\n<p class=\"note\">ROC AUC %.4f, PR AUC (average precision) %.4f over "
            "%zu rows, %zu of them anomalies.</p></section>\n",
            in->ev->roc_auc, in->ev->pr_auc, n, pos);
    free(order);
    free(buf);
    return 0;
}

/* Where score v falls on the histogram's axis from lo to hi, in [0, 1] (may pass 1): on a
 * log scale when every score is positive (reconstruction errors are heavy-tailed). */
static double axis(double v, double lo, double hi)
{
    if (lo > 0 && hi > lo)
        return log(v / lo) / log(hi / lo);
    return hi > lo ? (v - lo) / (hi - lo) : 0;
}

/* Histograms of normal and anomalous rows over [min, the 99.5th percentile] (higher scores
 * in the last bin), each as a share of its class; the threshold as a red line. */
static int put_histograms(FILE *f, const ReportInput *in)
{
    size_t n = in->ds->n_rows, counts[2][HIST_BINS] = {{0}}, class_n[2] = {0};
    float *sorted = malloc(n * sizeof(*sorted)), lo, hi;
    double peak = 0, w = 560.0 / HIST_BINS, tx;

    if (sorted == NULL)
        return -ENOMEM;
    memcpy(sorted, in->scores, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), util_cmp_float);
    lo = sorted[0];
    hi = fmaxf(sorted[(size_t) ((double) (n - 1) * 0.995)], in->m->threshold * 1.1f);
    free(sorted);
    for (size_t i = 0; i < n; i++) {
        int c = in->ds->label[i] != 0;
        double at = axis(in->scores[i], lo, hi) * HIST_BINS;
        size_t b = at >= HIST_BINS ? HIST_BINS - 1 : at < 0 ? 0 : (size_t) at;

        counts[c][b]++;
        class_n[c]++;
    }
    for (int c = 0; c < 2; c++)
        for (size_t b = 0; b < HIST_BINS; b++)
            if (class_n[c] > 0)
                peak = fmax(peak, (double) counts[c][b] / (double) class_n[c]);
    fputs("<section><h2>Scores of normal and anomalous rows</h2>\n<svg viewBox=\"0 0 600 220\">\n",
          f);
    for (int c = 0; c < 2; c++)
        for (size_t b = 0; b < HIST_BINS; b++) {
            double share = class_n[c] ? (double) counts[c][b] / (double) class_n[c] : 0;
            double h = peak > 0 ? 180 * share / peak : 0;

            fprintf(f,
                    "<rect data-mark=\"hist-%s\" data-value=\"%zu\" x=\"%.1f\" y=\"%.1f\" "
                    "width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.6\"/>\n",
                    c ? "anomalous" : "normal", counts[c][b], 20 + b * w, 190 - h, w - 1, h,
                    c ? "#cf222e" : "#2f6feb");
        }
    tx = 20 + 560 * axis(in->m->threshold, lo, hi);
    fprintf(f,
            "<line data-mark=\"threshold\" data-value=\"%.9g\" x1=\"%.1f\" x2=\"%.1f\" y1=\"5\" "
            "y2=\"190\" stroke=\"#cf222e\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>\n",
            (double) in->m->threshold, tx, tx);
    fprintf(f, "<text x=\"20\" y=\"205\">%.4g</text><text x=\"540\" y=\"205\">%.4g</text>\n",
            (double) lo, (double) hi);
    fprintf(f,
            "</svg>\n<p class=\"note\">Blue: %zu normal rows; red: %zu anomalous rows (each "
            "as a share of its class); dashed: the threshold %.6g. Scores above %.4g are "
            "in the last bin%s.</p></section>\n",
            class_n[0], class_n[1], (double) in->m->threshold, (double) hi,
            lo > 0 ? "; the score axis is logarithmic" : "");
    return 0;
}

static int by_share_desc(const void *a, const void *b, void *shares)
{
    const double *v = shares;
    double x = v[*(const size_t *) a], y = v[*(const size_t *) b];

    return x < y ? 1 : x > y ? -1 : 0;
}

/* Each field's share of the reconstruction error (its columns' squared errors), over the
 * normal and over the anomalous rows, by the anomalous share. */
static int put_field_shares(FILE *f, const ReportInput *in)
{
    const Model *m = in->m;
    const Schema *s = m->schema;
    size_t nf = s->n_fields, n = in->ds->n_rows;
    double *sum = calloc(2 * nf, sizeof(*sum)), total[2] = {0, 0};
    float *err = malloc(m->n_features * sizeof(*err));
    float *scratch = malloc(model_scratch_size(m) * sizeof(*scratch));
    size_t *order = malloc(nf * sizeof(*order));
    int r = -ENOMEM;

    if (sum == NULL || err == NULL || scratch == NULL || order == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int c = in->ds->label[i] != 0;
        ModelScore sc;

        model_score(m, in->ds->x + i * m->n_features, scratch, err, &sc);
        for (size_t k = 0; k < nf; k++)
            for (size_t j = 0; j < s->fields[k].n_columns; j++) {
                sum[c * nf + k] += err[s->fields[k].column + j];
                total[c] += err[s->fields[k].column + j];
            }
    }
    for (size_t k = 0; k < nf; k++)
        order[k] = k;
    qsort_r(order, nf, sizeof(*order), by_share_desc, sum + nf);
    fputs("<section><h2>Share of the reconstruction error per field</h2>\n<table><tr><th>field"
          "</th><th>normal rows</th><th>anomalous rows</th></tr>\n",
          f);
    for (size_t i = 0; i < nf; i++) {
        size_t k = order[i];
        double a = total[0] > 0 ? sum[k] / total[0] : 0,
               b = total[1] > 0 ? sum[nf + k] / total[1] : 0;

        fputs("<tr><td>", f);
        put_escaped(f, s->fields[k].name);
        fprintf(f,
                "</td><td class=\"num\" data-mark=\"share-normal\" data-value=\"%.6f\">%.1f%%"
                "</td><td class=\"num\" data-mark=\"share-anomalous\" data-value=\"%.6f\">"
                "<svg viewBox=\"0 0 100 8\" width=\"100\" height=\"8\"><rect width=\"%.1f\" "
                "height=\"8\" fill=\"#cf222e\"/></svg> %.1f%%</td></tr>\n",
                a, 100 * a, b, 100 * b, 100 * b);
    }
    fputs("</table><p class=\"note\">Squared errors in standardised units, averaged over the "
          "ensemble; a field's columns (one per category) are summed.</p></section>\n",
          f);
    r = 0;
out:
    free(sum);
    free(err);
    free(scratch);
    free(order);
    return r;
}

static void put_figures(FILE *f, const ReportInput *in)
{
    const EvalReport *e = in->ev;

    fputs("<section><h2>Figures</h2><table>\n<tr><td>model</td><td>", f);
    put_escaped(f, in->model_path);
    fprintf(f, " (%s)</td></tr>\n<tr><td>data</td><td>", in->m->meta.id);
    put_escaped(f, in->data_path);
    fprintf(f,
            ": %zu rows, %zu anomalies</td></tr>\n"
            "<tr><td>ROC AUC</td><td data-mark=\"roc_auc\" data-value=\"%.6f\">%.4f</td></tr>\n"
            "<tr><td>PR AUC</td><td data-mark=\"pr_auc\" data-value=\"%.6f\">%.4f</td></tr>\n"
            "<tr><td>threshold</td><td>%.6g</td></tr>\n"
            "<tr><td>precision</td><td data-mark=\"precision\" data-value=\"%.6f\">%.4f</td></tr>\n"
            "<tr><td>recall</td><td data-mark=\"recall\" data-value=\"%.6f\">%.4f</td></tr>\n"
            "<tr><td>F1</td><td data-mark=\"f1\" data-value=\"%.6f\">%.4f</td></tr>\n"
            "<tr><td>accuracy</td><td>%.4f</td></tr>\n"
            "<tr><td>confusion</td><td>tp %zu, fp %zu, tn %zu, fn %zu</td></tr>\n"
            "</table></section>\n",
            e->rows, e->anomalies, e->roc_auc, e->roc_auc, e->pr_auc, e->pr_auc,
            (double) e->threshold, e->precision, e->precision, e->recall, e->recall, e->f1, e->f1,
            e->accuracy, e->tp, e->fp, e->tn, e->fn);
}

int report_write(const ReportInput *in, const char *out_path, char *err, size_t err_size)
{
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    int r;

    if (f == NULL) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    fputs(page_head, f);
    fputs("<header><h1>aescore report: model ", f);
    put_escaped(f, in->m->meta.id);
    fputs(" on ", f);
    put_escaped(f, in->data_path);
    fputs("</h1></header>\n<main>\n", f);
    put_figures(f, in);
    r = put_curves(f, in);
    if (r == 0)
        r = put_histograms(f, in);
    if (r == 0)
        r = put_field_shares(f, in);
    fputs("</main>\n</body>\n</html>\n", f);
    if (fclose(f) != 0 && r == 0)
        r = -ENOMEM;
    if (r == 0)
        r = util_write_atomic(out_path, page, len);
    if (r != 0)
        snprintf(err, err_size, "%s", r == -ENOMEM ? "out of memory" : strerror(-r));
    free(page);
    return r;
}
