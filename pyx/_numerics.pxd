# Shared numerics for the cyprop kernels: thin fused-type wrappers over the
# vectorized C helpers in _vecmath.h (see the design comment there). Inline
# only: this .pxd has no module behind it.
#
# Activations are applied to contiguous spans, and their derivatives are
# written in terms of the forward OUTPUT y, so a forward pass may run in place:
#   relu:    y = max(x, 0)                    dx = dy * [y > 0]
#   sigmoid: y = 1 / (1 + exp(-x))            dx = dy * y * (1 - y)
#   tanh:    y = tanh(x)                      dx = dy * (1 - y^2)
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from _team cimport cp_region, cp_region_begin, cp_block_begin, cp_block_end, cp_region_end

cdef extern from "_vecmath.h" nogil:
    enum:
        ACT_NONE "CP_ACT_NONE"
        ACT_RELU "CP_ACT_RELU"
        ACT_SIGMOID "CP_ACT_SIGMOID"
        ACT_TANH "CP_ACT_TANH"
    void cp_act_forward_f32(const float* x, float* y, Py_ssize_t n, int act)
    void cp_act_forward_f64(const double* x, double* y, Py_ssize_t n, int act)
    void cp_act_backward_f32(const float* dy, const float* y, float* dx, Py_ssize_t n, int act)
    void cp_act_backward_f64(const double* dy, const double* y, double* dx, Py_ssize_t n, int act)
    double cp_exp_shift_f32(const float* z, float m, float* e, Py_ssize_t n)
    double cp_exp_shift_f64(const double* z, double m, double* e, Py_ssize_t n)
    double cp_target_dot_f32(const float* z, const float* t, float m, Py_ssize_t n,
                             double* t_sum)
    double cp_target_dot_f64(const double* z, const double* t, double m, Py_ssize_t n,
                             double* t_sum)
    float cp_row_max_f32(const float* z, Py_ssize_t n)
    double cp_row_max_f64(const double* z, Py_ssize_t n)
    void cp_scale_f32(float* g, float a, Py_ssize_t n)
    void cp_scale_f64(double* g, double a, Py_ssize_t n)
    void cp_prefetch(const void* p, Py_ssize_t nbytes)


cdef inline void activation_forward_span(const floating* x, floating* y, Py_ssize_t n,
                                         int act) noexcept nogil:
    """y[:n] = act(x[:n]); x and y may be the same span."""
    if floating is float:
        cp_act_forward_f32(x, y, n, act)
    else:
        cp_act_forward_f64(x, y, n, act)


cdef inline void activation_inplace(floating* y, Py_ssize_t n, int act) noexcept nogil:
    """y[:n] = act(y[:n])."""
    if act != ACT_NONE:
        activation_forward_span(y, y, n, act)


cdef inline void activation_backward_span(const floating* dy, const floating* y, floating* dx,
                                          Py_ssize_t n, int act) noexcept nogil:
    """dx[:n] = dy * act'(.) expressed in the forward output y; dx may alias dy."""
    if floating is float:
        cp_act_backward_f32(dy, y, dx, n, act)
    else:
        cp_act_backward_f64(dy, y, dx, n, act)


cdef inline double target_dot(const floating* z, const floating* t, floating m, Py_ssize_t n,
                              double* t_sum) noexcept nogil:
    """sum_c t_c (m - z_c) over t_c != 0, and t_sum = sum_c t_c (both float64)."""
    if floating is float:
        return cp_target_dot_f32(z, t, m, n, t_sum)
    else:
        return cp_target_dot_f64(z, t, m, n, t_sum)


cdef inline floating row_max(const floating* z, Py_ssize_t n) noexcept nogil:
    """max z[:n]; NaN if any element is NaN (so that it propagates)."""
    if floating is float:
        return cp_row_max_f32(z, n)
    else:
        return cp_row_max_f64(z, n)


cdef inline void scale_span(floating* g, floating a, Py_ssize_t n) noexcept nogil:
    """g[:n] *= a."""
    if floating is float:
        cp_scale_f32(g, a, n)
    else:
        cp_scale_f64(g, a, n)


cdef inline void prefetch_span(const floating* p, Py_ssize_t n) noexcept nogil:
    """Hint that p[:n] will be read soon (no effect on any result)."""
    cp_prefetch(p, n * sizeof(floating))


cdef inline double exp_shift_sum(const floating* z, floating m, floating* e,
                                 Py_ssize_t n) noexcept nogil:
    """e[:n] = exp(z - m) for m = max(z) (z - m <= 0); return their sum, in float64."""
    if floating is float:
        return cp_exp_shift_f32(z, m, e, n)
    else:
        return cp_exp_shift_f64(z, m, e, n)


# Element-wise work is cut into fixed blocks of ACT_BLOCK elements handed to
# threads as they come free (see _team.h); below ACT_MIN_PARALLEL elements one
# thread is faster. Every element is independent, so the result does not
# depend on the thread count.
cdef enum:
    ACT_BLOCK = 16384
    ACT_MIN_PARALLEL = 32768


cdef inline void parallel_activation_forward(const floating* x, floating* y, Py_ssize_t size,
                                             int act, int n_threads) noexcept nogil:
    """y[:size] = act(x[:size]) over ``n_threads`` threads; y may be x."""
    cdef Py_ssize_t blk, start, n_blocks = (size + ACT_BLOCK - 1) // ACT_BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if size >= ACT_MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            start = blk * ACT_BLOCK
            activation_forward_span(x + start, y + start, min(start + ACT_BLOCK, size) - start,
                                    act)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:  # no OpenMP region at all (entering one costs ~0.3 us even for one thread)
        activation_forward_span(x, y, size, act)


cdef inline void parallel_activation_backward(const floating* dy, const floating* y,
                                              floating* dx, Py_ssize_t size, int act,
                                              int n_threads) noexcept nogil:
    """dx[:size] = dy * act'(.) from the forward output y; dx may be dy."""
    cdef Py_ssize_t blk, start, n_blocks = (size + ACT_BLOCK - 1) // ACT_BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if size >= ACT_MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            start = blk * ACT_BLOCK
            activation_backward_span(dy + start, y + start, dx + start,
                                     min(start + ACT_BLOCK, size) - start, act)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        activation_backward_span(dy, y, dx, size, act)
