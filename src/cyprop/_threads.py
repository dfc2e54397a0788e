"""Thread control for cyprop's OpenMP loops and for BLAS.

One number governs both: the OpenMP team size passed to every kernel, and the
BLAS thread pools (through threadpoolctl), so that the two never add up to
more threads than the user asked for. The default is OpenMP's own default,
which honours ``OMP_NUM_THREADS`` and otherwise uses every usable core.

Inside cyprop's own GEMMs the BLAS (chosen in ``cyprop._blas``) runs
single-threaded and cyprop splits each GEMM over its OpenMP threads in blocks
that depend only on the shapes (see ``pyx/_linear.pyx``): results are then
identical for any thread count, and only one thread pool is ever busy. For
that, the kernels get the address of that BLAS's get/set-num-threads
functions, found by ``cyprop._blas``. Changing the BLAS thread count is a
process-wide setting: while a cyprop GEMM runs, another thread's calls into
the same BLAS library run single-threaded too.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

from . import _blas  # noqa: F401  (points the kernels at their BLAS before any runs)
from ._openmp import openmp_enabled, openmp_max_threads
from ._validation import check_positive_int

__all__ = ["get_num_threads", "set_num_threads", "threads", "openmp_enabled"]

_n_threads = None  # set by set_num_threads / threads(); None: the default
_default = None    # cached default, computed on first use


def _default_num_threads():
    global _default
    if _default is not None:
        return _default
    n = openmp_max_threads() if openmp_enabled() else 1
    try:
        n = min(n, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        n = min(n, os.cpu_count() or 1)
    _default = max(1, n)
    return _default


def get_num_threads() -> int:
    """Return the number of threads cyprop's kernels and BLAS use.

    Returns
    -------
    int
        The value last given to :func:`set_num_threads`, or by default
        OpenMP's default team size (``OMP_NUM_THREADS`` if set, else the
        number of usable cores); 1 when cyprop was built without OpenMP.
    """
    return _n_threads if _n_threads is not None else _default_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads for cyprop's OpenMP loops and for BLAS.

    Parameters
    ----------
    n : int
        Number of threads, >= 1. Applies to every later cyprop call in this
        process. BLAS pools (OpenBLAS, MKL, BLIS) are limited to the same
        number through threadpoolctl. Without OpenMP the kernels still run on
        one thread, but BLAS follows ``n``.

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not an int >= 1.
    """
    global _n_threads
    n = check_positive_int("n_threads", n)
    _n_threads = n
    threadpool_limits(limits=n, user_api="blas")  # applied at once, and left in place


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """Context manager: run the block with ``n`` threads, then restore.

    Parameters
    ----------
    n : int
        Number of threads for cyprop and BLAS inside the block.

    Examples
    --------
    >>> import cyprop
    >>> with cyprop.threads(1):
    ...     pass  # single-threaded kernels and BLAS here
    """
    global _n_threads
    n = check_positive_int("n_threads", n)
    previous = _n_threads
    limiter = threadpool_limits(limits=n, user_api="blas")
    _n_threads = n
    try:
        yield n
    finally:
        _n_threads = previous
        limiter.restore_original_limits()
