"""cyprop.diagnostics.unit_report: dead ReLU units, saturated units, zero columns, gradient norms."""
import numpy as np
import pytest

from cyprop import diagnostics, nn

F64 = np.float64


def _model():
    rng = np.random.default_rng(0)
    relu = nn.Linear(4, 8, activation="relu", dtype=F64, seed=0)
    relu.W[:, :3] = 0          # three units that get nothing and a negative bias: dead,
    relu.b[:3] = -1.0          # three zero weight columns
    relu.b[3:] = 5.0           # the rest alive on every row
    sig = nn.Linear(8, 6, dtype=F64, seed=1)
    sig.W[...] = rng.standard_normal((8, 6)) * 0.01
    sig.b[...] = [30, -30, 0, 0, 0, 0]   # two units pinned in the tails
    return nn.Sequential(relu, nn.Dropout(0.5), sig, nn.Sigmoid(), nn.Linear(6, 5, dtype=F64, seed=2),
                         nn.Tanh(), nn.Linear(5, 3, dtype=F64, seed=3))


def test_counts_dead_saturated_and_zero_columns():
    model = _model()
    model.layers[4].W[...] = 0
    model.layers[4].b[...] = [10, -10, 10, 0, 0]    # tanh units 0, 1, 2 saturated, 3 and 4 not
    x = np.random.default_rng(1).standard_normal((200, 4))
    rep = diagnostics.unit_report(model, x)
    by = {r.index: r for r in rep.layers}
    assert by[0].activation == "relu" and by[0].dead == pytest.approx(3 / 8)
    assert by[0].zero_weight_columns == 3 and by[0].saturated is None
    assert by[3].activation == "sigmoid" and by[3].saturated == pytest.approx(2 / 6)
    assert by[5].activation == "tanh" and by[5].saturated == pytest.approx(3 / 5)
    assert by[4].zero_weight_columns == 5 and by[4].dead is None
    assert by[1].layer == "Dropout" and by[1].zero_weight_columns is None
    assert all(r.grad_norm is None for r in rep.layers)
    text = str(rep)
    assert "unit report on 200 rows" in text and "37.5%" in text and "Linear 4->8" in text


def test_gradient_norms_and_nothing_changed():
    model = _model()
    model.train()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    values, grads = model._values.copy(), model._grads.copy()
    step = model.layers[1].step
    rep = diagnostics.unit_report(model, x, loss_fn=nn.SoftmaxCrossEntropy(), target=y)
    np.testing.assert_array_equal(model._values, values)
    np.testing.assert_array_equal(model._grads, grads)
    assert model.training and all(layer.training for layer in model.layers)
    assert model.layers[1].step == step   # eval mode: no dropout mask drawn
    model.eval()
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    for r, layer in zip(rep.layers, model.layers):
        if layer.parameters():
            want = np.sqrt(sum(np.sum(p.grad ** 2) for p in layer.parameters()))
            assert r.grad_norm == pytest.approx(want, rel=1e-12)
        else:
            assert r.grad_norm is None


def test_a_callable_loss():
    model = _model()
    x = np.ones((5, 4))
    rep = diagnostics.unit_report(model, x, loss_fn=lambda out, t: (0.0, np.ones_like(out)),
                                  target=np.zeros(5))
    assert rep.layers[-1].grad_norm > 0


def test_bad_input():
    with pytest.raises(TypeError, match="Sequential"):
        diagnostics.unit_report(nn.Linear(3, 2), np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="both loss_fn and target"):
        diagnostics.unit_report(_model(), np.ones((2, 4)), loss_fn=nn.MSELoss())
    with pytest.raises(TypeError, match="dtype"):
        diagnostics.unit_report(_model(), np.ones((2, 4), np.float32))


def test_sklearn_estimators_expose_it():
    pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from cyprop.sklearn import MLPClassifier, MLPRegressor
    X, y = make_classification(100, 6, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    rep = clf.unit_report(X)
    assert [r.units for r in rep.layers] == [16, 1] and rep.layers[0].activation == "relu"
    assert clf.unit_report(X, y).layers[0].grad_norm > 0
    reg = MLPRegressor(hidden_layer_sizes=(7,), activation="tanh", max_iter=5,
                       random_state=0).fit(X, y.astype(float))
    assert reg.unit_report(X, y.astype(float)).layers[0].activation == "tanh"
