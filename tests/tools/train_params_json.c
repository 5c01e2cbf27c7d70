/* train_params_json: prints train_params.h's table as one JSON array (name, type, min, max,
 * open ends, metavar, default), for tests/integration/test_params.py, which walks it to prove
 * that the CLI and the HTTP API accept and refuse the same values. */
#include <stdio.h>

#include "aescore/train_params.h"

static const char *const type_names[] = {
    [TRAIN_PARAM_SIZE] = "size",
    [TRAIN_PARAM_SEED] = "seed",
    [TRAIN_PARAM_FLOAT] = "float",
    [TRAIN_PARAM_QUANTILE] = "quantile",
    [TRAIN_PARAM_THRESHOLD] = "threshold",
    [TRAIN_PARAM_F1] = "switch",
    [TRAIN_PARAM_ACTIVATION] = "activation",
    [TRAIN_PARAM_HIDDEN] = "hidden",
    [TRAIN_PARAM_COLUMNS] = "columns",
    [TRAIN_PARAM_REFERENCE] = "reference",
};

int main(void)
{
    TrainParams d;
    char value[256];

    train_params_default(&d);
    fputs("[", stdout);
    for (size_t i = 0; i < train_param_count; i++) {
        const TrainParamDef *def = &train_param_table[i];

        train_params_format(&d, def, value, sizeof(value));
        printf("%s\n {\"name\": \"%s\", \"type\": \"%s\", \"min\": %.17g, \"max\": %.17g, "
               "\"min_open\": %s, \"max_open\": %s, \"metavar\": %s%s%s, \"default\": \"%s\", "
               "\"max_layers\": %d}",
               i ? "," : "", def->name, type_names[def->type], def->min, def->max,
               (def->flags & TRAIN_PARAM_MIN_OPEN) ? "true" : "false",
               (def->flags & TRAIN_PARAM_MAX_OPEN) ? "true" : "false", def->metavar ? "\"" : "",
               def->metavar ? def->metavar : "null", def->metavar ? "\"" : "", value,
               NN_MAX_LAYERS - 1);
    }
    puts("]");
    return 0;
}
