/* Synthetic data shared by the model and train tests: normal rows lie near a 2-dimensional
 * plane in f dimensions (an autoencoder with a bottleneck of 2 can learn them); anomalies
 * are uniform noise far off that plane. Deterministic for a seed. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include "aescore/dataset.h"
#include "aescore/nn.h"

static Dataset *fixture_dataset(size_t normal, size_t anomalies, size_t f, uint64_t seed)
{
    Dataset *ds = NULL;
    char **names = calloc(f, sizeof(*names));
    uint64_t rng = seed;

    if (names == NULL)
        return NULL;
    for (size_t i = 0; i < f; i++) {
        names[i] = malloc(24);
        snprintf(names[i], 24, "f%zu", i);
    }
    if (dataset_new(&ds, normal + anomalies, f, (const char *const *) names) == 0) {
        ds->label = calloc(normal + anomalies, 1);
        for (size_t r = 0; r < normal + anomalies; r++) {
            float a = 4 * nn_rng_uniform(&rng) - 2, b = 4 * nn_rng_uniform(&rng) - 2;
            for (size_t i = 0; i < f; i++) {
                float noise = 0.05f * (nn_rng_uniform(&rng) - 0.5f);
                float on_plane = a * (float) (i % 3) - b * (float) ((i + 1) % 2) + 10 * (float) i;
                ds->x[r * f + i] =
                    r < normal ? on_plane + noise : 10 * (float) i + 8 * nn_rng_uniform(&rng) - 4;
            }
            ds->label[r] = r >= normal;
        }
    }
    for (size_t i = 0; i < f; i++)
        free(names[i]);
    free(names);
    return ds;
}
