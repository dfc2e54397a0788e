"""Element-wise activation kernels, forward and backward: ReLU, sigmoid, tanh, and
leaky_relu, elu, gelu, gelu_tanh, silu, softplus (their formulas in _special.h).

Design
------
The arrays arrive as C-contiguous ndarrays of any shape (``cyprop.functional``
has validated shapes, dtypes and aliasing; the entry points check dtype,
order and size again in C, without acquiring memoryviews).
The work is cut into fixed blocks that ``prange`` hands to threads, each a
vectorized loop (``_numerics.pxd`` / ``_vecmath.h``); every element is
computed independently, so results do not depend on the thread count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
cimport numpy as cnp

from _arrays cimport data_of, float_type
from _step cimport ChainStep, step_init
from _numerics cimport (ACT_BLOCK, parallel_activation_forward, parallel_activation_backward)
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

# the costlier activations (erfc, log1p: 5-20 ns an element) pay for a second
# thread sooner than ReLU does
cdef Py_ssize_t ACT2_MIN_PARALLEL = 16384

cdef extern from "_vecmath.h" nogil:
    const char* cp_vector_isa()


def vector_isa():
    """The copy of the vectorized loops this process runs: 'avx2' (AVX2 + FMA) or 'baseline'."""
    return cp_vector_isa().decode("ascii")


def activation_forward(x, y, int act, int n_threads):
    """y = act(x) over C-contiguous ndarrays of one float dtype and size; ``y`` may be ``x``.

    The arrays are checked in C (dtype, order, size, y writeable); any shape.
    """
    cdef int typenum = float_type(x, "x")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void* px = data_of(x, typenum, n, False, "x")
    cdef void* py = data_of(y, typenum, n, True, "y")
    if n == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            parallel_activation_forward[float](<float*>px, <float*>py, n, act, n_threads)
        else:
            parallel_activation_forward[double](<double*>px, <double*>py, n, act, n_threads)


def activation_backward(dy, y, dx, int act, int n_threads):
    """dx = dy * act'(.) in terms of the forward output y; ``dx`` may be ``dy``.

    C-contiguous ndarrays of one float dtype and size, checked in C; any shape.
    """
    cdef int typenum = float_type(dy, "dy")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>dy)
    cdef void* pdy = data_of(dy, typenum, n, False, "dy")
    cdef void* py = data_of(y, typenum, n, False, "y")
    cdef void* pdx = data_of(dx, typenum, n, True, "dx")
    if n == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            parallel_activation_backward[float](<float*>pdy, <float*>py, <float*>pdx, n, act,
                                                n_threads)
        else:
            parallel_activation_backward[double](<double*>pdy, <double*>py, <double*>pdx, n,
                                                 act, n_threads)


# ---------------------------------------------------------------------------
# The activations with parameters (leaky_relu, elu, gelu, gelu_tanh, silu,
# softplus): _special.h's span loops over the same fixed blocks. Their backward
# takes the pre-activation x (leaky_relu's, x or y: see _special.h).
cdef extern from "_special.h" nogil:
    void cp_act2_forward_f32(const float* x, float* y, Py_ssize_t n, int act, double a,
                             double b)
    void cp_act2_forward_f64(const double* x, double* y, Py_ssize_t n, int act, double a,
                             double b)
    void cp_act2_backward_f32(const float* dy, const float* v, float* dx, Py_ssize_t n,
                              int act, double a, double b)
    void cp_act2_backward_f64(const double* dy, const double* v, double* dx, Py_ssize_t n,
                              int act, double a, double b)


cdef inline void act2_span(const floating* src, const floating* v, floating* dst, Py_ssize_t n,
                           int act, double a, double b, bint backward) noexcept nogil:
    """dst = act(src) (forward), or dst = src * act'(v) (backward), over one span."""
    if floating is float:
        if backward:
            cp_act2_backward_f32(src, v, dst, n, act, a, b)
        else:
            cp_act2_forward_f32(src, dst, n, act, a, b)
    else:
        if backward:
            cp_act2_backward_f64(src, v, dst, n, act, a, b)
        else:
            cp_act2_forward_f64(src, dst, n, act, a, b)


cdef void act2_parallel(const floating* src, const floating* v, floating* dst, Py_ssize_t size,
                        int act, double a, double b, bint backward,
                        int n_threads) noexcept nogil:
    cdef Py_ssize_t blk, start, n_blocks = (size + ACT_BLOCK - 1) // ACT_BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if size >= ACT2_MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            start = blk * ACT_BLOCK
            act2_span(src + start, v + start, dst + start,
                      min(start + ACT_BLOCK, size) - start, act, a, b, backward)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        act2_span(src, v, dst, size, act, a, b, backward)


def activation2_forward(x, y, int act, double a, double b, int n_threads):
    """y = act(x; a, b) for the activations with parameters; ``y`` may be ``x``.

    C-contiguous ndarrays of one float dtype and size, checked in C; any shape.
    """
    cdef int typenum = float_type(x, "x")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void* px = data_of(x, typenum, n, False, "x")
    cdef void* py = data_of(y, typenum, n, True, "y")
    if n == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            act2_parallel[float](<float*>px, <float*>px, <float*>py, n, act, a, b, False,
                                 n_threads)
        else:
            act2_parallel[double](<double*>px, <double*>px, <double*>py, n, act, a, b, False,
                                  n_threads)


def activation2_backward(dy, v, dx, int act, double a, double b, int n_threads):
    """dx = dy * act'(v; a, b), v the pre-activation (or leaky_relu's output); dx may be dy."""
    cdef int typenum = float_type(dy, "dy")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>dy)
    cdef void* pdy = data_of(dy, typenum, n, False, "dy")
    cdef void* pv = data_of(v, typenum, n, False, "x")
    cdef void* pdx = data_of(dx, typenum, n, True, "dx")
    if n == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            act2_parallel[float](<float*>pdy, <float*>pv, <float*>pdx, n, act, a, b, True,
                                 n_threads)
        else:
            act2_parallel[double](<double*>pdy, <double*>pv, <double*>pdx, n, act, a, b, True,
                                  n_threads)


# --- An activation with parameters inside a ChainPlan (see _step.pxd) -----------
cdef struct Act2State:
    ChainStep base
    int act
    double a, b


cdef int act2_step_forward(void* state, const void* x, void* y, int n_threads) noexcept nogil:
    cdef Act2State* s = <Act2State*>state
    cdef Py_ssize_t size = s.base.n * s.base.width
    if s.base.typenum == cnp.NPY_FLOAT:
        act2_parallel[float](<const float*>x, <const float*>x, <float*>y, size, s.act, s.a,
                             s.b, False, n_threads)
    else:
        act2_parallel[double](<const double*>x, <const double*>x, <double*>y, size, s.act,
                              s.a, s.b, False, n_threads)
    return 0


cdef int act2_step_backward(void* state, const void* dy, const void* x, const void* y,
                            void* dx, int n_threads) noexcept nogil:
    # every one of them takes the pre-activation x (leaky_relu's x is right for any slope)
    cdef Act2State* s = <Act2State*>state
    cdef Py_ssize_t size = s.base.n * s.base.width
    if dx == NULL:
        return 0
    if s.base.typenum == cnp.NPY_FLOAT:
        act2_parallel[float](<const float*>dy, <const float*>x, <float*>dx, size, s.act, s.a,
                             s.b, True, n_threads)
    else:
        act2_parallel[double](<const double*>dy, <const double*>x, <double*>dx, size, s.act,
                              s.a, s.b, True, n_threads)
    return 0


cdef class Activation2Step:
    """An activation with parameters (codes 4-9) over (n, width) arrays as a ChainPlan step.

    ``set(act, a, b)`` gives the activation and its parameters (as
    ``activation2_forward``'s) before a forward.
    """
    cdef Act2State st

    def __cinit__(self, Py_ssize_t n, Py_ssize_t width, dtype):
        step_init(&self.st.base, n, width, dtype, "Activation2Step")
        self.st.base.forward = act2_step_forward
        self.st.base.backward = act2_step_backward
        self.st.act = -1

    def set(self, int act, double a, double b):
        if not 4 <= act <= 9:
            raise ValueError(f"Activation2Step: no activation with parameters has code {act}")
        self.st.act, self.st.a, self.st.b = act, a, b

    def address(self):
        if self.st.act < 0:
            raise ValueError("Activation2Step: set() it first")
        return <size_t>&self.st


cdef extern from "_vecmath.h" nogil:
    const char* cp_vector_isa3()


def vector_isa3():
    """The copy of the loops with an AVX-512 copy (round 2's activations with
    parameters, losses, norms and dropout; sigmoid, tanh and softmax's
    exp-and-sum) this process runs: 'avx512', 'avx2' or 'baseline'."""
    return cp_vector_isa3().decode("ascii")
