"""Normalization kernels: BatchNorm1d over (N, C) and LayerNorm over rows (N, D).

Design
------
BatchNorm's statistics are column reductions over the batch. The rows are cut
into fixed blocks of ``RB`` rows (independent of the thread count); each
block's column mean and sum of squared deviations come from one pass over it
in float64, shifted by the block's first row (``_norm.h``, whose vectorized
loops do every pass here). The blocks' (count, mean, M2) are then merged
in block order by Chan et al.'s update
    delta = mean_b - mean_a,  mean = mean_a + delta n_b / n,
    M2 = M2_a + M2_b + delta^2 n_a n_b / n,
so the statistics are bit-identical for any thread count, and stable for a
column whose mean is large against its spread. Training mode normalizes with
the batch mean and biased variance and updates the running statistics
(unbiased variance, ``momentum``, torch's rule); eval mode uses the running
statistics.

Backward (training), after one reduction pass per block (sum dy and
sum dy (x - mean), float64, merged in block order):
    dbeta = sum dy,  dgamma = invstd sum dy (x - mean),
    dx = gamma invstd (dy - sum dy / N - xhat sum(dy xhat) / N)
       = A dy + B (x - mean) + K per column, in ONE pass over dy and x.
In eval mode dx = gamma invstd dy, written in the reduction pass itself.

LayerNorm works per row (the row's mean and variance in float64, two passes
over the row in cache); its dgamma and dbeta are column sums, kept per row
block and added in block order as above.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
cimport numpy as cnp

from _arrays cimport data_of, float_type
from _step cimport ChainStep, step_init
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

cdef Py_ssize_t RB = 64                  # rows per block
cdef Py_ssize_t MIN_PARALLEL = 32768     # elements


cdef inline int threads_for(cp_region* reg, int n_threads, Py_ssize_t n_blocks,
                            Py_ssize_t size) noexcept nogil:
    return cp_region_begin(reg, n_threads, n_blocks) if size >= MIN_PARALLEL and n_blocks > 1 \
        else 1


# ------------------------------------------------------------------ BatchNorm
cdef extern from "_norm.h" nogil:
    void cp_bn_block_stats_f32(const float* x, Py_ssize_t n_rows, Py_ssize_t C, double* mean,
                               double* m2)
    void cp_bn_block_stats_f64(const double* x, Py_ssize_t n_rows, Py_ssize_t C, double* mean,
                               double* m2)
    void cp_bn_normalize_f32(const float* x, float* y, Py_ssize_t n_rows, Py_ssize_t C,
                             const float* mean, const float* scale, const float* shift,
                             int relu)
    void cp_bn_normalize_f64(const double* x, double* y, Py_ssize_t n_rows, Py_ssize_t C,
                             const double* mean, const double* scale, const double* shift,
                             int relu)
    void cp_bn_grad_sums_f32(const float* dy, const float* x, const float* mask,
                             Py_ssize_t n_rows, Py_ssize_t C, const float* mean, double* sdy,
                             double* sdyx)
    void cp_bn_grad_sums_f64(const double* dy, const double* x, const double* mask,
                             Py_ssize_t n_rows, Py_ssize_t C, const double* mean, double* sdy,
                             double* sdyx)
    void cp_bn_dx_f32(const float* dy, const float* x, const float* mask, float* dx,
                      Py_ssize_t n_rows, Py_ssize_t C, const float* mean, const float* a,
                      const float* b, const float* k)
    void cp_bn_dx_f64(const double* dy, const double* x, const double* mask, double* dx,
                      Py_ssize_t n_rows, Py_ssize_t C, const double* mean, const double* a,
                      const double* b, const double* k)


cdef inline void bn_block_stats(const floating* x, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,
                                double* mean, double* m2) noexcept nogil:
    """Column mean and sum of squared deviations of rows r0..r1 (one shifted pass)."""
    if floating is float:
        cp_bn_block_stats_f32(x + r0 * C, r1 - r0, C, mean, m2)
    else:
        cp_bn_block_stats_f64(x + r0 * C, r1 - r0, C, mean, m2)


cdef void bn_merge(const double* part, Py_ssize_t n_blocks, Py_ssize_t N, Py_ssize_t C,
                   double* mean, double* m2) noexcept nogil:
    """Chan's merge of the blocks' (n, mean, M2), in block order."""
    cdef Py_ssize_t b, c, n_a, n_b
    cdef double delta, n
    for c in range(C):
        mean[c] = part[c]
        m2[c] = part[C + c]
    n_a = min(RB, N)
    for b in range(1, n_blocks):
        n_b = min(RB, N - b * RB)
        n = <double>(n_a + n_b)
        for c in range(C):
            delta = part[2 * b * C + c] - mean[c]
            mean[c] = mean[c] + delta * (n_b / n)
            m2[c] = m2[c] + part[(2 * b + 1) * C + c] + delta * delta * (n_a * (n_b / n))
        n_a += n_b


cdef inline void bn_normalize(const floating* x, floating* y, Py_ssize_t r0, Py_ssize_t r1,
                              Py_ssize_t C, const floating* mean, const floating* scale,
                              const floating* shift, bint relu) noexcept nogil:
    """y = (x - mean) * scale + shift over rows r0..r1 (then max(y, 0) if relu)."""
    if floating is float:
        cp_bn_normalize_f32(x + r0 * C, y + r0 * C, r1 - r0, C, mean, scale, shift, relu)
    else:
        cp_bn_normalize_f64(x + r0 * C, y + r0 * C, r1 - r0, C, mean, scale, shift, relu)


cdef int bn_forward_impl(const floating* x, const floating* gamma, const floating* beta,
                         floating* rmean, floating* rvar, floating* y, double* save_mean,
                         double* save_invstd, Py_ssize_t N, Py_ssize_t C, bint training,
                         bint update, double momentum, double eps, bint relu,
                         int n_threads) noexcept nogil:
    cdef Py_ssize_t b, c, r0, n_blocks = (N + RB - 1) // RB
    cdef double* part = NULL
    cdef floating* coef = <floating*>malloc(3 * C * sizeof(floating))
    cdef double var, m2
    cdef cp_region reg
    cdef int nt
    cdef int64_t t
    if coef == NULL:
        return -1
    if training:
        part = <double*>malloc(2 * n_blocks * C * sizeof(double))
        if part == NULL:
            free(coef)
            return -1
        nt = threads_for(&reg, n_threads, n_blocks, N * C)
        if nt > 1:
            for b in prange(n_blocks, num_threads=nt, schedule="guided"):
                t = cp_block_begin()
                r0 = b * RB
                bn_block_stats(x, r0, min(r0 + RB, N), C, part + 2 * b * C,
                               part + (2 * b + 1) * C)
                cp_block_end(&reg, t)
            cp_region_end(&reg)
        else:
            for b in range(n_blocks):
                r0 = b * RB
                bn_block_stats(x, r0, min(r0 + RB, N), C, part + 2 * b * C,
                               part + (2 * b + 1) * C)
        bn_merge(part, n_blocks, N, C, save_mean, save_invstd)   # M2 into save_invstd
        for c in range(C):
            m2 = save_invstd[c]
            var = m2 / N
            save_invstd[c] = 1.0 / sqrt(var + eps)
            if update:
                rmean[c] = <floating>((1.0 - momentum) * rmean[c] + momentum * save_mean[c])
                rvar[c] = <floating>((1.0 - momentum) * rvar[c]
                                     + momentum * (m2 / (N - 1) if N > 1 else var))
        free(part)
    else:
        for c in range(C):
            save_mean[c] = rmean[c]
            save_invstd[c] = 1.0 / sqrt(<double>rvar[c] + eps)
    for c in range(C):
        coef[c] = <floating>save_mean[c]
        coef[C + c] = <floating>(save_invstd[c] * (1.0 if gamma == NULL else gamma[c]))
        coef[2 * C + c] = 0 if beta == NULL else beta[c]
    nt = threads_for(&reg, n_threads, n_blocks, N * C)
    if nt > 1:
        for b in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            r0 = b * RB
            bn_normalize(x, y, r0, min(r0 + RB, N), C, coef, coef + C, coef + 2 * C, relu)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        bn_normalize(x, y, 0, N, C, coef, coef + C, coef + 2 * C, relu)
    free(coef)
    return 0


cdef inline void bn_block_grad_sums(const floating* dy, const floating* x,
                                    const floating* mask, Py_ssize_t r0, Py_ssize_t r1,
                                    Py_ssize_t C, const floating* mean, double* sdy,
                                    double* sdyx) noexcept nogil:
    """Column sums of g and g (x - mean) over rows r0..r1 in float64; g = dy, or
    dy * (mask > 0) for a fused ReLU whose output is mask."""
    cdef const floating* m = NULL if mask == NULL else mask + r0 * C
    if floating is float:
        cp_bn_grad_sums_f32(dy + r0 * C, x + r0 * C, m, r1 - r0, C, mean, sdy, sdyx)
    else:
        cp_bn_grad_sums_f64(dy + r0 * C, x + r0 * C, m, r1 - r0, C, mean, sdy, sdyx)


cdef inline void bn_dx(const floating* dy, const floating* x, const floating* mask,
                       floating* dx, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,
                       const floating* mean, const floating* a, const floating* bcoef,
                       const floating* k) noexcept nogil:
    """dx = a g + bcoef (x - mean) + k over rows r0..r1 (bcoef NULL: dx = a g)."""
    cdef const floating* m = NULL if mask == NULL else mask + r0 * C
    if floating is float:
        cp_bn_dx_f32(dy + r0 * C, x + r0 * C, m, dx + r0 * C, r1 - r0, C, mean, a, bcoef, k)
    else:
        cp_bn_dx_f64(dy + r0 * C, x + r0 * C, m, dx + r0 * C, r1 - r0, C, mean, a, bcoef, k)


cdef int bn_backward_impl(const floating* dy, const floating* x, const floating* mask,
                          const floating* gamma,
                          const double* save_mean, const double* save_invstd, floating* dx,
                          floating* dgamma, floating* dbeta, Py_ssize_t N, Py_ssize_t C,
                          bint training, bint need_dx, int n_threads) noexcept nogil:
    cdef Py_ssize_t b, c, r0, n_blocks = (N + RB - 1) // RB
    cdef double* part = <double*>malloc(2 * n_blocks * C * sizeof(double))
    cdef floating* coef = <floating*>malloc(4 * C * sizeof(floating))
    cdef double s_dy, s_dyx, g, inv
    cdef cp_region reg
    cdef int nt
    cdef int64_t t
    if part == NULL or coef == NULL:
        free(part)
        free(coef)
        return -1
    for c in range(C):
        coef[c] = <floating>save_mean[c]
    nt = threads_for(&reg, n_threads, n_blocks, N * C)
    if nt > 1:
        for b in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            r0 = b * RB
            bn_block_grad_sums(dy, x, mask, r0, min(r0 + RB, N), C, coef, part + 2 * b * C,
                               part + (2 * b + 1) * C)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for b in range(n_blocks):
            r0 = b * RB
            bn_block_grad_sums(dy, x, mask, r0, min(r0 + RB, N), C, coef, part + 2 * b * C,
                               part + (2 * b + 1) * C)
    for b in range(1, n_blocks):      # block order; rows of C, so the reads run along memory
        for c in range(C):
            part[c] += part[2 * b * C + c]
            part[C + c] += part[(2 * b + 1) * C + c]
    for c in range(C):
        s_dy = part[c]
        s_dyx = part[C + c]
        inv = save_invstd[c]
        g = 1.0 if gamma == NULL else gamma[c]
        if dbeta != NULL:
            dbeta[c] = <floating>s_dy
        if dgamma != NULL:
            dgamma[c] = <floating>(s_dyx * inv)
        coef[C + c] = <floating>(g * inv)                                   # A
        coef[2 * C + c] = <floating>(-g * inv * inv * inv * s_dyx / N)      # B
        coef[3 * C + c] = <floating>(-g * inv * s_dy / N)                    # K
    free(part)
    if need_dx:
        nt = threads_for(&reg, n_threads, n_blocks, N * C)
        if nt > 1:
            for b in prange(n_blocks, num_threads=nt, schedule="guided"):
                t = cp_block_begin()
                r0 = b * RB
                bn_dx(dy, x, mask, dx, r0, min(r0 + RB, N), C, coef, coef + C,
                      coef + 2 * C if training else NULL, coef + 3 * C)
                cp_block_end(&reg, t)
            cp_region_end(&reg)
        else:
            bn_dx(dy, x, mask, dx, 0, N, C, coef, coef + C,
                  coef + 2 * C if training else NULL, coef + 3 * C)
    free(coef)
    return 0


cdef void* opt_data(a, int typenum, Py_ssize_t n, bint writeable, str name) except? NULL:
    return NULL if a is None else data_of(a, typenum, n, writeable, name)


def batch_norm_forward(x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd,
                       bint training, bint update, double momentum, double eps, int n_threads,
                       bint relu=False):
    """BatchNorm1d forward over C-contiguous x (N, C) into y; fills save_mean/save_invstd.

    gamma, beta: (C,) of x's dtype or None (no affine); running_mean/var: (C,) of
    x's dtype (None only when training and not update); save_mean,
    save_invstd: float64 (C,). Training: batch statistics (and, if update,
    the running statistics updated in place). Eval: the running statistics.
    relu: y = max(y, 0) in the same pass (BatchNorm -> ReLU fused). All checked in C. Raises MemoryError if the workspace cannot be allocated.
    """
    cdef int typenum = float_type(x, "x")
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if cnp.PyArray_NDIM(xa) != 2:
        raise ValueError("x: expected a 2-D array")
    cdef Py_ssize_t N = cnp.PyArray_DIM(xa, 0), C = cnp.PyArray_DIM(xa, 1)
    cdef void* px = data_of(x, typenum, N * C, False, "x")
    cdef void* py = data_of(y, typenum, N * C, True, "y")
    cdef void* pg = opt_data(gamma, typenum, C, False, "gamma")
    cdef void* pb = opt_data(beta, typenum, C, False, "beta")
    cdef bint need_running = update or not training
    cdef void* prm = opt_data(running_mean if need_running else None, typenum, C, True,
                              "running_mean")
    cdef void* prv = opt_data(running_var if need_running else None, typenum, C, True,
                              "running_var")
    cdef void* psm = data_of(save_mean, cnp.NPY_DOUBLE, C, True, "save_mean")
    cdef void* psi = data_of(save_invstd, cnp.NPY_DOUBLE, C, True, "save_invstd")
    cdef int rc
    if need_running and (prm == NULL or prv == NULL):
        raise ValueError("running_mean and running_var are required")
    if N * C == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            rc = bn_forward_impl[float](<float*>px, <float*>pg, <float*>pb, <float*>prm,
                                        <float*>prv, <float*>py, <double*>psm, <double*>psi,
                                        N, C, training, update, momentum, eps, relu, n_threads)
        else:
            rc = bn_forward_impl[double](<double*>px, <double*>pg, <double*>pb, <double*>prm,
                                         <double*>prv, <double*>py, <double*>psm,
                                         <double*>psi, N, C, training, update, momentum, eps,
                                         relu, n_threads)
    if rc != 0:
        raise MemoryError("batch_norm_forward: could not allocate the workspace")


def batch_norm_backward(dy, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta,
                        bint training, int n_threads, relu_out=None):
    """dx (unless None), dgamma and dbeta (unless None) of BatchNorm1d, from the forward's stats.

    In training mode dx includes the batch statistics' own gradient; in eval
    mode the statistics are constants. relu_out: the output of a fused ReLU
    (dy is then the ReLU's output gradient, masked by relu_out > 0 as it is
    read). All arrays checked in C.
    """
    cdef int typenum = float_type(x, "x")
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if cnp.PyArray_NDIM(xa) != 2:
        raise ValueError("x: expected a 2-D array")
    cdef Py_ssize_t N = cnp.PyArray_DIM(xa, 0), C = cnp.PyArray_DIM(xa, 1)
    cdef void* px = data_of(x, typenum, N * C, False, "x")
    cdef void* pdy = data_of(dy, typenum, N * C, False, "dy")
    cdef void* pdx = opt_data(dx, typenum, N * C, True, "dx")
    cdef void* pg = opt_data(gamma, typenum, C, False, "gamma")
    cdef void* pdg = opt_data(dgamma, typenum, C, True, "dgamma")
    cdef void* pdb = opt_data(dbeta, typenum, C, True, "dbeta")
    cdef void* psm = data_of(save_mean, cnp.NPY_DOUBLE, C, False, "save_mean")
    cdef void* psi = data_of(save_invstd, cnp.NPY_DOUBLE, C, False, "save_invstd")
    cdef void* pmask = opt_data(relu_out, typenum, N * C, False, "relu_out")
    cdef int rc
    if C == 0:
        return
    if N == 0:
        if pdg != NULL:
            dgamma[...] = 0
        if pdb != NULL:
            dbeta[...] = 0
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            rc = bn_backward_impl[float](<float*>pdy, <float*>px, <float*>pmask, <float*>pg,
                                         <double*>psm,
                                         <double*>psi, <float*>pdx, <float*>pdg, <float*>pdb,
                                         N, C, training, pdx != NULL, n_threads)
        else:
            rc = bn_backward_impl[double](<double*>pdy, <double*>px, <double*>pmask,
                                          <double*>pg,
                                          <double*>psm, <double*>psi, <double*>pdx,
                                          <double*>pdg, <double*>pdb, N, C, training,
                                          pdx != NULL, n_threads)
    if rc != 0:
        raise MemoryError("batch_norm_backward: could not allocate the workspace")


# ------------------------------------------------------------------ LayerNorm
cdef void ln_rows(const floating* x, floating* y, const floating* gamma, const floating* beta,
                  double* mean, double* invstd, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t D,
                  double eps) noexcept nogil:
    cdef Py_ssize_t i, c
    cdef const floating* xr
    cdef floating* yr
    cdef double s, m, v, d, inv
    cdef floating mf, invf
    for i in range(r0, r1):
        xr = x + i * D
        yr = y + i * D
        s = 0
        for c in range(D):
            s += xr[c]
        m = s / D
        v = 0
        for c in range(D):
            d = xr[c] - m
            v += d * d
        inv = 1.0 / sqrt(v / D + eps)
        mean[i] = m
        invstd[i] = inv
        mf = <floating>m
        invf = <floating>inv
        if gamma == NULL:
            for c in range(D):
                yr[c] = (xr[c] - mf) * invf
        else:
            for c in range(D):
                yr[c] = (xr[c] - mf) * invf * gamma[c] + beta[c]


cdef void ln_forward_impl(const floating* x, floating* y, const floating* gamma,
                         const floating* beta, double* mean, double* invstd, Py_ssize_t N,
                         Py_ssize_t D, double eps, int n_threads) noexcept nogil:
    """LayerNorm over rows of x (N, D) into y, blocks of RB rows to threads."""
    cdef Py_ssize_t b, r0, n_blocks = (N + RB - 1) // RB
    cdef cp_region reg
    cdef int nt = threads_for(&reg, n_threads, n_blocks, N * D)
    cdef int64_t t
    if nt > 1:
        for b in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            r0 = b * RB
            ln_rows(x, y, gamma, beta, mean, invstd, r0, min(r0 + RB, N), D, eps)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        ln_rows(x, y, gamma, beta, mean, invstd, 0, N, D, eps)


def layer_norm_forward(x, gamma, beta, y, save_mean, save_invstd, double eps, int n_threads):
    """LayerNorm over the last dimension of C-contiguous x (N, D) into y.

    gamma, beta: (D,) or both None; save_mean, save_invstd: float64 (N,). Checked in C.
    """
    cdef int typenum = float_type(x, "x")
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if cnp.PyArray_NDIM(xa) != 2:
        raise ValueError("x: expected a 2-D array")
    cdef Py_ssize_t N = cnp.PyArray_DIM(xa, 0), D = cnp.PyArray_DIM(xa, 1)
    cdef void* px = data_of(x, typenum, N * D, False, "x")
    cdef void* py = data_of(y, typenum, N * D, True, "y")
    cdef void* pg = opt_data(gamma, typenum, D, False, "gamma")
    cdef void* pb = opt_data(beta, typenum, D, False, "beta")
    cdef double* pm = <double*>data_of(save_mean, cnp.NPY_DOUBLE, N, True, "save_mean")
    cdef double* pi = <double*>data_of(save_invstd, cnp.NPY_DOUBLE, N, True, "save_invstd")
    if (pg == NULL) != (pb == NULL):
        raise ValueError("gamma and beta: both or neither")
    if N * D == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            ln_forward_impl[float](<float*>px, <float*>py, <float*>pg, <float*>pb, pm, pi, N, D,
                                   eps, n_threads)
        else:
            ln_forward_impl[double](<double*>px, <double*>py, <double*>pg, <double*>pb, pm, pi,
                                    N, D, eps, n_threads)


cdef void ln_back_rows(const floating* dy, const floating* x, floating* dx,
                       const floating* gamma, const double* mean, const double* invstd,
                       double* sdg, double* sdb, Py_ssize_t r0, Py_ssize_t r1,
                       Py_ssize_t D) noexcept nogil:
    """dx for rows r0..r1 (if dx), and this block's column sums of dy xhat and dy."""
    cdef Py_ssize_t i, c
    cdef const floating* dr
    cdef const floating* xr
    cdef floating* out
    cdef double s1, s2, g, xh, inv, m
    cdef floating mf, invf, k1, k2
    for c in range(D):
        sdg[c] = 0
        sdb[c] = 0
    for i in range(r0, r1):
        dr = dy + i * D
        xr = x + i * D
        m = mean[i]
        inv = invstd[i]
        mf = <floating>m
        invf = <floating>inv
        s1 = 0    # sum g dy
        s2 = 0    # sum g dy xhat
        for c in range(D):
            xh = (xr[c] - mf) * inv
            g = dr[c] if gamma == NULL else <double>dr[c] * gamma[c]
            s1 += g
            s2 += g * xh
            sdg[c] += dr[c] * xh
            sdb[c] += dr[c]
        if dx != NULL:
            # dx = inv (g dy - mean(g dy) - xhat mean(g dy xhat))
            out = dx + i * D
            k1 = <floating>(s1 / D)
            k2 = <floating>(s2 / D)
            if gamma == NULL:
                for c in range(D):
                    out[c] = invf * (dr[c] - k1 - (xr[c] - mf) * invf * k2)
            else:
                for c in range(D):
                    out[c] = invf * (dr[c] * gamma[c] - k1 - (xr[c] - mf) * invf * k2)


cdef int ln_backward_impl(const floating* dy, const floating* x, floating* dx,
                          const floating* gamma, const double* mean, const double* invstd,
                          floating* dgamma, floating* dbeta, Py_ssize_t N, Py_ssize_t D,
                          int n_threads) noexcept nogil:
    """LayerNorm's dx (unless NULL), dgamma and dbeta (unless NULL) for N >= 1 rows.

    Each block of RB rows writes its column sums to its own slice of a
    workspace, added in block order: the same sums for any thread count.
    Returns -1 if the workspace cannot be allocated.
    """
    cdef Py_ssize_t b, c, r0, n_blocks = (N + RB - 1) // RB
    cdef double* part = <double*>malloc(2 * n_blocks * D * sizeof(double))
    cdef cp_region reg
    cdef int nt
    cdef int64_t t
    if part == NULL:
        return -1
    nt = threads_for(&reg, n_threads, n_blocks, N * D)
    if nt > 1:
        for b in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            r0 = b * RB
            ln_back_rows(dy, x, dx, gamma, mean, invstd, part + 2 * b * D,
                         part + (2 * b + 1) * D, r0, min(r0 + RB, N), D)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for b in range(n_blocks):
            r0 = b * RB
            ln_back_rows(dy, x, dx, gamma, mean, invstd, part + 2 * b * D,
                         part + (2 * b + 1) * D, r0, min(r0 + RB, N), D)
    for b in range(1, n_blocks):
        for c in range(D):
            part[c] += part[2 * b * D + c]
            part[D + c] += part[(2 * b + 1) * D + c]
    for c in range(D):
        if dgamma != NULL:
            dgamma[c] = <floating>part[c]
        if dbeta != NULL:
            dbeta[c] = <floating>part[D + c]
    free(part)
    return 0


def layer_norm_backward(dy, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta,
                        int n_threads):
    """LayerNorm's dx (unless None), dgamma and dbeta (unless None); arrays checked in C."""
    cdef int typenum = float_type(x, "x")
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if cnp.PyArray_NDIM(xa) != 2:
        raise ValueError("x: expected a 2-D array")
    cdef Py_ssize_t N = cnp.PyArray_DIM(xa, 0), D = cnp.PyArray_DIM(xa, 1)
    cdef void* px = data_of(x, typenum, N * D, False, "x")
    cdef void* pdy = data_of(dy, typenum, N * D, False, "dy")
    cdef void* pdx = opt_data(dx, typenum, N * D, True, "dx")
    cdef void* pg = opt_data(gamma, typenum, D, False, "gamma")
    cdef void* pdg = opt_data(dgamma, typenum, D, True, "dgamma")
    cdef void* pdb = opt_data(dbeta, typenum, D, True, "dbeta")
    cdef double* pm = <double*>data_of(save_mean, cnp.NPY_DOUBLE, N, False, "save_mean")
    cdef double* pi = <double*>data_of(save_invstd, cnp.NPY_DOUBLE, N, False, "save_invstd")
    cdef int rc
    if D == 0:
        return
    if N == 0:
        if pdg != NULL:
            dgamma[...] = 0
        if pdb != NULL:
            dbeta[...] = 0
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            rc = ln_backward_impl[float](<float*>pdy, <float*>px, <float*>pdx, <float*>pg, pm,
                                         pi, <float*>pdg, <float*>pdb, N, D, n_threads)
        else:
            rc = ln_backward_impl[double](<double*>pdy, <double*>px, <double*>pdx,
                                          <double*>pg, pm, pi, <double*>pdg, <double*>pdb, N,
                                          D, n_threads)
    if rc != 0:
        raise MemoryError("layer_norm_backward: could not allocate the workspace")


# --- BatchNorm1d and LayerNorm inside a ChainPlan (see _step.pxd) ----------------
# The states point into the layer's own arrays (parameters, gradients, running
# and saved statistics), checked and kept alive by the step objects.
cdef struct NormState:
    ChainStep base
    void* gamma            # NULL without affine (then beta, dgamma, dbeta too)
    void* beta
    void* dgamma
    void* dbeta
    void* rmean            # BatchNorm only
    void* rvar
    double* save_mean      # (C,) for BatchNorm, (n,) for LayerNorm
    double* save_invstd
    double momentum, eps
    bint relu              # BatchNorm -> ReLU fused (the mask is the output y)
    bint training          # the mode of the next forward
    bint fwd_training      # the mode of the last forward


cdef int bn_step_forward(void* state, const void* x, void* y, int n_threads) noexcept nogil:
    cdef NormState* s = <NormState*>state
    s.fwd_training = s.training
    if s.base.typenum == cnp.NPY_FLOAT:
        return bn_forward_impl[float](<const float*>x, <float*>s.gamma, <float*>s.beta,
                                      <float*>s.rmean, <float*>s.rvar, <float*>y, s.save_mean,
                                      s.save_invstd, s.base.n, s.base.width, s.training, True,
                                      s.momentum, s.eps, s.relu, n_threads)
    return bn_forward_impl[double](<const double*>x, <double*>s.gamma, <double*>s.beta,
                                   <double*>s.rmean, <double*>s.rvar, <double*>y, s.save_mean,
                                   s.save_invstd, s.base.n, s.base.width, s.training, True,
                                   s.momentum, s.eps, s.relu, n_threads)


cdef int norm_grads_of_no_rows(NormState* s) noexcept nogil:
    """An empty batch: the parameter gradients are sums over no rows, 0 (as the def
    wrappers give); nothing else to write."""
    cdef Py_ssize_t c
    if s.dgamma != NULL:
        for c in range(s.base.width):
            if s.base.typenum == cnp.NPY_FLOAT:
                (<float*>s.dgamma)[c] = 0
                (<float*>s.dbeta)[c] = 0
            else:
                (<double*>s.dgamma)[c] = 0
                (<double*>s.dbeta)[c] = 0
    return 0


cdef int bn_step_backward(void* state, const void* dy, const void* x, const void* y, void* dx,
                          int n_threads) noexcept nogil:
    cdef NormState* s = <NormState*>state
    if s.base.n == 0:
        return norm_grads_of_no_rows(s)
    if s.base.typenum == cnp.NPY_FLOAT:
        return bn_backward_impl[float](<const float*>dy, <const float*>x,
                                       <const float*>y if s.relu else NULL,
                                       <float*>s.gamma, s.save_mean, s.save_invstd,
                                       <float*>dx, <float*>s.dgamma, <float*>s.dbeta,
                                       s.base.n, s.base.width, s.fwd_training, dx != NULL,
                                       n_threads)
    return bn_backward_impl[double](<const double*>dy, <const double*>x,
                                    <const double*>y if s.relu else NULL,
                                    <double*>s.gamma, s.save_mean, s.save_invstd,
                                    <double*>dx, <double*>s.dgamma, <double*>s.dbeta,
                                    s.base.n, s.base.width, s.fwd_training, dx != NULL,
                                    n_threads)


cdef int ln_step_forward(void* state, const void* x, void* y, int n_threads) noexcept nogil:
    cdef NormState* s = <NormState*>state
    if s.base.typenum == cnp.NPY_FLOAT:
        ln_forward_impl[float](<const float*>x, <float*>y, <float*>s.gamma, <float*>s.beta,
                               s.save_mean, s.save_invstd, s.base.n, s.base.width, s.eps,
                               n_threads)
    else:
        ln_forward_impl[double](<const double*>x, <double*>y, <double*>s.gamma,
                                <double*>s.beta, s.save_mean, s.save_invstd, s.base.n,
                                s.base.width, s.eps, n_threads)
    return 0


cdef int ln_step_backward(void* state, const void* dy, const void* x, const void* y, void* dx,
                          int n_threads) noexcept nogil:
    cdef NormState* s = <NormState*>state
    if s.base.n == 0:
        return norm_grads_of_no_rows(s)
    if s.base.typenum == cnp.NPY_FLOAT:
        return ln_backward_impl[float](<const float*>dy, <const float*>x, <float*>dx,
                                       <float*>s.gamma, s.save_mean, s.save_invstd,
                                       <float*>s.dgamma, <float*>s.dbeta, s.base.n,
                                       s.base.width, n_threads)
    return ln_backward_impl[double](<const double*>dy, <const double*>x, <double*>dx,
                                    <double*>s.gamma, s.save_mean, s.save_invstd,
                                    <double*>s.dgamma, <double*>s.dbeta, s.base.n,
                                    s.base.width, n_threads)


cdef class _NormStep:
    cdef NormState st
    cdef list keep

    cdef void _init(self, Py_ssize_t n, Py_ssize_t width, dtype, gamma, beta, dgamma, dbeta,
                    save_mean, save_invstd, Py_ssize_t n_stats, str who) except *:
        step_init(&self.st.base, n, width, dtype, who)
        cdef int typenum = self.st.base.typenum
        if (gamma is None) != (beta is None) or (gamma is None) != (dgamma is None) or \
                (gamma is None) != (dbeta is None):
            raise ValueError("gamma, beta, dgamma and dbeta: all or none")
        self.st.gamma = opt_data(gamma, typenum, width, False, "gamma")
        self.st.beta = opt_data(beta, typenum, width, False, "beta")
        self.st.dgamma = opt_data(dgamma, typenum, width, True, "dgamma")
        self.st.dbeta = opt_data(dbeta, typenum, width, True, "dbeta")
        self.st.save_mean = <double*>data_of(save_mean, cnp.NPY_DOUBLE, n_stats, True,
                                             "save_mean")
        self.st.save_invstd = <double*>data_of(save_invstd, cnp.NPY_DOUBLE, n_stats, True,
                                               "save_invstd")
        self.keep = [gamma, beta, dgamma, dbeta, save_mean, save_invstd]

    def address(self):
        return <size_t>&self.st


cdef class BatchNormStep(_NormStep):
    """BatchNorm1d over (n, C) arrays as a ChainPlan step, a fused ReLU after it if ``relu``.

    The arrays are the layer's: gamma, beta, dgamma, dbeta (C,) or all None;
    running_mean, running_var (C,) of the same dtype, updated in training
    mode; save_mean, save_invstd float64 (C,). ``set(training, momentum,
    eps)`` before each forward.
    """

    def __cinit__(self, Py_ssize_t n, gamma, beta, dgamma, dbeta, running_mean, running_var,
                  save_mean, save_invstd, bint relu):
        cdef int typenum = float_type(running_mean, "running_mean")
        cdef Py_ssize_t C = cnp.PyArray_SIZE(<cnp.ndarray>running_mean)
        self._init(n, C, running_mean.dtype, gamma, beta, dgamma, dbeta, save_mean,
                   save_invstd, C, "BatchNormStep")
        self.st.rmean = data_of(running_mean, typenum, C, True, "running_mean")
        self.st.rvar = data_of(running_var, typenum, C, True, "running_var")
        self.keep += [running_mean, running_var]
        self.st.base.forward = bn_step_forward
        self.st.base.backward = bn_step_backward
        self.st.relu = relu
        self.st.training = self.st.fwd_training = True
        self.st.momentum, self.st.eps = 0.1, 1e-5

    def set(self, bint training, double momentum, double eps):
        if training and self.st.base.n < 2:
            raise ValueError("BatchNormStep: training needs n >= 2")
        self.st.training, self.st.momentum, self.st.eps = training, momentum, eps


cdef class LayerNormStep(_NormStep):
    """LayerNorm over the rows of (n, D) arrays as a ChainPlan step.

    gamma, beta, dgamma, dbeta (D,) of ``dtype`` or all None; save_mean,
    save_invstd float64 (n,). ``set(eps)`` before a forward.
    """

    def __cinit__(self, Py_ssize_t n, Py_ssize_t width, dtype, gamma, beta, dgamma, dbeta,
                  save_mean, save_invstd):
        self._init(n, width, dtype, gamma, beta, dgamma, dbeta, save_mean, save_invstd, n,
                   "LayerNormStep")
        self.st.base.forward = ln_step_forward
        self.st.base.backward = ln_step_backward
        self.st.eps = 1e-5

    def set(self, double eps):
        self.st.eps = eps
