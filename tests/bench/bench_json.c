/* bench_json: how fast cJSON alone parses a request body (not a test: scripts/bench.sh runs
 * it beside aescored as the batch ceiling: a /score/batch that spent all its time in cJSON
 * would reach this rate).
 *
 * usage: bench_json BODY.json [SECONDS]
 * Parses BODY (cJSON_ParseWithLength, then cJSON_Delete: the daemon frees its tree too)
 * again and again for SECONDS (default 3) and prints one JSON line:
 *   {"bytes":..,"records":..,"parses_per_s":..,"records_per_s":..,"mb_per_s":..}
 * records is the length of the top-level "records" array, or 1 for any other body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cjson/cJSON.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    FILE *f;
    char *body;
    long len;
    double seconds = argc > 2 ? atof(argv[2]) : 3.0, t0, dt;
    size_t parses = 0;
    int records = 1;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_json BODY.json [SECONDS]\n");
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        perror(argv[1]);
        return 1;
    }
    body = malloc((size_t) len);
    if (body == NULL || fread(body, 1, (size_t) len, f) != (size_t) len) {
        perror(argv[1]);
        return 1;
    }
    fclose(f);

    cJSON *root = cJSON_ParseWithLength(body, (size_t) len);
    if (root == NULL) {
        fprintf(stderr, "bench_json: %s is not JSON\n", argv[1]);
        return 1;
    }
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(root, "records");
    if (cJSON_IsArray(recs))
        records = cJSON_GetArraySize(recs);
    cJSON_Delete(root);

    t0 = now();
    do {
        for (int i = 0; i < 10; i++) {
            root = cJSON_ParseWithLength(body, (size_t) len);
            if (root == NULL)
                return 1;
            cJSON_Delete(root);
        }
        parses += 10;
        dt = now() - t0;
    } while (dt < seconds);
    printf("{\"bytes\":%ld,\"records\":%d,\"parses_per_s\":%.1f,\"records_per_s\":%.0f,"
           "\"mb_per_s\":%.2f}\n",
           len, records, parses / dt, parses * (double) records / dt,
           parses * (double) len / dt / 1e6);
    free(body);
    return 0;
}
