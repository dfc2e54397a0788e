import copy
import pickle
import numpy as np
import pytest

import cyprop
from cyprop import nn, optim
from conftest import numerical_grad, traced_growth


def _blobs(n=400, seed=0, dtype=np.float32):
    """Two well separated Gaussian blobs in 2-D, labels 0/1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 2)) + 4.0 * (2 * y[:, None] - 1)
    return x.astype(dtype), y


def _train_sgd(model, loss_fn, x, y, steps, lr=0.1):
    """``steps`` plain-API training steps with SGD; returns copies of the parameters."""
    opt = optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    return [p.value.copy() for p in model.parameters()]


def test_mlp_learns(dtype, n_threads):
    x, y = _blobs(dtype=dtype)
    model = nn.Sequential(nn.Linear(2, 16, activation="relu", dtype=dtype, seed=0),
                          nn.Linear(16, 2, dtype=dtype, seed=1))
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    first = loss_fn(model(x), y)
    for _ in range(100):
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    assert loss < first / 10
    assert (model(x).argmax(axis=1) == y).mean() > 0.98


def test_adam_regression_learns(dtype):
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, (256, 1)).astype(dtype)
    t = np.sin(x)
    model = nn.Sequential(nn.Linear(1, 32, dtype=dtype, seed=0), nn.Tanh(),
                          nn.Linear(32, 1, dtype=dtype, seed=1))
    loss_fn = nn.MSELoss()
    opt = optim.Adam(model.parameters(), lr=0.01)
    first = loss_fn(model(x), t)
    for _ in range(300):
        loss_fn(model(x), t)
        model.backward(loss_fn.backward())
        opt.step()
    assert loss_fn(model(x), t) < first / 10


@pytest.mark.parametrize("act_layer", [nn.ReLU, nn.Sigmoid, nn.Tanh])
def test_sequential_gradients_match_finite_differences(act_layer):
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Linear(3, 4, activation="sigmoid", dtype=np.float64, seed=0),
                          nn.Linear(4, 5, dtype=np.float64, seed=1), act_layer(),
                          nn.Linear(5, 3, activation="tanh", dtype=np.float64, seed=2))
    x = rng.standard_normal((6, 3))
    t = rng.integers(0, 3, 6)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(model(x), t)
    dx = model.backward(loss_fn.backward(), need_dx=True)
    grads = [p.grad.copy() for p in model.parameters()]

    def loss_at(_):
        return loss_fn(model(x), t)

    for p, g in zip(model.parameters(), grads):
        def f(v, p=p):
            saved = p.value.copy()
            p.value[...] = v
            out = loss_at(None)
            p.value[...] = saved
            return out
        np.testing.assert_allclose(g, numerical_grad(f, p.value), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dx, numerical_grad(lambda v: loss_fn(model(v), t), x),
                               rtol=1e-5, atol=1e-8)


def test_linear_init_and_parameters():
    layer = nn.Linear(50, 20, activation="relu", seed=0)
    assert layer.W.shape == (50, 20) and layer.W.dtype == np.float32
    assert np.abs(layer.W).max() <= np.sqrt(6 / 50)
    assert np.all(layer.b == 0)
    glorot = nn.Linear(50, 20, seed=0)
    assert np.abs(glorot.W).max() <= np.sqrt(6 / 70)
    np.testing.assert_array_equal(nn.Linear(4, 3, seed=7).W, nn.Linear(4, 3, seed=7).W)
    ps = layer.parameters()
    assert [p.name for p in ps] == ["W", "b"] and ps[0].value is layer.W and ps[0].grad is layer.dW
    assert len(nn.Linear(4, 3, bias=False).parameters()) == 1


def test_backward_overwrites_gradients():
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    x = np.ones((4, 3))
    layer(x)
    layer.backward(np.ones((4, 2)))
    first = layer.dW.copy()
    layer(x)
    layer.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(layer.dW, first)


def test_layer_call_is_forward():
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(layer(x).copy(), layer.forward(x))


@pytest.mark.parametrize("opt_cls", [optim.SGD, optim.Adam])
def test_steady_state_step_allocates_no_arrays(opt_cls):
    """After warm-up a training step allocates no array, not even a temporary one.

    tracemalloc sees NumPy's data buffers; the peak above the resting level
    during 20 steps stays below the size of the smallest array a step could
    allocate (its 512 x 2 float32 output, 4 KiB), so no array is allocated.
    What remains is Python objects (views, memoryview objects, ~1 KiB).
    """
    x, y = _blobs(512)
    model = nn.Sequential(nn.Linear(2, 32, activation="relu", seed=0), nn.ReLU(),
                          nn.Linear(32, 2, seed=1))
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = opt_cls(model.parameters(), lr=0.01)

    def step():
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()

    grown, peak = traced_growth(step)
    assert grown < 4096, grown
    assert peak < 4096, peak


def test_thread_count_does_not_change_training(dtype):
    x, y = _blobs(300, dtype=dtype)
    results = []
    for n in (1, 2):
        with cyprop.threads(n):
            model = nn.Sequential(nn.Linear(2, 64, activation="tanh", dtype=dtype, seed=0),
                                  nn.Linear(64, 2, dtype=dtype, seed=1))
            results.append(_train_sgd(model, nn.SoftmaxCrossEntropy(), x, y, steps=5))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Linear(5, 7, activation="relu", dtype=np.float64, seed=0),
                          nn.Linear(7, 3, activation="sigmoid", dtype=np.float64, seed=1),
                          nn.Linear(3, 4, dtype=np.float64, seed=2))
    x = rng.standard_normal((9, 5))
    t = rng.integers(0, 4, 9)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn(model(x), t)
    model.backward(loss_fn.backward())
    ws = [torch.tensor(p.value, requires_grad=True) for p in model.parameters()]
    h = torch.relu(torch.tensor(x) @ ws[0] + ws[1])
    h = torch.sigmoid(h @ ws[2] + ws[3])
    out = h @ ws[4] + ws[5]
    tl = torch.nn.functional.cross_entropy(out, torch.tensor(t))
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    for p, w in zip(model.parameters(), ws):
        np.testing.assert_allclose(p.grad, w.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_save_load_round_trip(tmp_path, dtype):
    model = nn.Sequential(nn.Linear(4, 6, activation="tanh", dtype=dtype, seed=0), nn.ReLU(),
                          nn.Linear(6, 3, bias=False, dtype=dtype, seed=1), nn.Sigmoid())
    path = tmp_path / "model.cyprop"
    model.save(path)
    assert path.exists()  # no suffix added
    back = cyprop.load(path)
    assert [type(l) for l in back.layers] == [type(l) for l in model.layers]
    for a, b in zip(model.parameters(), back.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
        assert a.value.dtype == b.value.dtype
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(dtype)
    np.testing.assert_array_equal(back(x), model(x))


def test_load_rejects_corrupt_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a valid cyprop model file"):
        cyprop.load(junk)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match="no cyprop description"):
        cyprop.load(foreign)
    good = tmp_path / "good.npz"
    nn.Sequential(nn.Linear(2, 2, seed=0)).save(good)
    import zipfile as zf
    with zf.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    bad = tmp_path / "bad.npz"
    with zf.ZipFile(bad, "w") as z:  # right description, weights of the wrong shape
        for n, data in members.items():
            if n == "layer0.W.npy":
                import io
                buf = io.BytesIO()
                np.save(buf, np.zeros((3, 3), np.float32))
                data = buf.getvalue()
            z.writestr(n, data)
    with pytest.raises(ValueError, match="layer0.W"):
        cyprop.load(bad)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __cyprop__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a valid cyprop model file"):
        cyprop.load(pickled)
    with pytest.raises(FileNotFoundError):
        cyprop.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("how", ["pickle0", "pickle1", "pickle5", "deepcopy"])
def test_pickled_and_copied_models_train_like_the_original(how):
    # the copies get fresh call locks and workspaces and train to the same values
    x, y = _blobs(50)
    model = nn.Sequential(nn.Linear(2, 8, activation="relu", seed=0), nn.Linear(8, 2, seed=1))
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(model(x), y)
    if how == "deepcopy":
        copies = copy.deepcopy((model, loss_fn))
    else:
        copies = pickle.loads(pickle.dumps((model, loss_fn), protocol=int(how[-1])))
    results = [_train_sgd(m, lf, x, y, steps=3) for m, lf in ((model, loss_fn), copies)]
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
