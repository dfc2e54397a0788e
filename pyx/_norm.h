/*
 * _norm.h - the span loops of BatchNorm and LayerNorm (see _norm.pyx for the
 * algorithm), vectorized C built twice (baseline and AVX2+FMA) and dispatched
 * at run time as in _vecmath.h. Column statistics are float64 for both
 * dtypes; the element-wise passes (normalize, dx) run in the data's dtype.
 *
 * A block's column statistics come from one pass over its rows, shifted by the
 * block's first row (k): s1 = sum (x - k), s2 = sum (x - k)^2, then
 * mean = k + s1 / n and M2 = s2 - s1^2 / n. The shift is a value of the
 * column itself, so s2 and s1^2 / n are of the size of the column's spread
 * around k, not of its mean: no catastrophic cancellation for a column
 * far from 0 (the "shifted data" algorithm; Chan, Golub and LeVeque 1983).
 */
#ifndef CYPROP_NORM_H
#define CYPROP_NORM_H

#include "_vecmath.h"

/* The element-wise passes (normalize, dx) have two copies, baseline and
   AVX2+FMA, as _vecmath.h's; the reductions (block statistics, gradient sums)
   a third, AVX-512, as _special.h's. On the Zen machine of the README's
   figures an AVX-512 normalize pass ran 2x slower (1.15-1.26 ms against 0.56
   at (4096, 1024) float32) while the AVX-512 sums ran 1.5x faster (1.3
   against 2.0 ms, best of 40, the same run).

   The sums take rows eight at a time: the per-column sums are read and written
   once per eight rows, not per row - one row a pass was bound by those loads
   and stores, not by the data (at (4096, 1024) float32, one row a pass: the
   forward statistics 1.2 ms, the backward sums 1.8 ms; four rows 1.0 and
   1.2-1.4 ms). The rows' terms are added pairwise, ((r0 + r1) + (r2 + r3)) +
   ((r4 + r5) + (r6 + r7)), then to the sum: a fixed order, the same for a
   block whatever the thread count. */
/* the eight-row loop of the gradient sums (then the rows left), LOAD(q) the
   gradient of row i + q, column c */
#define CP_BN_SUMS_LOOP(T, LOAD)                                                       \
    for (i = 0; i + 8 <= n_rows; i += 8) {                                             \
        const T *restrict g0 = dy + i * C, *restrict x0 = x + i * C;                   \
        const T *restrict m0 = mask == NULL ? x0 : mask + i * C;                       \
        (void)m0;                                                                      \
        for (c = 0; c < C; c++) {                                                      \
            double mc = (double)mean[c], av[8], ev[8];                                 \
            int q;                                                                     \
            for (q = 0; q < 8; q++) {                                                  \
                av[q] = (double)(LOAD);                                                \
                ev[q] = av[q] * ((double)x0[q * C + c] - mc);                          \
            }                                                                          \
            sdy[c] += ((av[0] + av[1]) + (av[2] + av[3])) + ((av[4] + av[5]) + (av[6] + av[7])); \
            sdyx[c] += ((ev[0] + ev[1]) + (ev[2] + ev[3])) + ((ev[4] + ev[5]) + (ev[6] + ev[7])); \
        }                                                                              \
    }                                                                                  \
    for (; i < n_rows; i++) {                                                          \
        const T *restrict g0 = dy + i * C, *restrict x0 = x + i * C;                   \
        const T *restrict m0 = mask == NULL ? x0 : mask + i * C;                       \
        (void)m0;                                                                      \
        for (c = 0; c < C; c++) {                                                      \
            const int q = 0;                                                           \
            double g = (double)(LOAD);                                                 \
            sdy[c] += g;                                                               \
            sdyx[c] += g * ((double)x0[c] - (double)mean[c]);                          \
        }                                                                              \
    }

#define CP_NORM_REDUCTIONS(T, NAME, SFX, ATTR)                                              \
/* block statistics of rows x[0 .. n_rows) (row length C): mean, M2 (float64) */       \
ATTR static void cp_bn_block_stats_##NAME##SFX(const T *restrict x, ptrdiff_t n_rows,  \
                                               ptrdiff_t C, double *restrict mean,     \
                                               double *restrict m2)                    \
{                                                                                      \
    ptrdiff_t i, c;                                                                    \
    const T *restrict k = x;                                                           \
    for (c = 0; c < C; c++) { mean[c] = 0; m2[c] = 0; }                                \
    for (i = 1; i + 8 <= n_rows; i += 8) {                                             \
        const T *restrict r0 = x + i * C;                                              \
        for (c = 0; c < C; c++) {                                                      \
            double kc = (double)k[c];                                                  \
            double d0 = (double)r0[c] - kc, d1 = (double)r0[C + c] - kc;               \
            double d2 = (double)r0[2 * C + c] - kc, d3 = (double)r0[3 * C + c] - kc;   \
            double d4 = (double)r0[4 * C + c] - kc, d5 = (double)r0[5 * C + c] - kc;   \
            double d6 = (double)r0[6 * C + c] - kc, d7 = (double)r0[7 * C + c] - kc;   \
            mean[c] += ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7));              \
            m2[c] += ((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3))                       \
                     + ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7));                    \
        }                                                                              \
    }                                                                                  \
    for (; i < n_rows; i++) {                                                          \
        const T *restrict row = x + i * C;                                             \
        for (c = 0; c < C; c++) {                                                      \
            double d = (double)row[c] - (double)k[c];                                  \
            mean[c] += d;                                                              \
            m2[c] += d * d;                                                            \
        }                                                                              \
    }                                                                                  \
    for (c = 0; c < C; c++) {                                                          \
        double s1 = mean[c];                                                           \
        mean[c] = (double)k[c] + s1 / (double)n_rows;                                  \
        m2[c] = m2[c] - s1 * (s1 / (double)n_rows);                                    \
        m2[c] = m2[c] > 0 ? m2[c] : 0;                                                 \
    }                                                                                  \
}                                                                                      \
/* column sums of g and g (x - mean) over n_rows rows, float64, where g = dy, or
   with a fused ReLU after the norm g = dy * (y > 0) for its output y (mask) */    \
ATTR static void cp_bn_grad_sums_##NAME##SFX(const T *restrict dy, const T *restrict x, \
                                             const T *restrict mask,                   \
                                             ptrdiff_t n_rows, ptrdiff_t C,            \
                                             const T *restrict mean, double *restrict sdy, \
                                             double *restrict sdyx)                    \
{                                                                                      \
    ptrdiff_t i, c;                                                                    \
    for (c = 0; c < C; c++) { sdy[c] = 0; sdyx[c] = 0; }                               \
    if (mask == NULL) {                                                                \
        CP_BN_SUMS_LOOP(T, g0[(q) * C + c])                                            \
    } else {                                                                           \
        CP_BN_SUMS_LOOP(T, g0[(q) * C + c] * (T)(m0[(q) * C + c] > 0))                 \
    }                                                                                  \
}

#define CP_NORM_ELEMENTWISE(T, NAME, SFX, ATTR)                                       \
/* y = (x - mean) * scale + shift over n_rows rows; y may be x. One row at a
   time: the four-row form of the sums, tried here, ran 3.5x slower (gcc
   could not rule out y's rows overlapping x's) */                                     \
ATTR static void cp_bn_normalize_##NAME##SFX(const T *x, T *y, ptrdiff_t n_rows,       \
                                             ptrdiff_t C, const T *restrict mean,      \
                                             const T *restrict scale,                  \
                                             const T *restrict shift, int relu)        \
{                                                                                      \
    ptrdiff_t i, c;                                                                    \
    for (i = 0; i < n_rows; i++) {                                                     \
        const T *xr = x + i * C;                                                       \
        T *yr = y + i * C;                                                             \
        if (relu) {  /* BatchNorm -> ReLU fused: max(v, 0), NaN kept (as relu's) */    \
            for (c = 0; c < C; c++) {                                                  \
                T v = (xr[c] - mean[c]) * scale[c] + shift[c];                         \
                yr[c] = v < 0 ? (T)0 : v;                                              \
            }                                                                          \
        } else {                                                                       \
            for (c = 0; c < C; c++) yr[c] = (xr[c] - mean[c]) * scale[c] + shift[c];   \
        }                                                                              \
    }                                                                                  \
}                                                                                      \
/* dx = a g + b (x - mean) + k (b NULL: dx = a g), g = dy (mask NULL) or
   dy * (mask > 0); dx may be dy */                                                    \
ATTR static void cp_bn_dx_##NAME##SFX(const T *dy, const T *restrict x, const T *mask,  \
                                      T *dx, ptrdiff_t n_rows, ptrdiff_t C,            \
                                      const T *restrict mean, const T *restrict a,     \
                                      const T *restrict b, const T *restrict k)        \
{                                                                                      \
    ptrdiff_t i, c;                                                                    \
    for (i = 0; i < n_rows; i++) {                                                     \
        const T *dr = dy + i * C, *xr = x + i * C, *mr = mask + (mask ? i * C : 0);    \
        T *out = dx + i * C;                                                           \
        if (mask == NULL) {                                                            \
            if (b == NULL) { for (c = 0; c < C; c++) out[c] = a[c] * dr[c]; }          \
            else {                                                                     \
                for (c = 0; c < C; c++)                                                \
                    out[c] = a[c] * dr[c] + b[c] * (xr[c] - mean[c]) + k[c];           \
            }                                                                          \
        } else if (b == NULL) {                                                        \
            for (c = 0; c < C; c++) out[c] = a[c] * (dr[c] * (T)(mr[c] > 0));          \
        } else {                                                                       \
            for (c = 0; c < C; c++)                                                    \
                out[c] = a[c] * (dr[c] * (T)(mr[c] > 0)) + b[c] * (xr[c] - mean[c]) + k[c]; \
        }                                                                              \
    }                                                                                  \
}

#define CP_NORM_SPANS(T, NAME, SFX, ATTR) CP_NORM_REDUCTIONS(T, NAME, SFX, ATTR) \
    CP_NORM_ELEMENTWISE(T, NAME, SFX, ATTR)
#ifdef CP_X86_DISPATCH
CP_NORM_SPANS(float, f32, _base, )
CP_NORM_SPANS(double, f64, _base, )
CP_NORM_SPANS(float, f32, _avx2, __attribute__((target("avx2,fma"))))
CP_NORM_SPANS(double, f64, _avx2, __attribute__((target("avx2,fma"))))
CP_NORM_REDUCTIONS(float, f32, _avx512, CP_AVX512_ATTR)
CP_NORM_REDUCTIONS(double, f64, _avx512, CP_AVX512_ATTR)
#else
CP_NORM_SPANS(float, f32, _base, )
CP_NORM_SPANS(double, f64, _base, )
#endif

#define CP_NORM_WRAPPERS(T, NAME)                                                      \
static inline void cp_bn_block_stats_##NAME(const T *x, ptrdiff_t n_rows, ptrdiff_t C,  \
                                            double *mean, double *m2)                  \
{ CP_DISPATCH3(cp_bn_block_stats_##NAME, (x, n_rows, C, mean, m2)); }                   \
static inline void cp_bn_normalize_##NAME(const T *x, T *y, ptrdiff_t n_rows, ptrdiff_t C, \
                                          const T *mean, const T *scale, const T *shift, \
                                          int relu)                                    \
{ CP_DISPATCH(cp_bn_normalize_##NAME, (x, y, n_rows, C, mean, scale, shift, relu)); }  \
static inline void cp_bn_grad_sums_##NAME(const T *dy, const T *x, const T *mask,      \
                                          ptrdiff_t n_rows, ptrdiff_t C, const T *mean, \
                                          double *sdy, double *sdyx)                   \
{ CP_DISPATCH3(cp_bn_grad_sums_##NAME, (dy, x, mask, n_rows, C, mean, sdy, sdyx)); }    \
static inline void cp_bn_dx_##NAME(const T *dy, const T *x, const T *mask, T *dx,      \
                                   ptrdiff_t n_rows, ptrdiff_t C, const T *mean,       \
                                   const T *a, const T *b, const T *k)                 \
{ CP_DISPATCH(cp_bn_dx_##NAME, (dy, x, mask, dx, n_rows, C, mean, a, b, k)); }
CP_NORM_WRAPPERS(float, f32)
CP_NORM_WRAPPERS(double, f64)

#endif /* CYPROP_NORM_H */
