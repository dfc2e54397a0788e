"""Sequential.to_onnx: the file passes onnx.checker and onnxruntime computes cyprop's forward."""
import numpy as np
import pytest

from cyprop import nn

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a Where's unselected branch
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _every_layer(dtype, erf=True):
    return nn.Sequential(
        nn.Linear(6, 16, activation="relu", dtype=dtype, seed=0), nn.BatchNorm1d(16, dtype=dtype),
        nn.Dropout(0.3), nn.Linear(16, 12, activation="gelu" if erf else "gelu_tanh",
                                   dtype=dtype, seed=1),
        nn.LayerNorm(12, dtype=dtype), nn.GELU("none" if erf else "tanh"),
        nn.Linear(12, 10, activation="tanh", dtype=dtype, seed=2),
        nn.LeakyReLU(0.2), nn.Linear(10, 9, activation="sigmoid", dtype=dtype, seed=3), nn.ELU(0.5),
        nn.Linear(9, 8, activation="silu", dtype=dtype, seed=4), nn.SiLU(),
        nn.Linear(8, 8, activation="softplus", dtype=dtype, seed=5), nn.Softplus(2.0, 3.0),
        nn.Linear(8, 7, activation="leaky_relu", dtype=dtype, seed=6),
        nn.Linear(7, 7, activation="elu", dtype=dtype, seed=7),
        nn.Linear(7, 6, activation="gelu_tanh", dtype=dtype, seed=8), nn.ReLU(), nn.Sigmoid(),
        nn.Tanh(), nn.Linear(6, 6, dtype=dtype, seed=10),
        nn.LayerNorm(6, elementwise_affine=False, dtype=dtype),
        nn.BatchNorm1d(6, affine=False, dtype=dtype),
        nn.Linear(6, 3, bias=False, dtype=dtype, seed=9))


def _run_onnxruntime(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["output"], {"input": x})[0]


def _run_reference(path, x):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(str(path)).run(["output"], {"input": x})[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("runtime", ["onnxruntime", "reference"])
def test_the_runtime_matches_cyprop(dtype, opset, runtime, tmp_path):
    # onnxruntime has no float64 Erf kernel: its float64 model has tanh-form GELUs
    model = _every_layer(dtype, erf=not (runtime == "onnxruntime" and dtype == np.float64))
    rng = np.random.default_rng(0)
    for layer in model.layers:   # running statistics that are not the defaults
        if isinstance(layer, nn.BatchNorm1d):
            layer.running_mean = rng.uniform(-1, 1, layer.num_features)
            layer.running_var = rng.uniform(0.5, 2, layer.num_features)
    model.eval()
    path = tmp_path / "m.onnx"
    proto = model.to_onnx(path, opset=opset)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    assert proto.opset_import[0].version == opset
    run = _run_onnxruntime if runtime == "onnxruntime" else _run_reference
    for n in (1, 13):
        x = rng.standard_normal((n, 6)).astype(dtype) * 3
        got = run(path, x)
        assert got.dtype == dtype and got.shape == (n, 3)
        # float64: 1e-12, but the erf-form GELU cancels in its negative tail (see nn._onnx)
        tol = 1e-5 if dtype == np.float32 else 1e-12 if runtime == "onnxruntime" else 1e-9
        np.testing.assert_allclose(got, model(x), rtol=tol, atol=tol)


def test_float64_without_erf_gelu_agrees_to_1e_12_in_both_runtimes(tmp_path):
    model = _every_layer(np.float64, erf=False).eval()
    path = tmp_path / "m.onnx"
    model.to_onnx(path)
    x = np.random.default_rng(1).standard_normal((17, 6)) * 3
    for run in (_run_onnxruntime, _run_reference):
        np.testing.assert_allclose(run(path, x), model(x), rtol=1e-12, atol=1e-12)


def test_elu_and_softplus_tails(tmp_path):
    model = nn.Sequential(nn.Linear(1, 1, bias=False, dtype=np.float64), nn.ELU(0.7))
    model.layers[0].W = np.ones((1, 1))
    model.to_onnx(tmp_path / "e.onnx")
    x = np.array([[-1e3], [-30.0], [-1e-9], [0.0], [1e-9], [2.0]])
    np.testing.assert_allclose(_run_onnxruntime(tmp_path / "e.onnx", x), model(x), rtol=1e-14)


def test_softplus_threshold_branch(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2, dtype=np.float64, seed=0), nn.Softplus(1.5, 1.0))
    model.layers[0].W = np.eye(2) * 10
    path = tmp_path / "s.onnx"
    model.to_onnx(path)
    x = np.array([[-3.0, 0.05], [0.5, 3.0]])   # softplus(-45) = 2.9e-20: log1p, not log
    np.testing.assert_allclose(_run_onnxruntime(path, x), model(x), rtol=1e-12)


def test_bad_opset_and_layers(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="opset must be between 17"):
        model.to_onnx(tmp_path / "a.onnx", opset=11)
    with pytest.raises(TypeError, match="opset must be an int"):
        model.to_onnx(tmp_path / "a.onnx", opset="17")

    class Custom(nn.Module):
        dtype = np.dtype(np.float32)

        def forward(self, x):
            return x
    with pytest.raises(TypeError, match="cyprop.nn's layers"):
        nn.Sequential(nn.Linear(2, 2), Custom()).to_onnx(tmp_path / "b.onnx")
