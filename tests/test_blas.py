"""The BLAS the GEMMs call (cyprop._blas): the choice, the switch, both giving the same math."""
import os
import subprocess
import sys

import numpy as np
import pytest

import cyprop
from cyprop import _blas, _linear
from cyprop import functional as F

BACKENDS = ["scipy-openblas32", "scipy"]


def _have(backend):
    try:
        with _blas._using(backend):
            return True
    except ImportError:
        return False


@pytest.fixture(params=BACKENDS)
def backend(request):
    if not _have(request.param):
        pytest.skip(f"{request.param} is not installed")
    with _blas._using(request.param):
        yield request.param


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_blas_info_describes_the_library():
    info = cyprop.blas_info()
    assert info["name"] in BACKENDS
    assert os.path.exists(info["filepath"])
    assert info["deterministic"] is True
    assert info["version"]


def test_default_is_scipy_openblas32_when_installed():
    pytest.importorskip("scipy_openblas32")
    out = _run("import cyprop; print(cyprop.blas_info()['name'])", CYPROP_BLAS="")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "scipy-openblas32"


def test_environment_variable_selects_scipy():
    out = _run("import cyprop; print(cyprop.blas_info()['name'])", CYPROP_BLAS="scipy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "scipy"


def test_without_scipy_openblas32_the_kernels_use_scipys():
    code = ("import sys; sys.modules['scipy_openblas32'] = None\n"
            "import numpy as np, cyprop, pytest\n"
            "from cyprop import _blas, functional as F\n"
            "assert cyprop.blas_info()['name'] == 'scipy', cyprop.blas_info()\n"
            "with pytest.raises(ImportError):\n"
            "    with _blas._using('scipy-openblas32'): pass\n"
            "assert cyprop.blas_info()['name'] == 'scipy'\n"
            "y = F.linear_forward(np.ones((300, 70)), np.ones((70, 90)), np.zeros(90))\n"
            "assert (y == 70).all(); print('ok')")
    out = _run(code, CYPROP_BLAS="")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_unknown_environment_value_is_a_clear_error():
    out = _run("import cyprop", CYPROP_BLAS="mkl")
    assert out.returncode != 0
    assert "CYPROP_BLAS must be one of" in out.stderr and "'mkl'" in out.stderr


def test_switch_restores_the_previous_library(backend):
    assert cyprop.blas_info()["name"] == backend
    other = [b for b in BACKENDS if b != backend][0]
    if _have(other):
        with _blas._using(other):
            assert cyprop.blas_info()["name"] == other
        assert cyprop.blas_info()["name"] == backend


@pytest.mark.parametrize("shape", [(1000, 70, 90), (160, 150, 140), (600, 20, 2), (1, 5, 3)])
def test_each_library_gives_the_reference_and_thread_independent_bits(backend, shape, dtype):
    rng = np.random.default_rng(0)
    n, n_in, n_out = shape
    x = rng.standard_normal((n, n_in)).astype(dtype)
    W = rng.standard_normal((n_in, n_out)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    dy = rng.standard_normal((n, n_out)).astype(dtype)
    assert cyprop.blas_info()["deterministic"]
    results = []
    for threads in (1, 2):
        with cyprop.threads(threads):
            y = F.linear_forward(x, W, b)
            results.append((y,) + F.linear_backward(dy, x, W))
    for a, b_ in zip(*results):
        np.testing.assert_array_equal(a, b_)
    x64, W64, dy64 = (a.astype(np.float64) for a in (x, W, dy))
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[0][0], x64 @ W64 + b, rtol=rtol, atol=rtol * n_in)
    np.testing.assert_allclose(results[0][1], dy64 @ W64.T, rtol=rtol, atol=rtol * n_out)
    np.testing.assert_allclose(results[0][2], x64.T @ dy64, rtol=rtol, atol=rtol * n)


def test_products_checks_its_arrays():
    a, b = np.ones((3, 4)), np.ones((4, 5))
    with pytest.raises(ValueError, match="do not match"):
        _linear._products([(a, b, np.empty((3, 4)), False, False)], 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        _linear._products([(a.astype(int), b, np.empty((3, 5)), False, False)], 1)
    with pytest.raises(ValueError, match="out: expected a C-contiguous writeable"):
        _linear._products([(a, b, np.empty((5, 3)).T, False, False)], 1)
    out = np.empty((3, 5))
    _linear._products([(a.T.copy(), b, out, True, False)], 2)
    np.testing.assert_array_equal(out, 4.0)


def test_a_library_that_cannot_be_had_changes_nothing(monkeypatch):
    before = cyprop.blas_info()
    monkeypatch.setattr(_blas, "_scipy_openblas32", lambda: None)
    with pytest.raises(ImportError, match="scipy-openblas32 package is not installed"):
        with _blas._using("scipy-openblas32"):
            pass
    assert cyprop.blas_info() == before
    x, W = np.ones((3, 4)), np.ones((4, 5))
    np.testing.assert_array_equal(F.linear_forward(x, W, np.zeros(5)), 4.0)


def test_set_blas_functions_wants_all_addresses_or_none():
    with pytest.raises(ValueError, match="all four addresses"):
        _linear.set_blas_functions(1, 0, 0, 0)
