"""Optimizer update kernels, in place, with PyTorch's update semantics.

Design
------
Parameters, gradients and state arrive flattened (n,). Each element's update
is independent, so ``prange`` over fixed blocks gives results identical for
any thread count. The loops over a block are C in ``_vecmath.h`` (an AVX2
copy, without FMA so that its results are the baseline copy's bit for bit,
is picked at run time). Scalars (learning rate, bias corrections) are computed once
by the caller in float64 and cast to the parameter dtype here.

SGD (torch.optim.SGD):
    g = grad + wd * p
    buf = g                        on the first step, else
    buf = momentum * buf + (1 - dampening) * g
    g = g + momentum * buf  (nesterov)   or   g = buf
    p = p - lr * g
L2 penalty (sq_norm_axpy): sum x^2 in float64, and y = y + a x in the same
    pass; fixed chunks of BLOCK elements, summed in chunk order (the squared
    norm alone when y is None).
Adam (torch.optim.Adam, L2 weight decay) and AdamW (torch.optim.AdamW):
    g = grad + wd * p                          (Adam's L2 term; 0 for AdamW)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    vmax = max(vmax, v), used for v below      (amsgrad)
    p = p * (1 - lr * wd_decoupled) - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),
    bc_k = 1 - beta_k^t; wd_decoupled is AdamW's weight decay (0 for Adam)
RMSprop (torch.optim.RMSprop):
    g = grad + wd * p
    s = alpha * s + (1 - alpha) * g^2
    a = a + (1 - alpha) * (g - a); avg = sqrt(s - a^2) + eps      (centered)
    avg = sqrt(s) + eps                                           (otherwise)
    buf = momentum * buf + g / avg; p = p - lr * buf              (momentum > 0)
    p = p - lr * g / avg                                          (otherwise)
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport malloc, free
from libc.stdint cimport int64_t
cimport numpy as cnp

from _arrays cimport data_of, float_type
from _numerics cimport scale_span
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

cdef Py_ssize_t BLOCK = 8192
cdef Py_ssize_t MIN_PARALLEL = 65536


cdef extern from "_vecmath.h" nogil:
    # the span loops, vectorized C with an AVX2 copy picked at run time
    void cp_sgd_f32(float* p, const float* grad, float* buf, Py_ssize_t n, float lr, float mom,
                    float damp, float wd, int use_momentum, int nesterov, int first_step)
    void cp_sgd_f64(double* p, const double* grad, double* buf, Py_ssize_t n, double lr,
                    double mom, double damp, double wd, int use_momentum, int nesterov,
                    int first_step)
    void cp_adam_f32(float* p, const float* grad, float* m, float* v, float* vmax,
                     Py_ssize_t n, float b1, float b2, float one_b1, float one_b2, float eps,
                     float wd, float decay, float step_size, float inv_sqrt_bc2)
    void cp_adam_f64(double* p, const double* grad, double* m, double* v, double* vmax,
                     Py_ssize_t n, double b1, double b2, double one_b1, double one_b2,
                     double eps, double wd, double decay, double step_size,
                     double inv_sqrt_bc2)
    void cp_rmsprop_f32(float* p, const float* grad, float* sq, float* gavg, float* buf,
                        Py_ssize_t n, float lr, float alpha, float one_alpha, float eps,
                        float wd, float mom)
    void cp_rmsprop_f64(double* p, const double* grad, double* sq, double* gavg, double* buf,
                        Py_ssize_t n, double lr, double alpha, double one_alpha, double eps,
                        double wd, double mom)
    double cp_sq_norm_axpy_f32(const float* x, float* y, Py_ssize_t n, float a)
    double cp_sq_norm_axpy_f64(const double* x, double* y, Py_ssize_t n, double a)


cdef inline void sgd_span(floating* p, const floating* grad, floating* buf, Py_ssize_t n,
                          floating lr, floating mom, floating damp, floating wd,
                          bint use_momentum, bint nesterov, bint first_step) noexcept nogil:
    if floating is float:
        cp_sgd_f32(p, grad, buf, n, lr, mom, damp, wd, use_momentum, nesterov, first_step)
    else:
        cp_sgd_f64(p, grad, buf, n, lr, mom, damp, wd, use_momentum, nesterov, first_step)


cdef void sgd_impl(floating* p, const floating* grad, floating* buf, Py_ssize_t n, double lr,
                   double momentum, double dampening, double weight_decay, bint nesterov,
                   bint first_step, int n_threads) noexcept nogil:
    cdef floating lr_ = <floating>lr, mom = <floating>momentum
    cdef floating damp = <floating>(1 - dampening), wd = <floating>weight_decay
    cdef bint use_momentum = momentum != 0
    cdef Py_ssize_t blk, i0, n_blocks = (n + BLOCK - 1) // BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if n >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            i0 = blk * BLOCK
            sgd_span(p + i0, grad + i0, buf + i0, min(BLOCK, n - i0), lr_, mom, damp, wd,
                     use_momentum, nesterov, first_step)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        sgd_span(p, grad, buf, n, lr_, mom, damp, wd, use_momentum, nesterov, first_step)


def sgd_step(p, grad, buf, double lr, double momentum, double dampening, double weight_decay,
             bint nesterov, bint first_step, int n_threads):
    """One SGD update of p in place; ``buf`` is the momentum buffer (unused without momentum).

    p, grad, buf: C-contiguous arrays of one float dtype and size (checked in C).
    """
    cdef int typenum = float_type(p, "param")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>p)
    cdef void* pp = data_of(p, typenum, n, True, "param")
    cdef void* pg = data_of(grad, typenum, n, False, "grad")
    cdef void* pb = data_of(buf, typenum, n, True, "momentum_buffer")
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            sgd_impl[float](<float*>pp, <float*>pg, <float*>pb, n, lr, momentum, dampening,
                            weight_decay, nesterov, first_step, n_threads)
        else:
            sgd_impl[double](<double*>pp, <double*>pg, <double*>pb, n, lr, momentum, dampening,
                             weight_decay, nesterov, first_step, n_threads)


cdef inline void adam_span(floating* p, const floating* grad, floating* m, floating* v,
                           floating* vmax, Py_ssize_t n, floating b1, floating b2,
                           floating one_b1, floating one_b2, floating eps, floating wd,
                           floating decay, floating step_size,
                           floating inv_sqrt_bc2) noexcept nogil:
    if floating is float:
        cp_adam_f32(p, grad, m, v, vmax, n, b1, b2, one_b1, one_b2, eps, wd, decay, step_size,
                    inv_sqrt_bc2)
    else:
        cp_adam_f64(p, grad, m, v, vmax, n, b1, b2, one_b1, one_b2, eps, wd, decay, step_size,
                    inv_sqrt_bc2)


cdef inline floating* at(floating* a, Py_ssize_t i) noexcept nogil:
    """a + i, or NULL for an unused (NULL) buffer."""
    return a + i if a != NULL else NULL


cdef void adam_impl(floating* p, const floating* grad, floating* m, floating* v, floating* vmax,
                    Py_ssize_t n, double lr, double beta1, double beta2, double eps,
                    double weight_decay, double decoupled_weight_decay,
                    double bias_correction1, double bias_correction2,
                    int n_threads) noexcept nogil:
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating one_b1 = <floating>(1 - beta1), one_b2 = <floating>(1 - beta2)
    cdef floating eps_ = <floating>eps, wd = <floating>weight_decay
    cdef floating decay = <floating>(1 - lr * decoupled_weight_decay)
    cdef floating step_size = <floating>(lr / bias_correction1)
    cdef floating inv_sqrt_bc2 = <floating>(1 / sqrt(bias_correction2))
    cdef Py_ssize_t blk, i0, n_blocks = (n + BLOCK - 1) // BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if n >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            i0 = blk * BLOCK
            adam_span(p + i0, grad + i0, m + i0, v + i0, at(vmax, i0), min(BLOCK, n - i0), b1,
                      b2, one_b1, one_b2, eps_, wd, decay, step_size, inv_sqrt_bc2)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        adam_span(p, grad, m, v, vmax, n, b1, b2, one_b1, one_b2, eps_, wd, decay, step_size,
                  inv_sqrt_bc2)


def adam_step(p, grad, m, v, vmax, double lr, double beta1, double beta2, double eps,
              double weight_decay, double decoupled_weight_decay, double bias_correction1,
              double bias_correction2, int n_threads):
    """One Adam (or AdamW) update of p in place; m, v are the moment estimates.

    p, grad, m, v and (for amsgrad, else None) vmax, the running maximum of v:
    C-contiguous arrays of one float dtype and size (checked in C).
    ``weight_decay`` is Adam's L2 term, ``decoupled_weight_decay`` AdamW's.
    """
    cdef int typenum = float_type(p, "param")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>p)
    cdef void* pp = data_of(p, typenum, n, True, "param")
    cdef void* pg = data_of(grad, typenum, n, False, "grad")
    cdef void* pm = data_of(m, typenum, n, True, "exp_avg")
    cdef void* pv = data_of(v, typenum, n, True, "exp_avg_sq")
    cdef void* pvm = NULL if vmax is None else data_of(vmax, typenum, n, True, "max_exp_avg_sq")
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            adam_impl[float](<float*>pp, <float*>pg, <float*>pm, <float*>pv, <float*>pvm, n, lr,
                             beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                             bias_correction1, bias_correction2, n_threads)
        else:
            adam_impl[double](<double*>pp, <double*>pg, <double*>pm, <double*>pv, <double*>pvm,
                              n, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                              bias_correction1, bias_correction2, n_threads)


cdef inline void rmsprop_span(floating* p, const floating* grad, floating* sq, floating* gavg,
                              floating* buf, Py_ssize_t n, floating lr, floating alpha,
                              floating one_alpha, floating eps, floating wd,
                              floating mom) noexcept nogil:
    if floating is float:
        cp_rmsprop_f32(p, grad, sq, gavg, buf, n, lr, alpha, one_alpha, eps, wd, mom)
    else:
        cp_rmsprop_f64(p, grad, sq, gavg, buf, n, lr, alpha, one_alpha, eps, wd, mom)


cdef void rmsprop_impl(floating* p, const floating* grad, floating* sq, floating* gavg,
                       floating* buf, Py_ssize_t n, double lr, double alpha, double eps,
                       double weight_decay, double momentum, int n_threads) noexcept nogil:
    cdef floating lr_ = <floating>lr, alpha_ = <floating>alpha
    cdef floating one_alpha = <floating>(1 - alpha), eps_ = <floating>eps
    cdef floating wd = <floating>weight_decay, mom = <floating>momentum
    cdef Py_ssize_t blk, i0, n_blocks = (n + BLOCK - 1) // BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if n >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            i0 = blk * BLOCK
            rmsprop_span(p + i0, grad + i0, sq + i0, at(gavg, i0), at(buf, i0),
                         min(BLOCK, n - i0), lr_, alpha_, one_alpha, eps_, wd, mom)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        rmsprop_span(p, grad, sq, gavg, buf, n, lr_, alpha_, one_alpha, eps_, wd, mom)


def rmsprop_step(p, grad, sq, gavg, buf, double lr, double alpha, double eps,
                 double weight_decay, double momentum, int n_threads):
    """One RMSprop update of p in place; sq is the mean square, gavg the mean
    (centered, else None), buf the momentum buffer (momentum > 0, else None).

    C-contiguous arrays of one float dtype and size (checked in C).
    """
    cdef int typenum = float_type(p, "param")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>p)
    cdef void* pp = data_of(p, typenum, n, True, "param")
    cdef void* pg = data_of(grad, typenum, n, False, "grad")
    cdef void* ps = data_of(sq, typenum, n, True, "square_avg")
    cdef void* pa = NULL if gavg is None else data_of(gavg, typenum, n, True, "grad_avg")
    cdef void* pb = NULL if buf is None else data_of(buf, typenum, n, True, "momentum_buffer")
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            rmsprop_impl[float](<float*>pp, <float*>pg, <float*>ps, <float*>pa, <float*>pb, n,
                                lr, alpha, eps, weight_decay, momentum, n_threads)
        else:
            rmsprop_impl[double](<double*>pp, <double*>pg, <double*>ps, <double*>pa,
                                 <double*>pb, n, lr, alpha, eps, weight_decay, momentum,
                                 n_threads)

cdef inline double sq_norm_axpy_span(const floating* x, floating* y, Py_ssize_t n,
                                     floating a) noexcept nogil:
    if floating is float:
        return cp_sq_norm_axpy_f32(x, y, n, a)
    else:
        return cp_sq_norm_axpy_f64(x, y, n, a)


cdef double sq_norm_axpy_impl(const floating* x, floating* y, Py_ssize_t n, double a,
                              double* partial, int n_threads) noexcept nogil:
    cdef floating a_ = <floating>a
    cdef Py_ssize_t blk, i0, n_blocks = (n + BLOCK - 1) // BLOCK
    cdef double total = 0
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if n >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            i0 = blk * BLOCK
            partial[blk] = sq_norm_axpy_span(x + i0, y + i0 if y != NULL else NULL,
                                             min(BLOCK, n - i0), a_)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for blk in range(n_blocks):
            i0 = blk * BLOCK
            partial[blk] = sq_norm_axpy_span(x + i0, y + i0 if y != NULL else NULL,
                                             min(BLOCK, n - i0), a_)
    for blk in range(n_blocks):
        total += partial[blk]
    return total


def sq_norm_axpy(x, y, double a, int n_threads):
    """Return sum(x**2) as a float64 and, unless ``y`` is None, add ``a * x`` to y.

    x, y: C-contiguous arrays of one float dtype and size (checked in C);
    ``y`` is written in place and must not overlap ``x``.
    """
    cdef int typenum = float_type(x, "x")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void* px = data_of(x, typenum, n, False, "x")
    cdef void* py = NULL if y is None else data_of(y, typenum, n, True, "y")
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef double stack_partial[16]
    cdef double* partial = stack_partial
    cdef double total
    if n == 0:
        return 0.0
    if n_blocks > 16:
        partial = <double*>malloc(n_blocks * sizeof(double))
        if partial == NULL:
            raise MemoryError()
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            total = sq_norm_axpy_impl[float](<float*>px, <float*>py, n, a, partial, n_threads)
        else:
            total = sq_norm_axpy_impl[double](<double*>px, <double*>py, n, a, partial,
                                              n_threads)
    if partial != stack_partial:
        free(partial)
    return total


cdef void scale_impl(floating* x, Py_ssize_t n, double a, int n_threads) noexcept nogil:
    cdef floating a_ = <floating>a
    cdef Py_ssize_t blk, i0, n_blocks = (n + BLOCK - 1) // BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if n >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            i0 = blk * BLOCK
            scale_span(x + i0, a_, min(BLOCK, n - i0))
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        scale_span(x, a_, n)


def scale(x, double a, int n_threads):
    """x *= a in place (a rounded to x's dtype): gradient clipping's rescale.

    x: a C-contiguous writeable float array (checked in C).
    """
    cdef int typenum = float_type(x, "x")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void* px = data_of(x, typenum, n, True, "x")
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            scale_impl[float](<float*>px, n, a, n_threads)
        else:
            scale_impl[double](<double*>px, n, a, n_threads)
