"""Element-wise activation kernels: ReLU, sigmoid, tanh, forward and backward.

Design
------
The arrays arrive as C-contiguous ndarrays of any shape (``cyprop.functional``
has validated shapes, dtypes and aliasing; the entry points check dtype,
order and size again in C, without acquiring memoryviews).
The work is cut into fixed blocks that ``prange`` hands to threads, each a
vectorized loop (``_numerics.pxd`` / ``_vecmath.h``); every element is
computed independently, so results do not depend on the thread count.
"""
cimport numpy as cnp

from _arrays cimport data_of, float_type
from _numerics cimport parallel_activation_forward, parallel_activation_backward
from _team cimport bind_team

bind_team()

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
