"""R-operator kernels: the element-wise parts of Hessian-vector products.

Design
------
Pearlmutter's R-operator, R{f} = d/dr f(theta + r v) at r = 0, carried
through a forward and a backward pass gives H v exactly (Pearlmutter 1994,
"Fast exact multiplication by the Hessian"). ``cyprop.hessian`` runs the
matrix products through ``_linear.gemm``; this file holds what lies between
them, one pass each:

R-forward of an activation (``act_rforward``), z the pre-activation:
    Ry = act'(z) Rz;  d1 = act'(z), d2 = act''(z) kept for the backward
R-backward of an activation (``act_rbackward``), gy = dL/dy:
    delta  = gy act'(z)
    Rdelta = Rgy act'(z) + gy act''(z) Rz     (the Gauss-Newton product drops
                                               the second term: gy = None)
Softmax + cross-entropy (``softmax_ce_rop``), p = softmax(z) per row:
    R(dL/dz) = s_i p * (Rz - <p, Rz>)          (s_i the row's weight, 1/N for a mean)
Point-wise losses (``pointwise_loss_rop``), d = pred - target:
    MSE  2 s R,  BCE-with-logits s sigmoid(z)(1 - sigmoid(z)) R,
    Huber s [|d| < delta] R,  L1 0

act' and act'' per activation (a, b its parameters), from z:
    relu        [z > 0], 0
    sigmoid     s(1-s), s(1-s)(1-2s)                     s = sigmoid(z)
    tanh        1-t^2, -2t(1-t^2)                        t = tanh(z)
    leaky_relu  z > 0 ? 1 : a, 0
    elu         z > 0 ? (1, 0) : (a e^z, a e^z)
    gelu        Phi + z phi, phi (2 - z^2)               phi, Phi the normal pdf, cdf
    gelu_tanh   u = c(z + k z^3), t = tanh u, q = 1-t^2, u1 = c(1 + 3k z^2), u2 = 6ckz:
                (1+t)/2 + z q u1/2, q u1 + z (q u2 - 2 t q u1^2)/2
    silu        s(1 + z(1-s)), s(1-s)(2 + z(1-2s))
    softplus    a z > b ? (1, 0) : (s, a s(1-s)),        s = sigmoid(a z)
computed in float64 for both dtypes (checked against finite differences in
tests/test_hessian.py). Every element is independent, so the fixed blocks
that prange hands out give the same bits for any thread count; the softmax
rows are summed serially within a row.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, tanh, fabs
cimport numpy as cnp

from _arrays cimport data_of, float_type

cdef Py_ssize_t MIN_PARALLEL = 32768    # elements below which one thread is faster
cdef Py_ssize_t ROWS_MIN_PARALLEL = 64  # softmax rows below which one thread is faster

cdef double GELU_C = 0.7978845608028654   # sqrt(2 / pi)
cdef double GELU_K = 0.044715

# the activation kernels' own float64 helpers: the same sigmoid and normal CDF
cdef extern from "_special.h" nogil:
    double CP_INV_SQRT_2PI
    double cp_sigmoid(double x)      # 1 / (1 + e^-x), never overflowing
    double cp_phi_cdf(double x)      # Phi(x) = erfc(-x / sqrt 2) / 2


# ReLU's R-forward over a span in a loop the compiler vectorises (float32; the
# float64 copy needs SSE4.2's 64-bit compares to vectorise, so at the portable
# baseline ISA it stays a scalar loop): d1 = [z > 0],
# Ry = Rz where z > 0, else exactly +0 (an infinite or NaN Rz too: not d1 * Rz).
# The select is a bit mask on Rz's bits, loaded unconditionally: gcc does not
# if-convert a loop with a conditional load, and its branches mispredict on
# half the elements of random signs (17x slower on 2^18 floats). The sign
# test's integer has the lanes' width (S), else the loop does not vectorise.
cdef extern from *:
    """
    #include <string.h>
    #if defined(_MSC_VER)
    #define CP_RESTRICT __restrict
    #else
    #define CP_RESTRICT __restrict__
    #endif
    #define CP_RELU_RFORWARD(T, S, U, NAME)                                                  \
    static void NAME(const T* CP_RESTRICT z, const T* CP_RESTRICT Rz, T* CP_RESTRICT Ry,   \
                     T* CP_RESTRICT d1, Py_ssize_t i0, Py_ssize_t n) {                     \
        Py_ssize_t i;                                                                      \
        z += i0; d1 += i0;                                                                 \
        if (Ry) {                                                                          \
            Rz += i0; Ry += i0;                                                            \
            for (i = 0; i < n; i++) {                                                      \
                S pos = z[i] > (T)0;                                                       \
                U bits;                                                                    \
                d1[i] = pos ? (T)1 : (T)0;                                                 \
                memcpy(&bits, &Rz[i], sizeof bits);                                        \
                bits &= (U)0 - (U)pos;                                                     \
                memcpy(&Ry[i], &bits, sizeof bits);                                        \
            }                                                                              \
        } else {                                                                           \
            for (i = 0; i < n; i++) d1[i] = (T)(z[i] > (T)0);                              \
        }                                                                                  \
    }
    CP_RELU_RFORWARD(float, int32_t, uint32_t, cp_relu_rforward_f32)
    CP_RELU_RFORWARD(double, int64_t, uint64_t, cp_relu_rforward_f64)
    """
    # the span [i0, i0 + n); Rz and Ry both NULL, or neither
    void cp_relu_rforward_f32(const float* z, const float* Rz, float* Ry, float* d1,
                              Py_ssize_t i0, Py_ssize_t n) nogil
    void cp_relu_rforward_f64(const double* z, const double* Rz, double* Ry, double* d1,
                              Py_ssize_t i0, Py_ssize_t n) nogil

cdef Py_ssize_t RELU_BLOCK = 8192     # elements per block of the ReLU R-forward


cdef struct derivatives:
    double d1   # act'(z)
    double d2   # act''(z)


cdef inline derivatives act_derivatives(double z, int act, double a, double b) noexcept nogil:
    """act'(z) and act''(z) of activation code ``act`` (the table in the module docstring)."""
    cdef double s, t, q, u1, u2, phi, e
    cdef derivatives r
    cdef double* d1 = &r.d1
    cdef double* d2 = &r.d2
    if act == 0:
        d1[0] = 1.0; d2[0] = 0.0
    elif act == 1:
        d1[0] = 1.0 if z > 0 else 0.0; d2[0] = 0.0
    elif act == 2:
        s = cp_sigmoid(z)
        d1[0] = s * (1 - s); d2[0] = s * (1 - s) * (1 - 2 * s)
    elif act == 3:
        t = tanh(z)
        d1[0] = 1 - t * t; d2[0] = -2 * t * (1 - t * t)
    elif act == 4:
        d1[0] = 1.0 if z > 0 else a; d2[0] = 0.0
    elif act == 5:
        if z > 0:
            d1[0] = 1.0; d2[0] = 0.0
        else:
            e = a * exp(z)
            d1[0] = e; d2[0] = e
    elif act == 6:
        phi = CP_INV_SQRT_2PI * exp(-0.5 * z * z)
        d1[0] = cp_phi_cdf(z) + z * phi
        d2[0] = phi * (2 - z * z)
    elif act == 7:
        t = tanh(GELU_C * (z + GELU_K * z * z * z))
        q = 1 - t * t
        u1 = GELU_C * (1 + 3 * GELU_K * z * z)
        u2 = 6 * GELU_C * GELU_K * z
        d1[0] = 0.5 * (1 + t) + 0.5 * z * q * u1
        d2[0] = q * u1 + 0.5 * z * (q * u2 - 2 * t * q * u1 * u1)
    elif act == 8:
        s = cp_sigmoid(z)
        d1[0] = s * (1 + z * (1 - s))
        d2[0] = s * (1 - s) * (2 + z * (1 - 2 * s))
    else:  # 9: softplus, a = beta, b = threshold
        if a * z > b:
            d1[0] = 1.0; d2[0] = 0.0
        else:
            s = cp_sigmoid(a * z)
            d1[0] = s; d2[0] = a * s * (1 - s)
    return r


cdef void act_rforward_impl(const floating* z, const floating* Rz, floating* Ry,
                            floating* d1, floating* d2, Py_ssize_t n, int act, double a,
                            double b, int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    cdef derivatives g
    cdef int nt = n_threads if n >= MIN_PARALLEL else 1
    cdef Py_ssize_t k, i0, n_blocks
    if act == 1:   # ReLU, the common case: fixed blocks of the vectorised span loop
        n_blocks = (n + RELU_BLOCK - 1) // RELU_BLOCK
        for k in prange(n_blocks, num_threads=nt, schedule="static"):
            i0 = k * RELU_BLOCK
            if floating is float:
                cp_relu_rforward_f32(z, Rz, Ry, d1, i0, min(RELU_BLOCK, n - i0))
            else:
                cp_relu_rforward_f64(z, Rz, Ry, d1, i0, min(RELU_BLOCK, n - i0))
        if d2 != NULL:
            for i in prange(n, num_threads=nt, schedule="static"):
                d2[i] = 0
        return
    for i in prange(n, num_threads=nt, schedule="static"):
        g = act_derivatives(z[i], act, a, b)
        d1[i] = <floating>g.d1
        if d2 != NULL:
            d2[i] = <floating>g.d2
        if Ry != NULL:
            Ry[i] = <floating>(g.d1 * Rz[i])


cdef void act_rbackward_impl(const floating* gy, const floating* Rgy, const floating* d1,
                             const floating* d2, const floating* Rz, floating* delta,
                             floating* Rdelta, Py_ssize_t n, int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    cdef double r
    cdef int nt = n_threads if n >= MIN_PARALLEL else 1
    if d2 == NULL:   # act'' = 0 (ReLU, leaky ReLU, identity): products in the dtype
        for i in prange(n, num_threads=nt, schedule="static"):
            Rdelta[i] = Rgy[i] * d1[i]
            if delta != NULL:
                delta[i] = gy[i] * d1[i]
        return
    for i in prange(n, num_threads=nt, schedule="static"):
        r = <double>Rgy[i] * d1[i]
        if gy != NULL:
            if Rz != NULL:
                r = r + <double>gy[i] * d2[i] * Rz[i]
            if delta != NULL:
                delta[i] = <floating>(<double>gy[i] * d1[i])
        Rdelta[i] = <floating>r


def act_rforward(z, Rz, Ry, d1, d2, int act, double a, double b, int n_threads):
    """Ry = act'(z) Rz, d1 = act'(z), d2 = act''(z), element-wise.

    C-contiguous ndarrays of one float dtype and size (checked in C);
    ``Rz``/``Ry`` may be None (Rz = 0: only d1, d2 are written), ``d2`` None
    (not written: for an activation whose act'' vanishes). For ReLU, ``Ry`` is
    ``Rz`` where z > 0 and +0 elsewhere (also where ``Rz`` is inf or NaN).
    """
    cdef int typenum = float_type(z, "z")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>z)
    cdef void* pz = data_of(z, typenum, n, False, "z")
    cdef void* pRz = NULL if Rz is None else data_of(Rz, typenum, n, False, "Rz")
    cdef void* pRy = NULL if Ry is None else data_of(Ry, typenum, n, True, "Ry")
    cdef void* p1 = data_of(d1, typenum, n, True, "d1")
    cdef void* p2 = NULL if d2 is None else data_of(d2, typenum, n, True, "d2")
    if (pRz == NULL) != (pRy == NULL):
        raise ValueError("act_rforward: give both Rz and Ry, or neither")
    if act < 0 or act > 9:
        raise ValueError(f"act_rforward: no activation code {act}")
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            act_rforward_impl[float](<float*>pz, <float*>pRz, <float*>pRy, <float*>p1,
                                     <float*>p2, n, act, a, b, n_threads)
        else:
            act_rforward_impl[double](<double*>pz, <double*>pRz, <double*>pRy, <double*>p1,
                                      <double*>p2, n, act, a, b, n_threads)


def act_rbackward(gy, Rgy, d1, d2, Rz, delta, Rdelta, int n_threads):
    """delta = gy d1 and Rdelta = Rgy d1 + gy d2 Rz, element-wise.

    ``gy`` None: Rdelta = Rgy d1 alone (the Gauss-Newton backward), delta
    not written; ``Rz`` or ``d2`` None: that term is 0 (``d2`` None for an
    activation whose act'' vanishes); ``delta`` None: not written.
    C-contiguous ndarrays of one float dtype and size (checked in C).
    """
    cdef int typenum = float_type(Rgy, "Rgy")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>Rgy)
    cdef void* pgy = NULL if gy is None else data_of(gy, typenum, n, False, "gy")
    cdef void* pRgy = data_of(Rgy, typenum, n, False, "Rgy")
    cdef void* p1 = data_of(d1, typenum, n, False, "d1")
    cdef void* p2 = NULL if d2 is None else data_of(d2, typenum, n, False, "d2")
    cdef void* pRz = NULL if Rz is None else data_of(Rz, typenum, n, False, "Rz")
    cdef void* pd = NULL if delta is None else data_of(delta, typenum, n, True, "delta")
    if pd != NULL and pgy == NULL:
        raise ValueError("act_rbackward: delta needs gy")
    cdef void* pRd = data_of(Rdelta, typenum, n, True, "Rdelta")
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            act_rbackward_impl[float](<float*>pgy, <float*>pRgy, <float*>p1, <float*>p2,
                                      <float*>pRz, <float*>pd, <float*>pRd, n, n_threads)
        else:
            act_rbackward_impl[double](<double*>pgy, <double*>pRgy, <double*>p1, <double*>p2,
                                       <double*>pRz, <double*>pd, <double*>pRd, n, n_threads)


cdef inline void softmax_rop_row(const floating* z, const floating* Rz, floating* Rg,
                                 Py_ssize_t c, double scale) noexcept nogil:
    """One row: Rg = scale * p (Rz - <p, Rz>), p = softmax(z) (shifted by the row max)."""
    cdef Py_ssize_t j
    cdef double m = z[0], total = 0, dot = 0, e
    for j in range(1, c):
        if z[j] > m:
            m = z[j]
    for j in range(c):
        e = exp(<double>z[j] - m)
        total += e
        dot += e * Rz[j]
    dot /= total
    for j in range(c):
        Rg[j] = <floating>(scale * exp(<double>z[j] - m) / total * (Rz[j] - dot))


cdef void softmax_rop_impl(const floating* z, const floating* Rz, floating* Rg,
                           const double* row_scale, Py_ssize_t n, Py_ssize_t c,
                           int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    cdef int nt = n_threads if n >= ROWS_MIN_PARALLEL and n * c >= MIN_PARALLEL else 1
    for i in prange(n, num_threads=nt, schedule="static"):
        softmax_rop_row(z + i * c, Rz + i * c, Rg + i * c, c, row_scale[i])


def softmax_ce_rop(logits, Rlogits, Rg, row_scale, int n_threads):
    """Rg (N, C) = row_scale[i] * (diag(p_i) - p_i p_i^T) Rlogits_i, p_i = softmax(logits_i).

    The Hessian of softmax cross-entropy in the logits (for targets that sum
    to one per row) applied to Rlogits. logits, Rlogits, Rg: C-contiguous
    (N, C) of one float dtype; row_scale: C-contiguous float64 (N,).
    """
    cdef int typenum = float_type(logits, "logits")
    if logits.ndim != 2:
        raise ValueError("softmax_ce_rop: logits must be 2-D")
    cdef Py_ssize_t n = logits.shape[0], c = logits.shape[1]
    cdef void* pz = data_of(logits, typenum, n * c, False, "logits")
    cdef void* pR = data_of(Rlogits, typenum, n * c, False, "Rlogits")
    cdef void* pg = data_of(Rg, typenum, n * c, True, "Rg")
    cdef double* ps = <double*>data_of(row_scale, cnp.NPY_DOUBLE, n, False, "row_scale")
    if c == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            softmax_rop_impl[float](<float*>pz, <float*>pR, <float*>pg, ps, n, c, n_threads)
        else:
            softmax_rop_impl[double](<double*>pz, <double*>pR, <double*>pg, ps, n, c, n_threads)


cdef void pointwise_rop_impl(int loss, const floating* pred, const floating* target,
                             const floating* R, floating* Rg, Py_ssize_t n, double scale,
                             double param, int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    cdef double s
    cdef int nt = n_threads if n >= MIN_PARALLEL else 1
    for i in prange(n, num_threads=nt, schedule="static"):
        if loss == 0:      # MSE
            Rg[i] = <floating>(2 * scale * R[i])
        elif loss == 1:    # BCE with logits
            s = cp_sigmoid(pred[i])
            Rg[i] = <floating>(scale * s * (1 - s) * R[i])
        elif loss == 2:    # Huber, param = delta
            Rg[i] = <floating>(scale * R[i]) if fabs(<double>pred[i] - target[i]) < param else 0
        else:              # L1: zero almost everywhere
            Rg[i] = 0


def pointwise_loss_rop(int loss, pred, target, R, Rg, double scale, double param, int n_threads):
    """Rg = H_loss R for the point-wise losses: 0 MSE, 1 BCE-with-logits, 2 Huber, 3 L1.

    ``scale`` is 1/size for a mean, 1 for a sum; ``param`` Huber's delta.
    C-contiguous ndarrays of one float dtype and size (checked in C).
    """
    cdef int typenum = float_type(pred, "pred")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>pred)
    cdef void* pp = data_of(pred, typenum, n, False, "pred")
    cdef void* pt = data_of(target, typenum, n, False, "target")
    cdef void* pR = data_of(R, typenum, n, False, "R")
    cdef void* pg = data_of(Rg, typenum, n, True, "Rg")
    if loss < 0 or loss > 3:
        raise ValueError(f"pointwise_loss_rop: no loss code {loss}")
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            pointwise_rop_impl[float](loss, <float*>pp, <float*>pt, <float*>pR, <float*>pg, n,
                                      scale, param, n_threads)
        else:
            pointwise_rop_impl[double](loss, <double*>pp, <double*>pt, <double*>pR,
                                       <double*>pg, n, scale, param, n_threads)
