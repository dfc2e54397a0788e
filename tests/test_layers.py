"""The layers and losses of round 2 as cyprop.nn objects: each against its
functional op, in a Sequential (whose backward must match finite differences),
with torch's semantics where torch is installed."""
import numpy as np
import pytest

from cyprop import functional as F
from cyprop import nn
from conftest import numerical_grad

ACT_LAYERS = [
    (lambda dt: nn.LeakyReLU(0.2, dtype=dt), lambda x: F.leaky_relu_forward(x, negative_slope=0.2)),
    (lambda dt: nn.LeakyReLU(-0.5, dtype=dt), lambda x: F.leaky_relu_forward(x, negative_slope=-0.5)),
    (lambda dt: nn.ELU(0.7, dtype=dt), lambda x: F.elu_forward(x, alpha=0.7)),
    (lambda dt: nn.GELU(dtype=dt), F.gelu_forward),
    (lambda dt: nn.GELU("tanh", dtype=dt), lambda x: F.gelu_forward(x, approximate="tanh")),
    (lambda dt: nn.SiLU(dtype=dt), F.silu_forward),
    (lambda dt: nn.Softplus(2.0, 3.0, dtype=dt), lambda x: F.softplus_forward(x, beta=2.0,
                                                                             threshold=3.0)),
]


@pytest.mark.parametrize("make, fwd", ACT_LAYERS)
def test_activation_layer_matches_functional(make, fwd, dtype):
    layer = make(dtype)
    x = np.random.default_rng(0).standard_normal((9, 5)).astype(dtype) * 3
    np.testing.assert_array_equal(layer.forward(x), fwd(x))
    repr(layer)


@pytest.mark.parametrize("make, fwd", ACT_LAYERS)
def test_activation_layer_in_sequential_finite_differences(make, fwd):
    model = nn.Sequential(nn.Linear(4, 6, dtype=np.float64, seed=1), make(np.float64),
                          nn.Linear(6, 2, dtype=np.float64, seed=2))
    x = np.random.default_rng(3).standard_normal((5, 4))
    dy = np.random.default_rng(4).standard_normal((5, 2))
    model.forward(x)
    dx = model.backward(dy, need_dx=True).copy()
    num = numerical_grad(lambda v: float(np.sum(model.forward(v) * dy)), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("act", ["leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus"])
def test_linear_with_new_activation_finite_differences(act):
    model = nn.Sequential(nn.Linear(4, 6, activation=act, dtype=np.float64, seed=1),
                          nn.Linear(6, 2, dtype=np.float64, seed=2))
    x = np.random.default_rng(3).standard_normal((5, 4))
    dy = np.random.default_rng(4).standard_normal((5, 2))
    model.forward(x)
    model.backward(dy)
    W = model.layers[0].W
    dW = model.layers[0].dW.copy()

    def f(w):
        model.layers[0].W = w
        return float(np.sum(model.forward(x) * dy))
    num = numerical_grad(f, W.copy())
    np.testing.assert_allclose(dW, num, rtol=1e-6, atol=1e-8)


def test_loss_layers_match_functional(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 3)).astype(dtype)
    t = rng.random((8, 3)).astype(dtype)
    pw = np.array([1.0, 2.0, 0.5])
    cases = [
        (nn.BCEWithLogitsLoss(pos_weight=pw),
         lambda: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw.astype(dtype))),
        (nn.HuberLoss(delta=0.3), lambda: F.huber_loss(x, t, delta=0.3)),
        (nn.L1Loss(reduction="sum"), lambda: F.l1_loss(x, t, reduction="sum")),
    ]
    for loss_fn, ref in cases:
        loss = loss_fn(x, t)
        rloss, rg = ref()
        assert loss == rloss
        np.testing.assert_array_equal(loss_fn.backward(), rg)
    y = rng.integers(0, 3, 8)
    ce = nn.SoftmaxCrossEntropy(weight=[1, 2, 3], label_smoothing=0.1, ignore_index=1)
    loss = ce(x, y)
    rloss, rg = F.softmax_cross_entropy(x, y, weight=np.array([1, 2, 3], dtype),
                                        label_smoothing=0.1, ignore_index=1)
    assert loss == rloss
    np.testing.assert_array_equal(ce.backward(), rg)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.Softplus(beta=-1), ValueError, "beta"),
    (lambda: nn.GELU("fast"), ValueError, "approximate"),
    (lambda: nn.HuberLoss(delta=0), ValueError, "delta"),
    (lambda: nn.SoftmaxCrossEntropy(label_smoothing=2), ValueError, "label_smoothing"),
    (lambda: nn.SoftmaxCrossEntropy(weight=[[1, 2]]), ValueError, "weight must be 1-D"),
])
def test_layer_constructors_reject(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
