"""cyprop.hessian: exact Hessian- and Gauss-Newton-vector products (R-operator kernels)."""
import numpy as np
import pytest

import cyprop
from cyprop import hessian, nn

F64 = np.float64


def _mlp(acts, sizes=(5, 7, 6, 3), dtype=F64, bias=True, extra=()):
    layers = [nn.Linear(a, b, activation=act, dtype=dtype, seed=i, bias=bias)
              for i, (a, b, act) in enumerate(zip(sizes[:-1], sizes[1:], acts))]
    for pos, layer in extra:
        layers.insert(pos, layer)
    return nn.Sequential(*layers)


def _grad(model, loss_fn, x, t, theta):
    old = model._values.copy()
    model._values[...] = theta
    loss_fn(model(x), t)
    model.backward(loss_fn.backward())
    g = model._grads.astype(F64)
    model._values[...] = old
    return g


def _fd_hvp(model, loss_fn, x, t, v, eps=1e-5):
    th = model._values.copy()
    return (_grad(model, loss_fn, x, t, th + eps * v) - _grad(model, loss_fn, x, t, th - eps * v)) / (2 * eps)


def _loss_and_target(name, rng, n, c):
    if name == "ce":
        return nn.SoftmaxCrossEntropy(), rng.integers(0, c, n)
    if name == "ce-smooth-sum":
        return nn.SoftmaxCrossEntropy("sum", label_smoothing=0.1), rng.integers(0, c, n)
    if name == "mse":
        return nn.MSELoss(), rng.standard_normal((n, c))
    if name == "bce":
        return nn.BCEWithLogitsLoss(), rng.random((n, c))
    if name == "huber":
        return nn.HuberLoss(delta=0.7), rng.standard_normal((n, c))
    return nn.L1Loss(), rng.standard_normal((n, c))


ACTS = [("tanh", "sigmoid", None), ("relu", "gelu", None), ("silu", "softplus", None),
        ("elu", "leaky_relu", "gelu_tanh")]
LOSSES = ["ce", "ce-smooth-sum", "mse", "bce", "huber", "l1"]


@pytest.mark.parametrize("acts", ACTS, ids=lambda a: "-".join(map(str, a)))
@pytest.mark.parametrize("loss", LOSSES)
def test_hvp_matches_finite_differences_of_the_gradient(acts, loss):
    rng = np.random.default_rng(0)
    model = _mlp(acts)
    x = rng.standard_normal((9, 5))
    loss_fn, t = _loss_and_target(loss, rng, 9, 3)
    v = rng.standard_normal(model._values.size)
    Hv = hessian.hvp(model, loss_fn, x, t, v)
    fd = _fd_hvp(model, loss_fn, x, t, v)
    assert Hv.dtype == F64 and Hv.shape == v.shape
    np.testing.assert_allclose(Hv, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    u = rng.standard_normal(v.size)   # symmetry: u.Hv == v.Hu
    assert u @ Hv == pytest.approx(v @ hessian.hvp(model, loss_fn, x, t, u), rel=1e-10, abs=1e-13)


def test_standalone_activations_dropout_eval_and_no_bias():
    rng = np.random.default_rng(1)
    model = _mlp((None, None, None), bias=False,
                 extra=[(1, nn.Tanh()), (3, nn.Dropout(0.5).eval()), (3, nn.SiLU()),
                        (0, nn.Sigmoid())])
    model.eval()
    x = rng.standard_normal((6, 5))
    loss_fn, t = nn.SoftmaxCrossEntropy(), rng.integers(0, 3, 6)
    v = rng.standard_normal(model._values.size)
    np.testing.assert_allclose(hessian.hvp(model, loss_fn, x, t, v), _fd_hvp(model, loss_fn, x, t, v),
                               rtol=1e-6, atol=1e-9)


def test_list_form_in_list_form_out():
    rng = np.random.default_rng(2)
    model = _mlp(ACTS[0])
    x, t = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    v = rng.standard_normal(model._values.size)
    parts, offset = [], 0
    for p in model.parameters():
        parts.append(v[offset:offset + p.value.size].reshape(p.value.shape))
        offset += p.value.size
    out = hessian.hvp(model, nn.SoftmaxCrossEntropy(), x, t, parts)
    assert [o.shape for o in out] == [p.value.shape for p in model.parameters()]
    np.testing.assert_array_equal(np.concatenate([o.ravel() for o in out]),
                                  hessian.hvp(model, nn.SoftmaxCrossEntropy(), x, t, v))


@pytest.mark.parametrize("product", ["hvp", "ggnvp"])
def test_threads_give_the_same_bits(product, dtype):
    # large enough for the parallel element-wise loops and blocked GEMMs
    rng = np.random.default_rng(3)
    model = _mlp(("gelu", "tanh", None), sizes=(40, 300, 200, 10), dtype=dtype,
                 extra=[(1, nn.BatchNorm1d(300, dtype=dtype)), (2, nn.Dropout(0.2, seed=1)),
                        (4, nn.LayerNorm(200, dtype=dtype))])
    x = rng.standard_normal((400, 40)).astype(dtype)
    t = rng.integers(0, 10, 400)
    v = rng.standard_normal(model._values.size).astype(dtype)
    results = []
    for n in (1, 2):
        with cyprop.threads(n):
            results.append(getattr(hessian, product)(model, nn.SoftmaxCrossEntropy(), x, t, v))
    np.testing.assert_array_equal(*results)


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(4)
    m64, m32 = _mlp(ACTS[1]), _mlp(ACTS[1], dtype=np.float32)
    m32._values[...] = m64._values
    x, t = rng.standard_normal((20, 5)), rng.integers(0, 3, 20)
    v = rng.standard_normal(m64._values.size)
    h64 = hessian.hvp(m64, nn.SoftmaxCrossEntropy(), x, t, v)
    h32 = hessian.hvp(m32, nn.SoftmaxCrossEntropy(), x.astype(np.float32), t, v)
    assert h32.dtype == np.float32
    np.testing.assert_allclose(h32, h64, rtol=2e-3, atol=2e-4 * np.abs(h64).max())


def _jacobian(model, x, eps=1e-6):
    """d model(x).ravel() / d theta by central differences, (N*C, P)."""
    th = model._values.copy()
    cols = []
    for i in range(th.size):
        model._values[i] = th[i] + eps
        up = model(x).ravel().copy()
        model._values[i] = th[i] - eps
        down = model(x).ravel().copy()
        model._values[i] = th[i]
        cols.append((up - down) / (2 * eps))
    return np.stack(cols, axis=1)


def test_ggnvp_is_jt_h_j_and_positive_semidefinite():
    rng = np.random.default_rng(5)
    model = _mlp(("tanh", "sigmoid", None))
    x, t = rng.standard_normal((7, 5)), rng.standard_normal((7, 3))
    J = _jacobian(model, x)
    G = J.T @ (2.0 / t.size * J)    # MSE's Hessian in the output: 2 / size
    for _ in range(3):
        v = rng.standard_normal(model._values.size)
        Gv = hessian.ggnvp(model, nn.MSELoss(), x, t, v)
        np.testing.assert_allclose(Gv, G @ v, rtol=1e-6, atol=1e-9)
        assert v @ Gv >= 0


def test_ggnvp_softmax_uses_the_softmax_hessian():
    rng = np.random.default_rng(6)
    model = _mlp(("relu", "tanh", None))
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    J = _jacobian(model, x)
    p = np.exp(model(x) - model(x).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    H = np.zeros((18, 18))
    for i in range(6):
        H[3 * i:3 * i + 3, 3 * i:3 * i + 3] = (np.diag(p[i]) - np.outer(p[i], p[i])) / 6
    v = rng.standard_normal(model._values.size)
    np.testing.assert_allclose(hessian.ggnvp(model, nn.SoftmaxCrossEntropy(), x, t, v),
                               J.T @ H @ J @ v, rtol=1e-6, atol=1e-9)


def test_for_a_linear_model_ggn_equals_the_hessian():
    rng = np.random.default_rng(7)
    model = nn.Sequential(nn.Linear(4, 3, dtype=F64, seed=0))
    x, t = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    v = rng.standard_normal(model._values.size)
    np.testing.assert_allclose(hessian.ggnvp(model, nn.SoftmaxCrossEntropy(), x, t, v),
                               hessian.hvp(model, nn.SoftmaxCrossEntropy(), x, t, v), rtol=1e-12)


def test_matches_torch_double_backward():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    model = _mlp(("tanh", "gelu", None))
    x, t = rng.standard_normal((10, 5)), rng.integers(0, 3, 10)
    v = rng.standard_normal(model._values.size)
    Ws = [torch.tensor(layer.W, requires_grad=True) for layer in model.layers]
    bs = [torch.tensor(layer.b, requires_grad=True) for layer in model.layers]
    h = torch.tensor(x)
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W + b
        h = torch.tanh(h) if i == 0 else torch.nn.functional.gelu(h) if i == 1 else h
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(t))
    params = [p for pair in zip(Ws, bs) for p in pair]
    grads = torch.autograd.grad(loss, params, create_graph=True)
    vt = torch.tensor(v)
    flat = torch.cat([g.reshape(-1) for g in grads])
    Hv = torch.autograd.grad(flat @ vt, params)
    want = np.concatenate([g.detach().numpy().ravel() for g in Hv])
    np.testing.assert_allclose(hessian.hvp(model, nn.SoftmaxCrossEntropy(), x, t, v), want,
                               rtol=1e-9, atol=1e-12)


class _Custom(nn.Module):
    dtype = np.dtype(F64)

    def forward(self, x):
        return x

    def backward(self, dy, *, need_dx=True):
        return dy


def _fd_hvp_fixed_masks(model, loss_fn, x, t, v, eps=1e-5):
    """As _fd_hvp, each gradient with the Dropout layers' masks of their current step."""
    drops = [(layer, layer.step) for layer in model.layers if isinstance(layer, nn.Dropout)]
    th = model._values.copy()

    def grad(theta):
        for layer, step in drops:
            layer.step = step
        return _grad(model, loss_fn, x, t, theta)
    out = (grad(th + eps * v) - grad(th - eps * v)) / (2 * eps)
    for layer, step in drops:
        layer.step = step
    return out


NORM_MODELS = {
    "bn-train": lambda: [nn.Linear(5, 8, dtype=F64, seed=0), nn.BatchNorm1d(8, dtype=F64),
                         nn.Tanh(), nn.Linear(8, 3, dtype=F64, seed=1)],
    "bn-first-no-affine-then-bn": lambda: [nn.BatchNorm1d(5, affine=False, dtype=F64),
                                           nn.BatchNorm1d(5, dtype=F64), nn.GELU(),
                                           nn.Linear(5, 3, dtype=F64, seed=1)],
    "ln": lambda: [nn.Linear(5, 7, dtype=F64, seed=0), nn.LayerNorm(7, dtype=F64), nn.SiLU(),
                   nn.Linear(7, 4, dtype=F64, seed=1),
                   nn.LayerNorm(4, elementwise_affine=False, dtype=F64)],
    "ln-first": lambda: [nn.LayerNorm(5, dtype=F64), nn.Linear(5, 3, activation="sigmoid",
                                                              dtype=F64, seed=1)],
    "dropout-train": lambda: [nn.Linear(5, 9, activation="tanh", dtype=F64, seed=0),
                              nn.Dropout(0.4, seed=3), nn.Linear(9, 6, dtype=F64, seed=1),
                              nn.BatchNorm1d(6, affine=False, dtype=F64), nn.ReLU(),
                              nn.Dropout(0.2, seed=4), nn.Linear(6, 3, dtype=F64, seed=2)],
}


@pytest.mark.parametrize("name", sorted(NORM_MODELS))
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_norm_and_dropout_layers_match_finite_differences(name, mode, loss):
    rng = np.random.default_rng(11)
    model = nn.Sequential(*NORM_MODELS[name]())
    for layer in model.layers:
        if isinstance(layer, nn.BatchNorm1d):
            layer.running_mean = rng.uniform(-1, 1, layer.num_features)
            layer.running_var = rng.uniform(0.5, 2, layer.num_features)
        if getattr(layer, "gamma", None) is not None:
            layer.gamma = rng.uniform(0.5, 1.5, layer.gamma.size)
            layer.beta = rng.uniform(-0.5, 0.5, layer.beta.size)
    model.train(mode == "train")
    x = rng.standard_normal((10, 5))
    loss_fn, t = _loss_and_target(loss, rng, 10, 3)
    if name == "ln":
        loss_fn, t = (nn.SoftmaxCrossEntropy(), rng.integers(0, 4, 10)) if loss == "ce" else \
            (nn.MSELoss(), rng.standard_normal((10, 4)))
    stats = [a.copy() for layer in model.layers if hasattr(layer, "buffers")
             for a in layer.buffers().values()]
    v, u = rng.standard_normal(model._values.size), rng.standard_normal(model._values.size)
    Hv, Hu = hessian.hvp(model, loss_fn, x, t, v), hessian.hvp(model, loss_fn, x, t, u)
    Gv = hessian.ggnvp(model, loss_fn, x, t, v)
    after = [a for layer in model.layers if hasattr(layer, "buffers")
             for a in layer.buffers().values()]
    for a, b in zip(after, stats):   # the products leave the running statistics alone
        np.testing.assert_array_equal(a, b)
    fd = _fd_hvp_fixed_masks(model, loss_fn, x, t, v)
    np.testing.assert_allclose(Hv, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    assert u @ Hv == pytest.approx(v @ Hu, rel=1e-9, abs=1e-12)
    assert v @ Gv >= -1e-12 * np.abs(Gv).max()   # positive semi-definite


def test_bad_input_is_a_clear_error():
    rng = np.random.default_rng(9)
    model = _mlp(ACTS[0])
    x, t = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    ce = nn.SoftmaxCrossEntropy()
    size = model._values.size
    with pytest.raises(ValueError, match=f"flat vector of {size}"):
        hessian.hvp(model, ce, x, t, np.ones(size + 1))
    with pytest.raises(TypeError, match="float32 or float64"):
        hessian.hvp(model, ce, x, t, np.ones(size, dtype=int))
    with pytest.raises(ValueError, match=r"v\[0\] has shape"):
        hessian.hvp(model, ce, x, t, [p.value.T.copy() if i == 0 else p.value
                                     for i, p in enumerate(model.parameters())])
    with pytest.raises(ValueError, match="arrays, the model"):
        hessian.hvp(model, ce, x, t, [np.ones(3)])
    with pytest.raises(ValueError, match=r"x must have shape \(N, 5\)"):
        hessian.hvp(model, ce, np.ones((4, 6)), t, np.ones(size))
    with pytest.raises(TypeError, match="_Custom has no R-op"):
        hessian.hvp(nn.Sequential(nn.Linear(5, 3, dtype=F64), _Custom()), ce, x, t, np.ones(18))
    with pytest.raises(ValueError, match="more than one row"):
        hessian.hvp(nn.Sequential(nn.Linear(5, 3, dtype=F64), nn.BatchNorm1d(3, dtype=F64)),
                    ce, x[:1], t[:1], np.ones(24))
    with pytest.raises(TypeError, match="weight or ignore_index"):
        hessian.hvp(model, nn.SoftmaxCrossEntropy(weight=[1, 2, 3]), x, t, np.ones(size))
    with pytest.raises(TypeError, match="has no R-op"):
        hessian.hvp(model, object(), x, t, np.ones(size))
    with pytest.raises(ValueError, match="no parameters"):
        hessian.hvp(nn.Sequential(nn.ReLU(dtype=F64)), ce, x, t, np.ones(0))
    with pytest.raises(ValueError, match="no parameters"):
        hessian.hvp(nn.Sequential(nn.LayerNorm(5, elementwise_affine=False, dtype=F64)), ce, x,
                    t, np.ones(0))
    with pytest.raises(TypeError, match="Sequential"):
        hessian.hvp(nn.Linear(5, 3, dtype=F64), ce, x, t, np.ones(18))


def test_a_subclass_of_a_supported_loss_has_its_r_op():
    class Halved(nn.MSELoss):
        pass
    rng = np.random.default_rng(12)
    model = _mlp(ACTS[0])
    x, t = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    v = rng.standard_normal(model._values.size)
    np.testing.assert_array_equal(hessian.hvp(model, Halved(), x, t, v),
                                  hessian.hvp(model, nn.MSELoss(), x, t, v))
