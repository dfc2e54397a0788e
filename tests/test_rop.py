"""pyx/_rop.pyx and _linear.gemm, kernel by kernel: against NumPy and central differences."""
import numpy as np
import pytest

import cyprop
from cyprop import _linear, _rop
from cyprop import functional as F

CODES = {"identity": (0, 0.0, 0.0), "relu": (1, 0.0, 0.0), "sigmoid": (2, 0.0, 0.0),
         "tanh": (3, 0.0, 0.0), "leaky_relu": (4, 0.2, 0.0), "elu": (5, 0.7, 0.0),
         "gelu": (6, 0.0, 0.0), "gelu_tanh": (7, 0.0, 0.0), "silu": (8, 0.0, 0.0),
         "softplus": (9, 1.5, 4.0)}


def _forward(z, code, a, b):
    y = np.empty_like(z)
    F._act_forward_into(np.ascontiguousarray(z), y, code, a, b)
    return y


@pytest.mark.parametrize("name", sorted(CODES))
def test_derivatives_match_central_differences(name):
    code, a, b = CODES[name]
    # away from the kinks (0 for relu/leaky/elu, the softplus threshold) where one side's slope rules
    z = np.linspace(-6, 6, 1201)
    z = z[(np.abs(z) > 1e-2) & (np.abs(a * z - b) > 1e-2)]
    d1, d2 = np.empty_like(z), np.empty_like(z)
    _rop.act_rforward(z, None, None, d1, d2, code, a, b, 1)
    eps = 1e-5
    fd1 = (_forward(z + eps, code, a, b) - _forward(z - eps, code, a, b)) / (2 * eps)
    np.testing.assert_allclose(d1, fd1, rtol=1e-7, atol=1e-9)
    e2 = 1e-4
    fd2 = (_forward(z + e2, code, a, b) - 2 * _forward(z, code, a, b)
           + _forward(z - e2, code, a, b)) / e2 ** 2
    np.testing.assert_allclose(d2, fd2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", [1, 7, 1000, 70001])
def test_rforward_and_rbackward_against_numpy(n, dtype, n_threads):
    rng = np.random.default_rng(n)
    z, Rz, gy, Rgy = (rng.standard_normal(n).astype(dtype) for _ in range(4))
    for name, (code, a, b) in CODES.items():
        Ry, d1, d2 = (np.empty_like(z) for _ in range(3))
        with cyprop.threads(n_threads):
            _rop.act_rforward(z, Rz, Ry, d1, d2, code, a, b, n_threads)
            delta, Rdelta = np.empty_like(z), np.empty_like(z)
            _rop.act_rbackward(gy, Rgy, d1, d2, Rz, delta, Rdelta, n_threads)
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(Ry, d1.astype(float) * Rz, rtol=tol, atol=tol)
        np.testing.assert_allclose(delta, gy.astype(float) * d1, rtol=tol, atol=tol)
        want = Rgy.astype(float) * d1 + gy.astype(float) * d2 * Rz
        np.testing.assert_allclose(Rdelta, want, rtol=10 * tol, atol=10 * tol)
        gn = np.empty_like(z)   # Gauss-Newton: R{delta} = R{gy} act' alone
        _rop.act_rbackward(None, Rgy, d1, None, None, None, gn, n_threads)
        np.testing.assert_allclose(gn, Rgy.astype(float) * d1, rtol=tol, atol=tol)
        # without d2 (an activation whose act'' vanishes needs none): the same d1 and Ry
        Ry_, d1_, d1__ = np.empty_like(z), np.empty_like(z), np.empty_like(z)
        with cyprop.threads(n_threads):
            _rop.act_rforward(z, Rz, Ry_, d1_, None, code, a, b, n_threads)
            _rop.act_rforward(z, None, None, d1__, None, code, a, b, n_threads)
        np.testing.assert_array_equal(d1_, d1)
        np.testing.assert_array_equal(d1__, d1)
        np.testing.assert_array_equal(Ry_, Ry)


@pytest.mark.parametrize("n", [1, 9, 8193, 40000])
def test_relu_rforward_is_a_select(n, dtype, n_threads):
    # Ry = Rz where z > 0, else +0 exactly, whatever Rz holds (inf, NaN, -0); d1 = [z > 0]
    rng = np.random.default_rng(n)
    z = rng.standard_normal(n).astype(dtype)
    z[::7] = 0.0
    z[1::11] = -0.0
    z[2::13] = np.nan
    Rz = rng.standard_normal(n).astype(dtype)
    Rz[::3] = np.inf
    Rz[1::5] = np.nan
    Rz[2::17] = -0.0
    Ry, d1 = np.full(n, 7, dtype), np.full(n, 7, dtype)
    _rop.act_rforward(z, Rz, Ry, d1, None, 1, 0.0, 0.0, n_threads)
    pos = z > 0
    np.testing.assert_array_equal(d1, pos.astype(dtype))
    want = np.where(pos, Rz, dtype(0))
    assert np.array_equal(Ry.view(np.uint8), want.view(np.uint8))   # the bits: +0, NaN kept


@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (3, 7), (100, 1000)])
def test_softmax_hessian_against_numpy(shape, dtype, n_threads):
    rng = np.random.default_rng(0)
    z = (rng.standard_normal(shape) * 5).astype(dtype)
    R = rng.standard_normal(shape).astype(dtype)
    scale = rng.random(shape[0])
    out = np.empty_like(z)
    _rop.softmax_ce_rop(z, R, out, scale, n_threads)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = scale[:, None] * p * (R - (p * R).sum(1, keepdims=True))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())


def test_pointwise_loss_hessians(dtype):
    rng = np.random.default_rng(1)
    pred, target, R = (rng.standard_normal(50).astype(dtype) for _ in range(3))
    s = 0.1
    want = {0: 2 * s * R, 1: s * (1 / (1 + np.exp(-pred))) * (1 - 1 / (1 + np.exp(-pred))) * R,
            2: np.where(np.abs(pred - target) < 0.5, s * R, 0), 3: np.zeros(50)}
    for code, w in want.items():
        out = np.empty_like(pred)
        _rop.pointwise_loss_rop(code, pred, target, R, out, s, 0.5, 1)
        np.testing.assert_allclose(out, w, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-7)


def test_kernels_check_their_arrays():
    z = np.ones(4)
    with pytest.raises(ValueError, match="no activation code"):
        _rop.act_rforward(z, None, None, np.empty(4), np.empty(4), 10, 0, 0, 1)
    with pytest.raises(ValueError, match="both Rz and Ry"):
        _rop.act_rforward(z, z, None, np.empty(4), np.empty(4), 1, 0, 0, 1)
    with pytest.raises(ValueError, match="delta needs gy"):
        _rop.act_rbackward(None, z, z, None, None, np.empty(4), np.empty(4), 1)
    with pytest.raises(ValueError, match="d1"):
        _rop.act_rforward(z, None, None, np.empty(3), np.empty(4), 1, 0, 0, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        _rop.act_rforward(np.ones(4, int), None, None, np.empty(4), np.empty(4), 1, 0, 0, 1)
    with pytest.raises(ValueError, match="no loss code"):
        _rop.pointwise_loss_rop(4, z, z, z, np.empty(4), 1.0, 0.0, 1)
    with pytest.raises(ValueError, match="Rg"):
        _rop.softmax_ce_rop(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3))[:, :2], np.ones(2), 1)


@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("mnk", [(1, 1, 1), (3, 5, 0), (37, 129, 65), (300, 200, 150)])
def test_gemm_with_beta(ta, tb, mnk, dtype, n_threads):
    m, n, k = mnk
    rng = np.random.default_rng(2)
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    C0 = rng.standard_normal((m, n)).astype(dtype)
    opA, opB = (A.T if ta else A).astype(float), (B.T if tb else B).astype(float)
    for beta in (0.0, 1.0, -0.5):
        C = C0.copy()
        _linear.gemm(A, B, C, ta, tb, beta, n_threads)
        want = opA @ opB + beta * C0
        tol = 1e-4 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(C, want, rtol=tol, atol=tol * max(1, k))


def test_gemm_checks_its_arrays():
    with pytest.raises(ValueError, match="do not match"):
        _linear.gemm(np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 2)), False, False, 0.0, 1)
    with pytest.raises(ValueError, match="2-D"):
        _linear.gemm(np.ones(3), np.ones((3, 2)), np.ones((1, 2)), False, False, 0.0, 1)
    with pytest.raises(ValueError, match="out: expected"):
        ro = np.ones((2, 2))
        ro.flags.writeable = False
        _linear.gemm(np.ones((2, 3)), np.ones((3, 2)), ro, False, False, 0.0, 1)
