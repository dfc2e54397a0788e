"""Optimizer update kernels, in place, with PyTorch's update semantics.

Design
------
Parameters, gradients and state arrive flattened (n,). Each element's update
is independent, so ``prange`` over fixed blocks gives results identical for
any thread count. Scalars (learning rate, bias corrections) are computed once
by the caller in float64 and cast to the parameter dtype here.

SGD (torch.optim.SGD):
    g = grad + wd * p
    buf = g                        on the first step, else
    buf = momentum * buf + (1 - dampening) * g
    g = g + momentum * buf  (nesterov)   or   g = buf
    p = p - lr * g
Adam (torch.optim.Adam, L2 weight decay):
    g = grad + wd * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc_k = 1 - beta_k^t
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

cdef Py_ssize_t BLOCK = 8192
cdef Py_ssize_t MIN_PARALLEL = 65536


cdef inline floating sqrt_(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


def sgd_step(floating[::1] p, const floating[::1] grad, floating[::1] buf,
             double lr, double momentum, double dampening, double weight_decay,
             bint nesterov, bint first_step, int n_threads):
    """One SGD update of p (n,) in place; ``buf`` (n,) is the momentum buffer (unused without momentum)."""
    cdef Py_ssize_t n = p.shape[0], n_blocks = (n + BLOCK - 1) // BLOCK, blk, i, i0, i1
    cdef floating lr_ = <floating>lr, mom = <floating>momentum
    cdef floating damp = <floating>(1 - dampening), wd = <floating>weight_decay
    cdef floating g
    cdef bint use_momentum = momentum != 0
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule="static",
                          use_threads_if=n_threads > 1 and n >= MIN_PARALLEL):
            i0 = blk * BLOCK
            i1 = min(i0 + BLOCK, n)
            for i in range(i0, i1):
                g = grad[i]
                if wd != 0:
                    g = g + wd * p[i]
                if use_momentum:
                    if first_step:
                        buf[i] = g
                    else:
                        buf[i] = mom * buf[i] + damp * g
                    if nesterov:
                        g = g + mom * buf[i]
                    else:
                        g = buf[i]
                p[i] = p[i] - lr_ * g


def adam_step(floating[::1] p, const floating[::1] grad, floating[::1] m, floating[::1] v,
              double lr, double beta1, double beta2, double eps, double weight_decay,
              double bias_correction1, double bias_correction2, int n_threads):
    """One Adam update of p (n,) in place; m, v (n,) are the moment estimates."""
    cdef Py_ssize_t n = p.shape[0], n_blocks = (n + BLOCK - 1) // BLOCK, blk, i, i0, i1
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating one_b1 = <floating>(1 - beta1), one_b2 = <floating>(1 - beta2)
    cdef floating eps_ = <floating>eps, wd = <floating>weight_decay
    cdef floating step_size = <floating>(lr / bias_correction1)
    cdef floating inv_sqrt_bc2 = <floating>(1 / sqrt(bias_correction2))
    cdef floating g
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule="static",
                          use_threads_if=n_threads > 1 and n >= MIN_PARALLEL):
            i0 = blk * BLOCK
            i1 = min(i0 + BLOCK, n)
            for i in range(i0, i1):
                g = grad[i]
                if wd != 0:
                    g = g + wd * p[i]
                m[i] = b1 * m[i] + one_b1 * g
                v[i] = b2 * v[i] + one_b2 * g * g
                p[i] = p[i] - step_size * m[i] / (sqrt_(v[i]) * inv_sqrt_bc2 + eps_)
