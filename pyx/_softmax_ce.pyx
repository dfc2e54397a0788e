"""Softmax and fused softmax + cross-entropy kernels.

Design
------
One pass structure per row i of logits z (N, C):
  m = max_c z_c;  s = sum_c exp(z_c - m)  (accumulated in float64);
  lse = m + log(s)                              (log-sum-exp)
  p_c = exp(z_c - m) / s                        (softmax)
Class-index target t_i:      loss_i = lse - z_{t_i},
                             dz_c  = scale * (p_c - [c == t_i])
Probability target T (N, C): loss_i = lse * sum_c T_c - sum_c T_c z_c,
                             dz_c  = scale * (p_c * sum_c T_c - T_c)
(``scale`` is 1/N for the mean reduction, 1 for sum.)

Rows are independent and go to threads with ``prange``; the per-row losses
are written to ``row_loss`` (float64) and reduced by the caller in a fixed
order, so the result does not depend on the thread count. Every value a row
needs from z is read before its dz row is written, so dz may be z itself.
Out-of-range class indices are never used to index: the row is skipped (its
loss set to NaN) and counted, and the caller raises.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log, INFINITY, NAN

from _numerics cimport exp_

cdef Py_ssize_t MIN_PARALLEL = 16384   # elements below which one thread is faster


cdef inline floating row_max(const floating* z, Py_ssize_t n_classes) noexcept nogil:
    """max_c z_c; NaN if any z_c is NaN (so that it propagates)."""
    cdef Py_ssize_t c
    cdef floating m = -INFINITY
    for c in range(n_classes):
        if z[c] > m or z[c] != z[c]:
            m = z[c]
            if m != m:
                break
    return m


cdef inline double row_sumexp(const floating* z, floating m, floating* e,
                              Py_ssize_t n_classes) noexcept nogil:
    """sum_c exp(z_c - m) in float64; also e_c = exp(z_c - m) when e != NULL."""
    cdef Py_ssize_t c
    cdef floating v
    cdef double s = 0
    if e != NULL:
        for c in range(n_classes):
            v = exp_(z[c] - m)
            e[c] = v
            s += v
    else:
        for c in range(n_classes):
            s += exp_(z[c] - m)
    return s


def softmax(const floating[:, ::1] z, floating[:, ::1] p, int n_threads):
    """p (N, C) = softmax(z (N, C)) along rows; ``p`` may be ``z``."""
    cdef Py_ssize_t n = z.shape[0], n_classes = z.shape[1], i, c
    cdef floating m
    cdef floating inv
    if n_classes == 0:
        return
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static",
                        use_threads_if=n_threads > 1 and n * n_classes >= MIN_PARALLEL):
            m = row_max(&z[i, 0], n_classes)
            inv = <floating>(1.0 / row_sumexp(&z[i, 0], m, &p[i, 0], n_classes))
            for c in range(n_classes):
                p[i, c] = p[i, c] * inv


def softmax_ce_index(const floating[:, ::1] z, const Py_ssize_t[::1] target,
                     floating[:, ::1] dz, bint need_grad, double scale,
                     double[::1] row_loss, int n_threads):
    """Loss per row (into row_loss (N,)) and dz (N, C) for class-index targets (N,).

    Returns the number of rows whose target was outside [0, C) (those rows are
    skipped; the caller must raise).
    """
    cdef Py_ssize_t n = z.shape[0], n_classes = z.shape[1], i, c, t
    cdef Py_ssize_t n_bad = 0
    cdef floating m, zt
    cdef double s, inv, et
    cdef floating* g
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static",
                        use_threads_if=n_threads > 1 and n * n_classes >= MIN_PARALLEL):
            t = target[i]
            if t < 0 or t >= n_classes:
                n_bad += 1
                row_loss[i] = NAN
                continue
            zt = z[i, t]
            g = &dz[i, 0] if need_grad else NULL
            m = row_max(&z[i, 0], n_classes)
            s = row_sumexp(&z[i, 0], m, g, n_classes)
            row_loss[i] = m + log(s) - zt
            if need_grad:
                inv = scale / s
                et = g[t]
                for c in range(n_classes):
                    g[c] = <floating>(g[c] * inv)
                # (p_t - 1) * scale in float64, rounded once
                g[t] = <floating>(et * inv - scale)
    return n_bad


def softmax_ce_proba(const floating[:, ::1] z, const floating[:, ::1] target,
                     floating[:, ::1] dz, bint need_grad, double scale,
                     double[::1] row_loss, int n_threads):
    """Loss per row (into row_loss (N,)) and dz (N, C) for probability targets (N, C)."""
    cdef Py_ssize_t n = z.shape[0], n_classes = z.shape[1], i, c
    cdef floating m
    cdef double s, inv, t_sum, tz, lse
    cdef floating* g
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static",
                        use_threads_if=n_threads > 1 and n * n_classes >= MIN_PARALLEL):
            t_sum = 0
            tz = 0
            for c in range(n_classes):
                t_sum = t_sum + target[i, c]
                # 0 * z is skipped so that a -inf logit with zero target mass
                # contributes nothing (as in the limit), not NaN
                if target[i, c] != 0:
                    tz = tz + <double>target[i, c] * z[i, c]
            g = &dz[i, 0] if need_grad else NULL
            if n_classes == 0:
                row_loss[i] = 0
                continue
            m = row_max(&z[i, 0], n_classes)
            s = row_sumexp(&z[i, 0], m, g, n_classes)
            lse = m + log(s)
            row_loss[i] = lse * t_sum - tz
            if need_grad:
                inv = scale * t_sum / s
                for c in range(n_classes):
                    g[c] = <floating>(g[c] * inv - scale * target[i, c])
