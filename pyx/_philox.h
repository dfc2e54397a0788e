/*
 * _philox.h - Philox4x32-10, the counter-based generator of Salmon et al.,
 * "Parallel random numbers: as easy as 1, 2, 3" (SC11), and dropout's span
 * loop over it.
 *
 * A counter (c0, c1, c2, c3) and a key (k0, k1) give four 32-bit words after
 * ten rounds; a round multiplies c0 and c2 by M0 = 0xD2511F53 and
 * M1 = 0xCD9E8D57 into 64-bit products (hi, lo) and sets
 *     c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0),
 * and the key is bumped by (0x9E3779B9, 0xBB67AE85) between rounds. The
 * words depend on counter and key only, so any element's draw can be made
 * by any thread in any order: dropout's mask is the same for every thread
 * count. Checked against the paper's known-answer vectors
 * (tests/test_dropout.py).
 *
 * Dropout: element e (flat index) of call (seed, step) takes word e % 4 of
 * counter (e / 4 as 64 bits in c0, c1; step in c2, c3) under key seed (64
 * bits in k0, k1). It is kept when the word is >= thr = round(p 2^32), so
 * P(drop) = thr / 2^32, within 2^-33 of p; kept elements are scaled by
 * 1 / (1 - p): y = x * (keep ? scale : 0) (a dropped NaN stays NaN, as in
 * torch's x * mask * scale).
 */
#ifndef CYPROP_PHILOX_H
#define CYPROP_PHILOX_H

#include "_vecmath.h"

#define CP_PHILOX_LANES 8

/* Philox4x32-10 of counters ctr0 .. ctr0 + 7 (and c2, c3 = step): out[4 j + w] is
   word w of counter ctr0 + j. The eight counters are the lanes of vectors of
   64-bit integers holding 32-bit values, so that each 32 x 32 -> 64-bit
   product is one lane's multiply (vpmuludq, 4 or 8 lanes an instruction); the
   same arithmetic as the scalar definition, lane for lane. (As a loop over the
   lanes gcc left it scalar: dropout's forward ran 2.4 ns an element; 1.0 ns
   now in the AVX-512 copy, where gcc multiplies 8 lanes an instruction. The
   AVX2 copy stays near 2.5 ns: gcc builds each 64-bit product from three
   32-bit ones; 32-bit lanes widened with __builtin_convertvector were slower
   in both copies.) */
#if defined(__GNUC__)
typedef uint64_t cp_v8du __attribute__((vector_size(64)));
static inline void cp_philox_lanes(uint64_t ctr0, uint64_t key, uint64_t step, uint32_t *out)
{
    const uint64_t lo = 0xFFFFFFFFu;
    cp_v8du c0, c1, c2, c3, p0, p1, n0, n2;
    uint64_t k0 = key & lo, k1 = key >> 32;
    int j, r;
    for (j = 0; j < CP_PHILOX_LANES; j++) {
        uint64_t c = ctr0 + (uint64_t)j;
        c0[j] = c & lo; c1[j] = c >> 32; c2[j] = step & lo; c3[j] = step >> 32;
    }
    for (r = 0; r < 10; r++) {
        p0 = c0 * 0xD2511F53u;
        p1 = c2 * 0xCD9E8D57u;
        n0 = (p1 >> 32) ^ c1 ^ k0;
        n2 = (p0 >> 32) ^ c3 ^ k1;
        c1 = p1 & lo;
        c3 = p0 & lo;
        c0 = n0;
        c2 = n2;
        k0 = (k0 + 0x9E3779B9u) & lo;
        k1 = (k1 + 0xBB67AE85u) & lo;
    }
    for (j = 0; j < CP_PHILOX_LANES; j++) {
        out[4 * j] = (uint32_t)c0[j]; out[4 * j + 1] = (uint32_t)c1[j];
        out[4 * j + 2] = (uint32_t)c2[j]; out[4 * j + 3] = (uint32_t)c3[j];
    }
}
#else
static inline void cp_philox_lanes(uint64_t ctr0, uint64_t key, uint64_t step, uint32_t *out)
{
    uint32_t c0[CP_PHILOX_LANES], c1[CP_PHILOX_LANES], c2[CP_PHILOX_LANES], c3[CP_PHILOX_LANES];
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    int j, r;
    for (j = 0; j < CP_PHILOX_LANES; j++) {
        uint64_t c = ctr0 + (uint64_t)j;
        c0[j] = (uint32_t)c; c1[j] = (uint32_t)(c >> 32);
        c2[j] = (uint32_t)step; c3[j] = (uint32_t)(step >> 32);
    }
    for (r = 0; r < 10; r++) {
        for (j = 0; j < CP_PHILOX_LANES; j++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[j];
            uint64_t p1 = (uint64_t)0xCD9E8D57u * c2[j];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
            c1[j] = (uint32_t)p1;
            c3[j] = (uint32_t)p0;
            c0[j] = n0;
            c2[j] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (j = 0; j < CP_PHILOX_LANES; j++) {
        out[4 * j] = c0[j]; out[4 * j + 1] = c1[j]; out[4 * j + 2] = c2[j]; out[4 * j + 3] = c3[j];
    }
}
#endif

/* y[0:n] = x * (keep ? scale : 0) for the elements first .. first + n - 1 of the
   whole array (first a multiple of 4); y may be x. */
#define CP_DROPOUT_SPAN(T, NAME, SFX, ATTR)                                            \
ATTR static void cp_dropout_##NAME##SFX(const T *x, T *y, ptrdiff_t n, uint64_t first, \
                                        uint64_t key, uint64_t step, uint64_t thr,     \
                                        T scale)                                       \
{                                                                                      \
    uint32_t r[4 * CP_PHILOX_LANES];                                                   \
    ptrdiff_t i, k, m;                                                                 \
    for (i = 0; i < n; i += 4 * CP_PHILOX_LANES) {                                     \
        cp_philox_lanes((first + (uint64_t)i) / 4, key, step, r);                      \
        m = n - i < 4 * CP_PHILOX_LANES ? n - i : 4 * CP_PHILOX_LANES;                 \
        for (k = 0; k < m; k++)                                                        \
            y[i + k] = x[i + k] * ((uint64_t)r[k] >= thr ? scale : (T)0);              \
    }                                                                                  \
}

/* the raw words, for the known-answer test: out[4 j + w], j < n_counters */
static inline void cp_philox_words(uint64_t ctr0, uint64_t key, uint64_t step, uint32_t *out,
                                   ptrdiff_t n_counters)
{
    uint32_t r[4 * CP_PHILOX_LANES];
    ptrdiff_t j, k;
    for (j = 0; j < n_counters; j += CP_PHILOX_LANES) {
        cp_philox_lanes(ctr0 + (uint64_t)j, key, step, r);
        for (k = 0; k < 4 * CP_PHILOX_LANES && 4 * j + k < 4 * n_counters; k++)
            out[4 * j + k] = r[k];
    }
}

#ifdef CP_X86_DISPATCH
CP_DROPOUT_SPAN(float, f32, _base, )
CP_DROPOUT_SPAN(double, f64, _base, )
CP_DROPOUT_SPAN(float, f32, _avx2, __attribute__((target("avx2"))))
CP_DROPOUT_SPAN(double, f64, _avx2, __attribute__((target("avx2"))))
CP_DROPOUT_SPAN(float, f32, _avx512, CP_AVX512_ATTR)
CP_DROPOUT_SPAN(double, f64, _avx512, CP_AVX512_ATTR)
#else
CP_DROPOUT_SPAN(float, f32, _base, )
CP_DROPOUT_SPAN(double, f64, _base, )
#endif

static inline void cp_dropout_f32(const float *x, float *y, ptrdiff_t n, uint64_t first,
                                  uint64_t key, uint64_t step, uint64_t thr, float scale)
{ CP_DISPATCH3(cp_dropout_f32, (x, y, n, first, key, step, thr, scale)); }
static inline void cp_dropout_f64(const double *x, double *y, ptrdiff_t n, uint64_t first,
                                  uint64_t key, uint64_t step, uint64_t thr, double scale)
{ CP_DISPATCH3(cp_dropout_f64, (x, y, n, first, key, step, thr, scale)); }

#endif /* CYPROP_PHILOX_H */
