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

Rows go to threads with ``prange`` in fixed chunks of ``CHUNK`` rows; each
chunk's losses are summed in float64 into ``partial[chunk]`` and the chunk
sums added in order, so the loss does not depend on the thread count. Every value a row
needs from z is read before its dz row is written, so dz may be z itself.
Out-of-range class indices are never used to index: the row is skipped and
counted, and the caller raises.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log, INFINITY, NAN
from libc.stdlib cimport malloc, free

from _numerics cimport exp_shift_sum, row_max, scale_span

cdef Py_ssize_t MIN_PARALLEL = 16384   # elements below which one thread is faster
cdef Py_ssize_t CHUNK = 32             # rows per deterministic partial loss sum


def softmax(const floating[:, ::1] z, floating[:, ::1] p, int n_threads):
    """p (N, C) = softmax(z (N, C)) along rows; ``p`` may be ``z``."""
    cdef Py_ssize_t n = z.shape[0], n_classes = z.shape[1], i
    cdef floating m
    cdef floating inv
    if n_classes == 0:
        return
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static",
                        use_threads_if=n_threads > 1 and n * n_classes >= MIN_PARALLEL):
            m = row_max(&z[i, 0], n_classes)
            inv = <floating>(1.0 / exp_shift_sum(&z[i, 0], m, &p[i, 0], n_classes))
            scale_span(&p[i, 0], inv, n_classes)


cdef inline double index_row(const floating* z, Py_ssize_t t, floating* g, Py_ssize_t n_classes,
                             double scale) noexcept nogil:
    """Loss of one row with class index t (in range); writes its gradient to g."""
    cdef floating zt = z[t]
    cdef floating m = row_max(z, n_classes)
    cdef double s = exp_shift_sum(z, m, g, n_classes)
    cdef double inv = scale / s
    cdef double et = g[t]
    scale_span(g, <floating>inv, n_classes)
    g[t] = <floating>(et * inv - scale)         # (p_t - 1) * scale, rounded once
    return log(s) + (<double>m - <double>zt)     # lse - z_t without cancellation


cdef inline double proba_row(const floating* z, const floating* t, floating* g,
                             Py_ssize_t n_classes, double scale) noexcept nogil:
    """Loss of one row with target probabilities t; writes its gradient to g."""
    cdef Py_ssize_t c
    cdef floating m = row_max(z, n_classes)
    cdef double t_sum = 0, tz = 0, s, inv
    # loss = sum_c t_c (lse - z_c) = T log(s) + sum_c t_c (m - z_c); read z before g
    # is written (g may be z)
    for c in range(n_classes):
        t_sum = t_sum + t[c]
        if t[c] != 0:  # zero target mass contributes nothing, even against a -inf logit
            tz = tz + <double>t[c] * (<double>m - <double>z[c])
    s = exp_shift_sum(z, m, g, n_classes)
    inv = scale * t_sum / s
    for c in range(n_classes):
        g[c] = <floating>(g[c] * inv - scale * t[c])
    return t_sum * log(s) + tz


def softmax_ce_index(const floating[:, ::1] z, const Py_ssize_t[::1] target,
                     floating[:, ::1] dz, double scale, int n_threads):
    """Summed loss and dz (N, C) for class-index targets (N,).

    Returns (sum of row losses as float64, number of rows whose target was
    outside [0, C)); those rows are skipped and the caller must raise.
    ``dz`` may be ``z``.
    """
    cdef Py_ssize_t n = z.shape[0], n_classes = z.shape[1], i, t, ch, r0, r1
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK, n_bad = 0
    cdef double acc, total = 0
    cdef double* partial
    if n == 0:
        return 0.0, 0
    partial = <double*>malloc(n_chunks * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    with nogil:
        for ch in prange(n_chunks, num_threads=n_threads, schedule="static",
                         use_threads_if=n_threads > 1 and n * n_classes >= MIN_PARALLEL):
            r0 = ch * CHUNK
            r1 = min(r0 + CHUNK, n)
            acc = 0
            for i in range(r0, r1):
                t = target[i]
                if t < 0 or t >= n_classes:
                    n_bad += 1
                    continue
                acc = acc + index_row(&z[i, 0], t, &dz[i, 0], n_classes, scale)
            partial[ch] = acc
        for ch in range(n_chunks):
            total += partial[ch]
    free(partial)
    return total, n_bad


def softmax_ce_proba(const floating[:, ::1] z, const floating[:, ::1] target,
                     floating[:, ::1] dz, double scale, int n_threads):
    """Summed loss (float64) and dz (N, C) for probability targets (N, C); dz may be z."""
    cdef Py_ssize_t n = z.shape[0], n_classes = z.shape[1], i, ch, r0, r1
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef double acc, total = 0
    cdef double* partial
    if n == 0 or n_classes == 0:
        return 0.0
    partial = <double*>malloc(n_chunks * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    with nogil:
        for ch in prange(n_chunks, num_threads=n_threads, schedule="static",
                         use_threads_if=n_threads > 1 and n * n_classes >= MIN_PARALLEL):
            r0 = ch * CHUNK
            r1 = min(r0 + CHUNK, n)
            acc = 0
            for i in range(r0, r1):
                acc = acc + proba_row(&z[i, 0], &target[i, 0], &dz[i, 0], n_classes, scale)
            partial[ch] = acc
        for ch in range(n_chunks):
            total += partial[ch]
    free(partial)
    return total
