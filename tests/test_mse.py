import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import reference as R
from conftest import assert_close, numerical_grad


@pytest.mark.parametrize("shape", [(1,), (1, 1), (7, 3), (33, 1), (300, 301)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_reference(shape, reduction, dtype, n_threads):
    rng = np.random.default_rng(0)
    p = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape).astype(dtype)
    loss, g = F.mse_loss(p, t, reduction=reduction)
    rloss, rg = R.mse_loss(p, t, reduction=reduction)
    np.testing.assert_allclose(loss, rloss, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(g, rg, dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_matches_finite_differences(reduction):
    rng = np.random.default_rng(1)
    p, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    _, g = F.mse_loss(p, t, reduction=reduction)
    num = numerical_grad(lambda v: F.mse_loss(v, t, reduction=reduction)[0], p)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_pytorch_convention():
    loss, g = F.mse_loss(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2)))
    assert loss == pytest.approx(30 / 4)
    np.testing.assert_allclose(g, 2 * np.array([[1.0, 2.0], [3.0, 4.0]]) / 4)


def test_float32_loss_accumulates_in_float64():
    n = 1 << 20
    p = np.full(n, 1.0001, np.float32)
    loss, _ = F.mse_loss(p, np.zeros(n, np.float32), reduction="sum")
    assert loss == pytest.approx(n * float(np.float32(1.0001)) ** 2, rel=1e-9)


def test_identical_across_thread_counts(dtype):
    rng = np.random.default_rng(2)
    p = rng.standard_normal((700, 300)).astype(dtype)
    t = rng.standard_normal((700, 300)).astype(dtype)
    res = []
    for n in (1, 2):
        with cyprop.threads(n):
            res.append(F.mse_loss(p, t))
    assert res[0][0] == res[1][0]
    np.testing.assert_array_equal(res[0][1], res[1][1])


def test_empty(dtype):
    loss, g = F.mse_loss(np.zeros((0, 2), dtype), np.zeros((0, 2), dtype))
    assert np.isnan(loss) and g.shape == (0, 2)


@pytest.mark.parametrize("which", ["pred", "target"])
def test_grad_out_may_be_an_input(which, dtype, n_threads):
    rng = np.random.default_rng(3)
    p = rng.standard_normal((70, 301)).astype(dtype)  # several chunks, and a tail
    t = rng.standard_normal((70, 301)).astype(dtype)
    want_loss, want_g = F.mse_loss(p, t)
    p2, t2 = p.copy(), t.copy()
    out = p2 if which == "pred" else t2
    loss, g = F.mse_loss(p2, t2, grad_out=out)
    assert g is out and loss == want_loss
    np.testing.assert_array_equal(g, want_g)
