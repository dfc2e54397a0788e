/*
 * _special.h - the element-wise functions past exp/sigmoid/tanh, and the span
 * loops of the kernels that use them (activations with parameters, the
 * element-wise losses, dropout's counter-based generator).
 *
 * float32 runs on branch-free helpers that gcc vectorizes, built from
 * _vecmath.h's exp; float64 calls libm (glibc's log1p, expm1, erfc are
 * correctly rounded to within an ulp) where a vectorized helper would not
 * reach double precision cheaply. Each span loop is built twice, baseline and
 * AVX2+FMA, and dispatched at run time as in _vecmath.h.
 *
 * Formulas (x the input, y the output):
 *   log1p(u), 0 <= u <= 1:  2 atanh(s), s = u / (2 + u) in [0, 1/3], by its
 *                           series 2 (s + s^3/3 + s^5/5 + ...): s^2 <= 1/9,
 *                           7 terms past s for float (truncation 1.4e-9)
 *   softplus(z) = max(z, 0) + log1p(exp(-|z|))      (never overflows)
 *   expm1(x), x <= 0:       the exp polynomial's own expm1 part where
 *                           |x| < ln2 / 2 (no cancellation), else exp(x) - 1
 *   erfc(z), float:         t exp(-z^2 - 1.26551223 + t P(t)), t = 1/(1 + z/2),
 *                           P of degree 9 (Numerical Recipes' erfcc, after
 *                           Chebyshev; relative error < 1.2e-7 for z >= 0),
 *                           erfc(-z) = 2 - erfc(z)
 *   Phi(x) = erfc(-x / sqrt 2) / 2,  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 * Activations (a, b the two parameters):
 *   leaky_relu(a = slope)   y = x > 0 ? x : a x      dx = dy (v > 0 ? 1 : a)
 *                           (v = x, or y when a >= 0: the sign is the same)
 *   elu(a = alpha)          y = x > 0 ? x : a expm1(x)   dx = dy (x > 0 ? 1 : a e^x)
 *   gelu                    y = x Phi(x)              dx = dy (Phi(x) + x phi(x))
 *   gelu_tanh               u = sqrt(2/pi) (x + 0.044715 x^3), s = sigmoid(2u)
 *                           (= (1 + tanh u) / 2), y = x s,
 *                           dx = dy (s + 2 x s (1 - s) u'), 1 - s = sigmoid(-2u)
 *   silu                    s = sigmoid(x), y = x s,  dx = dy s (1 + x (1 - s)),
 *                           1 - s = sigmoid(-x) (no cancellation for large x)
 * Accuracy: a few ulp, except where the formula's own argument rounding is
 * amplified: gelu's x / sqrt 2 and gelu_tanh's u, in the tails below x = -3,
 * lose up to about x^2 ulp, gelu_tanh's 0.1 |x|^3 (as every erfc- or tanh-based
 * gelu does, torch's and
 * SciPy's included).
 *   softplus(a = beta, b = threshold)
 *                           z = a x; y = z > b ? x : softplus(z) / a,
 *                           dx = dy (z > b ? 1 : sigmoid(z))
 * Every backward here but leaky_relu's takes the pre-activation x.
 */
#ifndef CYPROP_SPECIAL_H
#define CYPROP_SPECIAL_H

#include "_vecmath.h"

enum {
    CP_ACT_LEAKY_RELU = 4, CP_ACT_ELU = 5, CP_ACT_GELU = 6, CP_ACT_GELU_TANH = 7,
    CP_ACT_SILU = 8, CP_ACT_SOFTPLUS = 9
};

#define CP_SQRT_2_OVER_PI 0.79788456080286535588
#define CP_INV_SQRT_2 0.70710678118654752440
#define CP_INV_SQRT_2PI 0.39894228040143267794
#define CP_LN2_HALF 0.34657359027997265471

/* ------------------------------------------------------------------ float */
static inline float cp_log1pf_unit(float u)
{
    float s = u / (2.0f + u), z = s * s;
    float p = 1.0f / 15.0f;
    p = p * z + 1.0f / 13.0f;
    p = p * z + 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    float s2 = s + s;
    return s2 * z * p + s2;
}

/* log1p(exp(-|z|)) + max(z, 0); NaN propagates, +-inf give inf and 0 */
static inline float cp_softplusf(float z)
{
    float az = z < 0.0f ? -z : z;
    float e = cp_expf_nonpos(-az);
    float pos = z > 0.0f ? z : 0.0f;
    return pos + cp_log1pf_unit(e);
}

static inline float cp_expm1f_nonpos(float x)
{
    float small = cp_expm1f_poly_estrin(x);
    float big = cp_expf_nonpos(x) - 1.0f;
    return x > -(float)CP_LN2_HALF ? small : big;
}

/* sigmoid(x) from e = exp(-|x|) <= 1, so exp's cheaper nonpositive form serves
   (no clamp, no overflow): 1 / (1 + e) for x >= 0, e / (1 + e) below. Fewer
   operations than cp_sigmoidf (silu forward 17% faster); NaN propagates, and
   +-inf give 1 and 0. */
static inline float cp_sigmoidf_split(float x)
{
    float ax = x < 0.0f ? -x : x;
    float e = cp_expf_nonpos(-ax);
    float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* erfc(z) for z >= 0; the exponent p - z^2 is <= 0 (erfc(z) (1 + z / 2) <= 1 and
   the fit's p(1) is 0 to 1e-8), so the nonpositive exp serves here too */
static inline float cp_erfcf_nonneg(float z)
{
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * cp_expf_nonpos(p - z * z);
}

/* Phi(x), the standard normal CDF */
static inline float cp_phif_cdf(float x)
{
    float z = x * (float)-CP_INV_SQRT_2;
    float az = z < 0.0f ? -z : z;
    float e = cp_erfcf_nonneg(az);
    return 0.5f * (z < 0.0f ? 2.0f - e : e);
}

/* ----------------------------------------------------------------- double */
static inline double cp_softplus(double z)
{
    double pos = z > 0.0 ? z : 0.0;
    return pos + log1p(exp(-fabs(z)));
}

static inline double cp_phi_cdf(double x) { return 0.5 * erfc(-x * CP_INV_SQRT_2); }

/* ------------------------------------------------------------- span loops */
/* the element ops, shared by both dtypes (T the type, SIG the sigmoid, EXP the
   exp, EXPM1N expm1 for x <= 0, PHI the normal CDF, SOFTPLUS) */
#define CP_ACT2_FWD(T, SIG, EXP, EXPM1N, PHI, SOFTPLUS)                                \
    ptrdiff_t i; T a = (T)pa, b = (T)pb;                                               \
    switch (act) {                                                                     \
    case CP_ACT_LEAKY_RELU:                                                            \
        for (i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : a * x[i]; break;              \
    case CP_ACT_ELU:                                                                   \
        for (i = 0; i < n; i++) {                                                      \
            T xi = x[i], neg = a * EXPM1N(xi > 0 ? (T)0 : xi);                         \
            y[i] = xi > 0 ? xi : neg;                                                  \
        } break;                                                                       \
    case CP_ACT_GELU:                                                                  \
        for (i = 0; i < n; i++) y[i] = x[i] * PHI(x[i]); break;                        \
    case CP_ACT_GELU_TANH:                                                             \
        for (i = 0; i < n; i++) {                                                      \
            T xi = x[i];                                                               \
            T u = (T)CP_SQRT_2_OVER_PI * (xi + (T)0.044715 * xi * xi * xi);            \
            y[i] = xi * SIG(u + u);                                                    \
        } break;                                                                       \
    case CP_ACT_SILU:                                                                  \
        for (i = 0; i < n; i++) y[i] = x[i] * SIG(x[i]); break;                        \
    case CP_ACT_SOFTPLUS:                                                              \
        for (i = 0; i < n; i++) {                                                      \
            T z = a * x[i];                                                            \
            T sp = SOFTPLUS(z) / a;                                                    \
            y[i] = z > b ? x[i] : sp;                                                  \
        } break;                                                                       \
    default:                                                                           \
        if (x != y) for (i = 0; i < n; i++) y[i] = x[i];                               \
    }
#define CP_ACT2_BWD(T, SIG, EXP, PHI)                                                  \
    ptrdiff_t i; T a = (T)pa, b = (T)pb;                                               \
    switch (act) {                                                                     \
    case CP_ACT_LEAKY_RELU:                                                            \
        for (i = 0; i < n; i++) dx[i] = dy[i] * (v[i] > 0 ? (T)1 : a); break;          \
    case CP_ACT_ELU:                                                                   \
        for (i = 0; i < n; i++) {                                                      \
            T xi = v[i], d = a * EXP(xi > 0 ? (T)0 : xi);                              \
            dx[i] = dy[i] * (xi > 0 ? (T)1 : d);                                       \
        } break;                                                                       \
    case CP_ACT_GELU:                                                                  \
        for (i = 0; i < n; i++) {                                                      \
            T xi = v[i];                                                               \
            T pdf = (T)CP_INV_SQRT_2PI * EXP((T)-0.5 * xi * xi);                       \
            dx[i] = dy[i] * (PHI(xi) + xi * pdf);                                      \
        } break;                                                                       \
    case CP_ACT_GELU_TANH:                                                             \
        for (i = 0; i < n; i++) {                                                      \
            /* past |x| = 1e4 the derivative is 1 or 0 to every digit: clamping        \
               there keeps x^3 finite (inf * 0 would be NaN) */                        \
            T xi = v[i], xc = xi > (T)1e4 ? (T)1e4 : (xi < (T)-1e4 ? (T)-1e4 : xi);    \
            T x2 = xc * xc;                                                            \
            T u = (T)CP_SQRT_2_OVER_PI * (xc + (T)0.044715 * x2 * xc);                 \
            T du = (T)CP_SQRT_2_OVER_PI * ((T)1 + (T)(3 * 0.044715) * x2);             \
            T s = SIG(u + u), sn = SIG(-(u + u));                                      \
            dx[i] = dy[i] * (s + (xc + xc) * s * sn * du);                             \
        } break;                                                                       \
    case CP_ACT_SILU:                                                                  \
        for (i = 0; i < n; i++) {                                                      \
            T xi = v[i], s = SIG(xi), sn = SIG(-xi);                                   \
            dx[i] = dy[i] * (s * ((T)1 + xi * sn));                                    \
        } break;                                                                       \
    case CP_ACT_SOFTPLUS:                                                              \
        for (i = 0; i < n; i++) {                                                      \
            T z = a * v[i], s = SIG(z);                                                \
            dx[i] = dy[i] * (z > b ? (T)1 : s);                                        \
        } break;                                                                       \
    default:                                                                           \
        if (dx != dy) for (i = 0; i < n; i++) dx[i] = dy[i];                           \
    }

static inline double cp_expm1_nonpos(double x) { return expm1(x); }

/* Element-wise losses over a span, returning the loss summed in float64 and
   writing grad = scale * dloss/dpred where grad is not NULL (grad may alias
   an input: each element is read before it is written). The span goes in
   tiles of CP_LOSS_TILE elements: a plain loop computes each element's loss
   into a tile buffer and writes its gradient (a loop gcc vectorizes like the
   activations'), then the tile is added into 16 float64 partial sums, element
   i into sum i % 16, added in a fixed order at the end. (With the 16 sums fed
   inside the element loop gcc vectorized none of it: BCE took 8 ns an element.)
   ELEM sets lv (the loss) and gv (the gradient) for element i. */
#define CP_LOSS_TILE 256
#define CP_LOSS_SPAN_BODY(T, ELEM)                                                     \
    double acc[16] = {0};                                                              \
    ptrdiff_t i0, i, k, j, m;                                                          \
    T lk[CP_LOSS_TILE];                                                                \
    for (i0 = 0; i0 < n; i0 += CP_LOSS_TILE) {                                         \
        m = n - i0 < CP_LOSS_TILE ? n - i0 : CP_LOSS_TILE;                             \
        if (grad != NULL) {                                                            \
            for (k = 0; k < m; k++) { T lv, gv; i = i0 + k; ELEM lk[k] = lv;           \
                                      grad[i] = gv * scale; }                          \
        } else {                                                                       \
            for (k = 0; k < m; k++) { T lv, gv; i = i0 + k; ELEM lk[k] = lv; (void)gv; } \
        }                                                                              \
        for (; k % 16 != 0; k++) lk[k] = 0;                                            \
        for (j = 0; j < k; j += 16)                                                    \
            for (i = 0; i < 16; i++) acc[i] += (double)lk[j + i];                      \
    }                                                                                  \
    for (k = 0; k < 8; k++) acc[k] += acc[k + 8];                                      \
    return cp_sum8(acc);

/* BCE on logits (torch's binary_cross_entropy_with_logits), w = 1 + (pw - 1) t:
   loss = (1 - t) x + w softplus(-x), dloss/dx = (1 - t) - w sigmoid(-x), with
   e = exp(-|x|): softplus(-x) = max(-x, 0) + log1p(e), sigmoid(-x) = x > 0 ?
   e / (1 + e) : 1 / (1 + e). W is the element's pos_weight (1 without one). */
#define CP_BCE_ELEM(T, EXPN, LOG1PU, W)                                                \
    {                                                                                  \
        T xk = x[i], tk = t[i];                                                        \
        T wk = (T)1 + ((W) - (T)1) * tk;                                               \
        T ax = xk < 0 ? -xk : xk, e = EXPN(-ax);                                       \
        T negx = xk < 0 ? -xk : (T)0;                                                  \
        T sig_neg = (xk > 0 ? e : (T)1) / ((T)1 + e);                                  \
        lv = ((T)1 - tk) * xk + wk * (negx + LOG1PU(e));                               \
        gv = ((T)1 - tk) - wk * sig_neg;                                               \
    }
#define CP_BCE_BODY(T, EXPN, LOG1PU)                                                   \
    if (pw == NULL) { CP_LOSS_SPAN_BODY(T, CP_BCE_ELEM(T, EXPN, LOG1PU, (T)1)) }       \
    else if (pw_all) { T w0 = pw[0]; CP_LOSS_SPAN_BODY(T, CP_BCE_ELEM(T, EXPN, LOG1PU, w0)) } \
    else { CP_LOSS_SPAN_BODY(T, CP_BCE_ELEM(T, EXPN, LOG1PU, pw[i])) }
/* Huber (delta d): |r| <= d: r^2 / 2, else d (|r| - d / 2); grad clamp(r, -d, d) */
#define CP_HUBER_ELEM(T)                                                               \
    {                                                                                  \
        T r = p[i] - t[i], ar = r < 0 ? -r : r;                                        \
        T lin = delta * (ar - (T)0.5 * delta), quad = (T)0.5 * r * r;                  \
        T g = r > delta ? delta : r;                                                   \
        lv = ar <= delta ? quad : lin;                                                 \
        gv = g < -delta ? -delta : g;                                                  \
    }
/* L1: |r|, grad sign(r) (0 at 0; NaN propagates through r) */
#define CP_L1_ELEM(T)                                                                  \
    {                                                                                  \
        T r = p[i] - t[i];                                                             \
        lv = r < 0 ? -r : r;                                                           \
        gv = r > 0 ? (T)1 : (r < 0 ? (T)-1 : r * (T)0);                                \
    }

static inline double cp_log1p_unit(double u) { return log1p(u); }
static inline double cp_exp_neg(double x) { return exp(x); }

#define CP_SPECIAL_SPANS(SFX, ATTR)                                                    \
ATTR static void cp_act2_forward_f32##SFX(const float *x, float *y, ptrdiff_t n, int act, \
                                          double pa, double pb)                        \
{ CP_ACT2_FWD(float, cp_sigmoidf_split, cp_expf, cp_expm1f_nonpos, cp_phif_cdf, cp_softplusf) } \
ATTR static void cp_act2_forward_f64##SFX(const double *x, double *y, ptrdiff_t n, int act, \
                                          double pa, double pb)                        \
{ CP_ACT2_FWD(double, cp_sigmoid, cp_exp, cp_expm1_nonpos, cp_phi_cdf, cp_softplus) }  \
ATTR static void cp_act2_backward_f32##SFX(const float *dy, const float *v, float *dx,  \
                                           ptrdiff_t n, int act, double pa, double pb) \
{ CP_ACT2_BWD(float, cp_sigmoidf_split, cp_expf, cp_phif_cdf) }                              \
ATTR static void cp_act2_backward_f64##SFX(const double *dy, const double *v, double *dx, \
                                           ptrdiff_t n, int act, double pa, double pb) \
{ CP_ACT2_BWD(double, cp_sigmoid, cp_exp, cp_phi_cdf) }                                \
ATTR static double cp_bce_f32##SFX(const float *x, const float *t, const float *pw,      \
                                   int pw_all, float *grad, ptrdiff_t n, float scale)   \
{ CP_BCE_BODY(float, cp_expf_nonpos, cp_log1pf_unit) }                                 \
ATTR static double cp_bce_f64##SFX(const double *x, const double *t, const double *pw,   \
                                   int pw_all, double *grad, ptrdiff_t n, double scale) \
{ CP_BCE_BODY(double, cp_exp_neg, cp_log1p_unit) }                                     \
ATTR static double cp_huber_f32##SFX(const float *p, const float *t, float *grad,        \
                                     ptrdiff_t n, float delta, float scale)            \
{ CP_LOSS_SPAN_BODY(float, CP_HUBER_ELEM(float)) }                                     \
ATTR static double cp_huber_f64##SFX(const double *p, const double *t, double *grad,     \
                                     ptrdiff_t n, double delta, double scale)          \
{ CP_LOSS_SPAN_BODY(double, CP_HUBER_ELEM(double)) }                                   \
ATTR static double cp_l1_f32##SFX(const float *p, const float *t, float *grad,           \
                                  ptrdiff_t n, float scale)                            \
{ CP_LOSS_SPAN_BODY(float, CP_L1_ELEM(float)) }                                        \
ATTR static double cp_l1_f64##SFX(const double *p, const double *t, double *grad,        \
                                  ptrdiff_t n, double scale)                           \
{ CP_LOSS_SPAN_BODY(double, CP_L1_ELEM(double)) }

#ifdef CP_X86_DISPATCH
CP_SPECIAL_SPANS(_base, )
CP_SPECIAL_SPANS(_avx2, __attribute__((target("avx2,fma"))))
CP_SPECIAL_SPANS(_avx512, CP_AVX512_ATTR)
#else
CP_SPECIAL_SPANS(_base, )
#endif

static inline void cp_act2_forward_f32(const float *x, float *y, ptrdiff_t n, int act,
                                       double a, double b)
{ CP_DISPATCH3(cp_act2_forward_f32, (x, y, n, act, a, b)); }
static inline void cp_act2_forward_f64(const double *x, double *y, ptrdiff_t n, int act,
                                       double a, double b)
{ CP_DISPATCH3(cp_act2_forward_f64, (x, y, n, act, a, b)); }
static inline void cp_act2_backward_f32(const float *dy, const float *v, float *dx,
                                        ptrdiff_t n, int act, double a, double b)
{ CP_DISPATCH3(cp_act2_backward_f32, (dy, v, dx, n, act, a, b)); }
static inline void cp_act2_backward_f64(const double *dy, const double *v, double *dx,
                                        ptrdiff_t n, int act, double a, double b)
{ CP_DISPATCH3(cp_act2_backward_f64, (dy, v, dx, n, act, a, b)); }
static inline double cp_bce_f32(const float *x, const float *t, const float *pw, int pw_all,
                                float *grad, ptrdiff_t n, float scale)
{ return CP_DISPATCH3(cp_bce_f32, (x, t, pw, pw_all, grad, n, scale)); }
static inline double cp_bce_f64(const double *x, const double *t, const double *pw, int pw_all,
                                double *grad, ptrdiff_t n, double scale)
{ return CP_DISPATCH3(cp_bce_f64, (x, t, pw, pw_all, grad, n, scale)); }
static inline double cp_huber_f32(const float *p, const float *t, float *grad, ptrdiff_t n,
                                  float delta, float scale)
{ return CP_DISPATCH3(cp_huber_f32, (p, t, grad, n, delta, scale)); }
static inline double cp_huber_f64(const double *p, const double *t, double *grad, ptrdiff_t n,
                                  double delta, double scale)
{ return CP_DISPATCH3(cp_huber_f64, (p, t, grad, n, delta, scale)); }
static inline double cp_l1_f32(const float *p, const float *t, float *grad, ptrdiff_t n,
                               float scale)
{ return CP_DISPATCH3(cp_l1_f32, (p, t, grad, n, scale)); }
static inline double cp_l1_f64(const double *p, const double *t, double *grad, ptrdiff_t n,
                               double scale)
{ return CP_DISPATCH3(cp_l1_f64, (p, t, grad, n, scale)); }

#endif /* CYPROP_SPECIAL_H */
