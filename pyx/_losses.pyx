"""Element-wise loss kernels: BCE on logits, Huber, L1, each with its gradient.

Design
------
As ``_mse.pyx``: flattened arrays (n,), cut into fixed chunks of ``CHUNK``
elements (independent of the thread count); each chunk's loss is summed in
float64 by one thread into ``partial`` (16 partial sums in a fixed order,
``_special.h``), and the partials are added serially in chunk order, so the
loss is the same for any thread count. The gradient, ``scale`` times the
element's derivative (``scale`` 1/n for the mean, 1 for the sum), is written
in the same pass.

BCE with a per-column ``pos_weight`` (C,) runs over whole rows: a chunk is
``max(1, CHUNK // C)`` rows, each row one span with the weights beside it.
Formulas (torch's): with w = 1 + (pos_weight - 1) t,
    loss = (1 - t) x + w softplus(-x),   dloss/dx = (1 - t) - w sigmoid(-x)
    huber = r^2 / 2 if |r| <= delta else delta (|r| - delta / 2), r = pred - target
    l1 = |r|, d/dpred = sign(r)
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
cimport numpy as cnp

from _arrays cimport data_of, float_type
from _team cimport (bind_team, cp_region, cp_region_begin, cp_block_begin, cp_block_end,
                    cp_region_end)

bind_team()

cdef Py_ssize_t CHUNK = 8192
cdef Py_ssize_t MIN_PARALLEL = 65536

cdef enum:
    BCE = 0
    HUBER = 1
    L1 = 2


cdef extern from "_special.h" nogil:
    double cp_bce_f32(const float* x, const float* t, const float* pw, int pw_all, float* grad,
                      Py_ssize_t n, float scale)
    double cp_bce_f64(const double* x, const double* t, const double* pw, int pw_all,
                      double* grad, Py_ssize_t n, double scale)
    double cp_huber_f32(const float* p, const float* t, float* grad, Py_ssize_t n, float delta,
                        float scale)
    double cp_huber_f64(const double* p, const double* t, double* grad, Py_ssize_t n,
                        double delta, double scale)
    double cp_l1_f32(const float* p, const float* t, float* grad, Py_ssize_t n, float scale)
    double cp_l1_f64(const double* p, const double* t, double* grad, Py_ssize_t n, double scale)


cdef struct loss_args:
    int kind
    int typenum
    char* p          # prediction (logits for BCE)
    char* t          # target
    char* pw         # BCE pos_weight, or NULL
    int pw_all       # one pos_weight for every element
    char* g          # gradient, or NULL
    Py_ssize_t n     # elements
    Py_ssize_t row   # elements per row (a per-column pos_weight), else 0
    double scale
    double delta


cdef inline double span_f32(const loss_args* a, Py_ssize_t i0, Py_ssize_t m) noexcept nogil:
    cdef const float* p = (<const float*>a.p) + i0
    cdef const float* t = (<const float*>a.t) + i0
    cdef float* g = NULL if a.g == NULL else (<float*>a.g) + i0
    if a.kind == BCE:
        return cp_bce_f32(p, t, <const float*>a.pw, a.pw_all, g, m, <float>a.scale)
    elif a.kind == HUBER:
        return cp_huber_f32(p, t, g, m, <float>a.delta, <float>a.scale)
    return cp_l1_f32(p, t, g, m, <float>a.scale)


cdef inline double span_f64(const loss_args* a, Py_ssize_t i0, Py_ssize_t m) noexcept nogil:
    cdef const double* p = (<const double*>a.p) + i0
    cdef const double* t = (<const double*>a.t) + i0
    cdef double* g = NULL if a.g == NULL else (<double*>a.g) + i0
    if a.kind == BCE:
        return cp_bce_f64(p, t, <const double*>a.pw, a.pw_all, g, m, a.scale)
    elif a.kind == HUBER:
        return cp_huber_f64(p, t, g, m, a.delta, a.scale)
    return cp_l1_f64(p, t, g, m, a.scale)


cdef double chunk_sum(const loss_args* a, Py_ssize_t c, Py_ssize_t chunk) noexcept nogil:
    """The loss of chunk c (gradient written): one span, or one per row of a chunk of rows."""
    cdef Py_ssize_t i0 = c * chunk, i1 = min(i0 + chunk, a.n), r
    cdef double s = 0
    if a.row == 0:
        if a.typenum == cnp.NPY_FLOAT:
            return span_f32(a, i0, i1 - i0)
        return span_f64(a, i0, i1 - i0)
    r = i0
    while r < i1:
        if a.typenum == cnp.NPY_FLOAT:
            s += span_f32(a, r, a.row)
        else:
            s += span_f64(a, r, a.row)
        r += a.row
    return s


cdef double loss_impl(const loss_args* a, double* partial, Py_ssize_t n_chunks,
                      Py_ssize_t chunk, int n_threads) noexcept nogil:
    cdef Py_ssize_t c
    cdef double total = 0
    cdef cp_region reg
    cdef int nt = cp_region_begin(&reg, n_threads, n_chunks) if a.n >= MIN_PARALLEL else 1
    cdef int64_t t
    if nt > 1:
        for c in prange(n_chunks, num_threads=nt, schedule="guided"):
            t = cp_block_begin()
            partial[c] = chunk_sum(a, c, chunk)
            cp_block_end(&reg, t)
        cp_region_end(&reg)
    else:
        for c in range(n_chunks):
            partial[c] = chunk_sum(a, c, chunk)
    for c in range(n_chunks):
        total += partial[c]
    return total


cdef double run(loss_args* a, int n_threads) except? -1:
    cdef double stack_partial[16]
    cdef double* partial = stack_partial
    cdef Py_ssize_t chunk = CHUNK if a.row == 0 else max(1, CHUNK // a.row) * a.row
    cdef Py_ssize_t n_chunks = (a.n + chunk - 1) // chunk
    cdef double total
    if a.n == 0:
        return 0.0
    if n_chunks > 16:
        partial = <double*>malloc(n_chunks * sizeof(double))
        if partial == NULL:
            raise MemoryError()
    with nogil:
        total = loss_impl(a, partial, n_chunks, chunk, n_threads)
    if partial != stack_partial:
        free(partial)
    return total


cdef int setup(loss_args* a, int kind, pred, target, grad, double scale) except -1:
    a.kind = kind
    a.typenum = float_type(pred, "pred")
    a.n = cnp.PyArray_SIZE(<cnp.ndarray>pred)
    a.p = <char*>data_of(pred, a.typenum, a.n, False, "pred")
    a.t = <char*>data_of(target, a.typenum, a.n, False, "target")
    a.g = NULL if grad is None else <char*>data_of(grad, a.typenum, a.n, True, "grad")
    a.pw, a.pw_all, a.row = NULL, 0, 0
    a.scale, a.delta = scale, 0.0
    return 0


def bce_with_logits(logits, target, pos_weight, grad, double scale, int n_threads):
    """Return sum of BCE-with-logits terms (float64); write grad unless it is None.

    logits, target, grad: C-contiguous arrays of one float dtype and size
    (checked in C; grad may alias either input). pos_weight: None, a
    1-element array (one weight) or a (C,) array for rows of C = the last
    dimension (the caller passes C-contiguous 2-D logits then).
    """
    cdef loss_args a
    cdef Py_ssize_t n_pw
    setup(&a, BCE, logits, target, grad, scale)
    if pos_weight is not None:
        n_pw = cnp.PyArray_SIZE(<cnp.ndarray>pos_weight) if cnp.PyArray_Check(pos_weight) else 0
        if n_pw < 1 or (n_pw > 1 and (a.n % n_pw != 0)):
            raise ValueError("pos_weight: expected one weight or one per column")
        a.pw = <char*>data_of(pos_weight, a.typenum, n_pw, False, "pos_weight")
        a.pw_all = n_pw == 1
        a.row = 0 if n_pw == 1 else n_pw
    return run(&a, n_threads)


def huber(pred, target, grad, double delta, double scale, int n_threads):
    """Return the summed Huber loss (float64); write grad unless it is None."""
    cdef loss_args a
    setup(&a, HUBER, pred, target, grad, scale)
    a.delta = delta
    return run(&a, n_threads)


def l1(pred, target, grad, double scale, int n_threads):
    """Return the summed absolute error (float64); write grad unless it is None."""
    cdef loss_args a
    setup(&a, L1, pred, target, grad, scale)
    return run(&a, n_threads)
