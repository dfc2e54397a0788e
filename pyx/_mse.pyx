"""Mean squared error kernel: loss = sum (pred - target)^2 and its gradient.

Design
------
Flattened arrays (n,). The elements are cut into fixed chunks of ``CHUNK``
(independent of the thread count); each chunk's sum of squares is accumulated
in float64 by one thread into ``partial``, and the partials are added
serially in order, so the loss is the same for any thread count. Within a
chunk, ``cp_sq_diff`` (``_vecmath.h``, dispatched to AVX2 like the other
spans) keeps 16 partial sums in a fixed order, so the adds do not wait on
each other and the bits are the same on every CPU.
grad = scale * 2 (pred - target), with scale 1/n for the mean, 1 for sum.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
cimport numpy as cnp

from _arrays cimport data_of, float_type
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

cdef Py_ssize_t CHUNK = 8192
cdef Py_ssize_t MIN_PARALLEL = 65536


cdef extern from "_vecmath.h" nogil:
    double cp_sq_diff_f32(const float* pred, const float* target, float* grad, Py_ssize_t n,
                          float two_scale)
    double cp_sq_diff_f64(const double* pred, const double* target, double* grad,
                          Py_ssize_t n, double two_scale)


cdef inline double mse_chunk(const floating* pred, const floating* target, floating* grad,
                             Py_ssize_t n, floating two_scale, bint need_grad) noexcept nogil:
    """Sum of (pred - target)^2 over n elements in float64; grad = two_scale * (pred - target)."""
    if floating is float:
        return cp_sq_diff_f32(pred, target, grad if need_grad else NULL, n, two_scale)
    else:
        return cp_sq_diff_f64(pred, target, grad if need_grad else NULL, n, two_scale)


cdef double mse_impl(const floating* pred, const floating* target, floating* grad, Py_ssize_t n,
                     bint need_grad, double scale, double* partial,
                     int n_threads) noexcept nogil:
    cdef Py_ssize_t c, i0, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef floating two_scale = <floating>(2 * scale)
    cdef double total = 0
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_chunks) if n >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for c in prange(n_chunks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            i0 = c * CHUNK
            partial[c] = mse_chunk(pred + i0, target + i0, grad + i0, min(CHUNK, n - i0),
                                   two_scale, need_grad)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for c in range(n_chunks):
            i0 = c * CHUNK
            partial[c] = mse_chunk(pred + i0, target + i0, grad + i0, min(CHUNK, n - i0),
                                   two_scale, need_grad)
    for c in range(n_chunks):
        total += partial[c]
    return total


def mse(pred, target, grad, bint need_grad, double scale, int n_threads):
    """Return sum((pred - target)^2) as a float64; write grad if need_grad.

    pred, target, grad: C-contiguous arrays of one float dtype and size
    (checked in C); ``grad`` may be ``pred`` or ``target``. Raises
    MemoryError if the workspace cannot be allocated.
    """
    cdef int typenum = float_type(pred, "pred")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>pred)
    cdef void* pp = data_of(pred, typenum, n, False, "pred")
    cdef void* pt = data_of(target, typenum, n, False, "target")
    cdef void* pg = data_of(grad, typenum, n, True, "grad")
    cdef double total
    cdef double stack_partial[16]
    cdef double* partial = stack_partial
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    if n == 0:
        return 0.0
    if n_chunks > 16:
        partial = <double*>malloc(n_chunks * sizeof(double))
        if partial == NULL:
            raise MemoryError()
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            total = mse_impl[float](<float*>pp, <float*>pt, <float*>pg, n, need_grad, scale,
                                    partial, n_threads)
        else:
            total = mse_impl[double](<double*>pp, <double*>pt, <double*>pg, n, need_grad,
                                     scale, partial, n_threads)
    if partial != stack_partial:
        free(partial)
    return total
