"""leaky_relu, elu, gelu (exact and tanh), silu, softplus: kernels against the
NumPy reference, finite differences, thread counts, extremes, the fused Linear."""
import math

import numpy as np
import pytest
from scipy import special

import cyprop
from cyprop import functional as F
from cyprop import reference as R
from conftest import numerical_grad

# name -> (forward, backward, keyword parameters, backward takes y)
OPS = {
    "leaky_relu": (dict(negative_slope=0.01), True),
    "leaky_relu_0.2": (dict(negative_slope=0.2), True),
    "elu": (dict(alpha=1.0), False),
    "elu_0.5": (dict(alpha=0.5), False),
    "gelu": (dict(approximate="none"), False),
    "gelu_tanh": (dict(approximate="tanh"), False),
    "silu": ({}, False),
    "softplus": (dict(beta=1.0, threshold=20.0), False),
    "softplus_b2": (dict(beta=2.0, threshold=5.0), False),
}


def _fns(name):
    base = name.split("_0")[0].split("_b2")[0]
    base = "gelu" if base.startswith("gelu") else base
    return (getattr(F, f"{base}_forward"), getattr(F, f"{base}_backward"),
            getattr(R, f"{base}_forward"), getattr(R, f"{base}_backward"))


def _inputs(dtype, shape=(37, 129)):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.flat[:8] = [0.0, -0.0, 1e-30, -1e-30, 20.0, -20.0, 1e-4, -1e-4]
    return x


# ulp budgets against the float64 reference (see _special.h: in gelu's tails
# the rounded x / sqrt 2 costs up to about x^2 ulp more, as in every gelu)
ULP = {np.float32: 16, np.float64: 64}


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape", [(1,), (1, 1), (37, 129), (5, 3, 7)])
def test_matches_reference(name, shape, dtype, n_threads):
    kw, takes_y = OPS[name]
    f, b, rf, rb = _fns(name)
    x = _inputs(dtype, shape)
    y = f(x, **kw)
    ry = rf(x.astype(np.float64), **kw)
    assert y.dtype == dtype and y.shape == shape
    # the budget grows as x^2 in gelu's tails (the rounded x / sqrt 2, or u)
    # (gelu_tanh's u ~ 0.036 x^3: about 0.07 |x|^3 ulp)
    xd = np.abs(x.astype(np.float64))
    growth = {"gelu": xd ** 2, "gelu_tanh": 0.1 * xd ** 3}.get(name, 0)
    tol = ULP[dtype] * np.finfo(dtype).eps * (1 + growth)
    assert np.all(np.abs(y - ry) <= tol * np.abs(ry) + np.finfo(dtype).tiny * 1e4)
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    dx = b(dy, y if takes_y else x, **kw)
    rdx = rb(dy.astype(np.float64), x.astype(np.float64), **kw)
    # a derivative that crosses 0 (silu, gelu near x = -0.75) has no ulp scale there:
    # compare against the size of the terms, |dy|
    assert np.all(np.abs(dx - rdx) <= tol * (np.abs(rdx) + np.abs(dy)) + np.finfo(dtype).tiny)


@pytest.mark.parametrize("name", OPS)
def test_gradient_matches_finite_differences(name):
    kw, takes_y = OPS[name]
    f, b, _, _ = _fns(name)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # away from leaky_relu's kink
    dy = rng.standard_normal((3, 5))
    y = f(x, **kw)
    dx = b(dy, y if takes_y else x, **kw)
    num = numerical_grad(lambda v: float(np.sum(f(v, **kw) * dy)), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", OPS)
def test_identical_across_thread_counts(name, dtype):
    kw, takes_y = OPS[name]
    f, b, _, _ = _fns(name)
    x = _inputs(dtype, (300, 301))
    res = []
    for n in (1, 2):
        with cyprop.threads(n):
            y = f(x, **kw)
            res.append((y, b(x, y if takes_y else x, **kw)))
    for a, c in zip(*res):
        np.testing.assert_array_equal(a, c)


def test_dense_accuracy_against_scipy(dtype):
    """Every 64th float32 bit pattern in [-6, 6] (a dense grid for float64)."""
    if dtype == np.float32:
        u = np.arange(0, 0x40c00000, 64, dtype=np.uint32).view(np.float32)
        x = np.concatenate([u, -u])
    else:
        x = np.linspace(-6, 6, 400001)
    xd = x.astype(np.float64)
    eps = np.finfo(dtype).eps
    cases = {
        "gelu": (F.gelu_forward(x), xd * special.ndtr(xd)),
        "silu": (F.silu_forward(x), xd * special.expit(xd)),
        "softplus": (F.softplus_forward(x), np.logaddexp(0, xd)),
        "elu": (F.elu_forward(x), np.where(xd > 0, xd, np.expm1(xd))),
    }
    base = 8
    for name, (got, want) in cases.items():
        m = np.abs(want) > 1e-30
        ulp = np.abs(got[m] - want[m]) / np.abs(want[m]) / eps
        budget = base + (xd[m] ** 2 if name == "gelu" else 0)
        assert np.all(ulp <= budget), (name, ulp.max())


def test_extremes(dtype):
    big = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30, 88.0, -88.0], dtype)
    with np.errstate(all="ignore"):
        sp = F.softplus_forward(big)
        np.testing.assert_array_equal(sp[:2], [np.inf, 0.0])
        assert np.isnan(sp[2]) and sp[3] == dtype(1e30) and sp[4] == 0
        assert F.softplus_forward(np.array([20.0, 20.5], dtype)).tolist() == \
            [pytest.approx(math.log1p(math.exp(20.0)), rel=1e-6), 20.5]   # at the threshold
        # x * Phi(x) at -inf is -inf * 0: NaN, as in torch
        g = F.gelu_forward(big)
        assert g[0] == np.inf and np.isnan(g[1]) and np.isnan(g[2]) and g[4] == 0
        s = F.silu_forward(big)
        assert s[0] == np.inf and np.isnan(s[1]) and np.isnan(s[2]) and s[4] == 0
        e = F.elu_forward(big)
        assert e[1] == -1 and np.isnan(e[2]) and e[4] == -1
        for name in OPS:
            kw, takes_y = OPS[name]
            f, b, _, _ = _fns(name)
            dx = b(np.ones_like(big), f(big, **kw) if takes_y else big, **kw)
            assert np.all(np.isfinite(dx[[3, 4, 5, 6]])), name


def test_backward_in_place_and_out(dtype):
    x = _inputs(dtype)
    dy = np.ones_like(x)
    want = F.silu_backward(dy, x)
    got = F.silu_backward(dy, x, out=dy)
    assert got is dy
    np.testing.assert_array_equal(got, want)
    y = x.copy()
    assert F.gelu_forward(y, out=y) is y


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.softplus_forward(np.ones(3), beta=0), ValueError, "beta must be"),
    (lambda: F.gelu_forward(np.ones(3), approximate="erf"), ValueError, "approximate must be"),
    (lambda: F.elu_forward(np.ones(3), alpha="a"), TypeError, "alpha must be a real"),
    (lambda: F.silu_backward(np.ones(3), np.ones(4)), ValueError, "same shape"),
    (lambda: F.silu_forward(np.ones(3, np.int32)), TypeError, "x must be a float32"),
    (lambda: F.elu_forward(np.ones(3), out=np.ones(3, np.float32)), TypeError, "out has dtype"),
    (lambda: F.leaky_relu_forward(np.ones(3), negative_slope=float("nan")), ValueError,
     "negative_slope"),
])
def test_rejects(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


LINEAR_ACTS = ["leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus"]


@pytest.mark.parametrize("act", LINEAR_ACTS)
def test_fused_linear_matches_reference(act, dtype, n_threads):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((33, 17)).astype(dtype)
    W = rng.standard_normal((17, 9)).astype(dtype) * 0.3
    b = rng.standard_normal(9).astype(dtype)
    z = np.empty((33, 9), dtype)
    y = F.linear_forward(x, W, b, activation=act, pre_out=z)
    rz = np.empty((33, 9))
    ry = R.linear_forward(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64),
                          activation=act, pre_out=rz)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ry, rtol=tol, atol=tol)
    np.testing.assert_allclose(z, rz, rtol=tol, atol=tol)
    dy = rng.standard_normal((33, 9)).astype(dtype)
    dx, dW, db = F.linear_backward(dy, x, W, activation=act, pre=z)
    rdx, rdW, rdb = R.linear_backward(dy.astype(np.float64), x.astype(np.float64),
                                      W.astype(np.float64), activation=act, pre=rz)
    for a, c in ((dx, rdx), (dW, rdW), (db, rdb)):
        np.testing.assert_allclose(a, c, rtol=tol * 10, atol=tol * 10)


def test_fused_linear_needs_pre():
    x, W = np.ones((2, 3)), np.ones((3, 4))
    with pytest.raises(ValueError, match="pre .* is required"):
        F.linear_backward(np.ones((2, 4)), x, W, activation="gelu")
    with pytest.raises(ValueError, match="activation must be one of"):
        F.linear_forward(x, W, activation="swish")
