/* nn_kernels: the dense-layer inner loops, private to nn.c and the only place where SIMD
 * enters the network: each kernel is compiled for two CPU levels (simd.h) and picked at load
 * time. Neither level reassociates a sum, so the same input gives the same bits on any
 * x86-64 machine. Weights are input-major: W[i * out + o].
 */
#pragma once

#include <stddef.h>

#include "aescore/nn.h"

/* y[r][o] = act(b[o] + sum_i x[r][i] * W[i][o]) for r < rows. */
void nn_kernel_forward(const float *x, size_t rows, size_t in, size_t out, const float *w,
                       const float *b, NnActivation act, float *y);

/* Turns dy (dL/d output of the layer, rows x out) into dz = dy * act'(y) in place, given the
 * layer's output y. */
void nn_kernel_activation_grad(float *dy, const float *y, size_t n, NnActivation act);

/* gw[i][o] += sum_r x[r][i] * dz[r][o];  gb[o] += sum_r dz[r][o].
 * tmp: rows * in floats of workspace. */
void nn_kernel_weight_grad(const float *x, const float *dz, size_t rows, size_t in, size_t out,
                           float *gw, float *gb, float *tmp);

/* dx[r][i] = sum_o dz[r][o] * W[i][o].  tmp: in * out floats of workspace. */
void nn_kernel_input_grad(const float *dz, const float *w, size_t rows, size_t in, size_t out,
                          float *dx, float *tmp);

/* ---- nearest neighbours: squared Euclidean distances from query rows to reference rows ----
 * The reference is packed in panels of NN_KNN_PANEL rows: panel p holds rows 16p..16p+15
 * column by column (panels[p * 16 * in + i * 16 + j] = column i of row 16p + j), the last
 * panel padded with zeros. A register tile then reads one contiguous stream, where a plain
 * transpose (a stride of n_ref floats per column) made every column load of a tile hit the
 * same L1 set (4 KiB aliasing) and ran 5-10x slower. */
#define NN_KNN_PANEL 16
#define NN_KNN_CHUNK 256 /* reference rows per pass: the distance block stays in L2 */
#define NN_KNN_MAX_K 8

/* Floats of the packed panels of n rows of in columns. */
#define NN_KNN_PANEL_FLOATS(n, in) (((n) + NN_KNN_PANEL - 1) / NN_KNN_PANEL * NN_KNN_PANEL * (in))

/* Packs n row-major rows of in columns into panels (NN_KNN_PANEL_FLOATS(n, in) floats). */
void nn_kernel_knn_pack(const float *rows, size_t n, size_t in, float *panels);

/* out[r] = mean over the k nearest reference rows of the Euclidean distance to query row r
 * (k <= NN_KNN_MAX_K, k <= n_ref). tmp: NN_KNN_TMP(rows) floats. */
#define NN_KNN_TMP(rows) ((rows) * (NN_KNN_CHUNK + NN_KNN_MAX_K))
void nn_kernel_knn(const float *q, size_t rows, size_t in, const float *panels, size_t n_ref,
                   size_t k, float *tmp, float *out);

/* nearest[r] = the index of the reference row nearest to query row r (the lowest index on a
 * tie), dist2[r] its squared distance (dist2 may be NULL). tmp: NN_KNN_TMP(rows) floats. */
void nn_kernel_nearest(const float *q, size_t rows, size_t in, const float *panels, size_t n_ref,
                       float *tmp, size_t *nearest, float *dist2);
