/* gate: the promotion gates (see gate.h). */
#include "gate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aescore/schema.h"

static void put_names(JsonBuf *b, const char *key, const char *const *names, size_t n)
{
    json_buf_printf(b, "\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            json_buf_puts(b, ",");
        json_buf_string(b, names[i], strlen(names[i]));
    }
    json_buf_puts(b, "]");
}

static void put_schema(JsonBuf *b, const SchemaDiff *d, bool pass)
{
    json_buf_printf(b, "\"schema\":{\"pass\":%s,", pass ? "true" : "false");
    put_names(b, "dropped", d->dropped, d->n_dropped);
    json_buf_puts(b, ",");
    put_names(b, "added", d->added, d->n_added);
    json_buf_puts(b, ",");
    put_names(b, "retyped", d->retyped, d->n_retyped);
    json_buf_puts(b, ",\"categories\":{");
    for (size_t i = 0; i < d->n_categories; i++) {
        const SchemaCategoryDiff *c = &d->categories[i];
        if (i > 0)
            json_buf_puts(b, ",");
        json_buf_string(b, c->field, strlen(c->field));
        json_buf_puts(b, ":{");
        put_names(b, "added", c->added, c->n_added);
        json_buf_puts(b, ",");
        put_names(b, "vanished", c->vanished, c->n_vanished);
        json_buf_puts(b, "}");
    }
    json_buf_puts(b, "}}");
}

/* The share of rows m flags, and the share with a category m never saw. Each row is
 * decoded with `from` (the schema that encoded it) and, when m is another model, encoded
 * again with m's schema by field name. 0, -ENOMEM, or -ECANCELED as soon as *cancel is set
 * (a large model scores a record in milliseconds). */
static int rates(const Model *from, const float *rows, size_t n, const Model *m,
                 const atomic_bool *cancel, double *anomaly, double *unseen)
{
    size_t nf = from->schema->n_fields, flagged = 0, with_unseen = 0;
    SchemaValue *in = malloc(nf * sizeof(*in));
    SchemaValue *out = malloc(m->schema->n_fields * sizeof(*out));
    float *x = malloc(m->n_features * sizeof(*x));
    float *scratch = malloc(model_scratch_size(m) * sizeof(*scratch));
    int r = -ENOMEM;

    if (in == NULL || out == NULL || x == NULL || scratch == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        SchemaEncodeInfo info = {0};
        ModelScore s;

        if (atomic_load_explicit(cancel, memory_order_relaxed)) {
            r = -ECANCELED;
            goto out;
        }

        schema_decode(from->schema, rows + i * from->n_features, in);
        for (size_t f = 0; f < m->schema->n_fields; f++) {
            const char *name = m->schema->fields[f].name;
            long g = schema_field_index(from->schema, name, strlen(name));
            out[f] = g >= 0 ? in[g] : (SchemaValue){.type = SCHEMA_MISSING};
        }
        if (schema_encode(m->schema, out, x, &info) != 0) { /* a kind changed: unusable */
            with_unseen++;
            flagged++;
            continue;
        }
        model_score(m, x, scratch, NULL, &s);
        flagged += s.anomaly;
        with_unseen += info.n_unseen > 0;
    }
    *anomaly = n > 0 ? (double) flagged / (double) n : 0;
    *unseen = n > 0 ? (double) with_unseen / (double) n : 0;
    r = 0;
out:
    free(in);
    free(out);
    free(x);
    free(scratch);
    return r;
}

/* The recent_records gate: evidence members and the verdict. */
static int judge_recent(const Model *served, const Model *cand, Recent *recent,
                        const GateLimits *limits, const atomic_bool *cancel, GateVerdict *v,
                        JsonBuf *b)
{
    Model *from = NULL;
    float *rows = NULL;
    size_t n = 0;
    double sa = 0, su = 0, ca = 0, cu = 0;
    int r = recent_snapshot(recent, &from, &rows, &n);

    if (r == 0 && n >= GATE_MIN_RECORDS &&
        (r = rates(from, rows, n, served, cancel, &sa, &su)) == 0)
        r = rates(from, rows, n, cand, cancel, &ca, &cu);
    if (r != 0)
        goto out;
    json_buf_printf(b, "\"recent_records\":{\"records\":%zu,", n);
    if (n < GATE_MIN_RECORDS) {
        json_buf_printf(b, "\"pass\":true,\"note\":\"fewer than %d recent records: not judged\"}",
                        GATE_MIN_RECORDS);
        goto out;
    }
    v->recent_ok = ca - sa <= limits->max_anomaly_increase / 100.0 &&
                   cu - su <= limits->max_unseen_increase / 100.0;
    json_buf_printf(b, "\"pass\":%s,\"served_anomaly_rate\":", v->recent_ok ? "true" : "false");
    json_buf_double(b, sa);
    json_buf_puts(b, ",\"candidate_anomaly_rate\":");
    json_buf_double(b, ca);
    json_buf_puts(b, ",\"served_unseen_rate\":");
    json_buf_double(b, su);
    json_buf_puts(b, ",\"candidate_unseen_rate\":");
    json_buf_double(b, cu);
    json_buf_printf(b, ",\"max_anomaly_increase\":%u,\"max_unseen_increase\":%u}",
                    limits->max_anomaly_increase, limits->max_unseen_increase);
    if (!v->recent_ok)
        snprintf(v->reason, sizeof(v->reason),
                 "on %zu recent records the candidate flags %.1f%% (served %.1f%%) and misses a "
                 "category in %.1f%% (served %.1f%%)",
                 n, 100 * ca, 100 * sa, 100 * cu, 100 * su);
out:
    model_unref(from);
    free(rows);
    return r;
}

int gate_judge(const Model *served, const Model *cand, Recent *recent, const GateLimits *limits,
               const atomic_bool *cancel, GateVerdict *v, JsonBuf *evidence)
{
    SchemaDiff d = {0};
    int r = 0;

    *v = (GateVerdict){.schema_ok = true, .recent_ok = true};
    json_buf_puts(evidence, "{");
    if (served != NULL && (r = schema_diff(served->schema, cand->schema, &d)) != 0)
        return r;
    if (d.n_dropped + d.n_added + d.n_retyped > 0 && !limits->allow_schema_change) {
        v->schema_ok = false;
        snprintf(v->reason, sizeof(v->reason),
                 "the new model's fields differ from the served model's (%zu dropped, %zu added, "
                 "%zu of another kind); retrain with allow_schema_change to accept that",
                 d.n_dropped, d.n_added, d.n_retyped);
    }
    put_schema(evidence, &d, v->schema_ok);
    schema_diff_deinit(&d);
    json_buf_puts(evidence, ",\"finite\":{\"pass\":true},");
    if (served != NULL && v->schema_ok)
        r = judge_recent(served, cand, recent, limits, cancel, v, evidence);
    else
        json_buf_puts(evidence, "\"recent_records\":{\"pass\":true,\"records\":0,\"note\":\"not "
                                "judged\"}");
    json_buf_puts(evidence, "}");
    return r != 0 ? r : evidence->oom ? -ENOMEM : 0;
}
