"""Sequential.from_torch / to_torch: the same function on both sides, round trips exact."""
import numpy as np
import pytest

from cyprop import nn

torch = pytest.importorskip("torch")


def _torch_model(dtype):
    tn = torch.nn
    return tn.Sequential(tn.Linear(6, 16), tn.BatchNorm1d(16, momentum=0.2), tn.ReLU(),
                         tn.Dropout(0.25), tn.Linear(16, 12), tn.LayerNorm(12), tn.GELU("tanh"),
                         tn.Sequential(tn.Linear(12, 10), tn.LeakyReLU(0.2)), tn.Linear(10, 8),
                         tn.ELU(0.7), tn.Linear(8, 8), tn.SiLU(), tn.Linear(8, 5),
                         tn.Softplus(2.0, 10.0), tn.Sigmoid(), tn.Identity(), tn.Tanh()).to(dtype)


@pytest.mark.parametrize("tdtype", [torch.float32, torch.float64])
def test_from_torch_computes_what_torch_computes(tdtype):
    torch.manual_seed(0)
    tm = _torch_model(tdtype)
    with torch.no_grad():   # running statistics that are not the defaults
        tm[1].running_mean.uniform_(-1, 1)
        tm[1].running_var.uniform_(0.5, 2)
    tm.eval()
    model = nn.Sequential.from_torch(tm)
    dtype = np.float32 if tdtype == torch.float32 else np.float64
    assert model.dtype == dtype and not model.training
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(dtype)
    want = tm(torch.tensor(x)).detach().numpy()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(model(x), want, rtol=rtol, atol=rtol)


def test_training_mode_gradients_match():
    torch.manual_seed(1)
    tn = torch.nn
    tm = tn.Sequential(tn.Linear(5, 9), tn.BatchNorm1d(9), tn.Tanh(), tn.Linear(9, 3)).double()
    model = nn.Sequential.from_torch(tm)
    assert model.training
    x = np.random.default_rng(1).standard_normal((11, 5))
    y = np.arange(11) % 3
    out = tm(torch.tensor(x))
    torch.nn.functional.cross_entropy(out, torch.tensor(y)).backward()
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    np.testing.assert_allclose(model.layers[0].dW, tm[0].weight.grad.numpy().T, rtol=1e-10)
    np.testing.assert_allclose(model.layers[1].dgamma, tm[1].weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(model.layers[1].running_mean, tm[1].running_mean.numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_cyprop_torch_cyprop(dtype):
    model = nn.Sequential(nn.Linear(4, 8, activation="relu", dtype=dtype, seed=0),
                          nn.BatchNorm1d(8, dtype=dtype), nn.Linear(8, 6, activation="gelu",
                                                                   dtype=dtype, seed=1),
                          nn.LayerNorm(6, dtype=dtype), nn.Dropout(0.1),
                          nn.Linear(6, 5, activation="softplus", dtype=dtype, seed=2),
                          nn.Linear(5, 3, bias=False, dtype=dtype, seed=3), nn.Sigmoid())
    model.layers[1].running_var = np.linspace(0.5, 2, 8)
    model.eval()
    tm = model.to_torch()
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    assert all(p.dtype == tdtype for p in tm.parameters()) and not tm.training
    x = np.random.default_rng(2).standard_normal((9, 4)).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(tm(torch.tensor(x)).detach().numpy(), model(x), rtol=rtol,
                               atol=rtol)
    back = nn.Sequential.from_torch(tm)
    np.testing.assert_array_equal(back._values, model._values)   # exact copies both ways
    assert type(back.layers[1]) is nn.ReLU   # the fused activation, a layer of its own
    np.testing.assert_array_equal(back.layers[2].running_var, model.layers[1].running_var)


def test_unsupported_layers_and_dtypes_are_clear_errors():
    tn = torch.nn
    with pytest.raises(TypeError, match="Conv1d.*no cyprop counterpart"):
        nn.Sequential.from_torch(tn.Sequential(tn.Conv1d(1, 1, 3)))
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.Sequential.from_torch(tn.Sequential(tn.Linear(2, 2).half()))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        nn.Sequential.from_torch("not a module")
    with pytest.raises(TypeError, match="last dimension"):
        nn.Sequential.from_torch(tn.LayerNorm((2, 3)))
    with pytest.raises(ValueError, match="no layers"):
        nn.Sequential.from_torch(tn.Sequential(tn.Identity()))
