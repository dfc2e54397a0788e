"""cyprop.optim.minimize: full-batch L-BFGS-B / Newton-CG / trust-NCG over a model's parameters."""
import numpy as np
import pytest

import cyprop
from cyprop import nn, optim
from cyprop.optim._minimize import _FullBatch

F64 = np.float64


def _problem(n=300, seed=0, dtype=F64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(dtype)
    y = ((x[:, 0] * x[:, 1] > 0) + (x[:, 2] > 1)).astype(int)
    model = nn.Sequential(nn.Linear(4, 16, activation="tanh", dtype=dtype, seed=0),
                          nn.Linear(16, 3, dtype=dtype, seed=1))
    return model, x, y


def _full_loss(model, loss_fn, x, y, l2=0.0):
    return float(loss_fn(model(x), y)) + 0.5 * l2 * float(model._values @ model._values)


@pytest.mark.parametrize("method", ["L-BFGS-B", "newton-cg", "trust-ncg"])
def test_each_method_fits_and_writes_the_solution(method):
    model, x, y = _problem()
    loss_fn = nn.SoftmaxCrossEntropy()
    start = _full_loss(model, loss_fn, x, y, 1e-3)
    res = optim.minimize(model, loss_fn, x, y, method=method, max_iter=60, l2=1e-3, chunk_rows=64)
    np.testing.assert_array_equal(model._values, res.x)
    assert res.fun == pytest.approx(_full_loss(model, loss_fn, x, y, 1e-3), rel=1e-10)
    assert res.fun < 0.5 * start
    if method != "L-BFGS-B":
        assert res.nhev > 0   # the Hessian-vector products were used


def test_one_pass_per_evaluation():
    model, x, y = _problem(n=100)
    calls = []
    real = model.forward
    model.forward = lambda a: calls.append(a.shape[0]) or real(a)
    res = optim.minimize(model, nn.SoftmaxCrossEntropy(), x, y, max_iter=10, chunk_rows=30)
    assert len(calls) == 4 * res.nfev and sum(calls) == 100 * res.nfev


@pytest.mark.parametrize("loss", ["ce", "ce-weighted-ignore", "mse-sum", "bce", "huber"])
def test_chunked_objective_and_gradient_are_the_full_batch_ones(loss):
    rng = np.random.default_rng(1)
    model, x, y = _problem(n=50)
    if loss == "ce":
        loss_fn, t = nn.SoftmaxCrossEntropy(), y
    elif loss == "ce-weighted-ignore":
        loss_fn, t = nn.SoftmaxCrossEntropy(weight=[1.0, 2.0, 0.5], ignore_index=1), y
    elif loss == "mse-sum":
        loss_fn, t = nn.MSELoss("sum"), rng.standard_normal((50, 3))
    elif loss == "bce":
        loss_fn, t = nn.BCEWithLogitsLoss(), rng.random((50, 3))
    else:
        loss_fn, t = nn.HuberLoss(delta=0.5), rng.standard_normal((50, 3))
    theta = model._values.copy()
    f, g = _FullBatch(model, loss_fn, x, t, 7, 0.0).loss_grad(theta)
    f1, g1 = _FullBatch(model, loss_fn, x, t, 1000, 0.0).loss_grad(theta)
    assert f == pytest.approx(_full_loss(model, loss_fn, x, t), rel=1e-12)
    assert f == pytest.approx(f1, rel=1e-12)
    np.testing.assert_allclose(g, g1, rtol=1e-10, atol=1e-14)
    loss_fn(model(x), t)   # the full batch's own gradient
    model.backward(loss_fn.backward())
    np.testing.assert_allclose(g, model._grads, rtol=1e-10, atol=1e-14)


def test_hessp_is_the_full_batch_hvp_plus_l2():
    from cyprop import hessian
    model, x, y = _problem(n=40)
    batch = _FullBatch(model, nn.SoftmaxCrossEntropy(), x, y, 9, 0.1)
    p = np.random.default_rng(2).standard_normal(model._values.size)
    want = hessian.hvp(model, nn.SoftmaxCrossEntropy(), x, y, p) + 0.1 * p
    np.testing.assert_allclose(batch.hessp(model._values.copy(), p), want, rtol=1e-10, atol=1e-14)


def test_threads_give_the_same_solution(dtype):
    results = []
    for n in (1, 2):
        model, x, y = _problem(n=2000, dtype=dtype)
        with cyprop.threads(n):
            results.append(optim.minimize(model, nn.SoftmaxCrossEntropy(), x, y, max_iter=15,
                                          chunk_rows=512).x)
    np.testing.assert_array_equal(*results)


def test_callback_and_options_reach_scipy():
    model, x, y = _problem(n=60)
    seen = []
    res = optim.minimize(model, nn.SoftmaxCrossEntropy(), x, y, max_iter=50,
                         callback=lambda *a: seen.append(1), options={"maxfun": 5})
    assert 0 < len(seen) <= 5 and res.nfev <= 6 and not res.success


def test_bad_input_is_a_clear_error():
    model, x, y = _problem(n=20)
    ce = nn.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="method must be one of"):
        optim.minimize(model, ce, x, y, method="bfgs")
    with pytest.raises(ValueError, match="l2"):
        optim.minimize(model, ce, x, y, l2=-1.0)
    with pytest.raises(ValueError, match="chunk_rows"):
        optim.minimize(model, ce, x, y, chunk_rows=0)
    with pytest.raises(ValueError, match="max_iter"):
        optim.minimize(model, ce, x, y, max_iter=0)
    with pytest.raises(ValueError, match="target must have 20 rows"):
        optim.minimize(model, ce, x, y[:10])
    with pytest.raises(TypeError, match="Sequential"):
        optim.minimize(nn.Linear(4, 3, dtype=F64), ce, x, y)
    with pytest.raises(TypeError, match="cyprop.nn loss"):
        optim.minimize(model, lambda a, b: 0.0, x, y)
    with pytest.raises(TypeError, match="callable"):
        optim.minimize(model, ce, x, y, callback=3)
    dropout = nn.Sequential(nn.Linear(4, 8, dtype=F64), nn.Dropout(0.5), nn.Linear(8, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"Dropout in training mode .* model.eval\(\)"):
        optim.minimize(dropout, ce, x, y)
    optim.minimize(dropout.eval(), ce, x, y, max_iter=2)   # eval mode: fine
    with pytest.raises(ValueError, match="no parameters"):
        optim.minimize(nn.Sequential(nn.ReLU(dtype=F64)), nn.MSELoss(), x, x)
