/* fuzz_check: the harnesses' assertion. Unlike assert() it stays on in every build type,
 * and abort() is what libFuzzer reports as a crash with the failed condition above it. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
