"""Element-wise activation kernels: ReLU, sigmoid, tanh, forward and backward.

Design
------
The arrays arrive flattened (C-contiguous, 1-D views made by
``cyprop.functional``, which has validated shapes, dtypes and aliasing).
The work is cut into fixed blocks of ``BLOCK`` elements; ``prange`` hands
blocks to threads, and each block is a plain loop the compiler can vectorize.
Every element is computed independently, so results do not depend on the
thread count. The math lives in ``_numerics.pxd``.
"""
from cython cimport floating
from cython.parallel cimport prange

from _numerics cimport activation_forward_span, activation_backward_span

cdef Py_ssize_t BLOCK = 16384       # elements per parallel task
cdef Py_ssize_t MIN_PARALLEL = 32768  # below this, one thread is faster


def activation_forward(const floating[::1] x, floating[::1] y, int act, int n_threads):
    """y = act(x) for 1-D spans (n,); ``y`` may be ``x``."""
    cdef Py_ssize_t n = x.shape[0]
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, start, stop
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule="static",
                          use_threads_if=n_threads > 1 and n >= MIN_PARALLEL):
            start = blk * BLOCK
            stop = min(start + BLOCK, n)
            activation_forward_span(&x[start], &y[start], stop - start, act)


def activation_backward(const floating[::1] dy, const floating[::1] y, floating[::1] dx,
                        int act, int n_threads):
    """dx = dy * act'(.) in terms of the forward output y, all (n,); ``dx`` may be ``dy``."""
    cdef Py_ssize_t n = dy.shape[0]
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, start, stop
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule="static",
                          use_threads_if=n_threads > 1 and n >= MIN_PARALLEL):
            start = blk * BLOCK
            stop = min(start + BLOCK, n)
            activation_backward_span(&dy[start], &y[start], &dx[start], stop - start, act)
