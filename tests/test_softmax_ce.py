import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import reference as R
from conftest import assert_close, numerical_grad

SHAPES = [(1, 1), (1, 5), (4, 1), (13, 7), (3, 29), (65, 257)]  # 29 = 16 + 8 + 5 (float sum blocks)


def _logits(shape, dtype, seed=0, scale=3.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def _probs(shape, dtype, seed=1):
    t = np.random.default_rng(seed).random(shape)
    return (t / t.sum(axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", ["index", "proba"])
def test_matches_reference(shape, reduction, kind, dtype, n_threads):
    z = _logits(shape, dtype)
    rng = np.random.default_rng(2)
    t = rng.integers(0, shape[1], shape[0]) if kind == "index" else _probs(shape, dtype)
    loss, g = F.softmax_cross_entropy(z, t, reduction=reduction)
    rloss, rg = R.softmax_cross_entropy(z, t, reduction=reduction)
    assert isinstance(loss, float) and g.dtype == dtype and g.shape == shape
    np.testing.assert_allclose(loss, rloss, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(g, rg, dtype)


@pytest.mark.parametrize("kind", ["index", "proba", "unnormalised"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_matches_finite_differences(kind, reduction):
    z = _logits((5, 4), np.float64, seed=3)
    if kind == "index":
        t = np.array([0, 3, 1, 1, 2])
    elif kind == "proba":
        t = _probs((5, 4), np.float64)
    else:  # rows that do not sum to one: gradient p * sum(t) - t
        t = 2.5 * _probs((5, 4), np.float64)
    _, g = F.softmax_cross_entropy(z, t, reduction=reduction)
    num = numerical_grad(lambda v: F.softmax_cross_entropy(v, t, reduction=reduction)[0], z)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_loss_value_by_hand():
    z = np.array([[1.0, 2.0, 3.0]])
    loss, g = F.softmax_cross_entropy(z, [2])
    p = np.exp(z) / np.exp(z).sum()
    assert loss == pytest.approx(-np.log(p[0, 2]), rel=1e-14)
    np.testing.assert_allclose(g, p - [[0, 0, 1]], rtol=1e-14)


def test_extreme_logits(dtype):
    z = np.array([[1e4, 0, -1e4], [-1e4, -1e4, -1e4], [0, 1e4, 1e4]], dtype)
    loss, g = F.softmax_cross_entropy(z, [0, 1, 2], reduction="sum")
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    assert loss == pytest.approx(0 + np.log(3) + np.log(2), rel=1e-6)
    p = F.softmax(z)
    assert np.all(np.isfinite(p))
    assert_close(p.sum(axis=1), np.ones(3), dtype)
    # the target's logit far below the others: a huge but exact loss
    loss, _ = F.softmax_cross_entropy(np.array([[1e4, -1e4]], dtype), [1])
    assert loss == pytest.approx(2e4, rel=1e-6)


def test_float_limits(dtype):
    big = np.finfo(dtype).max / 4
    z = np.array([[big, 0.0], [0.0, -big]], dtype)
    loss, g = F.softmax_cross_entropy(z, [0, 0])
    assert np.isfinite(loss) and np.all(np.isfinite(g))


def test_single_class_has_zero_loss(dtype):
    z = _logits((6, 1), dtype)
    loss, g = F.softmax_cross_entropy(z, np.zeros(6, int))
    assert loss == 0 and np.all(g == 0)


def test_softmax_matches_reference(dtype, n_threads):
    z = _logits((17, 9), dtype)
    assert_close(F.softmax(z), R.softmax(z), dtype)
    v = z[0]
    assert_close(F.softmax(v), R.softmax(v), dtype)


def test_float32_softmax_within_2_5_ulp_over_the_exp_range():
    # every 997th float in [-80, 0] as z - max: the float32 exp (1.02 ulp), the
    # float64 row sum and the scaling by its inverse stay within 2.5 ulp of the
    # softmax in extended precision (1.9 measured; 2.2 over every 53rd float); a
    # polynomial term lost or mistyped costs more than that (q's d4 dropped: fails)
    lo, hi = np.float32(-0.0).view(np.uint32), np.float32(-80.0).view(np.uint32)
    x = np.arange(lo, hi, 997, dtype=np.uint32).view(np.float32)
    x = x[:x.size // 999 * 999].reshape(-1, 999)
    z = np.concatenate([np.zeros((x.shape[0], 1), np.float32), x], axis=1)
    p = F.softmax(z)
    e = np.exp(z.astype(np.longdouble))
    want = e / e.sum(axis=1, keepdims=True)
    spacing = np.spacing(want.astype(np.float32)).astype(np.longdouble)
    assert (np.abs(p - want) / spacing).max() <= 2.5


def test_grad_out_may_be_logits(dtype):
    z = _logits((8, 5), dtype)
    t = np.arange(8) % 5
    loss, g = F.softmax_cross_entropy(z, t)
    z2 = z.copy()
    loss2, g2 = F.softmax_cross_entropy(z2, t, grad_out=z2)
    assert g2 is z2 and loss2 == loss
    np.testing.assert_array_equal(g2, g)


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0, 2**40]])
def test_labels_out_of_range_raise(labels):
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array(labels))


def test_non_integral_labels_raise():
    with pytest.raises(ValueError, match="integral"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.5, 1.0]))
    loss, _ = F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 2.0]))
    assert loss == pytest.approx(np.log(3))


def test_empty_batch(dtype):
    loss, g = F.softmax_cross_entropy(np.zeros((0, 3), dtype), np.zeros(0, int))
    assert np.isnan(loss) and g.shape == (0, 3)
    loss, _ = F.softmax_cross_entropy(np.zeros((0, 3), dtype), np.zeros(0, int), reduction="sum")
    assert loss == 0


def test_row_sums_logged_as_products_flushed_at_any_point(dtype, n_threads):
    # with class indices each chunk of rows logs the product of its rows' sums
    # of exp(z - max), flushed into the loss whenever it passes a limit; a
    # limit of 1 flushes after every row, the largest possible limit never
    from cyprop import _softmax_ce
    z = _logits((65, 257), dtype, seed=6)
    t = np.random.default_rng(7).integers(0, 257, 65)
    want, _ = R.softmax_cross_entropy(z, t, reduction="sum")
    losses = []
    for limit in (1.0, np.finfo(np.float64).max):
        old = _softmax_ce._set_log_flush(limit)
        try:
            losses.append(F.softmax_cross_entropy(z, t, reduction="sum")[0])
        finally:
            _softmax_ce._set_log_flush(old)
    np.testing.assert_allclose(losses, want, rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("kind", ["index", "proba"])
def test_identical_across_thread_counts(kind, dtype):
    z = _logits((500, 300), dtype, seed=5)
    t = np.arange(500) % 300 if kind == "index" else _probs((500, 300), dtype)
    res = []
    for n in (1, 2):
        with cyprop.threads(n):
            res.append(F.softmax_cross_entropy(z, t))
    assert res[0][0] == res[1][0]
    np.testing.assert_array_equal(res[0][1], res[1][1])


@pytest.mark.parametrize("kind", ["index", "proba"])
def test_nan_and_inf_anywhere_in_a_row(kind, dtype):
    # the row maximum is taken over four vector accumulators, then single
    # vectors, then a scalar tail: a NaN in any part must still poison exactly
    # its own row, and -inf logits must stay harmless wherever they sit
    n_classes = 43  # float32: one 32-float block, one 8-lane vector, a tail of 3
    #                 float64: two 16-double blocks, two 4-lane vectors, a tail of 3
    for pos in range(n_classes):
        z = _logits((3, n_classes), dtype)
        z[0, pos] = 1e4      # overflows exp() unless the maximum found is exactly this
        z[1, pos] = np.nan
        z[2, pos] = -np.inf
        t = np.array([pos, (pos + 1) % n_classes, (pos + 1) % n_classes])
        if kind == "proba":
            t = np.eye(n_classes, dtype=dtype)[t]
        _, g = F.softmax_cross_entropy(z, t, reduction="sum")
        assert np.isnan(g[1]).all()
        assert np.isfinite(g[[0, 2]]).all()
        ok = np.array([True, False, True])
        # (one-hot probabilities: the index reference; NumPy's proba reference
        # gives 0 * -inf = NaN where cyprop skips zero target mass, by design)
        labels = t[ok] if kind == "index" else t[ok].argmax(axis=1)
        want_loss, want_g = R.softmax_cross_entropy(z[ok], labels, reduction="sum")
        loss, g_ok = F.softmax_cross_entropy(z[ok], t[ok], reduction="sum")
        assert_close(loss, want_loss, dtype)
        assert_close(g_ok, want_g, dtype)
        p = F.softmax(z)
        assert np.isnan(p[1]).all() and np.isfinite(p[[0, 2]]).all() and p[2, pos] == 0
