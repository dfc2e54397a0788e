"""BCE on logits, Huber, L1, and softmax-CE's weight / label_smoothing / ignore_index:
kernels against the NumPy reference, finite differences, threads, extremes, torch."""
import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import reference as R
from conftest import numerical_grad

LTOL = {np.float32: 2e-6, np.float64: 1e-13}


def _bce(x, t, pw=None, **kw):
    return F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, **kw)


def _data(dtype, shape, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    t = rng.random(shape).astype(dtype)
    return x, t


@pytest.mark.parametrize("shape", [(1,), (1, 1), (7, 3), (33, 1), (300, 301), (4, 5, 6)])
@pytest.mark.parametrize("pw_kind", [None, "scalar", "per_class"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_matches_reference(shape, pw_kind, reduction, dtype, n_threads):
    x, t = _data(dtype, shape)
    pw = None
    if pw_kind == "scalar":
        pw = dtype(2.5)
    elif pw_kind == "per_class":
        pw = (np.arange(shape[-1]) % 4 + 0.5).astype(dtype)
    loss, g = _bce(x, t, pw, reduction=reduction)
    rloss, rg = R.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction=reduction)
    np.testing.assert_allclose(loss, rloss, rtol=LTOL[dtype] * 5)
    np.testing.assert_allclose(g, rg, rtol=LTOL[dtype] * 10, atol=LTOL[dtype] * np.abs(rg).max())


@pytest.mark.parametrize("pw", [None, 3.0, np.array([0.5, 2.0, 1.0])])
def test_bce_finite_differences(pw):
    x, t = _data(np.float64, (4, 3), 1, 2.0)
    _, g = _bce(x, t, pw)
    num = numerical_grad(lambda v: _bce(v, t, pw)[0], x)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_bce_extreme_logits(dtype):
    x = np.array([1e4, -1e4, 0.0, 88.0, -88.0, 1e-30], dtype)
    t = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 1.0], dtype)
    loss, g = _bce(x, t, reduction="sum")
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    # the two confident mistakes cost 1e4 each; the rest ln 2, ~0, ~0, ln 2
    assert loss == pytest.approx(2e4 + 2 * np.log(2), rel=1e-6)
    np.testing.assert_allclose(g, [1, -1, 0, 0, 0, -0.5], atol=1e-6)


@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("shape", [(1,), (7, 3), (300, 301)])
def test_huber_matches_reference(delta, shape, dtype, n_threads):
    p, t = _data(dtype, shape, 2)
    loss, g = F.huber_loss(p, t, delta=delta)
    rloss, rg = R.huber_loss(p, t, delta=delta)
    np.testing.assert_allclose(loss, rloss, rtol=LTOL[dtype] * 5)
    np.testing.assert_allclose(g, rg, rtol=LTOL[dtype], atol=LTOL[dtype] / p.size)


@pytest.mark.parametrize("shape", [(1,), (7, 3), (300, 301)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_l1_matches_reference(shape, reduction, dtype, n_threads):
    p, t = _data(dtype, shape, 3)
    p.flat[0] = t.flat[0]   # sign(0) = 0
    loss, g = F.l1_loss(p, t, reduction=reduction)
    rloss, rg = R.l1_loss(p, t, reduction=reduction)
    np.testing.assert_allclose(loss, rloss, rtol=LTOL[dtype] * 5)
    np.testing.assert_array_equal(g, rg.astype(dtype))
    assert g.flat[0] == 0


def test_huber_l1_finite_differences():
    p, t = _data(np.float64, (4, 3), 4, 2.0)
    for fn in (lambda v: F.huber_loss(v, t, delta=0.7), lambda v: F.l1_loss(v, t)):
        num = numerical_grad(lambda v: fn(v)[0], p)
        np.testing.assert_allclose(fn(p)[1], num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("fn", [
    lambda x, t: _bce(x, t), lambda x, t: _bce(x, t, np.linspace(0.5, 2, 301).astype(x.dtype)),
    lambda x, t: F.huber_loss(x, t), lambda x, t: F.l1_loss(x, t)])
def test_identical_across_thread_counts(fn, dtype):
    x, t = _data(dtype, (700, 301), 5)
    res = []
    for n in (1, 2):
        with cyprop.threads(n):
            res.append(fn(x, t))
    assert res[0][0] == res[1][0]
    np.testing.assert_array_equal(res[0][1], res[1][1])


def test_float32_sum_accumulates_in_float64():
    n = 1 << 20
    p = np.full(n, 1.0001, np.float32)
    loss, _ = F.l1_loss(p, np.zeros(n, np.float32), reduction="sum")
    assert loss == pytest.approx(n * float(np.float32(1.0001)), rel=1e-9)


def test_grad_out_may_alias(dtype):
    x, t = _data(dtype, (9, 4), 6)
    want = _bce(x, t)[1]
    got = _bce(x, t, grad_out=x)[1]
    assert got is x
    np.testing.assert_array_equal(got, want)


def test_empty(dtype):
    for fn in (_bce, F.huber_loss, F.l1_loss):
        loss, g = fn(np.zeros((0, 2), dtype), np.zeros((0, 2), dtype))
        assert np.isnan(loss) and g.shape == (0, 2)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.huber_loss(np.ones(3), np.ones(3), delta=0), ValueError, "delta must be"),
    (lambda: F.huber_loss(np.ones(3), np.ones(3), delta=-1.0), ValueError, "delta must be"),
    (lambda: F.l1_loss(np.ones(3), np.ones(4)), ValueError, "same shape"),
    (lambda: _bce(np.ones((2, 3)), np.ones((2, 3)), np.ones(4)), ValueError,
     r"pos_weight must be a scalar or have shape \(3,\)"),
    (lambda: _bce(np.ones((2, 3)), np.ones((2, 3), np.float32)), TypeError, "dtype"),
    (lambda: _bce(np.ones(3), np.ones(3), reduction="none"), ValueError, "reduction"),
    (lambda: F.l1_loss(np.ones(3), np.ones(3), grad_out=np.ones(3)[::-1]), ValueError,
     "C-contiguous"),
])
def test_rejects(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------- softmax-CE options
CE_CASES = [
    dict(weight=np.array([0.2, 1.0, 3.0, 0.5, 1.5])),
    dict(label_smoothing=0.1),
    dict(ignore_index=2),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.5, 1.5]), label_smoothing=0.2, ignore_index=-100),
    dict(label_smoothing=1.0),
]


def _ce_data(dtype, n=13, c=5, seed=7):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, c)) * 2).astype(dtype)
    y = rng.integers(0, c, n)
    y[::4] = 2
    return z, y


@pytest.mark.parametrize("kw", CE_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ce_options_match_reference(kw, reduction, dtype):
    z, y = _ce_data(dtype)
    if kw.get("ignore_index") == -100:
        y[1] = -100
    kw = {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    loss, g = F.softmax_cross_entropy(z, y, reduction=reduction, **kw)
    rloss, rg = R.softmax_cross_entropy(z, y, reduction=reduction, **kw)
    np.testing.assert_allclose(loss, rloss, rtol=LTOL[dtype] * 10)
    np.testing.assert_allclose(g, rg, rtol=LTOL[dtype] * 10, atol=LTOL[dtype])
    if "ignore_index" in kw:
        np.testing.assert_array_equal(g[y == kw["ignore_index"]], 0)


@pytest.mark.parametrize("kw", CE_CASES[:4])
def test_ce_options_finite_differences(kw):
    z, y = _ce_data(np.float64, 6, 5, 8)
    y[0] = kw.get("ignore_index", 0) if kw.get("ignore_index") != -100 else -100
    _, g = F.softmax_cross_entropy(z, y, **kw)
    num = numerical_grad(lambda v: F.softmax_cross_entropy(v, y, **kw)[0], z)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_ce_probability_targets_with_weight_and_smoothing(dtype):
    z, _ = _ce_data(dtype)
    t = np.random.default_rng(9).dirichlet(np.ones(5), 13).astype(dtype)
    w = np.linspace(0.5, 2, 5).astype(dtype)
    loss, g = F.softmax_cross_entropy(z, t, weight=w, label_smoothing=0.3)
    rloss, rg = R.softmax_cross_entropy(z, t, weight=w, label_smoothing=0.3)
    np.testing.assert_allclose(loss, rloss, rtol=LTOL[dtype] * 10)
    np.testing.assert_allclose(g, rg, rtol=LTOL[dtype] * 10, atol=LTOL[dtype])


def test_ce_every_row_ignored():
    z, y = _ce_data(np.float64)
    loss, g = F.softmax_cross_entropy(z, np.full(13, -1), ignore_index=-1)
    assert np.isnan(loss)
    np.testing.assert_array_equal(g, 0)
    assert F.softmax_cross_entropy(z, np.full(13, -1), ignore_index=-1, reduction="sum")[0] == 0


@pytest.mark.parametrize("kw, exc, match", [
    (dict(label_smoothing=1.5), ValueError, "label_smoothing must be"),
    (dict(label_smoothing=-0.1), ValueError, "label_smoothing must be"),
    (dict(weight=np.ones(4)), ValueError, r"weight must have shape \(5,\)"),
    (dict(ignore_index=1.5), TypeError, "ignore_index must be an int"),
    (dict(ignore_index=-1), ValueError, "outside"),   # -1 is not ignored: 7 is out of range
])
def test_ce_options_reject(kw, exc, match):
    z, y = _ce_data(np.float64)
    y[0] = 7
    with pytest.raises(exc, match=match):
        F.softmax_cross_entropy(z, y, **kw)



def test_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, t = _data(np.float64, (31, 7), 10)
    pw = np.linspace(0.5, 3, 7)
    for kw, tkw in (({}, {}), (dict(pos_weight=pw), dict(pos_weight=torch.tensor(pw)))):
        tx = torch.tensor(x, requires_grad=True)
        tl = tf.binary_cross_entropy_with_logits(tx, torch.tensor(t), **tkw)
        tl.backward()
        loss, g = F.binary_cross_entropy_with_logits(x, t, **kw)
        assert loss == pytest.approx(tl.item(), rel=1e-12)
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-10, atol=1e-15)
    for fn, tfn in ((lambda a, b: F.huber_loss(a, b, delta=0.6),
                     lambda a, b: tf.huber_loss(a, b, delta=0.6)),
                    (F.l1_loss, tf.l1_loss)):
        tx = torch.tensor(x, requires_grad=True)
        tl = tfn(tx, torch.tensor(t))
        tl.backward()
        loss, g = fn(x, t)
        assert loss == pytest.approx(tl.item(), rel=1e-12)
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-10, atol=1e-15)
    z, y = _ce_data(np.float64)
    y[3] = -100
    w = np.array([0.2, 1.0, 3.0, 0.5, 1.5])
    for kw in (dict(weight=w), dict(label_smoothing=0.15), dict(ignore_index=-100),
               dict(weight=w, label_smoothing=0.25, ignore_index=-100)):
        for reduction in ("mean", "sum"):
            tz = torch.tensor(z, requires_grad=True)
            tkw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
            tl = tf.cross_entropy(tz, torch.tensor(y), reduction=reduction,
                                  **{"ignore_index": -100, **tkw})
            tl.backward()
            loss, g = F.softmax_cross_entropy(z, y, reduction=reduction,
                                              **{"ignore_index": -100, **kw})
            assert loss == pytest.approx(tl.item(), rel=1e-12), kw
            np.testing.assert_allclose(g, tz.grad.numpy(), rtol=1e-10, atol=1e-15)
    tp = np.random.default_rng(1).dirichlet(np.ones(5), 13)
    tz = torch.tensor(z, requires_grad=True)
    tl = tf.cross_entropy(tz, torch.tensor(tp), weight=torch.tensor(w), label_smoothing=0.3)
    tl.backward()
    loss, g = F.softmax_cross_entropy(z, tp, weight=w, label_smoothing=0.3)
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(g, tz.grad.numpy(), rtol=1e-10, atol=1e-15)
