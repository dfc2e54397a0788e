"""Shared fixtures: the dtype x thread-count matrix, tolerances, finite differences."""
import tracemalloc

import numpy as np
import pytest

import cyprop
from cyprop import _openmp

DTYPES = [np.float32, np.float64]
# Tolerances against the float64/NumPy reference; float32 kernels accumulate
# in float32 inside BLAS, so their bound scales with the reduction length.
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def n_threads(request):
    with cyprop.threads(request.param):
        yield request.param


@pytest.fixture(autouse=True, scope="session")
def _every_region_parallel():
    """No back-off (pyx/_team.h) in the suite: on a busy CI machine it could quietly
    turn a 2-thread test into a 1-thread one. tests/test_team.py turns it back on."""
    fixed = _openmp._team_fix(True)
    yield
    _openmp._team_fix(fixed)


def assert_close(actual, expected, dtype, scale=1.0):
    """Compare with a tolerance for ``dtype``, widened by ``scale`` (e.g. sqrt of a sum length)."""
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype] * scale,
                               atol=ATOL[dtype] * scale)


def numerical_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar function ``f`` at ``x`` (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.empty_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f(x)
        flat[i] = old - eps
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def traced_growth(step, warmup=3, steps=20):
    """(current, peak) bytes above the resting level that ``steps`` calls of ``step``
    leave and reach, after ``warmup`` calls, as tracemalloc sees them (it sees NumPy's
    data buffers: a steady-state training step that allocates no array stays below
    the size of its smallest array)."""
    for _ in range(warmup):
        step()
    tracemalloc.start()
    try:
        step()
        tracemalloc.reset_peak()
        resting = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - resting, peak - resting
