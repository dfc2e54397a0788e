"""Linear layer kernels: y = act(x @ W + b) and its backward pass.

Design
------
Shapes (row-major): x (N, in), W (in, out), b (out,), y (N, out).

Forward:  one GEMM (BLAS ``?gemm`` from ``scipy.linalg.cython_blas``) into y,
          then one fused pass over y's rows adding b and applying act.
Backward: delta = dy * act'(y) (act' written in the forward output y), fused
          with the bias gradient db = sum_rows(delta); then two GEMMs:
          dW = x^T @ delta and dx = delta @ W^T.

Threads and determinism: BLAS is run single-threaded during these kernels
(``blas_single_thread_enter``), and each GEMM is cut by us into fixed blocks
of rows or columns of its output that ``prange`` hands to our OpenMP threads
(``parallel_gemm``). The blocks depend on the shapes only, never on the thread
count, so results are bit-identical for any number of threads (OpenBLAS's
own threading partitions by thread count and rounds differently), and only
one thread pool ever runs: no BLAS pool nested in, or spinning beside, ours.
``db`` is reduced the same way: rows are cut into fixed chunks of
``DB_CHUNK`` rows, each chunk summed in float64 by one thread, and the chunk
sums added serially in order.

Row-major GEMM through a column-major BLAS: a row-major (r, c) buffer is the
column-major (c, r) transpose, so C = op(A) op(B) is computed as
C^T = op(B)^T op(A)^T, i.e. gemm(tB, tA, N, M, K, B, A).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

from _numerics cimport (ACT_NONE, activation_inplace, activation_backward_span)

cdef Py_ssize_t DB_CHUNK = 64          # rows per deterministic partial sum of db
cdef Py_ssize_t MIN_PARALLEL = 32768   # elements below which one thread is faster


cdef inline void gemm_rowmajor(bint trans_a, bint trans_b, int M, int N, int K,
                               floating alpha, const floating* A, int lda,
                               const floating* B, int ldb, floating beta,
                               floating* C, int ldc) noexcept nogil:
    """C (M, N) = alpha * op(A) @ op(B) + beta * C, all row-major.

    lda/ldb/ldc are the row lengths of the stored matrices.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &beta, C, &ldc)


# --- BLAS thread control -----------------------------------------------------
# Addresses of the BLAS library's get/set-num-threads functions, registered
# from Python by cyprop._threads (NULL when the BLAS is not recognised: then
# its own threading applies and GEMM results may differ across thread counts).
ctypedef int (*get_threads_t)() noexcept nogil
ctypedef void (*set_threads_t)(int) noexcept nogil
cdef get_threads_t blas_get_threads = NULL
cdef set_threads_t blas_set_threads = NULL


def set_blas_thread_hooks(size_t get_address, size_t set_address):
    """Register the BLAS get/set-num-threads functions (0, 0 to unregister)."""
    global blas_get_threads, blas_set_threads
    blas_get_threads = <get_threads_t>get_address
    blas_set_threads = <set_threads_t>set_address


cdef inline int blas_single_thread_enter() noexcept nogil:
    """Make BLAS single-threaded; return the count to restore (0: nothing to do)."""
    cdef int saved
    if blas_get_threads == NULL:
        return 0
    saved = blas_get_threads()
    if saved == 1:
        return 0
    blas_set_threads(1)
    return saved


cdef inline void blas_threads_restore(int saved) noexcept nogil:
    if saved > 0:
        blas_set_threads(saved)


# --- Blocked GEMM ------------------------------------------------------------
cdef Py_ssize_t GEMM_MIN_FLOPS = 1 << 21   # below this: one BLAS call, no blocks
cdef Py_ssize_t GEMM_MIN_BLOCK = 256       # never cut blocks smaller than this
cdef Py_ssize_t GEMM_TARGET_BLOCK = 384    # aim for blocks at least this large
cdef Py_ssize_t GEMM_MAX_BLOCKS = 64


def _set_gemm_blocking(Py_ssize_t min_flops, Py_ssize_t min_block, Py_ssize_t target_block,
                       Py_ssize_t max_blocks):
    """Tune the GEMM blocking (for benchmarks); returns the previous values."""
    global GEMM_MIN_FLOPS, GEMM_MIN_BLOCK, GEMM_TARGET_BLOCK, GEMM_MAX_BLOCKS
    old = (GEMM_MIN_FLOPS, GEMM_MIN_BLOCK, GEMM_TARGET_BLOCK, GEMM_MAX_BLOCKS)
    if min_flops < 0 or min_block < 1 or target_block < min_block or max_blocks < 1:
        raise ValueError("need min_flops >= 0, 1 <= min_block <= target_block, max_blocks >= 1")
    GEMM_MIN_FLOPS, GEMM_MIN_BLOCK, GEMM_TARGET_BLOCK, GEMM_MAX_BLOCKS = (
        min_flops, min_block, target_block, max_blocks)
    return old


cdef inline Py_ssize_t gemm_plan(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                                 bint* by_rows) noexcept nogil:
    """Block size along the blocked dimension of C (M, N); sets ``by_rows``.

    Blocking C's rows repacks op(B) (K, N) once per block, blocking its
    columns repacks op(A) (M, K): block the larger of M and N, so the operand
    repacked is the smaller one. The repacking costs about 1/block of the
    GEMM, so blocks are large; their number is a power of two (equal blocks
    balance over 2, 4, 8... threads). Depends on the shapes only, never on
    the thread count.
    """
    cdef Py_ssize_t dim, n_blocks = 1
    by_rows[0] = M >= N
    dim = M if by_rows[0] else N
    if M * N * K < GEMM_MIN_FLOPS or dim < 2 * GEMM_MIN_BLOCK:
        return dim
    while n_blocks * 2 * GEMM_TARGET_BLOCK <= dim and n_blocks * 2 <= GEMM_MAX_BLOCKS:
        n_blocks *= 2
    if n_blocks == 1:
        n_blocks = 2
    return ((dim + n_blocks - 1) // n_blocks + 15) // 16 * 16


cdef inline void gemm_block(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N,
                            Py_ssize_t K, const floating* A, int lda, const floating* B,
                            int ldb, floating* C, int ldc, bint by_rows,
                            Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Rows (by_rows) or columns [start, stop) of C = op(A) @ op(B)."""
    if by_rows:
        gemm_rowmajor(trans_a, trans_b, <int>(stop - start), <int>N, <int>K, 1,
                      A + (start if trans_a else start * lda), lda, B, ldb, 0,
                      C + start * ldc, ldc)
    else:
        gemm_rowmajor(trans_a, trans_b, <int>M, <int>(stop - start), <int>K, 1,
                      A, lda, B + (start * ldb if trans_b else start), ldb, 0,
                      C + start, ldc)


cdef void parallel_gemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                        const floating* A, int lda, const floating* B, int ldb,
                        floating* C, int ldc, int n_threads) noexcept nogil:
    """C (M, N) = op(A) @ op(B) in fixed blocks over our threads (BLAS single-threaded)."""
    cdef bint by_rows
    cdef Py_ssize_t block = gemm_plan(M, N, K, &by_rows)
    cdef Py_ssize_t dim = M if by_rows else N
    cdef Py_ssize_t n_blocks = (dim + block - 1) // block
    cdef Py_ssize_t blk, start
    for blk in prange(n_blocks, num_threads=n_threads, schedule="static",
                      use_threads_if=n_threads > 1 and n_blocks > 1):
        start = blk * block
        gemm_block(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, by_rows,
                   start, min(start + block, dim))



cdef inline void _sum_column(const double* partial, Py_ssize_t n_chunks, Py_ssize_t stride,
                             Py_ssize_t j, floating* out) noexcept nogil:
    cdef double acc = 0
    cdef Py_ssize_t c
    for c in range(n_chunks):
        acc += partial[c * stride + j]
    out[0] = <floating>acc


cdef inline void bias_activation(floating* y, Py_ssize_t ldy, const floating* b, bint has_bias,
                                 int act, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                                 Py_ssize_t c1) noexcept nogil:
    """y[r0:r1, c0:c1] = act(y + b) in place (the GEMM epilogue)."""
    cdef Py_ssize_t i, j
    cdef floating* yrow
    for i in range(r0, r1):
        yrow = y + i * ldy
        if has_bias:
            for j in range(c0, c1):
                yrow[j] = yrow[j] + b[j]
        activation_inplace(yrow + c0, c1 - c0, act)


def linear_forward(const floating[:, ::1] x, const floating[:, ::1] W,
                   const floating[::1] b, bint has_bias, floating[:, ::1] y,
                   int act, int n_threads):
    """y (N, out) = act(x (N, in) @ W (in, out) + b (out,)).

    ``b`` is ignored unless ``has_bias``. ``y`` must not overlap x or W.
    Each GEMM block gets its bias and activation while it is still in cache.
    """
    cdef Py_ssize_t n = x.shape[0], n_in = x.shape[1], n_out = W.shape[1]
    cdef Py_ssize_t i, blk, start, stop, block, dim, n_blocks
    cdef bint by_rows, epilogue = has_bias or act != ACT_NONE
    cdef int saved
    if n == 0 or n_out == 0:
        return
    with nogil:
        if n_in == 0:  # an empty sum: y = act(b)
            memset(&y[0, 0], 0, n * n_out * sizeof(floating))
        saved = blas_single_thread_enter()
        block = gemm_plan(n, n_out, n_in, &by_rows)
        dim = n if by_rows else n_out
        n_blocks = (dim + block - 1) // block
        if n_blocks == 1 or n_in == 0:
            if n_in > 0:
                gemm_rowmajor(False, False, <int>n, <int>n_out, <int>n_in, 1, &x[0, 0],
                              <int>n_in, &W[0, 0], <int>n_out, 0, &y[0, 0], <int>n_out)
            if epilogue:
                for i in prange(n, num_threads=n_threads, schedule="static",
                                use_threads_if=n_threads > 1 and n * n_out >= MIN_PARALLEL):
                    bias_activation(&y[0, 0], n_out, &b[0], has_bias, act, i, i + 1, 0, n_out)
        else:
            for blk in prange(n_blocks, num_threads=n_threads, schedule="static",
                              use_threads_if=n_threads > 1):
                start = blk * block
                stop = min(start + block, dim)
                gemm_block(False, False, n, n_out, n_in, &x[0, 0], <int>n_in, &W[0, 0],
                           <int>n_out, &y[0, 0], <int>n_out, by_rows, start, stop)
                if epilogue:
                    if by_rows:
                        bias_activation(&y[0, 0], n_out, &b[0], has_bias, act,
                                        start, stop, 0, n_out)
                    else:
                        bias_activation(&y[0, 0], n_out, &b[0], has_bias, act,
                                        0, n, start, stop)
        blas_threads_restore(saved)


def linear_backward(const floating[:, ::1] dy, const floating[:, ::1] x,
                    const floating[:, ::1] W, const floating[:, ::1] y, int act,
                    floating[:, ::1] delta,
                    floating[:, ::1] dx, bint need_dx,
                    floating[:, ::1] dW,
                    floating[::1] db, bint need_db, int n_threads):
    """Gradients of y = act(x @ W + b).

    dy, y, delta: (N, out); x, dx: (N, in); W, dW: (in, out); db: (out,).
    ``delta`` is workspace for dy * act'(y) (unused when act is none; it may
    be dy itself); ``y`` is only read when act is not none. dx/db are skipped
    when not needed. Returns 0, or -1 if the db workspace could not be
    allocated.
    """
    cdef Py_ssize_t n = dy.shape[0], n_out = dy.shape[1], n_in = x.shape[1]
    cdef Py_ssize_t n_chunks = (n + DB_CHUNK - 1) // DB_CHUNK
    cdef Py_ssize_t c, i, j, r0, r1
    cdef const floating* d
    cdef floating* drow
    cdef double* partial = NULL
    cdef double* prow
    cdef int saved
    if n_out == 0:
        if need_dx and n * n_in > 0:
            memset(&dx[0, 0], 0, n * n_in * sizeof(floating))
        return 0
    if n == 0:
        if n_in > 0:
            memset(&dW[0, 0], 0, n_in * n_out * sizeof(floating))
        if need_db:
            memset(&db[0], 0, n_out * sizeof(floating))
        return 0
    if need_db:
        partial = <double*>malloc(n_chunks * n_out * sizeof(double))
        if partial == NULL:
            return -1
    with nogil:
        # delta = dy * act'(y), fused with the per-chunk partial sums of db
        if act != ACT_NONE or need_db:
            for c in prange(n_chunks, num_threads=n_threads, schedule="static",
                            use_threads_if=n_threads > 1 and n * n_out >= MIN_PARALLEL):
                r0 = c * DB_CHUNK
                r1 = min(r0 + DB_CHUNK, n)
                prow = partial + c * n_out
                if need_db:
                    for j in range(n_out):
                        prow[j] = 0
                for i in range(r0, r1):
                    if act != ACT_NONE:
                        drow = &delta[i, 0]
                        activation_backward_span(&dy[i, 0], &y[i, 0], drow, n_out, act)
                        if need_db:
                            for j in range(n_out):
                                prow[j] += drow[j]
                    else:
                        for j in range(n_out):
                            prow[j] += dy[i, j]
        if need_db:
            # sum the partials in float64, in chunk order, then round once
            for j in range(n_out):
                _sum_column(partial, n_chunks, n_out, j, &db[j])
        d = &delta[0, 0] if act != ACT_NONE else &dy[0, 0]
        if n_in > 0:
            saved = blas_single_thread_enter()
            # dW (in, out) = x^T (in, N) @ delta (N, out)
            parallel_gemm(True, False, n_in, n_out, n, &x[0, 0], <int>n_in, d, <int>n_out,
                          &dW[0, 0], <int>n_out, n_threads)
            if need_dx:
                # dx (N, in) = delta (N, out) @ W^T (out, in)
                parallel_gemm(False, True, n, n_in, n_out, d, <int>n_out, &W[0, 0],
                              <int>n_out, &dx[0, 0], <int>n_in, n_threads)
            blas_threads_restore(saved)
    free(partial)
    return 0
