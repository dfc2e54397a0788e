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
sums added in order, so the loss does not depend on the thread count. With
class indices a chunk sums its rows' log(s) as the log of their product: one
log call per chunk, not per row (short rows, 10 classes, spent 14% of their
time in log; the kernel is 10-20% faster at 2-10 classes). The product of a
chunk's 32 sums carries at most 32 roundings (relative error < 4e-15, an
absolute error that small in the loss), as the sum of their logs would. Every
s is in [1, C], so the product is logged into the sum, and restarts, whenever
it passes S_PROD_FLUSH, long before it could overflow.
Every value a row needs from z is read before its dz row is written, so dz
may be z itself.
Before a row starts, the next row's logits are prefetched (``prefetch_span``):
the row's first pass, the maximum, is too fast to hide memory latency itself.
Rows over 5 KB are not: the hardware prefetcher keeps up with them.
Out-of-range class indices are never used to index: the row is skipped and
counted, and the caller raises.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log, INFINITY, NAN
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

cimport numpy as cnp

from _arrays cimport data_of, fits, float_type
from _numerics cimport exp_shift_sum, prefetch_span, row_max, scale_span, target_dot
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

cdef Py_ssize_t MIN_PARALLEL = 16384   # elements below which one thread is faster
cdef Py_ssize_t CHUNK = 32             # rows per deterministic partial loss sum
cdef double S_PROD_FLUSH = 1e250       # a chunk's product of row sums is logged above this


cdef inline void softmax_row(const floating* z, floating* p, Py_ssize_t n) noexcept nogil:
    """p[:n] = softmax(z[:n]); p may be z."""
    cdef floating m = row_max(z, n)
    scale_span(p, <floating>(1.0 / exp_shift_sum(z, m, p, n)), n)


cdef inline void softmax_row_at(const floating* z, floating* p, Py_ssize_t i, Py_ssize_t n,
                                 Py_ssize_t n_classes) noexcept nogil:
    """Row i of softmax(z (n, n_classes)) into p, fetching row i + 1 meanwhile."""
    if i + 1 < n:
        prefetch_span(z + (i + 1) * n_classes, n_classes)
    softmax_row(z + i * n_classes, p + i * n_classes, n_classes)


cdef inline void softmax_rows(const floating* z, floating* p, Py_ssize_t n, Py_ssize_t n_classes,
                              int n_threads) noexcept nogil:
    cdef Py_ssize_t i, ch, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_chunks) if n * n_classes >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for ch in prange(n_chunks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            for i in range(ch * CHUNK, min(ch * CHUNK + CHUNK, n)):
                softmax_row_at(z, p, i, n, n_classes)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for i in range(n):
            softmax_row_at(z, p, i, n, n_classes)


cdef int logits_type(z, Py_ssize_t* n, Py_ssize_t* n_classes) except -1:
    """The float type of 2-D logits z (N, C), with N and C."""
    cdef int typenum = float_type(z, "logits")
    if cnp.PyArray_NDIM(<cnp.ndarray>z) != 2:
        raise ValueError("logits must be 2-D")
    n[0] = cnp.PyArray_DIM(<cnp.ndarray>z, 0)
    n_classes[0] = cnp.PyArray_DIM(<cnp.ndarray>z, 1)
    return typenum


def softmax(z, p, int n_threads):
    """p (N, C) = softmax(z (N, C)) along rows; ``p`` may be ``z``.

    z: a 2-D C-contiguous float ndarray; p: writeable, of z's dtype and size
    (any shape); checked in C.
    """
    cdef Py_ssize_t n, n_classes
    cdef int typenum = logits_type(z, &n, &n_classes)
    cdef void* pz = data_of(z, typenum, n * n_classes, False, "logits")
    cdef void* pp = data_of(p, typenum, n * n_classes, True, "out")
    if n == 0 or n_classes == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            softmax_rows[float](<float*>pz, <float*>pp, n, n_classes, n_threads)
        else:
            softmax_rows[double](<double*>pz, <double*>pp, n, n_classes, n_threads)


cdef inline double index_row(const floating* z, Py_ssize_t t, floating* g, Py_ssize_t n_classes,
                             double scale, double* s_out) noexcept nogil:
    """One row with class index t (in range): writes its gradient to g, its sum
    of exp(z - m) to s_out, and returns m - z_t (its loss is log(s) + m - z_t)."""
    cdef floating zt = z[t]
    cdef floating m = row_max(z, n_classes)
    cdef double s = exp_shift_sum(z, m, g, n_classes)
    cdef double inv = scale / s
    cdef double et = g[t]
    scale_span(g, <floating>inv, n_classes)
    g[t] = <floating>(et * inv - scale)         # (p_t - 1) * scale, rounded once
    s_out[0] = s
    return <double>m - <double>zt


cdef inline double proba_row(const floating* z, const floating* t, floating* g,
                             Py_ssize_t n_classes, double scale) noexcept nogil:
    """Loss of one row with target probabilities t; writes its gradient to g."""
    cdef Py_ssize_t c
    cdef floating m = row_max(z, n_classes)
    cdef double t_sum, tz, s, inv
    # loss = sum_c t_c (lse - z_c) = T log(s) + sum_c t_c (m - z_c); read z before g
    # is written (g may be z). Zero target mass contributes nothing, even against
    # a -inf logit.
    tz = target_dot(z, t, m, n_classes, &t_sum)
    s = exp_shift_sum(z, m, g, n_classes)
    inv = scale * t_sum / s
    for c in range(n_classes):
        g[c] = <floating>(g[c] * inv - scale * t[c])
    return t_sum * log(s) + tz


cdef inline double index_chunk(const floating* z, const Py_ssize_t* target, floating* dz,
                               Py_ssize_t n, Py_ssize_t n_classes, double scale, Py_ssize_t ch,
                               Py_ssize_t* n_bad) noexcept nogil:
    """Summed loss of the rows of chunk ``ch``; rows with a bad label are counted, skipped."""
    cdef Py_ssize_t i, t, r1 = min(ch * CHUNK + CHUNK, n)
    cdef double acc = 0, s, s_prod = 1
    for i in range(ch * CHUNK, r1):
        if i + 1 < n:
            prefetch_span(z + (i + 1) * n_classes, n_classes)
        t = target[i]
        if t < 0 or t >= n_classes:
            n_bad[0] += 1
            continue
        acc = acc + index_row(z + i * n_classes, t, dz + i * n_classes, n_classes, scale, &s)
        s_prod = s_prod * s
        if s_prod > S_PROD_FLUSH:
            acc = acc + log(s_prod)
            s_prod = 1
    return acc + log(s_prod)


def _set_log_flush(double limit):
    """Set S_PROD_FLUSH (tests use 1 to log every row's sum); returns the old value."""
    global S_PROD_FLUSH
    old, S_PROD_FLUSH = S_PROD_FLUSH, limit
    return old


cdef double index_loss(const floating* z, const Py_ssize_t* target, floating* dz, Py_ssize_t n,
                       Py_ssize_t n_classes, double scale, double* partial, Py_ssize_t* n_bad,
                       int n_threads) noexcept nogil:
    cdef Py_ssize_t ch, n_chunks = (n + CHUNK - 1) // CHUNK, bad = 0
    cdef double total = 0
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_chunks) if n * n_classes >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for ch in prange(n_chunks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            partial[ch] = index_chunk(z, target, dz, n, n_classes, scale, ch, &bad)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for ch in range(n_chunks):
            partial[ch] = index_chunk(z, target, dz, n, n_classes, scale, ch, &bad)
    for ch in range(n_chunks):
        total += partial[ch]
    n_bad[0] = bad
    return total


cdef int raise_index_args(z, target, dz) except -1:
    """Raise the error that says which of softmax_ce_index's arrays does not fit."""
    cdef Py_ssize_t n, n_classes
    cdef int typenum = logits_type(z, &n, &n_classes)
    if not cnp.PyArray_Check(target) or cnp.PyArray_NDIM(<cnp.ndarray>target) != 1:
        raise ValueError("target must be a 1-D array of class indices")
    data_of(z, typenum, n * n_classes, False, "logits")
    data_of(target, cnp.NPY_INTP, n, False, "target")
    data_of(dz, typenum, n * n_classes, True, "dlogits")
    raise ValueError("logits, target and dlogits do not fit together")


def softmax_ce_index(z, target, dz, double scale, int n_threads, bint check=True):
    """Summed loss and dz (N, C) for class-index targets (N,) of dtype intp.

    Returns (sum of row losses as float64, number of rows whose target was
    outside [0, C)); those rows are skipped and the caller must raise.
    ``dz`` may be ``z`` (but must not otherwise overlap it). The arrays are
    checked in C (dtype, C order, sizes); arrays that do not fit raise, or
    with ``check=False`` return None.
    """
    cdef int typenum = -1
    cdef Py_ssize_t n = 0, n_classes = 0
    if cnp.PyArray_Check(z) and cnp.PyArray_NDIM(<cnp.ndarray>z) == 2:
        typenum = cnp.PyArray_TYPE(<cnp.ndarray>z)
        n = cnp.PyArray_DIM(<cnp.ndarray>z, 0)
        n_classes = cnp.PyArray_DIM(<cnp.ndarray>z, 1)
    if not ((typenum == cnp.NPY_FLOAT or typenum == cnp.NPY_DOUBLE)
            and fits(z, typenum, n * n_classes, False)
            and fits(target, cnp.NPY_INTP, n, False)
            and cnp.PyArray_NDIM(<cnp.ndarray>target) == 1
            and fits(dz, typenum, n * n_classes, True)):
        if not check:
            return None
        raise_index_args(z, target, dz)
    cdef void* pz = cnp.PyArray_DATA(<cnp.ndarray>z)
    cdef void* pt = cnp.PyArray_DATA(<cnp.ndarray>target)
    cdef void* pdz = cnp.PyArray_DATA(<cnp.ndarray>dz)
    cdef Py_ssize_t n_bad = 0
    cdef double total
    cdef double stack_partial[64]
    cdef double* partial = stack_partial
    if n == 0:
        return 0.0, 0
    if (n + CHUNK - 1) // CHUNK > 64:
        partial = <double*>malloc(((n + CHUNK - 1) // CHUNK) * sizeof(double))
        if partial == NULL:
            raise MemoryError()
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            total = index_loss[float](<float*>pz, <Py_ssize_t*>pt, <float*>pdz, n, n_classes,
                                      scale, partial, &n_bad, n_threads)
        else:
            total = index_loss[double](<double*>pz, <Py_ssize_t*>pt, <double*>pdz, n,
                                       n_classes, scale, partial, &n_bad, n_threads)
    if partial != stack_partial:
        free(partial)
    return total, n_bad


cdef inline double proba_chunk(const floating* z, const floating* target, floating* dz,
                               Py_ssize_t n, Py_ssize_t n_classes, double scale,
                               Py_ssize_t ch) noexcept nogil:
    """Summed loss of the rows of chunk ``ch`` (probability targets)."""
    cdef Py_ssize_t i, o
    cdef double acc = 0
    for i in range(ch * CHUNK, min(ch * CHUNK + CHUNK, n)):
        o = i * n_classes
        if i + 1 < n:
            prefetch_span(z + o + n_classes, n_classes)
            prefetch_span(target + o + n_classes, n_classes)
        acc = acc + proba_row(z + o, target + o, dz + o, n_classes, scale)
    return acc


cdef double proba_loss(const floating* z, const floating* target, floating* dz, Py_ssize_t n,
                       Py_ssize_t n_classes, double scale, double* partial,
                       int n_threads) noexcept nogil:
    cdef Py_ssize_t ch, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef double total = 0
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_chunks) if n * n_classes >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for ch in prange(n_chunks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            partial[ch] = proba_chunk(z, target, dz, n, n_classes, scale, ch)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for ch in range(n_chunks):
            partial[ch] = proba_chunk(z, target, dz, n, n_classes, scale, ch)
    for ch in range(n_chunks):
        total += partial[ch]
    return total


def softmax_ce_proba(z, target, dz, double scale, int n_threads):
    """Summed loss (float64) and dz (N, C) for probability targets (N, C); dz may be z.

    C-contiguous ndarrays of one float dtype: z 2-D, target and dz of its size
    (dz writeable); checked in C.
    """
    cdef Py_ssize_t n, n_classes
    cdef int typenum = logits_type(z, &n, &n_classes)
    cdef void* pz = data_of(z, typenum, n * n_classes, False, "logits")
    cdef void* pt = data_of(target, typenum, n * n_classes, False, "target")
    cdef void* pdz = data_of(dz, typenum, n * n_classes, True, "dlogits")
    cdef double total
    cdef double* partial
    if n == 0 or n_classes == 0:
        return 0.0
    partial = <double*>malloc(((n + CHUNK - 1) // CHUNK) * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            total = proba_loss[float](<float*>pz, <float*>pt, <float*>pdz, n, n_classes, scale,
                                      partial, n_threads)
        else:
            total = proba_loss[double](<double*>pz, <double*>pt, <double*>pdz, n, n_classes,
                                       scale, partial, n_threads)
    free(partial)
    return total
