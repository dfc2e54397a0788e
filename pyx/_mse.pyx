"""Mean squared error kernel: loss = sum (pred - target)^2 and its gradient.

Design
------
Flattened arrays (n,). The elements are cut into fixed chunks of ``CHUNK``
(independent of the thread count); each chunk's sum of squares is accumulated
in float64 by one thread into ``partial``, and the partials are added
serially in order, so the loss is the same for any thread count.
grad = scale * 2 (pred - target), with scale 1/n for the mean, 1 for sum.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

cdef Py_ssize_t CHUNK = 8192
cdef Py_ssize_t MIN_PARALLEL = 65536


def mse(const floating[::1] pred, const floating[::1] target, floating[::1] grad,
        bint need_grad, double scale, int n_threads):
    """Return sum((pred - target)^2) as a float64; write grad (n,) if need_grad.

    ``grad`` may be ``pred`` or ``target``. Raises MemoryError if the
    workspace cannot be allocated.
    """
    cdef Py_ssize_t n = pred.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, i, i0, i1
    cdef double acc, diff, total = 0
    cdef floating two_scale = <floating>(2 * scale)
    cdef floating d
    cdef double* partial
    if n == 0:
        return 0.0
    partial = <double*>malloc(n_chunks * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    with nogil:
        for c in prange(n_chunks, num_threads=n_threads, schedule="static",
                        use_threads_if=n_threads > 1 and n >= MIN_PARALLEL):
            i0 = c * CHUNK
            i1 = min(i0 + CHUNK, n)
            acc = 0
            for i in range(i0, i1):
                d = pred[i] - target[i]
                acc = acc + <double>d * d
                if need_grad:
                    grad[i] = two_scale * d
            partial[c] = acc
        for c in range(n_chunks):
            total += partial[c]
    free(partial)
    return total
