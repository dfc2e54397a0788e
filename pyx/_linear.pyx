"""Linear layer kernels: y = act(x @ W + b) and its backward pass.

Design
------
Shapes (row-major): x (N, in), W (in, out), b (out,), y (N, out).

Forward:  y starts as rows of b; one GEMM (BLAS ``?gemm``, see "Which
          BLAS" below) adds x @ W to it (beta = 1, so BLAS
          does not zero y first), then one pass over y's rows applies act.
Backward: delta = dy * act'(y) (act' written in the forward output y), one
          chunk of DB_CHUNK rows at a time, each chunk's rows summed into the
          bias gradient db = sum_rows(delta) while still in cache; then two
          GEMMs: dW = x^T @ delta and dx = delta @ W^T.

Threads and determinism: BLAS is run single-threaded during these kernels
(``blas_single_thread_enter``), and each GEMM is cut by us into fixed blocks
of rows or columns of its output that ``prange`` hands to our OpenMP threads
(``parallel_gemm``). The blocks depend on the shapes only, never on the thread
count, so results are bit-identical for any number of threads (OpenBLAS's
own threading partitions by thread count and rounds differently), and only
one thread pool ever runs: no BLAS pool nested in, or spinning beside, ours.
The blocks go to whichever thread is free (schedule "guided"), and a region
that waited on a thread the scheduler did not run makes the kernels back off
to one thread for a while (``_team.h``).
``db`` is reduced the same way: rows are cut into fixed chunks of
``DB_CHUNK`` rows, each chunk summed in float64 by one thread, and the chunk
sums added serially in order. So is ``dW`` of a narrow layer, whose output is
too small to cut: its batch is cut into fixed chunks (``dw_k_chunks``).

Which BLAS: the kernels call ?gemm/?gemv through the function pointers
``blas_sgemm`` ... ``blas_dgemv``. They start as ``scipy.linalg.cython_blas``'s
and ``cyprop._blas`` points them, at import, at the OpenBLAS of the
``scipy-openblas32`` package when it is installed (newer than SciPy's bundled
build, and faster in float32; ``CYPROP_BLAS=scipy`` keeps SciPy's). Both are
OpenBLAS builds with the same interface; the thread hooks below follow the
choice.

Row-major GEMM through a column-major BLAS: a row-major (r, c) buffer is the
column-major (c, r) transpose, so C = op(A) op(B) is computed as
C^T = op(B)^T op(A)^T, i.e. gemm(tB, tA, N, M, K, B, A).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from scipy.linalg cimport cython_blas
cimport numpy as cnp

from _arrays cimport data_of, fits, float_type
from _step cimport ChainStep

from _numerics cimport (ACT_NONE, activation_inplace, activation_backward_span,
                        parallel_activation_forward, parallel_activation_backward, scale_span)
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

cdef Py_ssize_t DB_CHUNK = 64          # rows per deterministic partial sum of db
cdef Py_ssize_t MIN_PARALLEL = 32768   # elements below which one thread is faster


# A product whose C has at most GEMV_MAX_SIDE rows or columns is run as one
# ?gemv per row or column: OpenBLAS's ?gemm packs the whole of the other
# operand for so thin a C and is 1.5-3x slower there (measured on 32..1024 x
# 20..512 products, both dtypes; 9x at one row or column: batch-1 inference).
cdef int GEMV_MAX_SIDE = 3


# --- The BLAS functions --------------------------------------------------------
# Fortran-interface ?gemm/?gemv (all arguments by pointer), as cython_blas and
# every OpenBLAS/MKL build export them. Swapped only at import (set_blas_functions)
# or by a benchmark with no kernel running.
ctypedef void (*sgemm_t)(char*, char*, int*, int*, int*, float*, float*, int*, float*, int*,
                         float*, float*, int*) noexcept nogil
ctypedef void (*dgemm_t)(char*, char*, int*, int*, int*, double*, double*, int*, double*, int*,
                         double*, double*, int*) noexcept nogil
ctypedef void (*sgemv_t)(char*, int*, int*, float*, float*, int*, float*, int*, float*, float*,
                         int*) noexcept nogil
ctypedef void (*dgemv_t)(char*, int*, int*, double*, double*, int*, double*, int*, double*,
                         double*, int*) noexcept nogil
cdef sgemm_t blas_sgemm = cython_blas.sgemm
cdef dgemm_t blas_dgemm = cython_blas.dgemm
cdef sgemv_t blas_sgemv = cython_blas.sgemv
cdef dgemv_t blas_dgemv = cython_blas.dgemv


def set_blas_functions(size_t sgemm_address=0, size_t dgemm_address=0,
                       size_t sgemv_address=0, size_t dgemv_address=0):
    """Point the kernels' ?gemm/?gemv at these addresses (all 0: scipy.linalg.cython_blas).

    The addresses are of Fortran-interface ``sgemm_``, ``dgemm_``, ``sgemv_``
    and ``dgemv_`` functions of one library (cyprop._blas finds them). Not to
    be called while a kernel runs.
    """
    global blas_sgemm, blas_dgemm, blas_sgemv, blas_dgemv
    addresses = (sgemm_address, dgemm_address, sgemv_address, dgemv_address)
    if all(a == 0 for a in addresses):
        blas_sgemm, blas_dgemm = cython_blas.sgemm, cython_blas.dgemm
        blas_sgemv, blas_dgemv = cython_blas.sgemv, cython_blas.dgemv
        return
    if any(a == 0 for a in addresses):
        raise ValueError("set_blas_functions: give all four addresses, or none")
    blas_sgemm = <sgemm_t>sgemm_address
    blas_dgemm = <dgemm_t>dgemm_address
    blas_sgemv = <sgemv_t>sgemv_address
    blas_dgemv = <dgemv_t>dgemv_address


cdef inline void gemv_rowmajor(bint trans, int rows, int cols, floating alpha,
                               const floating* A, int lda, const floating* v, int inc_v,
                               floating beta, floating* out, int inc_out) noexcept nogil:
    """out (rows,) = alpha * op(A) @ v + beta * out, for A stored row-major.

    op(A) is A (rows, cols) or, with ``trans``, A^T where A is stored
    (cols, rows). A row-major A is the column-major transpose, so the BLAS
    flag is the opposite one.
    """
    cdef char t = b'N' if trans else b'T'
    cdef int m = rows if trans else cols
    cdef int n = cols if trans else rows
    if floating is float:
        blas_sgemv(&t, &m, &n, &alpha, <float*>A, &lda, <float*>v, &inc_v, &beta, out, &inc_out)
    else:
        blas_dgemv(&t, &m, &n, &alpha, <double*>A, &lda, <double*>v, &inc_v, &beta, out, &inc_out)


cdef inline void gemm_rowmajor(bint trans_a, bint trans_b, int M, int N, int K,
                               floating alpha, const floating* A, int lda,
                               const floating* B, int ldb, floating beta,
                               floating* C, int ldc) noexcept nogil:
    """C (M, N) = alpha * op(A) @ op(B) + beta * C, all row-major.

    lda/ldb/ldc are the row lengths of the stored matrices. A C of at most
    GEMV_MAX_SIDE columns (rows) is one ?gemv per column (row).
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int i, j
    if N <= GEMV_MAX_SIDE:
        # C[:, j] (M,) = op(A) (M, K) @ op(B)[:, j] (K,)
        for j in range(N):
            gemv_rowmajor(trans_a, M, K, alpha, A, lda,
                          B + j * ldb if trans_b else B + j, 1 if trans_b else ldb,
                          beta, C + j, ldc)
        return
    if M <= GEMV_MAX_SIDE:
        # C[i, :] (N,) = op(B)^T (N, K) @ op(A)[i, :] (K,)
        for i in range(M):
            gemv_rowmajor(not trans_b, N, K, alpha, B, ldb,
                          A + i if trans_a else A + i * lda, lda if trans_a else 1,
                          beta, C + i * ldc, 1)
        return
    if floating is float:
        blas_sgemm(&tb, &ta, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &beta, C, &ldc)
    else:
        blas_dgemm(&tb, &ta, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda,
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


# Several Python threads may run cyprop kernels at once (they release the
# GIL), so the BLAS thread count is switched by the first kernel to enter and
# restored by the last to leave, under a spinlock (held for a few
# instructions only).
cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <windows.h>
    static volatile LONG cp_blas_lock = 0;
    static void cp_lock(void) { while (InterlockedExchange(&cp_blas_lock, 1)) { YieldProcessor(); } }
    static void cp_unlock(void) { InterlockedExchange(&cp_blas_lock, 0); }
    #else
    static volatile char cp_blas_lock = 0;
    static void cp_lock(void) { while (__atomic_test_and_set(&cp_blas_lock, __ATOMIC_ACQUIRE)) { } }
    static void cp_unlock(void) { __atomic_clear(&cp_blas_lock, __ATOMIC_RELEASE); }
    #endif
    static int cp_blas_users = 0;      /* kernels inside a single-threaded-BLAS region */
    static int cp_blas_saved = 0;      /* the count to restore when the last one leaves */
    """
    void cp_lock() nogil
    void cp_unlock() nogil
    int cp_blas_users
    int cp_blas_saved


cdef inline int blas_single_thread_enter() noexcept nogil:
    """Make BLAS single-threaded for this kernel (process-wide, reference counted)."""
    global cp_blas_users, cp_blas_saved
    if blas_get_threads == NULL:
        return 0
    cp_lock()
    if cp_blas_users == 0:
        cp_blas_saved = blas_get_threads()
        if cp_blas_saved != 1:
            blas_set_threads(1)
    cp_blas_users += 1
    cp_unlock()
    return 1


cdef inline void blas_threads_restore(int entered) noexcept nogil:
    """Leave the region entered by blas_single_thread_enter (restores on the last exit)."""
    global cp_blas_users
    if entered == 0:
        return
    cp_lock()
    cp_blas_users -= 1
    if cp_blas_users == 0 and cp_blas_saved != 1:
        blas_set_threads(cp_blas_saved)
    cp_unlock()


# --- Blocked GEMM ------------------------------------------------------------
# Below GEMM_MIN_FLOPS (M * N * K) a product is one BLAS call, on one thread:
# too small to share. Cutting one into two blocks for two threads also moves
# its operands between the cores' caches every step (the parameters the
# other thread read, the gradients it wrote, which the optimizer then reads
# on the calling thread), and at these sizes that cost more than the second
# thread saved. At 2 threads, Adam steps of a 64-128-128-10 MLP at batch 32
# (products (32, 128) @ (128, 128)) took 0.69-0.78 of the time as one call
# that they took cut at the former threshold, 1 << 19, and a scikit-learn
# digits fit (two hidden layers of 128, batch 32) 0.73; larger products
# (>= 1 << 20: batch 128 of that MLP, 16 rows of 256-wide layers) still gain
# from the cut.
cdef Py_ssize_t GEMM_MIN_FLOPS = 1 << 20
cdef Py_ssize_t GEMM_MIN_BLOCK = 64        # never cut blocks smaller than this
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


# Near-square float32 products up to this size are cut into columns, not
# rows: OpenBLAS's sgemm (16 x 4 micro-kernel) runs two (M, N/2) halves of a
# (128, 128) C 4-5% slower than the whole, two (M/2, N) halves 16-17% slower.
# dgemm shows no such preference (rows are, if anything, the better cut).
cdef Py_ssize_t GEMM_COLUMNS_MAX_FLOPS = 1 << 22


cdef inline Py_ssize_t gemm_plan(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, bint single,
                                 bint* by_rows) noexcept nogil:
    """Block size along the blocked dimension of C (M, N); sets ``by_rows``.

    Blocking C's rows repacks op(B) (K, N) once per block, blocking its
    columns repacks op(A) (M, K): block the larger of M and N, so the operand
    repacked is the smaller one (for ``single`` precision, near-square small
    products are cut into columns, see GEMM_COLUMNS_MAX_FLOPS). The repacking
    costs about 1/block of the GEMM, so blocks are large; their number is a
    power of two (equal blocks balance over 2, 4, 8... threads). Depends on
    the shapes and dtype only, never on the thread count.
    """
    cdef Py_ssize_t dim, n_blocks = 1
    by_rows[0] = M >= N
    if (single and by_rows[0] and N >= 2 * GEMM_MIN_BLOCK and 4 * N >= 3 * M
            and M * N * K <= GEMM_COLUMNS_MAX_FLOPS):
        by_rows[0] = False  # N >= 2 * GEMM_MIN_BLOCK: cut whenever rows would have been
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
                            int ldb, floating beta, floating* C, int ldc, bint by_rows,
                            Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Rows (by_rows) or columns [start, stop) of C = op(A) @ op(B) + beta * C."""
    if by_rows:
        gemm_rowmajor(trans_a, trans_b, <int>(stop - start), <int>N, <int>K, 1,
                      A + (start if trans_a else start * lda), lda, B, ldb, beta,
                      C + start * ldc, ldc)
    else:
        gemm_rowmajor(trans_a, trans_b, <int>M, <int>(stop - start), <int>K, 1,
                      A, lda, B + (start * ldb if trans_b else start), ldb, beta,
                      C + start, ldc)


cdef void parallel_gemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                        const floating* A, int lda, const floating* B, int ldb,
                        floating* C, int ldc, int n_threads, floating beta=0) noexcept nogil:
    """C (M, N) = op(A) @ op(B) + beta * C in fixed blocks over our threads (BLAS single-threaded)."""
    cdef bint by_rows
    cdef Py_ssize_t block = gemm_plan(M, N, K, floating is float, &by_rows)
    cdef Py_ssize_t dim = M if by_rows else N
    cdef Py_ssize_t n_blocks = (dim + block - 1) // block
    cdef Py_ssize_t blk, start
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_blocks)
    cdef int64_t t
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            start = blk * block
            gemm_block(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, by_rows,
                       start, min(start + block, dim))
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:  # serially: no OpenMP region to enter (it costs ~0.3 us even for one thread)
        for blk in range(n_blocks):
            start = blk * block
            gemm_block(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, by_rows,
                       start, min(start + block, dim))


# dW = x^T @ delta sums over the batch. When neither dW dimension can be cut
# into blocks (both below 2 * GEMM_MIN_BLOCK: narrow layers) but the batch is
# long, the batch is cut instead: into a power of two of fixed chunks of at
# least GEMM_K_CHUNK rows (from the shapes only), one product per chunk, added
# in chunk order. The sum's rounding then depends on the shapes, never on the
# thread count, and narrow layers' dW runs on all threads.
cdef Py_ssize_t GEMM_K_CHUNK = 64
cdef Py_ssize_t GEMM_MAX_K_CHUNKS = 8


cdef inline Py_ssize_t dw_k_chunks(Py_ssize_t n_in, Py_ssize_t n_out,
                                   Py_ssize_t n) noexcept nogil:
    """How many batch chunks dW (n_in, n_out) = x^T @ delta (over n rows) is cut into."""
    cdef bint by_rows
    # whether dW is cut at all does not depend on the dtype (see gemm_plan)
    cdef Py_ssize_t block = gemm_plan(n_in, n_out, n, False, &by_rows)
    cdef Py_ssize_t c = 1
    if block < (n_in if by_rows else n_out) or n_in * n_out * n < GEMM_MIN_FLOPS:
        return 1  # cut by rows or columns already, or too small to cut at all
    while c * 2 * GEMM_K_CHUNK <= n and c * 2 <= GEMM_MAX_K_CHUNKS:
        c *= 2
    return c


cdef inline Py_ssize_t backward_workspace_size(Py_ssize_t n, Py_ssize_t n_in,
                                               Py_ssize_t n_out, bint need_db) noexcept nogil:
    """Doubles of workspace linear_backward_impl needs: db partial sums, then dW chunks."""
    return max(db_workspace_size(n, n_out) if need_db else 0,
               (dw_k_chunks(n_in, n_out, n) - 1) * n_in * n_out)


cdef inline void dw_chunk(const floating* x, const floating* d, floating* dW, floating* ws,
                          Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t chunk,
                          Py_ssize_t k) noexcept nogil:
    """Chunk k's x^T @ delta: into dW for k = 0, else into ws[k - 1]."""
    cdef Py_ssize_t r0 = k * chunk, r1 = min(k * chunk + chunk, n)
    cdef floating* out = dW if k == 0 else ws + (k - 1) * n_in * n_out
    if r1 <= r0:
        memset(out, 0, n_in * n_out * sizeof(floating))
    else:
        gemm_rowmajor(True, False, <int>n_in, <int>n_out, <int>(r1 - r0), 1, x + r0 * n_in,
                      <int>n_in, d + r0 * n_out, <int>n_out, 0, out, <int>n_out)


cdef void dw_k_split(const floating* x, const floating* d, floating* dW, floating* ws,
                     Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t c,
                     int n_threads) noexcept nogil:
    """dW = x^T @ d as the sum, in chunk order, of c fixed batch chunks' products."""
    cdef Py_ssize_t k, i, chunk = (n + c - 1) // c, size = n_in * n_out
    cdef floating* part
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, c)
    cdef int64_t t
    if nt > 1:
        for k in prange(c, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            dw_chunk(x, d, dW, ws, n, n_in, n_out, chunk, k)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for k in range(c):
            dw_chunk(x, d, dW, ws, n, n_in, n_out, chunk, k)
    for k in range(1, c):
        part = ws + (k - 1) * size
        for i in range(size):
            dW[i] = dW[i] + part[i]


cdef inline void _sum_column(const double* partial, Py_ssize_t n_chunks, Py_ssize_t stride,
                             Py_ssize_t j, floating* out) noexcept nogil:
    cdef double acc = 0
    cdef Py_ssize_t c
    for c in range(n_chunks):
        acc += partial[c * stride + j]
    out[0] = <floating>acc


cdef inline void fill_bias(floating* y, Py_ssize_t ldy, const floating* b, Py_ssize_t r0,
                           Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """y[r0:r1, c0:c1] = b[c0:c1]: the GEMM then adds x @ W to it (beta = 1)."""
    cdef Py_ssize_t i
    for i in range(r0, r1):
        memcpy(y + i * ldy + c0, b + c0, (c1 - c0) * sizeof(floating))


cdef inline void activation_rows(floating* y, Py_ssize_t ldy, int act, Py_ssize_t r0,
                                 Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """y[r0:r1, c0:c1] = act(y) in place (the GEMM epilogue)."""
    cdef Py_ssize_t i
    if c0 == 0 and c1 == ldy:  # whole rows: one contiguous span, one call
        activation_inplace(y + r0 * ldy, (r1 - r0) * ldy, act)
        return
    for i in range(r0, r1):
        activation_inplace(y + i * ldy + c0, c1 - c0, act)


cdef inline void forward_block(const floating* x, const floating* W, const floating* b,
                               floating* y, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                               int act, bint by_rows, Py_ssize_t start,
                               Py_ssize_t stop) noexcept nogil:
    """One GEMM block of the forward pass onto its bias, then its activation while in cache."""
    cdef Py_ssize_t r0 = start if by_rows else 0, r1 = stop if by_rows else n
    cdef Py_ssize_t c0 = 0 if by_rows else start, c1 = n_out if by_rows else stop
    if b != NULL:
        fill_bias(y, n_out, b, r0, r1, c0, c1)
    gemm_block(False, False, n, n_out, n_in, x, <int>n_in, W, <int>n_out,
               1 if b != NULL else 0, y, <int>n_out, by_rows, start, stop)
    if act != ACT_NONE:
        activation_rows(y, n_out, act, r0, r1, c0, c1)


cdef void linear_forward_impl(const floating* x, const floating* W, const floating* b,
                              floating* y, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                              int act, int n_threads) noexcept nogil:
    """y (n, n_out) = act(x (n, n_in) @ W (n_in, n_out) + b); b may be NULL.

    BLAS must already be single-threaded (blas_single_thread_enter). y starts
    as the bias, rows of b, and the GEMM adds x @ W to it (beta = 1): no pass
    of BLAS's own to zero y, none of ours to add b. Each GEMM block gets its
    activation while it is still in cache.
    """
    cdef Py_ssize_t blk, block, dim, n_blocks
    cdef bint by_rows
    cdef cp_region reg
    cdef int nt
    cdef int64_t t
    if n == 0 or n_out == 0:
        return
    block = gemm_plan(n, n_out, n_in, floating is float, &by_rows)
    dim = n if by_rows else n_out
    n_blocks = (dim + block - 1) // block
    if n_blocks == 1 or n_in == 0:
        if b != NULL:
            fill_bias(y, n_out, b, 0, n, 0, n_out)
        elif n_in == 0:  # an empty sum
            memset(y, 0, n * n_out * sizeof(floating))
        if n_in > 0:
            gemm_rowmajor(False, False, <int>n, <int>n_out, <int>n_in, 1, x, <int>n_in,
                          W, <int>n_out, 1 if b != NULL else 0, y, <int>n_out)
        if act != ACT_NONE:  # y's rows are one contiguous span
            parallel_activation_forward(y, y, n * n_out, act, n_threads)
        return
    nt = cp_region_begin(&reg, n_threads, n_blocks)
    if nt > 1:
        for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            forward_block(x, W, b, y, n, n_in, n_out, act, by_rows, blk * block,
                          min(blk * block + block, dim))
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for blk in range(n_blocks):
            forward_block(x, W, b, y, n, n_in, n_out, act, by_rows, blk * block,
                          min(blk * block + block, dim))


cdef inline Py_ssize_t db_workspace_size(Py_ssize_t n, Py_ssize_t n_out) noexcept nogil:
    """Doubles of workspace linear_backward_impl needs for db."""
    return ((n + DB_CHUNK - 1) // DB_CHUNK) * n_out


cdef inline void delta_db_chunk(const floating* dy, const floating* y, int act,
                                floating* delta, double* partial, bint need_db,
                                Py_ssize_t n, Py_ssize_t n_out, Py_ssize_t c) noexcept nogil:
    """Rows of chunk c: delta = dy * act'(y), and their float64 column sums into partial[c]."""
    cdef Py_ssize_t i, j, r0 = c * DB_CHUNK, r1 = min(c * DB_CHUNK + DB_CHUNK, n)
    cdef double* prow = partial + c * n_out
    cdef const floating* drow
    if need_db:
        for j in range(n_out):
            prow[j] = 0
    if act != ACT_NONE:  # the chunk's rows are one contiguous span
        activation_backward_span(dy + r0 * n_out, y + r0 * n_out, delta + r0 * n_out,
                                 (r1 - r0) * n_out, act)
    if need_db:
        for i in range(r0, r1):
            drow = (delta if act != ACT_NONE else dy) + i * n_out
            for j in range(n_out):
                prow[j] += drow[j]


cdef void linear_backward_impl(const floating* dy, const floating* x, const floating* W,
                               const floating* y, int act, floating* delta, floating* dx,
                               floating* dW, floating* db, double* partial,
                               Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                               int n_threads) noexcept nogil:
    """Gradients of y = act(x @ W + b); dx and db are skipped when NULL.

    dy, y, delta: (n, n_out); x, dx: (n, n_in); W, dW: (n_in, n_out); db: (n_out,).
    ``delta`` receives dy * act'(y) (unused when act is none; it may be dy);
    ``partial`` is workspace of backward_workspace_size(n, n_in, n_out,
    db != NULL) doubles (for db's partial sums, then dW's batch chunks); it
    may be NULL when that size is 0. BLAS must already be single-threaded.
    """
    cdef Py_ssize_t n_chunks = (n + DB_CHUNK - 1) // DB_CHUNK
    cdef Py_ssize_t c, j
    cdef const floating* d
    cdef bint need_db = db != NULL
    cdef cp_region reg
    cdef int nt
    cdef int64_t t
    if n_out == 0:
        if dx != NULL and n * n_in > 0:
            memset(dx, 0, n * n_in * sizeof(floating))
        return
    if n == 0:
        if n_in > 0:
            memset(dW, 0, n_in * n_out * sizeof(floating))
        if need_db:
            memset(db, 0, n_out * sizeof(floating))
        return
    # delta = dy * act'(y), fused with the per-chunk partial sums of db
    if act != ACT_NONE or need_db:
        nt = cp_region_begin(&reg, n_threads, n_chunks) if n * n_out >= MIN_PARALLEL else 1
        if nt > 1:
            for c in prange(n_chunks, num_threads=nt, schedule="guided"):
                t = cp_block_begin()
                delta_db_chunk(dy, y, act, delta, partial, need_db, n, n_out, c)
                cp_block_end(&reg, t)
            cp_region_end(&reg)
        else:
            for c in range(n_chunks):
                delta_db_chunk(dy, y, act, delta, partial, need_db, n, n_out, c)
    if need_db:
        # sum the partials in float64, in chunk order, then round once
        for j in range(n_out):
            _sum_column(partial, n_chunks, n_out, j, &db[j])
    d = delta if act != ACT_NONE else dy
    if n_in > 0:
        # dW (in, out) = x^T (in, N) @ delta (N, out); ``partial`` is free again
        c = dw_k_chunks(n_in, n_out, n)
        if c > 1:
            dw_k_split(x, d, dW, <floating*>partial, n, n_in, n_out, c, n_threads)
        else:
            parallel_gemm(True, False, n_in, n_out, n, x, <int>n_in, d, <int>n_out,
                          dW, <int>n_out, n_threads)
        if dx != NULL:
            # dx (N, in) = delta (N, out) @ W^T (out, in)
            parallel_gemm(False, True, n, n_in, n_out, d, <int>n_out, W, <int>n_out,
                          dx, <int>n_in, n_threads)


cdef int gemm_operands(x, W, Py_ssize_t* n, Py_ssize_t* n_in, Py_ssize_t* n_out) except -1:
    """The float type of x (N, in) and W (in, out), 2-D ndarrays that fit together."""
    cdef int typenum = float_type(x, "x")
    if not (cnp.PyArray_Check(W) and cnp.PyArray_NDIM(<cnp.ndarray>x) == 2
            and cnp.PyArray_NDIM(<cnp.ndarray>W) == 2
            and cnp.PyArray_DIM(<cnp.ndarray>W, 0) == cnp.PyArray_DIM(<cnp.ndarray>x, 1)):
        raise ValueError("x (N, in) and W (in, out) must be 2-D arrays that fit together")
    n[0] = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
    n_in[0] = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    n_out[0] = cnp.PyArray_DIM(<cnp.ndarray>W, 1)
    return typenum


cdef inline void* data_or_null(a, int typenum, Py_ssize_t size, bint writeable, str name,
                               bint used=True) except? NULL:
    """data_of(a), or NULL for an empty or unused array (which is then not checked)."""
    if not used or size == 0:
        return NULL
    return data_of(a, typenum, size, writeable, name)


def linear_forward(x, W, b, bint has_bias, y, int act, int n_threads):
    """y (N, out) = act(x (N, in) @ W (in, out) + b (out,)).

    C-contiguous ndarrays of one float dtype, checked in C (dtype, order,
    sizes, y writeable); ``b`` is ignored unless ``has_bias``. ``y`` must not
    overlap x or W.
    """
    cdef Py_ssize_t n, n_in, n_out
    cdef int typenum = gemm_operands(x, W, &n, &n_in, &n_out)
    cdef void* px = data_or_null(x, typenum, n * n_in, False, "x")
    cdef void* pW = data_or_null(W, typenum, n_in * n_out, False, "W")
    cdef void* pb = data_or_null(b, typenum, n_out, False, "b", has_bias)
    cdef void* py = data_or_null(y, typenum, n * n_out, True, "y")
    cdef int saved
    with nogil:
        saved = blas_single_thread_enter()
        if typenum == cnp.NPY_FLOAT:
            linear_forward_impl[float](<float*>px, <float*>pW, <float*>pb, <float*>py,
                                       n, n_in, n_out, act, n_threads)
        else:
            linear_forward_impl[double](<double*>px, <double*>pW, <double*>pb, <double*>py,
                                        n, n_in, n_out, act, n_threads)
        blas_threads_restore(saved)


def linear_backward(dy, x, W, y, int act, delta, dx, bint need_dx, dW, db, bint need_db,
                    int n_threads):
    """Gradients of y = act(x @ W + b).

    dy, y, delta: (N, out); x, dx: (N, in); W, dW: (in, out); db: (out,);
    C-contiguous ndarrays of one float dtype, checked in C. ``delta`` is
    workspace for dy * act'(y) and ``y`` is read, both only when act is not
    none (``delta`` may be dy itself). dx/db are skipped (and not checked)
    when not needed. Returns 0, or -1 if the workspace could not be
    allocated.
    """
    cdef Py_ssize_t n, n_in, n_out
    cdef int typenum = gemm_operands(x, W, &n, &n_in, &n_out)
    cdef bint has_act = act != ACT_NONE
    cdef void* pdy = data_or_null(dy, typenum, n * n_out, False, "dy")
    cdef void* px = data_or_null(x, typenum, n * n_in, False, "x")
    cdef void* pW = data_or_null(W, typenum, n_in * n_out, False, "W")
    cdef void* py = data_or_null(y, typenum, n * n_out, False, "y", has_act)
    cdef void* pdelta = data_or_null(delta, typenum, n * n_out, True, "delta", has_act)
    cdef void* pdx = data_or_null(dx, typenum, n * n_in, True, "dx", need_dx)
    cdef void* pdW = data_or_null(dW, typenum, n_in * n_out, True, "dW")
    cdef void* pdb = data_or_null(db, typenum, n_out, True, "db", need_db)
    cdef double* partial = NULL
    cdef Py_ssize_t size = backward_workspace_size(n, n_in, n_out, need_db)
    cdef int saved
    if size > 0 and n * n_out > 0:
        partial = <double*>malloc(size * sizeof(double))
        if partial == NULL:
            return -1
    with nogil:
        saved = blas_single_thread_enter()
        if typenum == cnp.NPY_FLOAT:
            linear_backward_impl[float](<float*>pdy, <float*>px, <float*>pW, <float*>py, act,
                                        <float*>pdelta, <float*>pdx, <float*>pdW, <float*>pdb,
                                        partial, n, n_in, n_out, n_threads)
        else:
            linear_backward_impl[double](<double*>pdy, <double*>px, <double*>pW, <double*>py,
                                         act, <double*>pdelta, <double*>pdx, <double*>pdW,
                                         <double*>pdb, partial, n, n_in, n_out, n_threads)
        blas_threads_restore(saved)
    free(partial)
    return 0


# --- A chain of layers in one call ---------------------------------------------
# ChainPlan runs a Sequential forward and backward in one nogil call each, for
# one batch size: Linear and relu/sigmoid/tanh ops of its own, and steps of the
# other kernel modules (BatchNorm1d, BatchNorm1d -> ReLU, LayerNorm, Dropout,
# the activations with parameters: see _step.pxd). It holds raw pointers into
# arrays it keeps alive itself (parameters, gradients and workspaces), and it
# checks every array handed to it (dtype, C order, shape), so it cannot read
# or write outside them. A step that is an identity this time (Dropout in eval
# mode) passes its input on, and the gradient back, without a copy.
import numpy as np

cdef enum:
    OP_LINEAR = 0
    OP_ACTIVATION = 1
    OP_STEP = 2

cdef struct ChainOp:
    int kind
    int act
    Py_ssize_t n_in, n_out
    void* W
    void* b        # NULL without bias
    void* dW
    void* db       # NULL without bias
    void* y        # forward output (n, n_out)
    void* dx       # gradient w.r.t. the op's input (n, n_in)
    void* delta    # dy * act'(y) (n, n_out); NULL when act is none
    ChainStep* step     # OP_STEP: the step's state
    const void* x_in    # the last forward's input to this op
    bint identity       # OP_STEP: the last forward passed its input on


cdef int chain_forward(ChainOp* ops, Py_ssize_t n_ops, Py_ssize_t n, const floating* x,
                       int n_threads) noexcept nogil:
    """Run the ops in order; the result is in the last op's y. Returns -1 when a
    step could not allocate its workspace."""
    cdef Py_ssize_t i
    cdef const floating* inp = x
    cdef ChainOp* op
    cdef int rc
    for i in range(n_ops):
        op = &ops[i]
        op.x_in = inp
        op.identity = False
        if op.kind == OP_LINEAR:
            linear_forward_impl(inp, <floating*>op.W, <floating*>op.b, <floating*>op.y,
                                n, op.n_in, op.n_out, op.act, n_threads)
        elif op.kind == OP_ACTIVATION:
            parallel_activation_forward(inp, <floating*>op.y, n * op.n_out, op.act, n_threads)
        else:
            rc = op.step.forward(op.step, inp, op.y, n_threads)
            if rc < 0:
                return -1
            op.identity = rc == 1
            if op.identity:
                if i == n_ops - 1:   # the chain's result is the last op's y
                    memcpy(op.y, inp, n * op.n_out * sizeof(floating))
                continue
        inp = <floating*>op.y
    return 0


cdef int chain_backward(ChainOp* ops, Py_ssize_t n_ops, Py_ssize_t n, const floating* dy,
                        bint need_dx, double* partial, int n_threads) noexcept nogil:
    """Back-propagate dy after chain_forward; the input gradient lands in the first
    op's dx when need_dx. Returns -1 when a step could not allocate its workspace."""
    cdef Py_ssize_t i
    cdef const floating* grad = dy
    cdef const floating* inp
    cdef floating* dx
    cdef ChainOp* op
    for i in range(n_ops - 1, -1, -1):
        op = &ops[i]
        inp = <const floating*>op.x_in
        dx = <floating*>op.dx if (i > 0 or need_dx) else NULL
        if op.kind == OP_LINEAR:
            linear_backward_impl(grad, inp, <floating*>op.W, <floating*>op.y, op.act,
                                 <floating*>op.delta, dx, <floating*>op.dW, <floating*>op.db,
                                 partial, n, op.n_in, op.n_out, n_threads)
        elif op.kind == OP_ACTIVATION:
            if dx != NULL:
                parallel_activation_backward(grad, <floating*>op.y, dx, n * op.n_out, op.act,
                                             n_threads)
        elif op.identity:
            if i > 0:
                continue             # the gradient passes through as it is
            if dx != NULL:
                memcpy(dx, grad, n * op.n_out * sizeof(floating))
        elif op.step.backward(op.step, grad, inp, op.y, dx, n_threads) < 0:
            return -1
        grad = dx
    return 0


cdef class ChainPlan:
    """Forward and backward of a chain of layers for a batch of ``n`` rows.

    Build it with ``add_linear`` / ``add_activation`` / ``add_step`` in
    order; then ``forward(x)`` and ``backward(dy, need_dx)`` run the whole
    chain in one nogil call. The arrays and steps given are used in place and
    kept alive.
    """
    cdef ChainOp* ops
    cdef Py_ssize_t n_ops, capacity, n, partial_size
    cdef double* partial
    cdef object dtype
    cdef bint is_float
    cdef list keep
    cdef object last_x

    def __cinit__(self, Py_ssize_t n, dtype, Py_ssize_t capacity):
        self.ops = <ChainOp*>malloc(max(capacity, 1) * sizeof(ChainOp))
        if self.ops == NULL:
            raise MemoryError()
        self.n_ops = 0
        self.capacity = capacity
        self.n = n
        self.partial = NULL
        self.partial_size = 0
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"ChainPlan dtype must be float32 or float64, got {self.dtype}")
        self.is_float = self.dtype == np.dtype(np.float32)
        self.keep = []
        self.last_x = None

    def __dealloc__(self):
        free(self.ops)
        free(self.partial)

    cdef size_t _address(self, name, a, tuple shape) except 0:
        """Data address of ``a`` after checking it; keeps ``a`` alive."""
        if not isinstance(a, np.ndarray) or a.dtype != self.dtype:
            raise TypeError(f"{name} must be an ndarray of dtype {self.dtype}")
        if a.shape != shape or not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{name} must be a writeable C-contiguous array of shape {shape}, "
                             f"got shape {a.shape}")
        self.keep.append(a)
        return max(<size_t>cnp.PyArray_DATA(<cnp.ndarray>a), 1)

    cdef ChainOp* _next_op(self, Py_ssize_t n_in, Py_ssize_t n_out) except NULL:
        if self.n_ops == self.capacity:
            raise ValueError("ChainPlan is full")
        if n_in < 1 or n_out < 1:
            raise ValueError("layer sizes must be >= 1")
        if self.n_ops > 0 and self.ops[self.n_ops - 1].n_out != n_in:
            raise ValueError(f"op {self.n_ops} takes {n_in} features but the previous op "
                             f"gives {self.ops[self.n_ops - 1].n_out}")
        cdef ChainOp* op = &self.ops[self.n_ops]
        memset(op, 0, sizeof(ChainOp))
        op.n_in, op.n_out = n_in, n_out
        return op

    def add_linear(self, W, b, dW, db, y, dx, delta, int act):
        """Append ``y = act(x @ W + b)``; b/db may be None, delta None when act is none."""
        n_in, n_out = W.shape
        cdef ChainOp* op = self._next_op(n_in, n_out)
        op.kind, op.act = OP_LINEAR, act
        op.W = <void*>self._address("W", W, (n_in, n_out))
        op.dW = <void*>self._address("dW", dW, (n_in, n_out))
        if b is not None:
            op.b = <void*>self._address("b", b, (n_out,))
            op.db = <void*>self._address("db", db, (n_out,))
        self.partial_size = max(self.partial_size,
                                backward_workspace_size(self.n, n_in, n_out, b is not None))
        op.y = <void*>self._address("y", y, (self.n, n_out))
        op.dx = <void*>self._address("dx", dx, (self.n, n_in))
        if act != ACT_NONE:
            op.delta = <void*>self._address("delta", delta, (self.n, n_out))
        self.n_ops += 1

    def add_activation(self, y, dx, int act):
        """Append an element-wise activation over rows of ``y.shape[1]`` features."""
        width = y.shape[1] if getattr(y, "ndim", 0) == 2 else -1
        cdef ChainOp* op = self._next_op(width, width)
        op.kind, op.act = OP_ACTIVATION, act
        op.y = <void*>self._address("y", y, (self.n, width))
        op.dx = <void*>self._address("dx", dx, (self.n, width))
        self.n_ops += 1

    def add_step(self, step, y, dx):
        """Append a step of another kernel module (a ``*Step`` object, see _step.pxd)
        with its output ``y`` and input gradient ``dx`` (n, width)."""
        cdef ChainStep* cs = <ChainStep*><size_t>step.address()
        if cs.n != self.n:
            raise ValueError(f"the step is for {cs.n} rows, the plan for {self.n}")
        if cs.typenum != <int>(cnp.NPY_FLOAT if self.is_float else cnp.NPY_DOUBLE):
            raise TypeError(f"the step's dtype is not the plan's {self.dtype}")
        cdef ChainOp* op = self._next_op(cs.width, cs.width)
        op.kind, op.step = OP_STEP, cs
        op.y = <void*>self._address("y", y, (self.n, cs.width))
        op.dx = <void*>self._address("dx", dx, (self.n, cs.width))
        self.keep.append(step)
        self.n_ops += 1

    cdef bint _fits(self, a, Py_ssize_t width):
        """Whether ``a`` is a C-contiguous (n, width) ndarray of the plan's dtype."""
        return (fits(a, cnp.NPY_FLOAT if self.is_float else cnp.NPY_DOUBLE, self.n * width,
                     False)
                and cnp.PyArray_NDIM(<cnp.ndarray>a) == 2
                and cnp.PyArray_DIM(<cnp.ndarray>a, 0) == self.n
                and cnp.PyArray_DIM(<cnp.ndarray>a, 1) == width)

    cdef void _check_input(self, name, a, Py_ssize_t width) except *:
        if not self._fits(a, width):
            raise ValueError(f"{name} must be a C-contiguous ndarray of dtype {self.dtype} "
                             f"and shape {(self.n, width)}")

    def forward(self, x, int n_threads, bint check=True):
        """Run the chain on x (n, in); the result is in the last op's ``y``.

        With ``check=False`` an unsuitable ``x`` returns False (nothing run)
        instead of raising, so a caller can try its fast path first.
        """
        if self.n_ops == 0:
            raise ValueError("empty ChainPlan")
        if not self._fits(x, self.ops[0].n_in):
            if check:
                self._check_input("x", x, self.ops[0].n_in)
            return False
        cdef void* px = cnp.PyArray_DATA(<cnp.ndarray>x)
        cdef int saved, rc
        self.last_x = None
        with nogil:
            saved = blas_single_thread_enter()
            if self.is_float:
                rc = chain_forward[float](self.ops, self.n_ops, self.n, <float*>px, n_threads)
            else:
                rc = chain_forward[double](self.ops, self.n_ops, self.n, <double*>px,
                                           n_threads)
            blas_threads_restore(saved)
        if rc != 0:
            raise MemoryError("ChainPlan.forward: a step could not allocate its workspace")
        self.last_x = x   # keeps alive the input the first op's backward reads
        return True

    def backward(self, dy, bint need_dx, int n_threads, bint check=True):
        """Back-propagate dy (n, out) through the chain after ``forward``.

        Fills every dW/db; the gradient w.r.t. the input lands in the first
        op's ``dx`` when ``need_dx``. With ``check=False`` an unsuitable
        ``dy`` returns False instead of raising.
        """
        if self.last_x is None:
            raise ValueError("backward() called before forward()")
        if not self._fits(dy, self.ops[self.n_ops - 1].n_out):
            if check:
                self._check_input("dy", dy, self.ops[self.n_ops - 1].n_out)
            return False
        if self.partial == NULL and self.partial_size > 0:
            self.partial = <double*>malloc(self.partial_size * sizeof(double))
            if self.partial == NULL:
                raise MemoryError()
        cdef void* pdy = cnp.PyArray_DATA(<cnp.ndarray>dy)
        cdef int saved, rc
        with nogil:
            saved = blas_single_thread_enter()
            if self.is_float:
                rc = chain_backward[float](self.ops, self.n_ops, self.n, <float*>pdy, need_dx,
                                           self.partial, n_threads)
            else:
                rc = chain_backward[double](self.ops, self.n_ops, self.n, <double*>pdy,
                                            need_dx, self.partial, n_threads)
            blas_threads_restore(saved)
        if rc != 0:
            raise MemoryError("ChainPlan.backward: a step could not allocate its workspace")
        return True



def gemm(a, b, out, bint trans_a, bint trans_b, double beta, int n_threads):
    """out (M, N) = op(a) @ op(b) + beta * out, in the kernels' fixed blocks.

    ``a``/``b`` are C-contiguous arrays of one float dtype, stored (K, M) /
    (N, K) when ``trans_a`` / ``trans_b``; ``out`` (M, N) C-contiguous,
    writeable, not overlapping them. Checked here (dtype, order, sizes).
    Results do not depend on ``n_threads``.
    """
    cdef Py_ssize_t M, N, K, ka, kb
    cdef int typenum = float_type(a, "a"), saved
    cdef void *pa
    cdef void *pb
    cdef void *pc
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        raise ValueError("gemm: a, b and out must be 2-D")
    M, ka = (a.shape[1], a.shape[0]) if trans_a else (a.shape[0], a.shape[1])
    kb, N = (b.shape[1], b.shape[0]) if trans_b else (b.shape[0], b.shape[1])
    if ka != kb or out.shape[0] != M or out.shape[1] != N:
        raise ValueError(f"gemm: shapes {a.shape} {b.shape} -> {out.shape} do not match")
    K = ka
    pa = data_of(a, typenum, M * K, False, "a")
    pb = data_of(b, typenum, K * N, False, "b")
    pc = data_of(out, typenum, M * N, True, "out")
    if M == 0 or N == 0:
        return
    with nogil:
        saved = blas_single_thread_enter()
        if K == 0:   # nothing to sum: out = beta * out, and BLAS's beta = 0 writes zeros
            if beta == 0:
                memset(pc, 0, M * N * (sizeof(float) if typenum == cnp.NPY_FLOAT
                                       else sizeof(double)))
            elif typenum == cnp.NPY_FLOAT:
                scale_span[float](<float*>pc, <float>beta, M * N)
            else:
                scale_span[double](<double*>pc, beta, M * N)
        elif typenum == cnp.NPY_FLOAT:
            parallel_gemm[float](trans_a, trans_b, M, N, K, <float*>pa, <int>(M if trans_a else K),
                                 <float*>pb, <int>(K if trans_b else N), <float*>pc, <int>N,
                                 n_threads, <float>beta)
        else:
            parallel_gemm[double](trans_a, trans_b, M, N, K, <double*>pa,
                                  <int>(M if trans_a else K), <double*>pb,
                                  <int>(K if trans_b else N), <double*>pc, <int>N, n_threads,
                                  beta)
        blas_threads_restore(saved)


def _products(list products, int n_threads):
    """Run out = op(a) @ op(b) for each (a, b, out, trans_a, trans_b): the bench's GEMM floor.

    The products alone, through the kernels' own BLAS and blocking
    (``parallel_gemm``), with none of the layers' epilogues: what a training
    step of these shapes cannot go below.
    """
    for a, b, out, trans_a, trans_b in products:
        gemm(a, b, out, trans_a, trans_b, 0.0, n_threads)
