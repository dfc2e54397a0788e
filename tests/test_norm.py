"""BatchNorm1d and LayerNorm kernels: the NumPy reference, finite differences, thread
counts (bit-identical), odd shapes, a constant column, bad input, torch's semantics."""
import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import reference as R
from conftest import numerical_grad

TOL = {np.float32: 2e-5, np.float64: 1e-12}
SHAPES = [(2, 1), (7, 3), (64, 5), (65, 9), (130, 33), (1000, 17)]


def _data(dtype, shape, seed=0, loc=0.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + loc).astype(dtype)
    c = shape[-1]
    gamma = rng.uniform(0.5, 2, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dy


def _close(a, b, dtype, scale=1.0):
    np.testing.assert_allclose(a, b, rtol=TOL[dtype] * scale,
                               atol=TOL[dtype] * scale * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_reference(shape, affine, dtype, n_threads):
    x, g, b, dy = _data(dtype, shape)
    if not affine:
        g = b = None
    c = shape[1]
    rm, rv = np.full(c, 0.5, dtype), np.full(c, 2.0, dtype)
    rrm, rrv = rm.copy(), rv.copy()
    y, sm, si = F.batch_norm_forward(x, g, b, rm, rv, training=True, momentum=0.3)
    ry, rsm, rsi = R.batch_norm_forward(x, g, b, rrm, rrv, training=True, momentum=0.3)
    _close(y, ry, dtype, 4)
    _close(rm, rrm, dtype)
    _close(rv, rrv, dtype)
    np.testing.assert_allclose(si, rsi, rtol=1e-12)
    got = F.batch_norm_backward(dy, x, g, sm, si)
    want = R.batch_norm_backward(dy, x, g, rsm, rsi)
    for a, w in zip(got, want):
        _close(a, w, dtype, 10 * np.sqrt(shape[0]))


@pytest.mark.parametrize("shape", SHAPES[1:4])
def test_batch_norm_eval_matches_reference(shape, dtype, n_threads):
    x, g, b, dy = _data(dtype, shape)
    c = shape[1]
    rm = np.linspace(-1, 1, c).astype(dtype)
    rv = np.linspace(0.5, 3, c).astype(dtype)
    y, sm, si = F.batch_norm_forward(x, g, b, rm, rv, training=False)
    ry, rsm, rsi = R.batch_norm_forward(x, g, b, rm.copy(), rv.copy(), training=False)
    _close(y, ry, dtype, 4)
    np.testing.assert_array_equal(rm, np.linspace(-1, 1, c).astype(dtype))   # untouched
    got = F.batch_norm_backward(dy, x, g, sm, si, training=False)
    want = R.batch_norm_backward(dy, x, g, rsm, rsi, training=False)
    for a, w in zip(got, want):
        _close(a, w, dtype, 10 * np.sqrt(shape[0]))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_finite_differences(training):
    x, g, b, dy = _data(np.float64, (6, 4), 1)
    rm, rv = np.zeros(4), np.ones(4) * 1.5

    def loss(xv=x, gv=g, bv=b):
        return float(np.sum(F.batch_norm_forward(xv, gv, bv, rm.copy(), rv.copy(),
                                                 training=training)[0] * dy))
    _, sm, si = F.batch_norm_forward(x, g, b, rm.copy(), rv.copy(), training=training)
    dx, dg, db = F.batch_norm_backward(dy, x, g, sm, si, training=training)
    np.testing.assert_allclose(dx, numerical_grad(lambda v: loss(xv=v), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dg, numerical_grad(lambda v: loss(gv=v), g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_grad(lambda v: loss(bv=v), b), rtol=1e-6, atol=1e-8)


def test_batch_norm_identical_across_thread_counts(dtype):
    x, g, b, dy = _data(dtype, (1000, 300), 2, loc=50.0)
    res = []
    for n in (1, 2):
        with cyprop.threads(n):
            rm, rv = np.zeros(300, dtype), np.ones(300, dtype)
            y, sm, si = F.batch_norm_forward(x, g, b, rm, rv, training=True)
            res.append((y, sm, si, rm, rv) + F.batch_norm_backward(dy, x, g, sm, si))
    for a, c in zip(*res):
        np.testing.assert_array_equal(a, c)


def test_batch_norm_constant_column_and_large_mean(dtype):
    x, g, b, dy = _data(dtype, (50, 3), 3)
    x[:, 1] = 7.0                      # variance 0: y = beta
    x[:, 2] += dtype(1e4 if dtype == np.float32 else 1e8)   # mean far from 0, spread 2
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    y, sm, si = F.batch_norm_forward(x, g, b, rm, rv, training=True)
    np.testing.assert_allclose(y[:, 1], b[1], atol=1e-6)
    assert np.all(np.isfinite(y))
    std = np.std(x[:, 2].astype(np.float64))
    assert 1 / si[2] == pytest.approx(np.sqrt(std ** 2 + 1e-5), rel=1e-5)
    dx, dg, db = F.batch_norm_backward(dy, x, g, sm, si)
    # xhat = 0 there: dx = gamma / sqrt(eps) * (dy - mean(dy)), as torch's
    d1 = dy[:, 1].astype(np.float64)
    np.testing.assert_allclose(dx[:, 1], g[1] / np.sqrt(1e-5) * (d1 - d1.mean()),
                               rtol=TOL[dtype] * 10, atol=TOL[dtype] * 1e3)
    assert np.all(np.isfinite(dx))


def test_batch_norm_running_stats_against_torch():
    torch = pytest.importorskip("torch")
    x_all = np.random.default_rng(4).standard_normal((5, 16, 6)) * 3 + 1
    bn = torch.nn.BatchNorm1d(6, momentum=0.2).double()
    rm, rv = np.zeros(6), np.ones(6)
    g, b = np.ones(6), np.zeros(6)
    for x in x_all:
        ty = bn(torch.tensor(x))
        y, _, _ = F.batch_norm_forward(x, g, b, rm, rv, training=True, momentum=0.2)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm, bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, bn.running_var.numpy(), rtol=1e-12)
    bn.eval()
    y, _, _ = F.batch_norm_forward(x_all[0], g, b, rm, rv, training=False)
    np.testing.assert_allclose(y, bn(torch.tensor(x_all[0])).detach().numpy(), rtol=1e-10)
    # gradients in training mode
    bn.train()
    tx = torch.tensor(x_all[1], requires_grad=True)
    dy = np.random.default_rng(5).standard_normal((16, 6))
    bn(tx).backward(torch.tensor(dy))
    _, sm, si = F.batch_norm_forward(x_all[1], g, b, rm.copy(), rv.copy(), training=True)
    dx, dg, db = F.batch_norm_backward(dy, x_all[1], g, sm, si)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dg, bn.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(db, bn.bias.grad.numpy(), rtol=1e-9)


@pytest.mark.parametrize("call, exc, match", [
    (lambda x, z: F.batch_norm_forward(x[:1], None, None, z(3), z(3) + 1, training=True),
     ValueError, "more than 1 value per channel"),
    (lambda x, z: F.batch_norm_forward(x, None, None, z(4), z(3), training=True), ValueError,
     r"running_mean must have shape \(3,\)"),
    (lambda x, z: F.batch_norm_forward(x, None, None, z(3).astype(np.float32), z(3),
                                       training=True), TypeError, "running_mean"),
    (lambda x, z: F.batch_norm_forward(x, None, None, None, None, training=False), ValueError,
     "eval mode"),
    (lambda x, z: F.batch_norm_forward(x, None, None, z(3), z(3), training=True, eps=-1),
     ValueError, "eps must be"),
    (lambda x, z: F.batch_norm_forward(x, None, None, z(3), z(3), training=True, momentum=2),
     ValueError, "momentum must be"),
    (lambda x, z: F.batch_norm_forward(x, z(2), z(2), z(3), z(3), training=True), ValueError,
     r"gamma must have shape \(3,\)"),
    (lambda x, z: F.batch_norm_forward(x, z(3), None, z(3), z(3), training=True), ValueError,
     "given together"),
    (lambda x, z: F.batch_norm_forward(x[0], None, None, z(3), z(3), training=True), ValueError,
     "x must be 2-D"),
    (lambda x, z: F.batch_norm_backward(x, x, None, z(3).astype(np.float32), z(3)), ValueError,
     "save_mean must be the float64"),
    (lambda x, z: F.layer_norm_forward(x, z(4), z(4)), ValueError, r"gamma must have shape \(3,\)"),
    (lambda x, z: F.layer_norm_forward(x, eps=float("nan")), ValueError, "eps must be"),
])
def test_rejects(call, exc, match):
    x = np.random.default_rng(0).standard_normal((5, 3))
    ro = np.zeros(3)
    with pytest.raises(exc, match=match):
        call(x, lambda n: np.zeros(n))
    del ro


def test_read_only_running_stats_rejected():
    x = np.ones((4, 3))
    rm = np.zeros(3)
    rm.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean is read-only"):
        F.batch_norm_forward(x, None, None, rm, np.ones(3), training=True)


# ------------------------------------------------------------------ LayerNorm
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (7, 3), (65, 9), (4, 5, 33), (300, 257)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_reference(shape, affine, dtype, n_threads):
    x, g, b, dy = _data(dtype, shape, 6, loc=3.0)
    if not affine:
        g = b = None
    y, sm, si = F.layer_norm_forward(x, g, b)
    ry, rsm, rsi = R.layer_norm_forward(x, g, b)
    _close(y, ry, dtype, 4)
    got = F.layer_norm_backward(dy, x, g, sm, si)
    want = R.layer_norm_backward(dy, x, g, rsm, rsi)
    for a, w in zip(got, want):
        _close(a, w, dtype, 10 * np.sqrt(x.size // shape[-1]))


def test_layer_norm_finite_differences():
    x, g, b, dy = _data(np.float64, (4, 5), 7)

    def loss(xv=x, gv=g, bv=b):
        return float(np.sum(F.layer_norm_forward(xv, gv, bv)[0] * dy))
    _, sm, si = F.layer_norm_forward(x, g, b)
    dx, dg, db = F.layer_norm_backward(dy, x, g, sm, si)
    np.testing.assert_allclose(dx, numerical_grad(lambda v: loss(xv=v), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dg, numerical_grad(lambda v: loss(gv=v), g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_grad(lambda v: loss(bv=v), b), rtol=1e-6, atol=1e-8)


def test_layer_norm_identical_across_thread_counts(dtype):
    x, g, b, dy = _data(dtype, (1000, 300), 8)
    res = []
    for n in (1, 2):
        with cyprop.threads(n):
            y, sm, si = F.layer_norm_forward(x, g, b)
            res.append((y, sm, si) + F.layer_norm_backward(dy, x, g, sm, si))
    for a, c in zip(*res):
        np.testing.assert_array_equal(a, c)


def test_layer_norm_against_torch():
    torch = pytest.importorskip("torch")
    x, g, b, dy = _data(np.float64, (9, 13), 9, loc=2.0)
    ln = torch.nn.LayerNorm(13).double()
    with torch.no_grad():
        ln.weight.copy_(torch.tensor(g))
        ln.bias.copy_(torch.tensor(b))
    tx = torch.tensor(x, requires_grad=True)
    ty = ln(tx)
    ty.backward(torch.tensor(dy))
    y, sm, si = F.layer_norm_forward(x, g, b)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    dx, dg, db = F.layer_norm_backward(dy, x, g, sm, si)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dg, ln.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(db, ln.bias.grad.numpy(), rtol=1e-9)
