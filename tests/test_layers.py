"""The layers and losses of round 2 as cyprop.nn objects: each against its
functional op, in a Sequential (whose backward must match finite differences),
with torch's semantics where torch is installed."""
import numpy as np
import pytest

from cyprop import functional as F
from cyprop import nn
from conftest import numerical_grad, traced_growth

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


# ------------------------------------------------------- norms, dropout, modes
import pickle  # noqa: E402

import cyprop  # noqa: E402
from cyprop import optim  # noqa: E402
from cyprop import reference as R  # noqa: E402


def _tabular(dtype=np.float32, p=0.1, seed=0):
    return nn.Sequential(
        nn.Linear(12, 16, dtype=dtype, seed=seed), nn.BatchNorm1d(16, dtype=dtype), nn.ReLU(),
        nn.Dropout(p, seed=seed + 1), nn.Linear(16, 8, dtype=dtype, seed=seed + 2),
        nn.LayerNorm(8, dtype=dtype), nn.GELU(), nn.Linear(8, 1, dtype=dtype, seed=seed + 3))


def test_train_eval_propagate():
    model = _tabular()
    assert model.training and all(layer.training for layer in model.layers)
    assert model.eval() is model
    assert not model.training and not any(layer.training for layer in model.layers)
    model.train()
    assert all(layer.training for layer in model.layers)


def test_batchnorm_layer_matches_functional(dtype):
    bn = nn.BatchNorm1d(5, momentum=0.3, dtype=dtype)
    bn.gamma = np.linspace(0.5, 2, 5)
    x = np.random.default_rng(0).standard_normal((9, 5)).astype(dtype) + 2
    rm, rv = np.zeros(5, dtype), np.ones(5, dtype)
    y, sm, si = F.batch_norm_forward(x, bn.gamma, bn.beta, rm, rv, training=True, momentum=0.3)
    np.testing.assert_array_equal(bn.forward(x), y)
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    dy = np.ones((9, 5), dtype)
    dx, dg, db = F.batch_norm_backward(dy, x, bn.gamma, sm, si)
    np.testing.assert_array_equal(bn.backward(dy), dx)
    np.testing.assert_array_equal(bn.dgamma, dg)
    np.testing.assert_array_equal(bn.dbeta, db)
    assert [p.name for p in bn.parameters()] == ["gamma", "beta"]
    bn.eval()
    y_eval = bn.forward(x)
    ry, _, _ = R.batch_norm_forward(x, bn.gamma, bn.beta, rm.copy(), rv.copy(), training=False)
    np.testing.assert_allclose(y_eval, ry, rtol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, rm)   # eval does not update
    with pytest.raises(ValueError, match="more than 1 value"):
        bn.train().forward(x[:1])


def test_dropout_layer_modes_and_mask():
    layer = nn.Dropout(0.5, seed=3, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((40, 30))
    y1 = layer.forward(x).copy()
    np.testing.assert_array_equal(y1, F.dropout_forward(x, 0.5, seed=3, step=0))
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, y1 == 0)
    y2 = layer.forward(x)
    assert not np.array_equal(y1, y2) and layer.step == 2
    layer.eval()
    assert layer.forward(x) is x
    assert layer.backward(x) is x
    assert nn.Dropout(0.0).forward(np.ones((2, 2), np.float32)).sum() == 4


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_tabular_model_finite_differences(p):
    """The whole Linear-BN-ReLU-Dropout-Linear-LayerNorm-GELU-Linear chain in float64,
    training mode (the same dropout mask for every evaluation: the step is pinned)."""
    model = _tabular(np.float64, p=p, seed=4)
    x = np.random.default_rng(5).standard_normal((10, 12))
    dy = np.random.default_rng(6).standard_normal((10, 1))
    drop = model.layers[3]

    def f(v):
        drop.step = 0
        return float(np.sum(model.forward(v) * dy))
    f(x)
    dx = model.backward(dy, need_dx=True).copy()
    np.testing.assert_allclose(dx, numerical_grad(f, x), rtol=1e-5, atol=1e-8)
    bn = model.layers[1]
    f(x)
    model.backward(dy)
    dg = bn.dgamma.copy()

    def fg(g):
        bn.gamma = g
        return f(x)
    np.testing.assert_allclose(dg, numerical_grad(fg, bn.gamma.copy()), rtol=1e-5, atol=1e-8)


def test_running_stats_are_buffers_not_parameters():
    model = _tabular()
    names = [p.name for p in model.parameters()]
    assert "running_mean" not in names and names.count("gamma") == 2
    opt = optim.AdamW(model.parameters(), lr=0.1)
    x = np.random.default_rng(0).standard_normal((32, 12)).astype(np.float32)
    model.forward(x)
    model.backward(np.ones((32, 1), np.float32))
    rm = model.layers[1].running_mean.copy()
    opt.step()
    np.testing.assert_array_equal(model.layers[1].running_mean, rm)


def test_save_load_and_pickle_round_trip(tmp_path):
    model = _tabular(np.float64)
    x = np.random.default_rng(1).standard_normal((16, 12))
    for _ in range(3):
        model.forward(x)
    model.eval()
    want = model.forward(x).copy()
    model.save(tmp_path / "m.npz")
    loaded = cyprop.load(tmp_path / "m.npz").eval()
    np.testing.assert_array_equal(loaded.forward(x), want)
    np.testing.assert_array_equal(loaded.layers[1].running_var, model.layers[1].running_var)
    assert loaded.layers[3].seed == model.layers[3].seed
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.forward(x), want)


def test_non_affine_norms_take_the_model_dtype():
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.LayerNorm(4, elementwise_affine=False),
                          nn.Dropout(0.1))
    assert model.dtype == np.float64
    model.forward(np.ones((2, 3)))
    with pytest.raises(TypeError, match="one dtype"):
        nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.BatchNorm1d(4, affine=False))


def test_tabular_step_allocates_no_arrays():
    """The README's tabular recipe, in steady state: no array allocated."""
    model = nn.Sequential(nn.Linear(12, 32, seed=0), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(0.1, seed=1), nn.Linear(32, 1, seed=2))
    loss_fn = nn.BCEWithLogitsLoss()
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 12)).astype(np.float32)
    t = (rng.random((256, 1)) > 0.5).astype(np.float32)

    def step():
        loss_fn(model.forward(x), t)
        model.backward(loss_fn.backward())
        optim.clip_grad_norm_(model, 1.0)
        opt.step()
        sched.step()

    peak = traced_growth(step)[1]
    assert peak < 4096, peak


def test_norm_layer_constructors_reject():
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm((3, 4))
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="seed must be"):
        nn.Dropout(0.5, seed=-3)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        nn.BatchNorm1d(3).forward(np.ones((4, 2), np.float32))


def test_readme_tabular_example_runs_as_written(tmp_path, monkeypatch):
    """The README's tabular recipe, executed verbatim (in a temporary directory)."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    section = text.split("### A tabular recipe", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["accuracy"] > 0.9, scope["accuracy"]


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_relu_pair_is_fused_and_exact(training, dtype):
    """In a Sequential a BatchNorm1d -> ReLU pair runs as one pass each way; its
    results are the unfused functional chain's: the forward bit for bit, the
    gradients to an ulp or two (the fused and plain sum loops are compiled apart,
    and may contract their multiply-adds differently)."""
    bn = nn.BatchNorm1d(7, dtype=dtype)
    bn.gamma = np.linspace(0.5, 2, 7)
    bn.beta = np.linspace(-1, 1, 7)
    model = nn.Sequential(bn, nn.ReLU())
    assert model._steps[0][0] == bn._forward_relu and len(model._steps) == 1
    model.train(training)
    x = np.random.default_rng(2).standard_normal((70, 7)).astype(dtype)
    dy = np.random.default_rng(3).standard_normal((70, 7)).astype(dtype)
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    y = model.forward(x).copy()
    dx = model.backward(dy, need_dx=True).copy()
    z, sm, si = F.batch_norm_forward(x, bn.gamma, bn.beta, rm, rv, training=training)
    want_y = F.relu_forward(z)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(bn.running_mean, rm)
    g = F.relu_backward(dy, want_y)
    want_dx, want_dg, want_db = F.batch_norm_backward(g, x, bn.gamma, sm, si, training=training)
    ulps = 8 * np.finfo(dtype).eps
    for got, want in ((dx, want_dx), (bn.dgamma, want_dg), (bn.dbeta, want_db)):
        np.testing.assert_allclose(got, want, rtol=ulps, atol=ulps * np.abs(want).max())


# --- The one-call plan with every layer kind in it ---------------------------
def _every_layer(dtype, seed=0):
    return nn.Sequential(
        nn.Dropout(0.2, seed=seed), nn.Linear(13, 17, activation="gelu", dtype=dtype, seed=seed),
        nn.BatchNorm1d(17, momentum=0.3, dtype=dtype), nn.ReLU(), nn.Dropout(0.3, seed=seed + 1),
        nn.Linear(17, 9, dtype=dtype, seed=seed + 2), nn.LayerNorm(9, dtype=dtype), nn.SiLU(),
        nn.Linear(9, 11, activation="leaky_relu", dtype=dtype, seed=seed + 3),
        nn.BatchNorm1d(11, affine=False, dtype=dtype), nn.ELU(0.7), nn.LeakyReLU(-0.2),
        nn.Softplus(2.0, 1.5), nn.GELU("tanh"), nn.Tanh(),
        nn.Linear(11, 3, activation="softplus", dtype=dtype, seed=seed + 4),
        nn.Dropout(0.1, seed=seed + 5))


def _layer_by_layer(model):
    """The same model forced onto the layer-by-layer path."""
    twin = pickle.loads(pickle.dumps(model))
    twin._in_features = None
    return twin


def _state(model):
    out = [model._values, model._grads]
    for layer in model.layers:
        out += list(getattr(layer, "buffers", dict)().values())
        if isinstance(layer, nn.Dropout):
            out.append(np.array(layer.step))
    return [a.copy() for a in out]


@pytest.mark.parametrize("n", [0, 1, 2, 37, 256])
def test_plan_runs_every_layer_kind_as_the_layer_path_does(n, dtype, n_threads):
    """Linear with the new activations, BatchNorm1d (fused with a ReLU, and
    non-affine), LayerNorm, Dropout (first, inside, last), the activation layers:
    one kernel call each way, bit for bit the layer-by-layer results, through
    training steps, eval mode and back; N=0 and N=1 in eval only (an empty batch's
    parameter gradients are 0: the fuzz worker found the plan's steps refusing it)."""
    model = _every_layer(dtype)
    assert model._in_features == 13
    twin = _layer_by_layer(model)
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 13)).astype(dtype)
    modes = [True, True, False, True, False] if n > 1 else [False, False]
    for step, training in enumerate(modes):
        model.train(training)
        twin.train(training)
        dy = rng.standard_normal((n, 3)).astype(dtype)
        got = [model.forward(x).copy(), model.backward(dy, need_dx=step % 2 == 0)]
        want = [twin.forward(x).copy(), twin.backward(dy, need_dx=step % 2 == 0)]
        assert len(model._plans) == 1
        for g, w in zip(got + _state(model), want + _state(twin)):
            if w is None:
                assert g is None
            else:
                np.testing.assert_array_equal(g, w)


def test_plan_reads_layer_settings_at_each_forward(dtype):
    model = nn.Sequential(nn.Linear(6, 8, dtype=dtype, seed=0), nn.BatchNorm1d(8, dtype=dtype),
                          nn.Dropout(0.5, seed=3), nn.LeakyReLU(), nn.Linear(8, 2, dtype=dtype))
    twin = _layer_by_layer(model)
    x = np.random.default_rng(0).standard_normal((20, 6)).astype(dtype)
    for m in (model, twin):
        m.forward(x)
        m.layers[1].momentum, m.layers[1].eps = 0.5, 1e-3
        m.layers[2].p, m.layers[2].seed = 0.25, 99
        m.layers[2].step = 1000
        m.layers[3].negative_slope = 0.3
    np.testing.assert_array_equal(model.forward(x), twin.forward(x))
    np.testing.assert_array_equal(model.layers[1].running_var, twin.layers[1].running_var)
    assert model.layers[2].step == twin.layers[2].step == 1001


def test_plan_rejects_batchnorm_training_on_one_row():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model.forward(np.ones((5, 3), np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        model.forward(np.ones((1, 3), np.float32))
    model.eval()
    assert model.forward(np.ones((1, 3), np.float32)).shape == (1, 4)


def test_plan_checks_widths_at_construction():
    with pytest.raises(ValueError, match="takes 5 features but the layer before it gives 4"):
        nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(5))
    # element-wise layers first: the first norm fixes the input width
    model = nn.Sequential(nn.Dropout(0.1, seed=0), nn.LayerNorm(4), nn.Linear(4, 2))
    assert model._in_features == 4
    assert model.forward(np.ones((3, 4), np.float32)).shape == (3, 2)
