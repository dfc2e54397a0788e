# A chain step: a layer of another kernel module run inside a ChainPlan
# (pyx/_linear.pyx), so that a Sequential with BatchNorm1d, LayerNorm, Dropout
# or an activation with parameters still runs forward and backward in one
# nogil call each.
#
# Each module that offers steps (_norm, _dropout, _activations) defines a
# state struct whose first member is a ChainStep, and a cdef class holding one
# and keeping alive the arrays its pointers reach (checked when it is built).
# The plan reads the header through the address the class hands out:
#
#   forward(state, x, y, n_threads): y (n, width) from x (n, width). Returns 0,
#       1 when the step is an identity this time (nothing written: the output
#       is x itself, as for Dropout in eval mode), -1 when a workspace could
#       not be allocated.
#   backward(state, dy, x, y, dx, n_threads): dx (n, width) from dy, the
#       forward's input x and output y, after a forward that returned 0; dx is
#       NULL when no input gradient is wanted (parameter gradients are still
#       written). Returns 0 or -1 as forward.
#
# Inline only: no module behind it.
cimport numpy as cnp

ctypedef int (*step_forward_t)(void* state, const void* x, void* y,
                               int n_threads) noexcept nogil
ctypedef int (*step_backward_t)(void* state, const void* dy, const void* x, const void* y,
                                void* dx, int n_threads) noexcept nogil

cdef struct ChainStep:
    step_forward_t forward
    step_backward_t backward
    Py_ssize_t n, width      # rows and features of the step's input and output
    int typenum              # NPY_FLOAT or NPY_DOUBLE


cdef inline int step_init(ChainStep* s, Py_ssize_t n, Py_ssize_t width, object dtype,
                          str who) except -1:
    """Check and fill a step's header: n >= 0 rows, width >= 1, dtype float32 or
    float64 (a name or a numpy dtype); the functions are the caller's to set."""
    if dtype != "float32" and dtype != "float64":
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dtype!r}")
    if n < 0 or width < 1:
        raise ValueError(f"{who}: n must be >= 0 and width >= 1, got n={n}, width={width}")
    s.n, s.width = n, width
    s.typenum = cnp.NPY_FLOAT if dtype == "float32" else cnp.NPY_DOUBLE
    return 0
