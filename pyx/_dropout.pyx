"""Dropout kernel: y = x * mask / (1 - p), the mask drawn from Philox4x32-10.

Design
------
The mask is never stored: element e of a call keyed by (seed, step) is kept
when word e % 4 of Philox counter (e / 4, step) under key seed is at least
round(p 2^32) (``_philox.h``). The backward pass, dx = dy * mask / (1 - p),
is the same kernel run on dy with the same (seed, step): it regenerates the
mask (0.5 ns an element in the AVX-512 copy, about 3x a plain copy in cache,
1.7x out of it) instead of storing and rereading one. Blocks of ACT_BLOCK
elements (a multiple of 4) go to threads as they come free; every element's
draw depends on its index only, so the result is the same for any thread
count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint32_t, uint64_t
cimport numpy as cnp

from _arrays cimport data_of, float_type
from _numerics cimport ACT_BLOCK
from _step cimport ChainStep, step_init
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

cdef Py_ssize_t MIN_PARALLEL = 32768


cdef extern from "_philox.h" nogil:
    void cp_dropout_f32(const float* x, float* y, Py_ssize_t n, uint64_t first, uint64_t key,
                        uint64_t step, uint64_t thr, float scale)
    void cp_dropout_f64(const double* x, double* y, Py_ssize_t n, uint64_t first, uint64_t key,
                        uint64_t step, uint64_t thr, double scale)
    void cp_philox_words(uint64_t ctr0, uint64_t key, uint64_t step, uint32_t* out,
                         Py_ssize_t n_counters)


cdef inline void dropout_span(const floating* x, floating* y, Py_ssize_t n, uint64_t first,
                              uint64_t key, uint64_t step, uint64_t thr,
                              double scale) noexcept nogil:
    if floating is float:
        cp_dropout_f32(x, y, n, first, key, step, thr, <float>scale)
    else:
        cp_dropout_f64(x, y, n, first, key, step, thr, scale)


cdef void dropout_impl(const floating* x, floating* y, Py_ssize_t size, uint64_t key,
                       uint64_t step, uint64_t thr, double scale, int n_threads) noexcept nogil:
    cdef Py_ssize_t blk, start, n_blocks = (size + ACT_BLOCK - 1) // ACT_BLOCK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks) if size >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            start = blk * ACT_BLOCK
            dropout_span(x + start, y + start, min(start + ACT_BLOCK, size) - start,
                         <uint64_t>start, key, step, thr, scale)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        dropout_span(x, y, size, 0, key, step, thr, scale)


def dropout(x, y, uint64_t threshold, double scale, uint64_t seed, uint64_t step,
            int n_threads):
    """y = x * (word >= threshold ? scale : 0) per element; ``y`` may be ``x``.

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
            dropout_impl[float](<float*>px, <float*>py, n, seed, step, threshold, scale,
                                n_threads)
        else:
            dropout_impl[double](<double*>px, <double*>py, n, seed, step, threshold, scale,
                                 n_threads)


def philox_words(uint64_t counter, uint64_t key, uint64_t step, out):
    """Philox4x32-10 words of counters counter, counter + 1, ... into a uint32 array ``out``.

    (c2, c3) = step's two halves, (k0, k1) = key's. For the known-answer test
    and the NumPy reference of the mask. ``out`` has 4 words per counter.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>out) if cnp.PyArray_Check(out) else -1
    cdef void* po = data_of(out, cnp.NPY_UINT32, n, True, "out") if n >= 0 else NULL
    if n < 0 or n % 4:
        raise ValueError("out: expected a C-contiguous uint32 array of 4 words per counter")
    with nogil:
        cp_philox_words(counter, key, step, <uint32_t*>po, n // 4)


# --- Dropout inside a ChainPlan (see _step.pxd) ----------------------------------
cdef struct DropoutState:
    ChainStep base
    uint64_t key, thr, mask_step
    uint64_t* counter      # the layer's step: read, and advanced by each masked forward
    double scale
    bint active            # training and p > 0: the next forward draws a mask


cdef int dropout_step_run(DropoutState* s, const floating* src, floating* dst, uint64_t step,
                          int n_threads) noexcept nogil:
    dropout_impl(src, dst, s.base.n * s.base.width, s.key, step, s.thr, s.scale, n_threads)
    return 0


cdef int dropout_step_forward(void* state, const void* x, void* y, int n_threads) noexcept nogil:
    cdef DropoutState* s = <DropoutState*>state
    if not s.active:
        return 1
    s.mask_step = s.counter[0]
    s.counter[0] += 1
    if s.base.typenum == cnp.NPY_FLOAT:
        return dropout_step_run[float](s, <const float*>x, <float*>y, s.mask_step, n_threads)
    return dropout_step_run[double](s, <const double*>x, <double*>y, s.mask_step, n_threads)


cdef int dropout_step_backward(void* state, const void* dy, const void* x, const void* y,
                               void* dx, int n_threads) noexcept nogil:
    cdef DropoutState* s = <DropoutState*>state
    if dx == NULL:
        return 0
    if s.base.typenum == cnp.NPY_FLOAT:
        return dropout_step_run[float](s, <const float*>dy, <float*>dx, s.mask_step, n_threads)
    return dropout_step_run[double](s, <const double*>dy, <double*>dx, s.mask_step, n_threads)


cdef class DropoutStep:
    """Dropout over (n, width) arrays of ``dtype`` as a ChainPlan step.

    ``counter`` is a uint64 array of one element, the layer's step, shared
    with it: a masked forward uses it as the mask's step and advances it.
    ``set`` gives the mode and mask parameters before each forward. A forward
    in eval mode (or with p = 0) is an identity and its backward passes the
    gradient through; the plan does not call backward after one.
    """
    cdef DropoutState st
    cdef object counter

    def __cinit__(self, Py_ssize_t n, Py_ssize_t width, dtype, counter):
        step_init(&self.st.base, n, width, dtype, "DropoutStep")
        self.st.counter = <uint64_t*>data_of(counter, cnp.NPY_UINT64, 1, True, "counter")
        self.counter = counter
        self.st.base.forward = dropout_step_forward
        self.st.base.backward = dropout_step_backward
        self.st.active = False

    def set(self, bint training, uint64_t threshold, double scale, uint64_t seed):
        """Mode and mask for the next forward (threshold 0: p = 0, an identity)."""
        self.st.active = training and threshold > 0
        self.st.thr, self.st.scale, self.st.key = threshold, scale, seed

    def address(self):
        return <size_t>&self.st
