"""Element-wise activation kernels: ReLU, sigmoid, tanh, forward and backward.

Design
------
The arrays arrive flattened (C-contiguous, 1-D views made by
``cyprop.functional``, which has validated shapes, dtypes and aliasing).
The work is cut into fixed blocks that ``prange`` hands to threads, each a
vectorized loop (``_numerics.pxd`` / ``_vecmath.h``); every element is
computed independently, so results do not depend on the thread count.
"""
from cython cimport floating

from _numerics cimport parallel_activation_forward, parallel_activation_backward

cdef extern from "_vecmath.h" nogil:
    const char* cp_vector_isa()


def vector_isa():
    """The copy of the vectorized loops this process runs: 'avx2' (AVX2 + FMA) or 'baseline'."""
    return cp_vector_isa().decode("ascii")


def activation_forward(const floating[::1] x, floating[::1] y, int act, int n_threads):
    """y = act(x) for 1-D spans (n,); ``y`` may be ``x``."""
    if x.shape[0] == 0:
        return
    with nogil:
        parallel_activation_forward(&x[0], &y[0], x.shape[0], act, n_threads)


def activation_backward(const floating[::1] dy, const floating[::1] y, floating[::1] dx,
                        int act, int n_threads):
    """dx = dy * act'(.) in terms of the forward output y, all (n,); ``dx`` may be ``dy``."""
    if dy.shape[0] == 0:
        return
    with nogil:
        parallel_activation_backward(&dy[0], &y[0], &dx[0], dy.shape[0], act, n_threads)
