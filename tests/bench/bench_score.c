/* bench_score: in-process scoring throughput of one model on one core (not a test: the
 * figures come from scripts/bench-core.sh, which runs this beside its reference).
 *
 * usage: bench_score MODEL [SECONDS]      prints records/s, single and batched
 *        bench_score MODEL --records N    scores exactly N records one at a time, prints
 *                                         nothing (for instruction counts under callgrind)
 * Scores random records drawn around the model's training means, one at a time through
 * model_score (with per-feature errors, as the daemon does for /score) and in batches of
 * 1000 through model_score_batch.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aescore/model.h"
#include "aescore/model_file.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    Model *m = NULL;
    bool counted = argc > 3 && strcmp(argv[2], "--records") == 0;
    double seconds = argc > 2 && !counted ? atof(argv[2]) : 2.0;
    const size_t n = 1000;
    volatile float sink = 0;
    int r;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_score MODEL [SECONDS]\n");
        return 2;
    }
    r = model_file_load(argv[1], &m);
    if (r != 0) {
        fprintf(stderr, "bench_score: %s: %s\n", argv[1], model_file_strerror(r));
        return 1;
    }
    size_t f = m->n_features;
    float *x = malloc(n * f * sizeof(float)), *scores = malloc(n * sizeof(float));
    float *err = malloc(f * sizeof(float));
    float *scratch = malloc(model_scratch_size(m) * sizeof(float));
    uint64_t rng = 1;
    for (size_t k = 0; k < n * f; k++)
        x[k] = m->mean[k % f] + m->std[k % f] * (2 * nn_rng_uniform(&rng) - 1);

    if (counted) {
        size_t records = (size_t) strtoull(argv[3], NULL, 10);
        for (size_t i = 0; i < records; i++) {
            ModelScore s;
            model_score(m, x + (i % n) * f, scratch, err, &s);
            sink += s.score;
        }
        goto done;
    }

    /* one record at a time, as /score does */
    size_t done = 0;
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < n; i++) {
            ModelScore s;
            model_score(m, x + i * f, scratch, err, &s);
            sink += s.score;
        }
        done += n;
    } while ((t = now() - t0) < seconds);
    printf("single %.0f records/s\n", (double) done / t);

    done = 0;
    t0 = now();
    do {
        model_score_batch(m, x, n, scratch, scores);
        sink += scores[0];
        done += n;
    } while ((t = now() - t0) < seconds);
    printf("batch  %.0f records/s\n", (double) done / t);
done:
    free(x);
    free(scores);
    free(err);
    free(scratch);
    model_unref(m);
    return sink == -1.0f;
}
