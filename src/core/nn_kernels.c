/* nn_kernels: dense-layer loops (see nn_kernels.h for the contract).
 *
 * Every pass of a dense layer is one product C += A . B (forward: x . W; weight gradient:
 * x^T . dz; input gradient: dz . W^T), computed by gemm() over 4 x 16 register tiles.
 * Every kernel is compiled for two CPU levels (simd.h); each output adds its terms in the
 * same order in both, so results do not depend on the CPU.
 */
#include "nn_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "simd.h"

/* GCC/Clang generic vectors: 8 floats, lowered to one AVX register in the x86-64-v3 body and
 * two SSE registers in the baseline one. Written out because the vectoriser does not keep a
 * 4 x 16 accumulator tile in registers on its own (measured: 3x slower). */
typedef float Vec8 __attribute__((vector_size(32)));
typedef int32_t Vec8i __attribute__((vector_size(32)));

static inline Vec8 load8(const float *p)
{
    Vec8 v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void store8(float *p, Vec8 v)
{
    memcpy(p, &v, sizeof(v));
}

static inline Vec8 splat(float f)
{
    return (Vec8){f, f, f, f, f, f, f, f};
}

/* mask ? a : b, lane by lane (C has no ?: on vectors). */
static inline Vec8 select8(Vec8i mask, Vec8 a, Vec8 b)
{
    return (Vec8) ((mask & (Vec8i) a) | (~mask & (Vec8i) b));
}

/* exp(x) for x in about [-87, 88] (clamped outside), relative error < 2e-7: Cody-Waite range
 * reduction and Cephes' expf polynomial, branch-free over 8 lanes (libm's expf does not
 * vectorise). The magic constant rounds x*log2(e) to an integer held in the float's low
 * bits. */
static inline Vec8 exp8(Vec8 x)
{
    const Vec8 round_magic = splat(12582912.0f); /* 1.5 * 2^23 */

    x = select8(x < splat(-87.0f), splat(-87.0f), x);
    x = select8(x > splat(88.0f), splat(88.0f), x);
    Vec8 t = x * splat(1.44269504088896341f) + round_magic;
    Vec8 n = t - round_magic;
    Vec8i ni = (Vec8i) t - 0x4B400000;
    Vec8 r = x - n * splat(0.693359375f);
    r = r - n * splat(-2.12194440e-4f);
    Vec8 p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f);
    p = p * r + splat(8.3334519073e-3f);
    p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f);
    p = p * r + splat(5.0000001201e-1f);
    p = p * r * r + r + splat(1.0f);
    return p * (Vec8) ((ni + 127) << 23);
}

static inline Vec8 activate8(Vec8 y, NnActivation act)
{
    switch (act) {
    case NN_RELU:
        return select8(y > splat(0.0f), y, splat(0.0f));
    case NN_SIGMOID:
        return splat(1.0f) / (splat(1.0f) + exp8(-y));
    case NN_TANH:
        return splat(1.0f) - splat(2.0f) / (splat(1.0f) + exp8(splat(2.0f) * y));
    case NN_LINEAR:
        break;
    }
    return y;
}

/* y = act(y) over n floats; the tail goes through a zero-padded vector, so every element is
 * computed by the very same lane arithmetic. */
static inline __attribute__((always_inline)) void activate(float *restrict y, size_t n,
                                                           NnActivation act)
{
    size_t k = 0;

    if (act == NN_LINEAR)
        return;
    for (; k + 8 <= n; k += 8)
        store8(y + k, activate8(load8(y + k), act));
    if (k < n) {
        float tail[8] = {0};
        Vec8 v;
        memcpy(tail, y + k, (n - k) * sizeof(float));
        v = activate8(load8(tail), act);
        memcpy(tail, &v, sizeof(tail));
        memcpy(y + k, tail, (n - k) * sizeof(float));
    }
}

/* The one loop nest every dense-layer pass reduces to:
 *     C[m][n] = init-or-C[m][n] + sum_k A[m][k] * B[k][n]      m < M, n < N, k < K
 * A is addressed through two strides (element (m, k) at a[m * am + k * ak]) so that the
 * weight gradient can read x^T without transposing it; B and C are row-major (ldb, ldc).
 * init is NULL to accumulate into C, else a row every row of C starts from (the bias).
 * Tiles of 4 rows x 16 columns of C stay in registers while k runs: each B chunk is loaded
 * once per four rows and C once per tile. Every C entry adds its K terms in order k = 0, 1,
 * ..., in the tiles and at the edges alike, so the tiling never changes a result. */
typedef struct Gemm {
    const float *a;
    size_t am, ak;
    const float *b;
    size_t ldb;
    float *c;
    size_t ldc;
    const float *init;
    size_t k_len;
} Gemm;

#define TILE_M 4
#define TILE_N 16

static inline void gemm_tile(const Gemm *g, size_t m, size_t n)
{
    const float *a = g->a + m * g->am, *b = g->b + n;
    float *c = g->c + m * g->ldc + n;
    const float *c0 = g->init ? g->init + n : c, *c1 = g->init ? g->init + n : c + g->ldc;
    const float *c2 = g->init ? g->init + n : c + 2 * g->ldc;
    const float *c3 = g->init ? g->init + n : c + 3 * g->ldc;
    Vec8 c00 = load8(c0), c01 = load8(c0 + 8), c10 = load8(c1), c11 = load8(c1 + 8);
    Vec8 c20 = load8(c2), c21 = load8(c2 + 8), c30 = load8(c3), c31 = load8(c3 + 8);

    for (size_t k = 0; k < g->k_len; k++) {
        const float *ak = a + k * g->ak, *bk = b + k * g->ldb;
        Vec8 b0 = load8(bk), b1 = load8(bk + 8);
        float a0 = ak[0], a1 = ak[g->am], a2 = ak[2 * g->am], a3 = ak[3 * g->am];

        c00 += b0 * a0;
        c01 += b1 * a0;
        c10 += b0 * a1;
        c11 += b1 * a1;
        c20 += b0 * a2;
        c21 += b1 * a2;
        c30 += b0 * a3;
        c31 += b1 * a3;
    }
    store8(c, c00);
    store8(c + 8, c01);
    store8(c + g->ldc, c10);
    store8(c + g->ldc + 8, c11);
    store8(c + 2 * g->ldc, c20);
    store8(c + 2 * g->ldc + 8, c21);
    store8(c + 3 * g->ldc, c30);
    store8(c + 3 * g->ldc + 8, c31);
}

/* One row of C over `count` (1..3) consecutive tiles in one k loop: the rows left below the
 * last full tile (a record scored alone is one). A lone row is bound by the latency of its
 * accumulator chains (K dependent adds each), not by arithmetic: run side by side, the
 * chains of several tiles overlap. Each entry still adds its terms in order k = 0, 1, ...
 * count is a constant at each call (always_inline), so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void gemm_row_tiles(const Gemm *g, size_t m, size_t n,
                                                                 size_t count)
{
    const float *a = g->a + m * g->am, *b = g->b + n;
    float *c = g->c + m * g->ldc + n;
    const float *c0 = g->init ? g->init + n : c;
    Vec8 acc[6];

#pragma GCC unroll 6
    for (size_t t = 0; t < 2 * count; t++)
        acc[t] = load8(c0 + 8 * t);
    for (size_t k = 0; k < g->k_len; k++) {
        const float *bk = b + k * g->ldb;
        float a0 = a[k * g->ak];

#pragma GCC unroll 6
        for (size_t t = 0; t < 2 * count; t++)
            acc[t] += load8(bk + 8 * t) * a0;
    }
#pragma GCC unroll 6
    for (size_t t = 0; t < 2 * count; t++)
        store8(c + 8 * t, acc[t]);
}

/* Scalar entries: the columns right of the last full tile. */
static inline void gemm_entries(const Gemm *g, size_t m_end, size_t n, size_t n_end)
{
    for (size_t m = 0; m < m_end; m++)
        for (size_t j = n; j < n_end; j++) {
            const float *a = g->a + m * g->am;
            float acc = g->init ? g->init[j] : g->c[m * g->ldc + j];

            for (size_t k = 0; k < g->k_len; k++)
                acc += a[k * g->ak] * g->b[k * g->ldb + j];
            g->c[m * g->ldc + j] = acc;
        }
}

/* always_inline: an out-of-line copy would be the baseline one, with no AVX */
static inline __attribute__((always_inline)) void gemm(const Gemm *g, size_t m_len, size_t n_len)
{
    size_t n_full = n_len - n_len % TILE_N, m = 0;

    for (; m + TILE_M <= m_len; m += TILE_M)
        for (size_t n = 0; n < n_full; n += TILE_N)
            gemm_tile(g, m, n);
    for (; m < m_len; m++) {
        size_t n = 0;

        for (; n + 3 * TILE_N <= n_full; n += 3 * TILE_N)
            gemm_row_tiles(g, m, n, 3);
        if (n + 2 * TILE_N <= n_full)
            gemm_row_tiles(g, m, n, 2);
        else if (n < n_full)
            gemm_row_tiles(g, m, n, 1);
    }
    gemm_entries(g, m_len, n_full, n_len);
}

static inline void transpose(const float *restrict src, size_t rows, size_t cols,
                             float *restrict dst)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            dst[c * rows + r] = src[r * cols + c];
}

SIMD_CLONES
void nn_kernel_forward(const float *restrict x, size_t rows, size_t in, size_t out,
                       const float *restrict w, const float *restrict b, NnActivation act,
                       float *restrict y)
{
    Gemm g = {
        .a = x, .am = in, .ak = 1, .b = w, .ldb = out, .c = y, .ldc = out, .init = b, .k_len = in};

    gemm(&g, rows, out);
    activate(y, rows * out, act);
}

SIMD_CLONES
void nn_kernel_activation_grad(float *restrict dy, const float *restrict y, size_t n,
                               NnActivation act)
{
    switch (act) {
    case NN_RELU:
        for (size_t k = 0; k < n; k++)
            dy[k] = y[k] > 0.0f ? dy[k] : 0.0f;
        break;
    case NN_SIGMOID:
        for (size_t k = 0; k < n; k++)
            dy[k] *= y[k] * (1.0f - y[k]);
        break;
    case NN_TANH:
        for (size_t k = 0; k < n; k++)
            dy[k] *= 1.0f - y[k] * y[k];
        break;
    case NN_LINEAR:
        break;
    }
}

SIMD_CLONES
void nn_kernel_weight_grad(const float *restrict x, const float *restrict dz, size_t rows,
                           size_t in, size_t out, float *restrict gw, float *restrict gb,
                           float *restrict tmp)
{
    /* gw (in x out) += x^T (in x rows) . dz (rows x out); x^T read in place */
    Gemm g = {.a = x, .am = 1, .ak = in, .b = dz, .ldb = out, .c = gw, .ldc = out, .k_len = rows};

    (void) tmp;
    gemm(&g, in, out);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < out; o++)
            gb[o] += dz[r * out + o];
}

SIMD_CLONES
void nn_kernel_input_grad(const float *restrict dz, const float *restrict w, size_t rows, size_t in,
                          size_t out, float *restrict dx, float *restrict tmp)
{
    /* dx (rows x in) = dz (rows x out) . W^T (out x in) */
    Gemm g = {.a = dz, .am = out, .ak = 1, .b = tmp, .ldb = in, .c = dx, .ldc = in, .k_len = out};

    transpose(w, in, out, tmp);
    memset(dx, 0, rows * in * sizeof(*dx));
    gemm(&g, rows, in);
}

/* ---------------------------------------------------------------- nearest neighbours */

/* D[m][j] = sum_k (Q[m][k] - R[j][k])^2 over a chunk of reference panels, in the register
 * tiles of gemm: 4 query rows x one panel of 16 reference rows, k in order. The differences
 * are taken directly rather than through |q|^2 + |r|^2 - 2 q.r, which cancels badly for
 * near rows, the ones that decide a neighbour distance. */
typedef struct Dist {
    const float *q; /* rows x in */
    size_t in;
    const float *r; /* the chunk's first panel */
    float *d;       /* rows x ldd */
    size_t ldd;
} Dist;

/* always_inline: an out-of-line copy would be the baseline one, with no AVX */
static inline __attribute__((always_inline)) void dist_tile(const Dist *g, size_t m, size_t p)
{
    const float *q = g->q + m * g->in, *r = g->r + p * NN_KNN_PANEL * g->in;
    Vec8 d00 = splat(0), d01 = splat(0), d10 = splat(0), d11 = splat(0);
    Vec8 d20 = splat(0), d21 = splat(0), d30 = splat(0), d31 = splat(0);

    for (size_t k = 0; k < g->in; k++) {
        Vec8 r0 = load8(r + k * NN_KNN_PANEL), r1 = load8(r + k * NN_KNN_PANEL + 8);
        Vec8 a0 = r0 - q[k], a1 = r1 - q[k], b0 = r0 - q[g->in + k], b1 = r1 - q[g->in + k];
        Vec8 c0 = r0 - q[2 * g->in + k], c1 = r1 - q[2 * g->in + k];
        Vec8 e0 = r0 - q[3 * g->in + k], e1 = r1 - q[3 * g->in + k];

        d00 += a0 * a0;
        d01 += a1 * a1;
        d10 += b0 * b0;
        d11 += b1 * b1;
        d20 += c0 * c0;
        d21 += c1 * c1;
        d30 += e0 * e0;
        d31 += e1 * e1;
    }
    float *d = g->d + m * g->ldd + p * NN_KNN_PANEL;
    store8(d, d00);
    store8(d + 8, d01);
    store8(d + g->ldd, d10);
    store8(d + g->ldd + 8, d11);
    store8(d + 2 * g->ldd, d20);
    store8(d + 2 * g->ldd + 8, d21);
    store8(d + 3 * g->ldd, d30);
    store8(d + 3 * g->ldd + 8, d31);
}

/* One query row against `np` (1..4) panels at once: the rows below the last full tile. The
 * panels give independent accumulators, so the loop is not bound by the latency of one add
 * chain (a single row of one record would be); each entry still sums k = 0, 1, ... */
static inline __attribute__((always_inline)) void dist_row(const Dist *g, size_t m, size_t p,
                                                           size_t np)
{
    const float *q = g->q + m * g->in, *r = g->r + p * NN_KNN_PANEL * g->in;
    const size_t step = NN_KNN_PANEL * g->in;
    Vec8 d[8] = {splat(0), splat(0), splat(0), splat(0), splat(0), splat(0), splat(0), splat(0)};

    for (size_t k = 0; k < g->in; k++) {
        const float *rk = r + k * NN_KNN_PANEL;
        for (size_t j = 0; j < 4; j++) {
            if (j < np) {
                Vec8 a0 = load8(rk + j * step) - q[k], a1 = load8(rk + j * step + 8) - q[k];
                d[2 * j] += a0 * a0;
                d[2 * j + 1] += a1 * a1;
            }
        }
    }
    for (size_t j = 0; j < np; j++) {
        store8(g->d + m * g->ldd + (p + j) * NN_KNN_PANEL, d[2 * j]);
        store8(g->d + m * g->ldd + (p + j) * NN_KNN_PANEL + 8, d[2 * j + 1]);
    }
}

/* The rows x (panels * 16) block: tiles, then the rows below them. The same lanes compute
 * an entry in both, so a row's distances do not depend on the rows scored with it. */
static inline __attribute__((always_inline)) void dist_block(const Dist *g, size_t rows,
                                                             size_t panels)
{
    size_t m = 0;

    for (; m + TILE_M <= rows; m += TILE_M)
        for (size_t p = 0; p < panels; p++)
            dist_tile(g, m, p);
    for (; m < rows; m++) {
        size_t p = 0;
        for (; p + 4 <= panels; p += 4)
            dist_row(g, m, p, 4);
        if (p < panels)
            dist_row(g, m, p, panels - p);
    }
}

void nn_kernel_knn_pack(const float *restrict rows, size_t n, size_t in, float *restrict panels)
{
    memset(panels, 0, NN_KNN_PANEL_FLOATS(n, in) * sizeof(*panels));
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < in; i++)
            panels[(j / NN_KNN_PANEL) * NN_KNN_PANEL * in + i * NN_KNN_PANEL + j % NN_KNN_PANEL] =
                rows[j * in + i];
}

/* Inserts v into best[0..k-1] (ascending, k smallest seen so far). */
static inline __attribute__((always_inline)) void keep_smallest(float *best, size_t k, float v)
{
    size_t i = k - 1;

    if (!(v < best[i]))
        return;
    while (i > 0 && best[i - 1] > v) {
        best[i] = best[i - 1];
        i--;
    }
    best[i] = v;
}

/* The distances of the query rows to reference rows [n0, n0 + *len) into d: rows x the
 * returned stride, the padding columns past *len to be ignored. */
static inline __attribute__((always_inline)) size_t chunk_block(const float *q, size_t rows,
                                                                size_t in, const float *panels,
                                                                size_t n_ref, size_t n0, float *d,
                                                                size_t *len)
{
    size_t ldd;

    *len = n_ref - n0 < NN_KNN_CHUNK ? n_ref - n0 : NN_KNN_CHUNK;
    ldd = (*len + NN_KNN_PANEL - 1) / NN_KNN_PANEL * NN_KNN_PANEL;
    /* n0 is a multiple of the chunk, so panels + n0 * in is the start of a panel */
    Dist g = {.q = q, .in = in, .r = panels + n0 * in, .d = d, .ldd = ldd};
    dist_block(&g, rows, ldd / NN_KNN_PANEL);
    return ldd;
}

SIMD_CLONES
void nn_kernel_knn(const float *restrict q, size_t rows, size_t in, const float *restrict panels,
                   size_t n_ref, size_t k, float *restrict tmp, float *restrict out)
{
    float *d = tmp, *best = tmp + rows * NN_KNN_CHUNK;

    for (size_t i = 0; i < rows * k; i++)
        best[i] = __builtin_inff();
    for (size_t n0 = 0; n0 < n_ref; n0 += NN_KNN_CHUNK) {
        size_t len, ldd = chunk_block(q, rows, in, panels, n_ref, n0, d, &len);

        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < len; j++)
                keep_smallest(best + r * k, k, d[r * ldd + j]);
    }
    /* ascending order: the mean adds the same terms in the same order for any chunking */
    for (size_t r = 0; r < rows; r++) {
        float s = 0;
        for (size_t i = 0; i < k; i++)
            s += sqrtf(best[r * k + i]);
        out[r] = s / (float) k;
    }
}

SIMD_CLONES
void nn_kernel_nearest(const float *restrict q, size_t rows, size_t in,
                       const float *restrict panels, size_t n_ref, float *restrict tmp,
                       size_t *restrict nearest, float *restrict dist2)
{
    float *d = tmp, *best = tmp + rows * NN_KNN_CHUNK;

    for (size_t r = 0; r < rows; r++) {
        best[r] = __builtin_inff();
        nearest[r] = 0;
    }
    for (size_t n0 = 0; n0 < n_ref; n0 += NN_KNN_CHUNK) {
        size_t len, ldd = chunk_block(q, rows, in, panels, n_ref, n0, d, &len);

        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < len; j++)
                if (d[r * ldd + j] < best[r]) {
                    best[r] = d[r * ldd + j];
                    nearest[r] = n0 + j;
                }
    }
    for (size_t r = 0; dist2 != NULL && r < rows; r++)
        dist2[r] = best[r];
}
