# Shared numerical helpers for the cyprop kernels (inline only: this .pxd has
# no module behind it, it is compiled into each kernel that cimports it).
#
# Activations are applied to contiguous spans, and their derivatives are
# written in terms of the forward OUTPUT y, so a forward pass may run in place:
#   relu:    y = max(x, 0)                    dx = dy * [y > 0]
#   sigmoid: y = 1 / (1 + exp(-x))            dx = dy * y * (1 - y)
#   tanh:    y = tanh(x)                      dx = dy * (1 - y^2)
from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf, fabs, fabsf

cdef enum:
    ACT_NONE = 0
    ACT_RELU = 1
    ACT_SIGMOID = 2
    ACT_TANH = 3


cdef inline floating stable_sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)) without overflow for any finite x.

    With z = exp(-|x|) in (0, 1]: sigmoid(x) = 1/(1+z) for x >= 0 and
    z/(1+z) for x < 0, so exp never sees a positive argument.
    """
    cdef floating z
    if floating is float:
        z = expf(-fabsf(x))
    else:
        z = exp(-fabs(x))
    cdef floating s = 1 / (1 + z)
    return s if x >= 0 else z * s


cdef inline floating tanh_(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline void activation_inplace(floating* y, Py_ssize_t n, int act) noexcept nogil:
    """y[:n] = act(y[:n])."""
    cdef Py_ssize_t i
    if act == ACT_RELU:
        for i in range(n):
            # written so that NaN propagates, as np.maximum(x, 0) does
            y[i] = 0 if y[i] < 0 else y[i]
    elif act == ACT_SIGMOID:
        for i in range(n):
            y[i] = stable_sigmoid(y[i])
    elif act == ACT_TANH:
        for i in range(n):
            y[i] = tanh_(y[i])


cdef inline void activation_forward_span(const floating* x, floating* y, Py_ssize_t n,
                                         int act) noexcept nogil:
    """y[:n] = act(x[:n]); x and y may be the same span."""
    cdef Py_ssize_t i
    if act == ACT_RELU:
        for i in range(n):
            y[i] = 0 if x[i] < 0 else x[i]
    elif act == ACT_SIGMOID:
        for i in range(n):
            y[i] = stable_sigmoid(x[i])
    elif act == ACT_TANH:
        for i in range(n):
            y[i] = tanh_(x[i])
    else:
        for i in range(n):
            y[i] = x[i]


cdef inline void activation_backward_span(const floating* dy, const floating* y, floating* dx,
                                          Py_ssize_t n, int act) noexcept nogil:
    """dx[:n] = dy * act'(.) expressed in the forward output y; dx may alias dy."""
    cdef Py_ssize_t i
    if act == ACT_RELU:
        for i in range(n):
            dx[i] = dy[i] if y[i] > 0 else 0
    elif act == ACT_SIGMOID:
        for i in range(n):
            dx[i] = dy[i] * y[i] * (1 - y[i])
    elif act == ACT_TANH:
        for i in range(n):
            dx[i] = dy[i] * (1 - y[i] * y[i])
    else:
        for i in range(n):
            dx[i] = dy[i]
