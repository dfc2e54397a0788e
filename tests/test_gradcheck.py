"""cyprop.gradcheck / gradcheck_model: central differences against user and model gradients."""
import numpy as np
import pytest

import cyprop
from cyprop import nn

F64 = np.float64


def _tanh_sum(x):
    return float(np.sum(np.tanh(x))), 1 - np.tanh(x) ** 2


def test_a_right_gradient_passes_and_reports():
    rep = cyprop.gradcheck(_tanh_sum, np.linspace(-2, 2, 7))
    assert rep.passed and rep.n_checked == 7
    assert rep.max_abs_error < 1e-8
    assert "passed" in str(rep)


def test_several_inputs():
    def f(a, b):
        return float(a @ b), [b, a]
    rng = np.random.default_rng(0)
    rep = cyprop.gradcheck(f, [rng.standard_normal(5), rng.standard_normal(5)])
    assert rep.passed and rep.n_checked == 10


def test_a_wrong_entry_raises_with_where():
    def f(x):
        g = 1 - np.tanh(x) ** 2
        g[3] *= 1.01   # one wrong entry
        return float(np.sum(np.tanh(x))), g
    with pytest.raises(AssertionError, match=r"worst at input 0, element 3"):
        cyprop.gradcheck(f, np.linspace(-1, 1, 6))
    rep = cyprop.gradcheck(f, np.linspace(-1, 1, 6), raise_on_failure=False)
    assert not rep.passed and rep.worst == (0, 3)
    assert rep.analytic == pytest.approx(1.01 * rep.numeric, rel=1e-6)


def test_a_nan_gradient_fails():
    def f(x):
        return float(np.sum(x ** 2)), np.full_like(x, np.nan)
    with pytest.raises(AssertionError):
        cyprop.gradcheck(f, np.ones(3))


@pytest.mark.parametrize("fn, exc, match", [
    (lambda x: (x, x), ValueError, "scalar"),
    (lambda x: (float(x.sum()), np.ones(2)), ValueError, "shape"),
    (lambda x: float(x.sum()), TypeError, "pair"),
    (lambda x: ("a", x), TypeError, "real scalar"),
])
def test_bad_functions_are_clear_errors(fn, exc, match):
    with pytest.raises(exc, match=match):
        cyprop.gradcheck(fn, np.ones(3))


def test_bad_arguments():
    with pytest.raises(ValueError, match="eps"):
        cyprop.gradcheck(_tanh_sum, np.ones(2), eps=0)
    with pytest.raises(ValueError, match="NaN"):
        cyprop.gradcheck(_tanh_sum, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="2 gradients for 1"):
        cyprop.gradcheck(lambda a: (0.0, [a, a]), [np.ones(2)])


def _model(layers):
    return nn.Sequential(*layers)


# seeded: a random start could put a ReLU kink within eps of a probe point
MODELS = {
    "linear-acts": lambda: [nn.Linear(5, 7, activation="tanh", dtype=F64, seed=1),
                            nn.Linear(7, 6, activation="sigmoid", dtype=F64, seed=2),
                            nn.Linear(6, 4, activation="relu", dtype=F64, seed=3),
                            nn.Linear(4, 3, dtype=F64, seed=4)],
    "norms-dropout": lambda: [nn.Linear(5, 8, dtype=F64, seed=5), nn.BatchNorm1d(8, dtype=F64),
                              nn.ReLU(), nn.Dropout(0.3, seed=1), nn.Linear(8, 6, dtype=F64, seed=6),
                              nn.LayerNorm(6, dtype=F64), nn.GELU(), nn.Linear(6, 3, dtype=F64, seed=7)],
    "smooth-acts": lambda: [nn.Linear(5, 6, dtype=F64, seed=8), nn.SiLU(), nn.Linear(6, 6, dtype=F64, seed=9),
                            nn.ELU(), nn.Linear(6, 6, dtype=F64, seed=10), nn.Softplus(),
                            nn.Linear(6, 3, dtype=F64, seed=11), nn.LeakyReLU(0.1)],
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_every_layer_kind_passes(name, loss, n_threads):
    rng = np.random.default_rng(1)
    model = _model(MODELS[name]())
    x = rng.standard_normal((9, 5))
    if loss == "ce":
        loss_fn, target = nn.SoftmaxCrossEntropy(), rng.integers(0, 3, 9)
    else:
        loss_fn, target = nn.MSELoss(), rng.standard_normal((9, 3))
    before = model._values.copy()
    bn = [layer for layer in model.layers if isinstance(layer, nn.BatchNorm1d)]
    stats = [layer.buffers()["running_mean"].copy() for layer in bn]
    with cyprop.threads(n_threads):
        rep = cyprop.gradcheck_model(model, loss_fn, x, target, rtol=1e-5, atol=1e-7)
    assert rep.passed and rep.n_checked == before.size
    np.testing.assert_array_equal(model._values, before)   # put back
    for layer, s in zip(bn, stats):
        np.testing.assert_array_equal(layer.buffers()["running_mean"], s)


class _DoubledGradient(nn.MSELoss):
    """A loss whose backward is twice the truth: gradcheck_model must catch it."""

    def backward(self):
        return 2 * super().backward()


def test_a_wrong_model_gradient_is_caught():
    rng = np.random.default_rng(2)
    model = _model([nn.Linear(3, 4, activation="tanh", dtype=F64), nn.Linear(4, 2, dtype=F64)])
    with pytest.raises(AssertionError, match="FAILED"):
        cyprop.gradcheck_model(model, _DoubledGradient(), rng.standard_normal((5, 3)),
                               rng.standard_normal((5, 2)))


def test_model_errors():
    with pytest.raises(TypeError, match="float64 model"):
        cyprop.gradcheck_model(_model([nn.Linear(3, 2)]), nn.MSELoss(), np.ones((2, 3), np.float32),
                               np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match="cyprop.nn.Module"):
        cyprop.gradcheck_model(object(), nn.MSELoss(), np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="no parameters"):
        cyprop.gradcheck_model(_model([nn.ReLU(dtype=F64)]), nn.MSELoss(), np.ones((2, 3)),
                               np.ones((2, 3)))
