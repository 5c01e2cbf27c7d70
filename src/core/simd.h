/* simd: how the core's hot loops are compiled for several CPUs (private to src/core).
 *
 * SIMD_CLONES marks a function that GCC emits twice, for x86-64-v3 (AVX2) and for the
 * baseline, with an ifunc resolver that picks one when the program loads. The installed
 * binary stays portable (no -march=native) and still uses 8-wide vectors where the CPU has
 * them. FMA contraction stays off (ISO C mode), so both bodies compute the same bits.
 */
#pragma once

/* Not under the sanitizers (their runtimes start after the ifunc resolvers run, and the
 * instrumented resolvers crash before main), and not with clang 14, which names the
 * dispatcher f.ifunc so that calls to f fail to link: those builds take the baseline body. */
#if defined(__x86_64__) && defined(__has_attribute) && !defined(__SANITIZE_ADDRESS__) &&           \
    !defined(__SANITIZE_THREAD__) && !defined(__clang__)
#if __has_attribute(target_clones)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef SIMD_CLONES
#define SIMD_CLONES
#endif
