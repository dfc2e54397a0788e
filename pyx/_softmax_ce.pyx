"""Softmax and fused softmax + cross-entropy kernels.

Design
------
One pass structure per row i of logits z (N, C):
  m = max_c z_c;  s = sum_c exp(z_c - m)  (accumulated in float64);
  lse = m + log(s)                              (log-sum-exp)
  p_c = exp(z_c - m) / s                        (softmax)
Class-index target t_i:      loss_i = lse - z_{t_i} = log(s) + (m - z_{t_i}),
                             dz_c  = scale * (p_c - [c == t_i])
Probability target T (N, C): loss_i = sum_c T_c (lse - z_c)
                                    = log(s) sum_c T_c + sum_c T_c (m - z_c),
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

from _numerics cimport exp_shift_sum

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
            inv = <floating>(1.0 / exp_shift_sum(&z[i, 0], m, &p[i, 0], n_classes))
            for c in range(n_classes):
                p[i, c] = p[i, c] * inv


def softmax_ce_index(const floating[:, ::1] z, const Py_ssize_t[::1] target,
                     floating[:, ::1] dz, double scale, double[::1] row_loss, int n_threads):
    """Loss per row (into row_loss (N,)) and dz (N, C) for class-index targets (N,).

    ``dz`` may be ``z`` (every value a row needs is read before it is written).

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
            g = &dz[i, 0]
            m = row_max(&z[i, 0], n_classes)
            s = exp_shift_sum(&z[i, 0], m, g, n_classes)
            # lse - z_t = log(s) + (m - z_t): no cancellation of two large numbers
            row_loss[i] = log(s) + (<double>m - <double>zt)
            inv = scale / s
            et = g[t]
            for c in range(n_classes):
                g[c] = <floating>(g[c] * inv)
            # (p_t - 1) * scale in float64, rounded once
            g[t] = <floating>(et * inv - scale)
    return n_bad


def softmax_ce_proba(const floating[:, ::1] z, const floating[:, ::1] target,
                     floating[:, ::1] dz, double scale, double[::1] row_loss, int n_threads):
    """Loss per row (into row_loss (N,)) and dz (N, C) for probability targets (N, C)."""
    cdef Py_ssize_t n = z.shape[0], n_classes = z.shape[1], i, c
    cdef floating m
    cdef double s, inv, t_sum, tz
    cdef floating* g
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static",
                        use_threads_if=n_threads > 1 and n * n_classes >= MIN_PARALLEL):
            if n_classes == 0:
                row_loss[i] = 0
                continue
            m = row_max(&z[i, 0], n_classes)
            # loss = sum_c t_c (lse - z_c) = T log(s) + sum_c t_c (m - z_c)
            t_sum = 0
            tz = 0
            for c in range(n_classes):
                t_sum = t_sum + target[i, c]
                # a zero target mass contributes nothing, even against a -inf logit
                if target[i, c] != 0:
                    tz = tz + <double>target[i, c] * (<double>m - <double>z[i, c])
            g = &dz[i, 0]
            s = exp_shift_sum(&z[i, 0], m, g, n_classes)
            row_loss[i] = t_sum * log(s) + tz
            inv = scale * t_sum / s
            for c in range(n_classes):
                g[c] = <floating>(g[c] * inv - scale * target[i, c])
