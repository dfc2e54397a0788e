/*
 * _vecmath.h - element-wise numerics for the cyprop kernels.
 *
 * Branch-free exp, tanh and sigmoid that the compiler vectorizes (written with
 * selects, integer bit tricks and no libm calls), and the loops over spans
 * that use them. Each span loop is compiled twice on x86-64 - for the
 * baseline ISA and for AVX2+FMA - and the AVX2 copy is picked at run time,
 * so a portable build is still fast on modern CPUs.
 *
 * exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two
 * parts, Cody-Waite), exp(r) by the Cephes polynomial (float) or Pade
 * approximant (double); 2^n is built in the exponent bits. n is found with
 * the "magic number" rounding (x/ln2 + 1.5*2^p) whose low mantissa bits then
 * hold n, so no float->int conversion is needed. Results below ~3e-38 (float)
 * / ~2e-307 (double) are flushed to zero; overflow gives +inf; NaN propagates.
 * tanh(x): float, a rational function x P(x^2) / Q(x^2) fitted for cyprop;
 * double, x + x^3 P(x^2) (Cephes) for |x| < 0.625, else
 * sign(x) (1 - 2 / (exp(2|x|) + 1)). sigmoid(x) = 1 / (1 + exp(-x)): where
 * exp(-x) overflows, its +inf gives exactly 0, so no case needs a branch.
 * Accuracy: a few ulp (see tests/test_activations.py).
 */
#ifndef CYPROP_VECMATH_H
#define CYPROP_VECMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* x86 with GCC or clang: every span loop is built twice, a baseline and an
   AVX2 copy, and dispatched at run time (see CP_DISPATCH) */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(CYPROP_NO_DISPATCH)
#define CP_X86_DISPATCH 1
#include <immintrin.h>   /* for the AVX2 copies' max (see CP_ROW_MAX) */
#endif

enum { CP_ACT_NONE = 0, CP_ACT_RELU = 1, CP_ACT_SIGMOID = 2, CP_ACT_TANH = 3 };

static inline float cp_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t cp_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static inline double cp_f64_from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t cp_bits_from_f64(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* ------------------------------------------------------------------ float */
/* exp's argument range: below CP_EXPF_MIN the result is flushed to 0, above
   CP_EXPF_OVERFLOW it is +inf; the core is evaluated on [MIN, MAX]. */
#define CP_EXPF_MIN (-86.5f)
#define CP_EXPF_MAX 88.72f
#define CP_EXPF_OVERFLOW 88.7228390520683f

/* x clamped to [CP_EXPF_MIN, CP_EXPF_MAX]; NaN stays NaN ("c > x ? c : x"
   keeps x when the comparison is false) */
static inline float cp_expf_clamp(float x)
{
    float xc = CP_EXPF_MIN > x ? CP_EXPF_MIN : x;
    return CP_EXPF_MAX < xc ? CP_EXPF_MAX : xc;
}

/* r = x - n ln 2 with n = round(x / ln 2) (ln 2 in two parts, Cody-Waite), by
   the magic-number rounding: *t = x / ln 2 + magic holds n (plus the integer
   that magic adds past 1.5 * 2^23) in its low bits. Valid for |x| < 2^22 ln 2;
   the callers clamp x, or flush the result, outside their range. */
static inline float cp_expf_reduce_magic(float x, float magic, float *t)
{
    *t = x * 1.44269504088896341f + magic;
    float fn = *t - magic;                               /* n */
    float r = x - fn * 0.693359375f;
    return r - fn * -2.12194440e-4f;
}

/* cp_expf_reduce_magic for xc already clamped (cp_expf_clamp); sets *n */
static inline float cp_expf_reduce(float xc, int32_t *n)
{
    const float magic = 12582912.0f;                     /* 1.5 * 2^23 */
    float t, r = cp_expf_reduce_magic(xc, magic, &t);
    *n = (int32_t)(cp_bits_from_f32(t) - cp_bits_from_f32(magic));
    return r;
}

/* 2^k for -126 <= k <= 127, built in the exponent bits */
static inline float cp_pow2f(int32_t k) { return cp_f32_from_bits((uint32_t)(k + 127) << 23); }

/* exp(r) for |r| <= ln2 / 2: the Cephes polynomial 1 + r + r^2 q(r), q of
   degree 5 with these coefficients (c0 first) */
#define CP_EXPF_C0 5.0000001201e-1f
#define CP_EXPF_C1 1.6666665459e-1f
#define CP_EXPF_C2 4.1665795894e-2f
#define CP_EXPF_C3 8.3334519073e-3f
#define CP_EXPF_C4 1.3981999507e-3f
#define CP_EXPF_C5 1.9875691500e-4f

/* ... in Horner's form */
static inline float cp_expf_poly(float r)
{
    float q = CP_EXPF_C5;
    q = q * r + CP_EXPF_C4;
    q = q * r + CP_EXPF_C3;
    q = q * r + CP_EXPF_C2;
    q = q * r + CP_EXPF_C1;
    q = q * r + CP_EXPF_C0;
    return q * (r * r) + r + 1.0f;
}

/* exp(r) - 1 = r + r^2 q(r) for |r| <= ln2 / 2 (the softmax exp), q of
   degree 4: a minimax fit of (exp(r) - 1 - r) / r^2 for the relative error
   of exp (Remez exchange in 40-digit arithmetic; the fit's own error is
   3.1e-9, 0.03 ulp, far below float's rounding). Cephes' q, of degree 5, is
   one multiply-add more for nothing a float can hold. q by Estrin's scheme,
   q = (d0 + d1 r) + r^2 ((d2 + d3 r) + r^2 d4): 3 dependent multiply-adds
   after r^2 where Horner's form has 4. The softmax exp loop is bound by its
   dependency chain (the chain's latency over the iterations the out-of-order
   window holds), so both the chain and the count of operations set its
   speed. */
#define CP_EXPM1F_D0 0x1.fffffcp-2f    /* 0.49999994 */
#define CP_EXPM1F_D1 0x1.555492p-3f    /* 0.16666521 */
#define CP_EXPM1F_D2 0x1.5558f2p-5f    /* 0.04166839 */
#define CP_EXPM1F_D3 0x1.1239d4p-7f    /* 0.00836871 */
#define CP_EXPM1F_D4 0x1.6a244cp-10f   /* 0.0013814613 */
static inline float cp_expm1f_poly_estrin(float r)
{
    float r2 = r * r;
    float a = CP_EXPM1F_D1 * r + CP_EXPM1F_D0;
    float b = CP_EXPM1F_D3 * r + CP_EXPM1F_D2;
    float q = (CP_EXPM1F_D4 * r2 + b) * r2 + a;
    return q * r2 + r;
}

/* exp(xc) for xc already clamped (cp_expf_clamp): 2^n exp(r), scaled by
   2^(n-1) and then 2, as 2^n itself is +inf for n = 128 */
static inline float cp_expf_core(float xc)
{
    int32_t n;
    float p = cp_expf_poly(cp_expf_reduce(xc, &n));
    return p * cp_pow2f(n - 1) * 2.0f;
}

/* A NaN x needs no select of its own: it passes the clamp, and NaN times any
   scale is NaN. */
static inline float cp_expf(float x)
{
    float res = cp_expf_core(cp_expf_clamp(x));
    res = x > CP_EXPF_OVERFLOW ? INFINITY : res;
    return x < CP_EXPF_MIN ? 0.0f : res;
}

/* cp_expf for x <= 0, -inf or NaN (softmax's z - max), in fewer operations:
   the softmax exp loop is bound by its count of operations and their chain.
   - No clamp: for -86.5 <= x <= 0, n = round(x / ln 2) is in [-125, 0], and
     below that the flush to 0 replaces whatever the core made of x (gcc had
     already dropped the clamp as dead there). A NaN x stays NaN.
   - The magic number carries the exponent bias: t = x / ln2 + 1.5 * 2^23
     + 127 holds n + 127 in its low bits, and those bits shifted into the
     exponent field are 2^n (the magic's own bits shift out): one shift, no
     integer add.
   - 2^n (1 + (exp(r) - 1)) is one multiply-add, (exp(r) - 1) 2^n + 2^n:
     the same bits as the product where there is FMA (scaling by 2^n is
     exact). Without FMA the product can round as a subnormal near
     n = -125, 1 ulp off.
   15 vector operations a vector of 8 against 17 with Cephes' q and the bias
   added apart, and 1.02 ulp at most against 1.03 (every float in
   [-86.5, 0]): the exp loop 11-14% faster in a C harness, float32
   softmax-CE 6-9%. */
static inline float cp_expf_nonpos(float x)
{
    float t, r = cp_expf_reduce_magic(x, 12583039.0f, &t);   /* 1.5 * 2^23 + 127 */
    float scale = cp_f32_from_bits(cp_bits_from_f32(t) << 23);   /* 2^n */
    float res = cp_expm1f_poly_estrin(r) * scale + scale;
    return x < CP_EXPF_MIN ? 0.0f : res;
}

/* 1 / (1 + exp(-x)). exp(-x) overflows to +inf for x < -88.7, giving exactly
   0: no NaN, no branch. cp_expf's flush to 0 below -86.5 is left out: the
   clamped exp(-86.5) = 2.6e-38 gives 1 / (1 + 2.6e-38) = 1 all the same. */
static inline float cp_sigmoidf(float x)
{
    float y = -x;
    float e = cp_expf_core(cp_expf_clamp(y));
    e = y > CP_EXPF_OVERFLOW ? INFINITY : e;
    return 1.0f / (1.0f + e);
}

/* tanh(x) = x P(x^2) / Q(x^2), a rational fit of degrees 13/6 to tanh on [0, 9]
   made for cyprop (linear least squares on x P - tanh(x) Q over 44000
   points of (0, 9], reweighted 200 times towards the minimax relative error:
   7e-9 in exact arithmetic; 5 ulp in float32 over every 4th float in
   [2^-20, 20], where the float coefficients dominate): about half the work of
   1 - 2 / (exp(2|x|) + 1). P(0) = Q(0) = 1, so tiny x and -0 come back
   exactly. tanh is odd and so is the fit (bit for bit: xP/Q only changes
   sign with x), so it is evaluated at |x| and given x's sign back: one
   clamp and one select per side instead of two, a third fewer instructions
   in the vectorized loop, the same value for every float (checked over all
   2^32). The result is clamped to 1, |x| >= 9 gives 1 (float32 tanh rounds
   to 1 from 9.01); NaN propagates through every step. */
static inline float cp_tanhf(float x)
{
    uint32_t sign = cp_bits_from_f32(x) & 0x80000000u;
    float ax = cp_f32_from_bits(cp_bits_from_f32(x) & 0x7fffffffu);
    float xc = 9.0f < ax ? 9.0f : ax;                    /* NaN stays NaN */
    float z = xc * xc;
    float p = -8.562134291e-14f;
    p = p * z + 5.309486878e-11f;
    p = p * z - 2.029718615e-08f;
    p = p * z + 1.117350348e-05f;
    p = p * z + 3.105886979e-03f;
    p = p * z + 1.308577210e-01f;
    p = p * z + 1.0f;
    float q = 2.548897755e-04f;
    q = q * z + 2.450296842e-02f;
    q = q * z + 4.641910195e-01f;
    q = q * z + 1.0f;
    float r = xc * p / q;
    r = 1.0f < r ? 1.0f : r;
    r = ax >= 9.0f ? 1.0f : r;
    return cp_f32_from_bits(cp_bits_from_f32(r) | sign);
}

/* ----------------------------------------------------------------- double */
/* as for float: flushed to 0 below CP_EXP_MIN, +inf above CP_EXP_OVERFLOW */
#define CP_EXP_MIN (-707.0)
#define CP_EXP_MAX 709.78
#define CP_EXP_OVERFLOW 709.782712893384

static inline double cp_exp_clamp(double x)
{
    double xc = CP_EXP_MIN > x ? CP_EXP_MIN : x;
    return CP_EXP_MAX < xc ? CP_EXP_MAX : xc;
}

/* 2^k for -1022 <= k <= 1023, built in the exponent bits */
static inline double cp_pow2(int64_t k) { return cp_f64_from_bits((uint64_t)(k + 1023) << 52); }

/* The Pade form of exp(r), |r| <= ln2 / 2 (Cephes): exp(r) = (q + p) / (q - p)
   = 1 + 2 p / (q - p), with p = r P(r^2) and q = Q(r^2) */
static inline double cp_exp_pade_P(double xx)
{
    return (1.26177193074810590878e-4 * xx + 3.02994407707441961300e-2) * xx
           + 9.99999999999999999910e-1;
}

static inline double cp_exp_pade_Q(double xx)
{
    return ((3.00198505138664455042e-6 * xx + 2.52448340349684104192e-3) * xx
            + 2.27265548208155028766e-1) * xx + 2.00000000000000000009e0;
}

/* as cp_expf_reduce_magic: r = x - n ln 2, *t = x / ln 2 + magic holding n
   (plus the integer that magic adds past 1.5 * 2^52) in its low bits */
static inline double cp_exp_reduce_magic(double x, double magic, double *t)
{
    *t = x * 1.4426950408889634073599 + magic;
    double fn = *t - magic;                              /* n */
    double r = x - fn * 6.93145751953125e-1;
    return r - fn * 1.42860682030941723212e-6;
}

/* exp(xc) for xc already clamped (cp_exp_clamp), in pieces: exp(xc) =
   2^n exp(r) = 2^n (q + p) / (q - p), in the Pade form; sets *n. */
static inline void cp_exp_pade(double xc, double *p, double *q, int64_t *n)
{
    const double magic = 6755399441055744.0;             /* 1.5 * 2^52 */
    double t, r = cp_exp_reduce_magic(xc, magic, &t);
    *n = (int64_t)(cp_bits_from_f64(t) - cp_bits_from_f64(magic));
    double xx = r * r;
    *p = r * cp_exp_pade_P(xx);
    *q = cp_exp_pade_Q(xx);
}

/* scaled by 2^(n-1) and then 2, as 2^n itself is +inf for n = 1024 */
static inline double cp_exp_core(double xc)
{
    double px, qx;
    int64_t n;
    cp_exp_pade(xc, &px, &qx, &n);
    return (1.0 + 2.0 * (px / (qx - px))) * cp_pow2(n - 1) * 2.0;
}

/* as cp_expf: a NaN x passes the clamps and the core as NaN */
static inline double cp_exp(double x)
{
    double res = cp_exp_core(cp_exp_clamp(x));
    res = x > CP_EXP_OVERFLOW ? INFINITY : res;
    return x < CP_EXP_MIN ? 0.0 : res;
}

/* cp_exp for x <= 0, -inf or NaN (softmax's z - max), in fewer operations,
   as cp_expf_nonpos: no clamp (for -707 <= x <= 0, n is in [-1020, 0], and
   below the flush to 0 replaces whatever the core made of x); the magic
   number carries the exponent bias, so t's low bits shifted into the
   exponent field are 2^n; and 2^n (1 + 2 p / (q - p)) is one multiply-add,
   ((p + p) / (q - p)) 2^n + 2^n. The same bits as cp_exp_core's where there
   is FMA (doubling and scaling by 2^n are exact), in 19 vector operations a
   vector of 4 against 21 when 2^n and 2^(n+1) were built apart: the exp loop
   10% faster in a C harness, float64 softmax-CE 7-9%. */
static inline double cp_exp_nonpos(double x)
{
    double t, r = cp_exp_reduce_magic(x, 6755399441056767.0, &t);   /* 1.5 * 2^52 + 1023 */
    double scale = cp_f64_from_bits(cp_bits_from_f64(t) << 52);   /* 2^n */
    double xx = r * r, p = r * cp_exp_pade_P(xx);
    double res = ((p + p) / (cp_exp_pade_Q(xx) - p)) * scale + scale;
    return x < CP_EXP_MIN ? 0.0 : res;
}

/* sigmoid(x) = 1 / (1 + exp(-x)) with exp(-x) = 2 scale (q + p) / (q - p),
   scale = 2^(n-1): = h / (h + scale (q + p)), h = (q - p) / 2 - one
   division, not two (21% faster; 2.48 ulp at most against 2.45 for
   1 / (1 + exp(-x)) over 2e7 points). Halving keeps h + scale (q + p)
   finite up to exp(-x) = 1.8e308. exp(-x) clamped as in cp_exp: where it
   would overflow the result is 0; where it would flush to 0 the clamped
   value, 2^-1020, gives exactly 1 anyway; NaN passes through. */
static inline double cp_sigmoid(double x)
{
    double y = -x, px, qx, scale;
    int64_t n;
    cp_exp_pade(cp_exp_clamp(y), &px, &qx, &n);
    scale = cp_pow2(n - 1);
    double h = 0.5 * (qx - px);
    double res = h / (h + (qx + px) * scale);
    return y > CP_EXP_OVERFLOW ? 0.0 : res;
}

static inline double cp_tanh(double x)
{
    double ax = fabs(x);
    double z = x * x;
    double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
               - 1.61468768441708447952e3;
    double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
               + 4.84406305325125486048e3;
    double small = x + x * z * (p / q);
    double e = cp_exp(2.0 * ax);
    double big = copysign(1.0 - 2.0 / (e + 1.0), x);
    return ax < 0.625 ? small : big;
}

/* Ask for p[0:bytes] to be brought into the cache ahead of use, if it is at
   most CP_PREFETCH_MAX bytes. The softmax kernels call it on the next row's
   logits before they start on this row: a row is read first by a fast max
   pass, and that pass waited on memory - the hardware prefetcher does not
   run ahead into the next row while this one is computed in L1. In a C
   harness over (4096, 1000) float32 rows: 9% faster. Longer rows are left
   to the hardware prefetcher, their max pass a sequential run long enough
   for it: softmax-CE, 4096 rows at 1 thread, prefetching the next row was
   3-13% faster for rows of 2-4.8 KB (float32 500 and 1000 classes, float64
   500 and 600) and 1-6.5% slower for rows of 6-16 KB (float32 1500 and 2000,
   float64 750, 1000 and 2000); prefetching only a long row's first 4 KB was
   slower still. (Prefetching the gradient row for writing was slower.) */
#define CP_PREFETCH_MAX 5120
static inline void cp_prefetch(const void *p, ptrdiff_t bytes)
{
#if defined(__GNUC__)
    const char *c = (const char *)p;
    ptrdiff_t off;
    if (bytes > CP_PREFETCH_MAX)
        bytes = 0;   /* not "return": gcc 12 then dropped every prefetch in _softmax_ce */
    for (off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
#else
    (void)p; (void)bytes;
#endif
}

/* ------------------------------------------------------------ span loops */
/* The reductions below keep 8 float64 partial sums (lanes k = 0..7, added to in
   order); this adds them in one fixed order, so every copy of a loop and every
   thread count gives the same total. */
static inline double cp_sum8(const double *acc)
{
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* The largest non-NaN element of z[:n] (-inf if there is none). With GCC or
   clang it is kept lane-wise in four 32-byte vectors: "m = z > m ? z : m" as
   a compare and a bitwise select, which vectorizes without -ffast-math (gcc
   will not turn a scalar max reduction into one). Four accumulators, not
   one, because each select waits for the previous one (3 dependent
   instructions): one accumulator took 18% of a cache-resident softmax row
   of 1000 floats, four take 7%. The AVX2 copies do the select in one
   vmaxps/vmaxpd, whose result is its first operand where that is greater,
   else its second: "v > acc ? v : acc" exactly, NaN and signed zeros
   included. That made float64 softmax-CE 7% faster; float32's row max fell
   from 12.5% of the kernel's samples to 4%, but it ran beside the exp loop
   that bounds the kernel, so no time was saved there. max is exact, so the
   lane order cannot change the result. A NaN in the row is not reported
   here: exp(NaN - m) is NaN, so it reaches the row's sum, loss and gradient
   all the same. Other compilers get the same "z > m ? z : m" as a scalar
   loop. */
#if defined(__GNUC__)
typedef float cp_v8sf __attribute__((vector_size(32)));
typedef int32_t cp_v8si __attribute__((vector_size(32)));
typedef double cp_v4df __attribute__((vector_size(32)));
typedef int64_t cp_v4di __attribute__((vector_size(32)));
typedef float cp_v4sf __attribute__((vector_size(16)));
/* acc = v > acc ? v : acc, lane-wise (all ones where v > acc; never for NaN) */
#define CP_VMAX(VT, VI, acc, v)                                                        \
    do { VI sel_ = (v) > (acc); (acc) = (VT)((sel_ & (VI)(v)) | (~sel_ & (VI)(acc))); } while (0)
/* CP_VMAX_<dtype><copy>: the select each copy of CP_ROW_MAX uses */
#define CP_VMAX_f32_base(acc, v) CP_VMAX(cp_v8sf, cp_v8si, acc, v)
#define CP_VMAX_f64_base(acc, v) CP_VMAX(cp_v4df, cp_v4di, acc, v)
#define CP_VMAX_f32_avx2(acc, v) ((acc) = (cp_v8sf)_mm256_max_ps((__m256)(v), (__m256)(acc)))
#define CP_VMAX_f64_avx2(acc, v) ((acc) = (cp_v4df)_mm256_max_pd((__m256d)(v), (__m256d)(acc)))
/* the AVX-512 copy of the spans (unused for the row max, which stays AVX2) */
#define CP_VMAX_f32_avx512 CP_VMAX_f32_avx2
#define CP_VMAX_f64_avx512 CP_VMAX_f64_avx2
#define CP_ROW_MAX(T, NAME, VT, L, SFX, ATTR)                                          \
ATTR static T cp_row_max_##NAME##SFX(const T *z, ptrdiff_t n)                          \
{                                                                                      \
    VT m0, m1, m2, m3, v0, v1, v2, v3; T m = -INFINITY; ptrdiff_t i; int k;            \
    for (k = 0; k < L; k++) m0[k] = -INFINITY;                                         \
    m1 = m2 = m3 = m0;                                                                 \
    for (i = 0; i + 4 * L <= n; i += 4 * L) {                                          \
        memcpy(&v0, z + i, sizeof v0);         memcpy(&v1, z + i + L, sizeof v1);      \
        memcpy(&v2, z + i + 2 * L, sizeof v2); memcpy(&v3, z + i + 3 * L, sizeof v3);  \
        CP_VMAX_##NAME##SFX(m0, v0); CP_VMAX_##NAME##SFX(m1, v1);                      \
        CP_VMAX_##NAME##SFX(m2, v2); CP_VMAX_##NAME##SFX(m3, v3);                      \
    }                                                                                  \
    CP_VMAX_##NAME##SFX(m0, m1); CP_VMAX_##NAME##SFX(m2, m3); CP_VMAX_##NAME##SFX(m0, m2); \
    for (; i + L <= n; i += L) {                                                       \
        memcpy(&v0, z + i, sizeof v0);                                                 \
        CP_VMAX_##NAME##SFX(m0, v0);                                                   \
    }                                                                                  \
    for (k = 0; k < L; k++) m = m0[k] > m ? m0[k] : m;                                 \
    for (; i < n; i++) m = z[i] > m ? z[i] : m;                                        \
    return m;                                                                          \
}
#else
#define CP_ROW_MAX(T, NAME, VT, L, SFX, ATTR)                                          \
ATTR static T cp_row_max_##NAME##SFX(const T *z, ptrdiff_t n)                          \
{                                                                                      \
    T m = -INFINITY; ptrdiff_t i;                                                      \
    for (i = 0; i < n; i++) m = z[i] > m ? z[i] : m;                                   \
    return m;                                                                          \
}
#endif

/* CP_TARGET_DOT: see its use in CP_SPANS. With GCC or clang the 8 partial sums
   are the lanes of a vector and the "t != 0" select a bitwise and with the
   compare's mask (as a scalar select, gcc compiled it to branches, 3x slower);
   other compilers get the same sums, lane for lane, as a scalar loop. */
#define CP_TARGET_DOT_TAIL                                                             \
    for (; i < n; i++) {                                                               \
        double tk = (double)t[i], term = tk * ((double)m - (double)z[i]);              \
        ts[0] += tk;                                                                   \
        tz[0] += t[i] != 0 ? term : 0.0;                                               \
    }                                                                                  \
    *t_sum = cp_sum8(ts);                                                              \
    return cp_sum8(tz);
#if defined(__GNUC__)
/* lanes 0-3 and 4-7 of the 8 partial sums, from elements i..i+3 and i+4..i+7 */
#define CP_TARGET_DOT_HALF(LT, OFF, TS, TZ)                                            \
    do {                                                                               \
        LT tv_, zv_; cp_v4df td_, term_;                                               \
        memcpy(&tv_, t + i + OFF, sizeof tv_);                                         \
        memcpy(&zv_, z + i + OFF, sizeof zv_);                                         \
        td_ = __builtin_convertvector(tv_, cp_v4df);                                   \
        term_ = td_ * (md - __builtin_convertvector(zv_, cp_v4df));                    \
        TS += td_;                                                                     \
        TZ += (cp_v4df)((cp_v4di)term_ & (cp_v4di)(td_ != 0));                         \
    } while (0)
#define CP_TARGET_DOT(T, NAME, LT, SFX, ATTR)                                          \
ATTR static double cp_target_dot_##NAME##SFX(const T *z, const T *t, T m, ptrdiff_t n, \
                                             double *t_sum)                            \
{                                                                                      \
    cp_v4df ts_lo = {0, 0, 0, 0}, ts_hi = ts_lo, tz_lo = ts_lo, tz_hi = ts_lo;         \
    cp_v4df md = ts_lo + (double)m;                                                    \
    double ts[8], tz[8];                                                               \
    ptrdiff_t i;                                                                       \
    int k;                                                                             \
    for (i = 0; i + 8 <= n; i += 8) {                                                  \
        CP_TARGET_DOT_HALF(LT, 0, ts_lo, tz_lo);                                       \
        CP_TARGET_DOT_HALF(LT, 4, ts_hi, tz_hi);                                       \
    }                                                                                  \
    for (k = 0; k < 4; k++) {                                                          \
        ts[k] = ts_lo[k]; ts[k + 4] = ts_hi[k]; tz[k] = tz_lo[k]; tz[k + 4] = tz_hi[k]; \
    }                                                                                  \
    CP_TARGET_DOT_TAIL                                                                 \
}
#else
#define CP_TARGET_DOT(T, NAME, LT, SFX, ATTR)                                          \
ATTR static double cp_target_dot_##NAME##SFX(const T *z, const T *t, T m, ptrdiff_t n, \
                                             double *t_sum)                            \
{                                                                                      \
    double ts[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tz[8] = {0, 0, 0, 0, 0, 0, 0, 0};         \
    ptrdiff_t i, k;                                                                    \
    for (i = 0; i + 8 <= n; i += 8)                                                    \
        for (k = 0; k < 8; k++) {                                                      \
            double tk = (double)t[i + k], term = tk * ((double)m - (double)z[i + k]);  \
            ts[k] += tk;                                                               \
            tz[k] += t[i + k] != 0 ? term : 0.0;                                       \
        }                                                                              \
    CP_TARGET_DOT_TAIL                                                                 \
}
#endif

/* e[i] = exp(z[i] - m), m = max(z); returns sum_i e[i] accumulated in double (8
   lanes, added in a fixed order). The sum runs 16 wide: with 8 sums (two vectors of
   doubles) each add waited for the last: a cache-resident softmax-CE row of 1000
   took 9% longer in float32, its exp and sum 5% longer in float64. */
#define CP_EXP_SHIFT(T, NAME, EXP, SFX, ATTR)                                          \
ATTR static double cp_exp_shift_##NAME##SFX(const T *z, T m, T *e, ptrdiff_t n)        \
{                                                                                      \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                          \
    ptrdiff_t i, k;                                                                    \
    for (i = 0; i < n; i++) e[i] = EXP(z[i] - m);                                      \
    i = 0;                                                                             \
    if (n >= 16) {  /* shorter rows skip it: its set-up cost up to 32% at 10 classes */ \
        double acc2[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                     \
        for (; i + 16 <= n; i += 16)                                                   \
            for (k = 0; k < 8; k++) {                                                  \
                acc[k] += (double)e[i + k];                                            \
                acc2[k] += (double)e[i + 8 + k];                                       \
            }                                                                          \
        for (k = 0; k < 8; k++) acc[k] += acc2[k];                                     \
    }                                                                                  \
    for (; i + 8 <= n; i += 8)                                                         \
        for (k = 0; k < 8; k++) acc[k] += (double)e[i + k];                            \
    for (; i < n; i++) acc[0] += (double)e[i];                                         \
    return cp_sum8(acc);                                                               \
}

/* CP_SPANS(SUFFIX, ATTR) defines every loop with the given target attribute. */
#define CP_SPANS(SFX, ATTR)                                                            \
ATTR static void cp_act_forward_f32##SFX(const float *x, float *y, ptrdiff_t n, int act) \
{                                                                                      \
    ptrdiff_t i;                                                                       \
    if (act == CP_ACT_RELU)         { for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; } \
    else if (act == CP_ACT_SIGMOID) { for (i = 0; i < n; i++) y[i] = cp_sigmoidf(x[i]); }   \
    else if (act == CP_ACT_TANH)    { for (i = 0; i < n; i++) y[i] = cp_tanhf(x[i]); }      \
    else if (x != y)                { for (i = 0; i < n; i++) y[i] = x[i]; }                \
}                                                                                      \
ATTR static void cp_act_forward_f64##SFX(const double *x, double *y, ptrdiff_t n, int act) \
{                                                                                      \
    ptrdiff_t i;                                                                       \
    if (act == CP_ACT_RELU)         { for (i = 0; i < n; i++) y[i] = x[i] < 0.0 ? 0.0 : x[i]; } \
    else if (act == CP_ACT_SIGMOID) { for (i = 0; i < n; i++) y[i] = cp_sigmoid(x[i]); }    \
    else if (act == CP_ACT_TANH)    { for (i = 0; i < n; i++) y[i] = cp_tanh(x[i]); }       \
    else if (x != y)                { for (i = 0; i < n; i++) y[i] = x[i]; }                \
}                                                                                      \
/* dx = dy * act'(.) written in the forward output y; relu: dy * (y > 0) (NaN in dy       \
   propagates, as NumPy's dy * (y > 0)) */                                             \
ATTR static void cp_act_backward_f32##SFX(const float *dy, const float *y, float *dx,   \
                                          ptrdiff_t n, int act)                         \
{                                                                                      \
    ptrdiff_t i;                                                                       \
    if (act == CP_ACT_RELU)         { for (i = 0; i < n; i++) dx[i] = dy[i] * (float)(y[i] > 0.0f); } \
    else if (act == CP_ACT_SIGMOID) { for (i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]); } \
    else if (act == CP_ACT_TANH)    { for (i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]); } \
    else if (dx != dy)              { for (i = 0; i < n; i++) dx[i] = dy[i]; }                        \
}                                                                                      \
ATTR static void cp_act_backward_f64##SFX(const double *dy, const double *y, double *dx, \
                                          ptrdiff_t n, int act)                         \
{                                                                                      \
    ptrdiff_t i;                                                                       \
    if (act == CP_ACT_RELU)         { for (i = 0; i < n; i++) dx[i] = dy[i] * (double)(y[i] > 0.0); } \
    else if (act == CP_ACT_SIGMOID) { for (i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0 - y[i]); } \
    else if (act == CP_ACT_TANH)    { for (i = 0; i < n; i++) dx[i] = dy[i] * (1.0 - y[i] * y[i]); } \
    else if (dx != dy)              { for (i = 0; i < n; i++) dx[i] = dy[i]; }                       \
}                                                                                      \
CP_EXP_SHIFT(float, f32, cp_expf_nonpos, SFX, ATTR)                                   \
CP_EXP_SHIFT(double, f64, cp_exp_nonpos, SFX, ATTR)                                   \
/* A softmax-CE row's probability-target sums, in float64 with 8 partial sums          \
   each (added in a fixed order): *t_sum = sum_i t[i]; returns sum_i t[i] (m - z[i])   \
   over t[i] != 0 (zero target mass adds nothing, even against a -inf logit;           \
   a NaN target is != 0 and propagates). */                                            \
CP_TARGET_DOT(float, f32, cp_v4sf, SFX, ATTR)                                          \
CP_TARGET_DOT(double, f64, cp_v4df, SFX, ATTR)                                         \
CP_ROW_MAX(float, f32, cp_v8sf, 8, SFX, ATTR)                                          \
CP_ROW_MAX(double, f64, cp_v4df, 4, SFX, ATTR)                                         \
/* g[:n] *= a (in the data's dtype) */                                                 \
ATTR static void cp_scale_f32##SFX(float *g, float a, ptrdiff_t n)                    \
{ ptrdiff_t i; for (i = 0; i < n; i++) g[i] *= a; }                                    \
ATTR static void cp_scale_f64##SFX(double *g, double a, ptrdiff_t n)                  \
{ ptrdiff_t i; for (i = 0; i < n; i++) g[i] *= a; }

/* One Adam element: DEN sets d, the denominator's second moment */
#define CP_ADAM_LOOP(T, SQRT, DEN)                                                     \
    for (i = 0; i < n; i++) {                                                          \
        g = wd != 0 ? grad[i] + wd * p[i] : grad[i];                                   \
        m[i] = b1 * m[i] + one_b1 * g;                                                 \
        v[i] = b2 * v[i] + one_b2 * g * g;                                             \
        DEN;                                                                           \
        p[i] = p[i] * decay - step_size * m[i] / (SQRT(d) * inv_sqrt_bc2 + eps);       \
    }
/* One RMSprop element: AVG sets avg from s (and the centered mean), UPDATE p */
#define CP_RMSPROP_LOOP(AVG, UPDATE)                                                   \
    for (i = 0; i < n; i++) {                                                          \
        g = wd != 0 ? grad[i] + wd * p[i] : grad[i];                                   \
        s = alpha * sq[i] + one_alpha * g * g;                                         \
        sq[i] = s;                                                                     \
        AVG;                                                                           \
        UPDATE;                                                                        \
    }

/* Optimizer updates over spans (see _optim.pyx for the formulas, PyTorch's).
   Loop-invariant flags are selects, so gcc vectorizes every variant. The
   AVX2 copy is built without FMA: no multiply-add is contracted, so every
   update is bit-identical to the baseline copy's (sqrt and division are
   correctly rounded in both), while Adam's sqrt and division run 4 (double)
   or 8 (float) wide: 2.2x faster than SSE2 on 7.5k parameters. */
#define CP_OPT_SPANS(T, NAME, SQRT, SFX, ATTR)                                         \
ATTR static void cp_sgd_##NAME##SFX(T *p, const T *grad, T *buf, ptrdiff_t n, T lr,    \
                                    T mom, T damp, T wd, int use_momentum,             \
                                    int nesterov, int first_step)                      \
{                                                                                      \
    ptrdiff_t i; T g, b;                                                               \
    if (!use_momentum) {                                                               \
        for (i = 0; i < n; i++) {                                                      \
            g = wd != 0 ? grad[i] + wd * p[i] : grad[i];                               \
            p[i] = p[i] - lr * g;                                                      \
        }                                                                              \
    } else if (first_step) {                     /* buf = g */                         \
        for (i = 0; i < n; i++) {                                                      \
            g = wd != 0 ? grad[i] + wd * p[i] : grad[i];                               \
            buf[i] = g;                                                                \
            p[i] = p[i] - lr * (nesterov ? g + mom * g : g);                           \
        }                                                                              \
    } else if (nesterov) {                                                             \
        for (i = 0; i < n; i++) {                                                      \
            g = wd != 0 ? grad[i] + wd * p[i] : grad[i];                               \
            b = mom * buf[i] + damp * g;                                               \
            buf[i] = b;                                                                \
            p[i] = p[i] - lr * (g + mom * b);                                          \
        }                                                                              \
    } else {                                                                           \
        for (i = 0; i < n; i++) {                                                      \
            g = wd != 0 ? grad[i] + wd * p[i] : grad[i];                               \
            b = mom * buf[i] + damp * g;                                               \
            buf[i] = b;                                                                \
            p[i] = p[i] - lr * b;                                                      \
        }                                                                              \
    }                                                                                  \
}                                                                                      \
/* Adam and AdamW: with vmax (amsgrad) the running max of v is the denominator;  \
   decay = 1 - lr wd scales p first (AdamW's decoupled decay; 1, exact, for Adam). */ \
ATTR static void cp_adam_##NAME##SFX(T *p, const T *grad, T *m, T *v, T *vmax,         \
                                     ptrdiff_t n, T b1, T b2, T one_b1, T one_b2,      \
                                     T eps, T wd, T decay, T step_size,                \
                                     T inv_sqrt_bc2)                                   \
{                                                                                      \
    ptrdiff_t i; T g, d;                                                               \
    if (vmax == NULL) {                                                                \
        CP_ADAM_LOOP(T, SQRT, d = v[i])                                                \
    } else {                                                                           \
        CP_ADAM_LOOP(T, SQRT, d = vmax[i] > v[i] ? vmax[i] : v[i]; vmax[i] = d)        \
    }                                                                                  \
}                                                                                      \
/* RMSprop (torch.optim.RMSprop): gavg (centered) and buf (momentum) may be NULL */    \
ATTR static void cp_rmsprop_##NAME##SFX(T *p, const T *grad, T *sq, T *gavg, T *buf,    \
                                        ptrdiff_t n, T lr, T alpha, T one_alpha, T eps,\
                                        T wd, T mom)                                   \
{                                                                                      \
    ptrdiff_t i; T g, s, a, avg;                                                       \
    if (gavg == NULL && buf == NULL) {                                                 \
        CP_RMSPROP_LOOP(avg = SQRT(s) + eps, p[i] = p[i] - lr * (g / avg))             \
    } else if (gavg == NULL) {                                                         \
        CP_RMSPROP_LOOP(avg = SQRT(s) + eps,                                           \
                        buf[i] = mom * buf[i] + g / avg; p[i] = p[i] - lr * buf[i])    \
    } else if (buf == NULL) {                                                          \
        CP_RMSPROP_LOOP(a = gavg[i] + one_alpha * (g - gavg[i]); gavg[i] = a;          \
                        avg = SQRT(s - a * a) + eps, p[i] = p[i] - lr * (g / avg))     \
    } else {                                                                           \
        CP_RMSPROP_LOOP(a = gavg[i] + one_alpha * (g - gavg[i]); gavg[i] = a;          \
                        avg = SQRT(s - a * a) + eps,                                   \
                        buf[i] = mom * buf[i] + g / avg; p[i] = p[i] - lr * buf[i])    \
    }                                                                                  \
}

/* Sum of squared differences over a span, for MSE: returns sum (pred - target)^2
   in float64 and, where grad is not NULL, writes grad = two_scale (pred - target)
   (grad may be pred or target: each element is read before it is written). The
   sum is kept in 16 partial sums added in a fixed order: one running sum made
   every add wait for the last (1 ns an element, in cache or not). The gradient
   is written in the same pass, from the same difference: a second pass, which
   read pred and target again, made memory-bound spans 1.5x slower. Built without
   FMA, like the optimizer updates, so every copy gives the same bits. */
/* the 16-wide blocks of that pass: a block's differences are all read before
   any of its gradient is written (STORE, for element i + k), so gcc vectorizes
   it without an overlap check, which grad == pred would fail */
#define CP_SQDIFF_BLOCKS(STORE)                                                        \
    for (i = 0; i + 16 <= n; i += 16) {                                                \
        for (k = 0; k < 16; k++) dk[k] = pred[i + k] - target[i + k];                  \
        for (k = 0; k < 16; k++) acc[k] += (double)dk[k] * dk[k];                      \
        for (k = 0; k < 16; k++) STORE;                                                \
    }
#define CP_SQDIFF_SPAN(T, NAME, SFX, ATTR)                                             \
ATTR static double cp_sq_diff_##NAME##SFX(const T *pred, const T *target, T *grad,    \
                                          ptrdiff_t n, T two_scale)                    \
{                                                                                      \
    double acc[16] = {0};                                                              \
    ptrdiff_t i, k;                                                                    \
    T d, dk[16];                                                                       \
    if (grad != NULL) { CP_SQDIFF_BLOCKS(grad[i + k] = two_scale * dk[k]) }           \
    else              { CP_SQDIFF_BLOCKS((void)0) }                                    \
    for (i = n / 16 * 16; i < n; i++) {                                                \
        d = pred[i] - target[i];                                                       \
        acc[0] += (double)d * d;                                                       \
        if (grad != NULL) grad[i] = two_scale * d;                                     \
    }                                                                                  \
    for (k = 0; k < 8; k++) acc[k] += acc[k + 8];                                      \
    return cp_sum8(acc);                                                               \
}

/* x and y do not overlap (the callers' contract): without saying so, every store
   to y could change x, and the loop ran scalar (1.4 ns an element in cache,
   against 0.1 for the norm alone). */
#if defined(_MSC_VER)
#define CP_RESTRICT __restrict
#else
#define CP_RESTRICT __restrict__
#endif
/* The L2 penalty over a span in one pass: returns sum x^2 in float64 (16 partial
   sums added in a fixed order, as CP_SQDIFF_SPAN) and, where y is not NULL,
   adds a x to it: y = y + a x, rounded as NumPy's y += a * x (built without FMA,
   so every copy gives the same bits). With y NULL: the squared norm alone. */
#define CP_SQNORM_BLOCKS(STORE)                                                        \
    for (i = 0; i + 16 <= n; i += 16) {                                                \
        for (k = 0; k < 16; k++) acc[k] += (double)x[i + k] * x[i + k];                \
        for (k = 0; k < 16; k++) STORE;                                                \
    }
#define CP_SQNORM_SPAN(T, NAME, SFX, ATTR)                                             \
ATTR static double cp_sq_norm_axpy_##NAME##SFX(const T *CP_RESTRICT x, T *CP_RESTRICT y, \
                                               ptrdiff_t n, T a)                       \
{                                                                                      \
    double acc[16] = {0};                                                              \
    ptrdiff_t i, k;                                                                    \
    if (y != NULL) { CP_SQNORM_BLOCKS(y[i + k] = y[i + k] + a * x[i + k]) }            \
    else           { CP_SQNORM_BLOCKS((void)0) }                                       \
    for (i = n / 16 * 16; i < n; i++) {                                                \
        acc[0] += (double)x[i] * x[i];                                                 \
        if (y != NULL) y[i] = y[i] + a * x[i];                                         \
    }                                                                                  \
    for (k = 0; k < 8; k++) acc[k] += acc[k + 8];                                      \
    return cp_sum8(acc);                                                               \
}

#ifdef CP_X86_DISPATCH
CP_SPANS(_base, )
CP_SPANS(_avx2, __attribute__((target("avx2,fma"))))
CP_OPT_SPANS(float, f32, sqrtf, _base, )
CP_OPT_SPANS(double, f64, sqrt, _base, )
CP_OPT_SPANS(float, f32, sqrtf, _avx2, __attribute__((target("avx2"))))
CP_OPT_SPANS(double, f64, sqrt, _avx2, __attribute__((target("avx2"))))
CP_SQDIFF_SPAN(float, f32, _base, )
CP_SQDIFF_SPAN(double, f64, _base, )
CP_SQDIFF_SPAN(float, f32, _avx2, __attribute__((target("avx2"))))
CP_SQDIFF_SPAN(double, f64, _avx2, __attribute__((target("avx2"))))
CP_SQNORM_SPAN(float, f32, _base, )
CP_SQNORM_SPAN(double, f64, _base, )
CP_SQNORM_SPAN(float, f32, _avx2, __attribute__((target("avx2"))))
CP_SQNORM_SPAN(double, f64, _avx2, __attribute__((target("avx2"))))

/* The AVX2 copies run where the CPU has AVX2 and FMA, unless the environment
   variable CYPROP_NO_AVX2 is set (to anything but "" or "0") when a module
   first dispatches: then the baseline copies run, which is how the test
   suite covers them on an AVX2 machine. */
static int cp_avx2_state = -1;   /* -1 unknown; a benign race: every writer writes the same */
static inline int cp_use_avx2(void)
{
    if (cp_avx2_state < 0) {
        const char *off = getenv("CYPROP_NO_AVX2");
        __builtin_cpu_init();
        cp_avx2_state = !(off != NULL && off[0] != '\0' && strcmp(off, "0") != 0)
                        && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cp_avx2_state;
}
#define CP_DISPATCH(name, args) (cp_use_avx2() ? name##_avx2 args : name##_base args)
static inline const char *cp_vector_isa(void) { return cp_use_avx2() ? "avx2" : "baseline"; }

/* The span families of round 2 (_special.h, _norm.h, _philox.h) have a third
   copy, for AVX-512 (F, DQ, BW, VL) with 512-bit vectors, picked where the CPU
   has it and the AVX2 copy would run, unless CYPROP_NO_AVX512 is set (to
   anything but "" or "0"). On the AMD EPYC (Zen) machine of the README's
   figures it made float32 gelu/silu/softplus 1.6-1.9x faster, BCE 2.1x. */
#define CP_AVX512_ATTR __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,prefer-vector-width=512")))
static int cp_avx512_state = -1;
static inline int cp_use_avx512(void)
{
    if (cp_avx512_state < 0) {
        const char *off = getenv("CYPROP_NO_AVX512");
        cp_avx512_state = cp_use_avx2()
                          && !(off != NULL && off[0] != '\0' && strcmp(off, "0") != 0)
                          && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
                          && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    }
    return cp_avx512_state;
}
#define CP_DISPATCH3(name, args) \
    (cp_use_avx512() ? name##_avx512 args : cp_use_avx2() ? name##_avx2 args : name##_base args)
static inline const char *cp_vector_isa3(void)
{ return cp_use_avx512() ? "avx512" : cp_use_avx2() ? "avx2" : "baseline"; }
/* Round 1's spans get an AVX-512 copy too, but only the compute-bound ones
   run it (CP_DISPATCH_TRANSCENDENTAL: sigmoid and tanh forward, softmax's
   exp-and-sum): on the machine of the README's figures, in cache, float32
   sigmoid 1.3x, exp-and-sum 1.6x, float64 sigmoid 1.4x and tanh 1.7x faster.
   The memory-bound rest stays AVX2 (AVX-512 gained nothing there, and lost in
   BatchNorm's normalize). The same operations in the same order: the same
   bits as the AVX2 copy. */
CP_SPANS(_avx512, CP_AVX512_ATTR __attribute__((unused)))
#define CP_DISPATCH_TRANSCENDENTAL(name, args) CP_DISPATCH3(name, args)
#else
static inline const char *cp_vector_isa(void) { return "baseline"; }
static inline const char *cp_vector_isa3(void) { return "baseline"; }
#define CP_DISPATCH3(name, args) (name##_base args)
CP_SPANS(_base, )
CP_OPT_SPANS(float, f32, sqrtf, _base, )
CP_OPT_SPANS(double, f64, sqrt, _base, )
CP_SQDIFF_SPAN(float, f32, _base, )
CP_SQDIFF_SPAN(double, f64, _base, )
CP_SQNORM_SPAN(float, f32, _base, )
CP_SQNORM_SPAN(double, f64, _base, )
#define CP_DISPATCH(name, args) (name##_base args)
#define CP_DISPATCH_TRANSCENDENTAL(name, args) (name##_base args)
#endif

static inline void cp_act_forward_f32(const float *x, float *y, ptrdiff_t n, int act)
{
    if (act == CP_ACT_SIGMOID || act == CP_ACT_TANH)
        CP_DISPATCH_TRANSCENDENTAL(cp_act_forward_f32, (x, y, n, act));
    else
        CP_DISPATCH(cp_act_forward_f32, (x, y, n, act));
}
static inline void cp_act_forward_f64(const double *x, double *y, ptrdiff_t n, int act)
{
    if (act == CP_ACT_SIGMOID || act == CP_ACT_TANH)
        CP_DISPATCH_TRANSCENDENTAL(cp_act_forward_f64, (x, y, n, act));
    else
        CP_DISPATCH(cp_act_forward_f64, (x, y, n, act));
}
static inline void cp_act_backward_f32(const float *dy, const float *y, float *dx, ptrdiff_t n, int act)
{ CP_DISPATCH(cp_act_backward_f32, (dy, y, dx, n, act)); }
static inline void cp_act_backward_f64(const double *dy, const double *y, double *dx, ptrdiff_t n, int act)
{ CP_DISPATCH(cp_act_backward_f64, (dy, y, dx, n, act)); }
static inline double cp_exp_shift_f32(const float *z, float m, float *e, ptrdiff_t n)
{ return CP_DISPATCH_TRANSCENDENTAL(cp_exp_shift_f32, (z, m, e, n)); }
static inline double cp_exp_shift_f64(const double *z, double m, double *e, ptrdiff_t n)
{ return CP_DISPATCH_TRANSCENDENTAL(cp_exp_shift_f64, (z, m, e, n)); }
static inline double cp_target_dot_f32(const float *z, const float *t, float m, ptrdiff_t n,
                                       double *t_sum)
{ return CP_DISPATCH(cp_target_dot_f32, (z, t, m, n, t_sum)); }
static inline double cp_target_dot_f64(const double *z, const double *t, double m, ptrdiff_t n,
                                       double *t_sum)
{ return CP_DISPATCH(cp_target_dot_f64, (z, t, m, n, t_sum)); }
static inline float cp_row_max_f32(const float *z, ptrdiff_t n)
{ return CP_DISPATCH(cp_row_max_f32, (z, n)); }
static inline double cp_row_max_f64(const double *z, ptrdiff_t n)
{ return CP_DISPATCH(cp_row_max_f64, (z, n)); }
static inline void cp_scale_f32(float *g, float a, ptrdiff_t n)
{ CP_DISPATCH(cp_scale_f32, (g, a, n)); }
static inline void cp_scale_f64(double *g, double a, ptrdiff_t n)
{ CP_DISPATCH(cp_scale_f64, (g, a, n)); }

static inline double cp_sq_diff_f32(const float *pred, const float *target, float *grad,
                                    ptrdiff_t n, float two_scale)
{ return CP_DISPATCH(cp_sq_diff_f32, (pred, target, grad, n, two_scale)); }
static inline double cp_sq_diff_f64(const double *pred, const double *target, double *grad,
                                    ptrdiff_t n, double two_scale)
{ return CP_DISPATCH(cp_sq_diff_f64, (pred, target, grad, n, two_scale)); }
static inline double cp_sq_norm_axpy_f32(const float *x, float *y, ptrdiff_t n, float a)
{ return CP_DISPATCH(cp_sq_norm_axpy_f32, (x, y, n, a)); }
static inline double cp_sq_norm_axpy_f64(const double *x, double *y, ptrdiff_t n, double a)
{ return CP_DISPATCH(cp_sq_norm_axpy_f64, (x, y, n, a)); }

static inline void cp_sgd_f32(float *p, const float *grad, float *buf, ptrdiff_t n, float lr,
                              float mom, float damp, float wd, int use_momentum, int nesterov,
                              int first_step)
{ CP_DISPATCH(cp_sgd_f32, (p, grad, buf, n, lr, mom, damp, wd, use_momentum, nesterov, first_step)); }
static inline void cp_sgd_f64(double *p, const double *grad, double *buf, ptrdiff_t n, double lr,
                              double mom, double damp, double wd, int use_momentum, int nesterov,
                              int first_step)
{ CP_DISPATCH(cp_sgd_f64, (p, grad, buf, n, lr, mom, damp, wd, use_momentum, nesterov, first_step)); }
static inline void cp_adam_f32(float *p, const float *grad, float *m, float *v, float *vmax,
                               ptrdiff_t n, float b1, float b2, float one_b1, float one_b2,
                               float eps, float wd, float decay, float step_size,
                               float inv_sqrt_bc2)
{ CP_DISPATCH(cp_adam_f32, (p, grad, m, v, vmax, n, b1, b2, one_b1, one_b2, eps, wd, decay, step_size, inv_sqrt_bc2)); }
static inline void cp_adam_f64(double *p, const double *grad, double *m, double *v, double *vmax,
                               ptrdiff_t n, double b1, double b2, double one_b1, double one_b2,
                               double eps, double wd, double decay, double step_size,
                               double inv_sqrt_bc2)
{ CP_DISPATCH(cp_adam_f64, (p, grad, m, v, vmax, n, b1, b2, one_b1, one_b2, eps, wd, decay, step_size, inv_sqrt_bc2)); }
static inline void cp_rmsprop_f32(float *p, const float *grad, float *sq, float *gavg, float *buf,
                                  ptrdiff_t n, float lr, float alpha, float one_alpha, float eps,
                                  float wd, float mom)
{ CP_DISPATCH(cp_rmsprop_f32, (p, grad, sq, gavg, buf, n, lr, alpha, one_alpha, eps, wd, mom)); }
static inline void cp_rmsprop_f64(double *p, const double *grad, double *sq, double *gavg,
                                  double *buf, ptrdiff_t n, double lr, double alpha,
                                  double one_alpha, double eps, double wd, double mom)
{ CP_DISPATCH(cp_rmsprop_f64, (p, grad, sq, gavg, buf, n, lr, alpha, one_alpha, eps, wd, mom)); }

#endif /* CYPROP_VECMATH_H */
