"""Bad input raises a clear error; unusual but valid input gives the ordinary result."""
import numpy as np
import pytest

from cyprop import functional as F
from cyprop import nn, optim

f32, f64 = np.float32, np.float64


def _lin(dtype=f64):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal((3, 2)).astype(dtype),
            rng.standard_normal(2).astype(dtype))


# --------------------------------------------------------------------- linear
@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x=np.zeros(3)), ValueError, r"x must be 2-D, got shape \(3,\)"),
    (dict(x=np.zeros((4, 5))), ValueError, r"x has 5 features .* W expects 3"),
    (dict(W=np.zeros((3, 2, 1))), ValueError, "W must be 2-D"),
    (dict(b=np.zeros(3)), ValueError, r"b must have shape \(2,\)"),
    (dict(W=np.zeros((3, 2), f32)), TypeError, "W has dtype float32 but x has dtype float64"),
    (dict(x=np.zeros((4, 3), int)), TypeError, "x must be a float32 or float64 array, got dtype int64"),
    (dict(x=np.zeros((4, 3), complex)), TypeError, "complex128"),
    (dict(x=np.zeros((4, 3), object)), TypeError, "object"),
    (dict(x=np.zeros((4, 3), np.float16)), TypeError, "float16"),
    (dict(x=[["a", "b", "c"]] * 4), TypeError, "real numbers"),
    (dict(x=[[1, 2], [3]]), TypeError, "array-like"),
    (dict(activation="swish"), ValueError, "activation must be one of"),
    (dict(out=np.zeros((4, 3))), ValueError, r"out must have shape \(4, 2\), got \(4, 3\)"),
    (dict(out=np.zeros((4, 2), f32)), TypeError, "out has dtype float32 but x has dtype float64"),
    (dict(out=np.zeros((2, 4)).T), ValueError, "out must be C-contiguous"),
    (dict(out=[[0.0] * 2] * 4), TypeError, "out must be a numpy.ndarray"),
])
def test_linear_forward_rejects(kwargs, exc, match):
    x, W, b = _lin()
    args = dict(x=x, W=W, b=b)
    args.update({k: v for k, v in kwargs.items() if k in args})
    opts = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(exc, match=match):
        F.linear_forward(args["x"], args["W"], args["b"], **opts)


def test_read_only_out_raises():
    x, W, b = _lin()
    out = np.zeros((4, 2))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        F.linear_forward(x, W, b, out=out)


def test_overlapping_out_raises():
    x, W, b = _lin()
    buf = np.zeros((4, 3))
    with pytest.raises(ValueError, match="out overlaps x"):
        F.linear_forward(buf, np.zeros((3, 3)), out=buf)
    with pytest.raises(ValueError, match="dW overlaps"):
        F.linear_backward(np.zeros((4, 2)), x, W, dW=W)


def test_linear_backward_rejects():
    x, W, b = _lin()
    with pytest.raises(ValueError, match=r"dy must have shape \(4, 2\)"):
        F.linear_backward(np.zeros((4, 3)), x, W)
    with pytest.raises(ValueError, match="y .* is required when activation='relu'"):
        F.linear_backward(np.zeros((4, 2)), x, W, activation="relu")
    with pytest.raises(ValueError, match="y must have the shape of dy"):
        F.linear_backward(np.zeros((4, 2)), x, W, y=np.zeros((4, 1)), activation="relu")
    with pytest.raises(ValueError, match=r"db must have shape \(2,\)"):
        F.linear_backward(np.zeros((4, 2)), x, W, db=np.zeros(3))


# ----------------------------------------------------------- activations etc.
@pytest.mark.parametrize("fn", [F.relu_forward, F.sigmoid_forward, F.tanh_forward, F.softmax])
def test_elementwise_rejects(fn):
    with pytest.raises(TypeError, match="int64"):
        fn(np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="out must have shape"):
        fn(np.zeros((2, 2)), out=np.zeros((2, 3)))
    ro = np.zeros((2, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn(np.zeros((2, 2)), out=ro)
    buf = np.zeros(8)
    with pytest.raises(ValueError, match="out overlaps x; it may only be x itself"):
        fn(buf[0:4].reshape(2, 2), out=buf[1:5].reshape(2, 2))


@pytest.mark.parametrize("fn", [F.relu_backward, F.sigmoid_backward, F.tanh_backward])
def test_activation_backward_rejects(fn):
    with pytest.raises(ValueError, match="same shape"):
        fn(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="y has dtype float32 but dy has dtype float64"):
        fn(np.zeros((2, 2)), np.zeros((2, 2), f32))


def test_softmax_rejects_3d():
    with pytest.raises(ValueError, match="x must be 1 or 2-D"):
        F.softmax(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("target, exc, match", [
    (np.array([0, 1, 2]), ValueError, r"target must have shape \(2,\) or \(2, 3\)"),
    (np.zeros((2, 4)), ValueError, r"must have the logits' shape \(2, 3\)"),
    (np.zeros((2, 3), f32), TypeError, "target has dtype float32 but logits has dtype float64"),
    (np.array([True, False]), TypeError, "must be integers, got dtype bool"),
    (np.array(["a", "b"]), TypeError, "must be integers"),
    (np.zeros((2, 3, 1)), ValueError, "1-D class indices or 2-D probabilities"),
    (np.array([0, 3]), ValueError, r"1 label\(s\) outside \[0, 3\), e.g. 3"),
])
def test_cross_entropy_rejects(target, exc, match):
    with pytest.raises(exc, match=match):
        F.softmax_cross_entropy(np.zeros((2, 3)), target)


@pytest.mark.parametrize("fn, args", [
    (F.softmax_cross_entropy, (np.zeros((2, 3)), [0, 1])),
    (F.mse_loss, (np.zeros(2), np.zeros(2))),
])
def test_bad_reduction(fn, args):
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'avg'"):
        fn(*args, reduction="avg")


def test_mse_rejects():
    with pytest.raises(ValueError, match="same shape"):
        F.mse_loss(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="target has dtype float32"):
        F.mse_loss(np.zeros(2), np.zeros(2, f32))
    with pytest.raises(ValueError, match="grad_out must have shape"):
        F.mse_loss(np.zeros(2), np.zeros(2), grad_out=np.zeros(3))


def test_optimizer_steps_reject():
    p = np.zeros(3)
    with pytest.raises(ValueError, match="momentum_buffer is required"):
        F.sgd_step(p, np.zeros(3), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="grad must have the shape of param"):
        F.sgd_step(p, np.zeros(4), lr=0.1)
    with pytest.raises(TypeError, match="param must be a numpy.ndarray"):
        F.sgd_step([0.0, 0.0], [0.0, 0.0], lr=0.1)
    with pytest.raises(ValueError, match="step must be an int >= 1"):
        F.adam_step(p, np.zeros(3), np.zeros(3), np.zeros(3), step=0)
    with pytest.raises(TypeError, match="exp_avg must have dtype float64"):
        F.adam_step(p, np.zeros(3), np.zeros(3, f32), np.zeros(3), step=1)


# ------------------------------------------------------------ layers / optim
@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((0, 3), {}, ValueError, "in_features must be >= 1, got 0"),
    ((3, -1), {}, ValueError, "out_features must be >= 1, got -1"),
    ((2.5, 3), {}, TypeError, "in_features must be a positive int"),
    ((3, 3), dict(activation="swish"), ValueError, "activation must be one of"),
    ((3, 3), dict(dtype=np.int32), TypeError, "dtype must be float32 or float64"),
])
def test_linear_layer_rejects(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nn.Linear(*args, **kwargs)


def test_layer_call_errors():
    layer = nn.Linear(3, 2, dtype=f32, seed=0)
    with pytest.raises(ValueError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.zeros((4, 2), f32))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\), got \(4, 5\)"):
        layer(np.zeros((4, 5), f32))
    with pytest.raises(TypeError, match="Linear has dtype float32 but x has dtype float64"):
        layer(np.zeros((4, 3)))
    layer(np.zeros((4, 3), f32))
    with pytest.raises(ValueError, match=r"dy must have the shape of the last forward output \(4, 2\)"):
        layer.backward(np.zeros((5, 2), f32))
    for cls in (nn.ReLU, nn.SoftmaxCrossEntropy, nn.MSELoss):
        with pytest.raises(ValueError, match="called before forward"):
            cls().backward() if cls is not nn.ReLU else cls().backward(np.zeros(2, f32))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="none")


def test_sequential_rejects():
    with pytest.raises(ValueError, match="at least one layer"):
        nn.Sequential()
    with pytest.raises(TypeError, match="layer 1 must be a cyprop.nn.Module"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)
    with pytest.raises(TypeError, match="one dtype"):
        nn.Sequential(nn.Linear(2, 2, dtype=f32), nn.Linear(2, 2, dtype=f64))


def test_optimizers_reject():
    params = nn.Linear(2, 2).parameters()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be a number > 0"):
        optim.SGD(params, lr=0)
    with pytest.raises(ValueError, match="momentum must be a finite number >= 0"):
        optim.SGD(params, lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0, 1\)"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="params\\[0\\] must have ndarray"):
        optim.Adam([object()])


# -------------------------------------------------- unusual but valid input
def test_non_contiguous_fortran_and_lists_match(dtype=f64):
    x, W, b = _lin()
    want = F.linear_forward(x, W, b, activation="tanh")
    np.testing.assert_array_equal(F.linear_forward(np.asfortranarray(x), W, b, activation="tanh"), want)
    wide = np.zeros((4, 6))
    wide[:, ::2] = x
    np.testing.assert_array_equal(F.linear_forward(wide[:, ::2], W, b, activation="tanh"), want)
    np.testing.assert_array_equal(F.linear_forward(x.tolist(), W, b.tolist(), activation="tanh"), want)
    loss, g = F.softmax_cross_entropy(want, [0, 1, 1, 0])
    loss2, g2 = F.softmax_cross_entropy(np.asfortranarray(want), np.array([0, 1, 1, 0], np.int8))
    assert loss == loss2
    np.testing.assert_array_equal(g, g2)


def test_lists_default_to_float64():
    y = F.relu_forward([[-1, 2], [3, -4]])
    assert y.dtype == f64
    np.testing.assert_array_equal(y, [[0, 2], [3, 0]])


def test_nan_and_inf_propagate_as_numpy(dtype=f64):
    x, W, b = _lin()
    x[1, 0] = np.nan
    x[2, 1] = np.inf
    y = F.linear_forward(x, W, b)
    with np.errstate(invalid="ignore"):
        want = x @ W + b
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
    z = np.array([[np.nan, 0.0, 1.0], [0.0, 1.0, 2.0]])
    loss, g = F.softmax_cross_entropy(z, [1, 2], reduction="sum")
    assert np.isnan(loss) and np.isnan(g[0]).all() and np.isfinite(g[1]).all()
    loss, g = F.softmax_cross_entropy(np.array([[np.inf, 0.0]]), [0])
    assert np.isnan(loss)  # inf - inf, as NumPy's max-subtracted softmax gives
    loss, g = F.softmax_cross_entropy(np.array([[-np.inf, 0.0]]), [0])
    assert loss == np.inf and np.isfinite(g).all()


@pytest.mark.parametrize("dtype", [f32, f64])
def test_empty_batch_through_a_model(dtype):
    model = nn.Sequential(nn.Linear(3, 4, activation="relu", dtype=dtype, seed=0), nn.Sigmoid(),
                          nn.Linear(4, 2, dtype=dtype, seed=1))
    loss_fn = nn.SoftmaxCrossEntropy(reduction="sum")
    out = model(np.zeros((0, 3), dtype))
    assert out.shape == (0, 2)
    assert loss_fn(out, np.zeros(0, int)) == 0
    dx = model.backward(loss_fn.backward(), need_dx=True)
    assert dx.shape == (0, 3)
    for p in model.parameters():
        np.testing.assert_array_equal(p.grad, 0)


@pytest.mark.parametrize("dtype", [f32, f64])
def test_model_fast_path_declines_what_it_cannot_take(dtype):
    # once a plan exists for a batch size, Sequential runs the C-checked fast
    # path; anything else must fall back to the validating path, not misbehave
    other = f64 if dtype == f32 else f32
    model = nn.Sequential(nn.Linear(3, 4, activation="tanh", dtype=dtype, seed=0),
                          nn.Linear(4, 2, dtype=dtype, seed=1))
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(dtype)
    want = model(x).copy()
    dy = np.ones((5, 2), dtype)
    model.backward(dy)
    want_dW = model.layers[0].dW.copy()
    np.testing.assert_array_equal(model(np.asfortranarray(x)), want)   # copied to C order
    np.testing.assert_array_equal(model(x.tolist()), want)             # converted
    model.backward(np.asfortranarray(dy))
    np.testing.assert_array_equal(model.layers[0].dW, want_dW)
    with pytest.raises(TypeError, match="dtype"):
        model(x.astype(other))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        model(np.zeros((5, 4), dtype))
    with pytest.raises(ValueError, match="must be 2-D|shape"):
        model(np.zeros(15, dtype))
    model(x)
    with pytest.raises(ValueError, match="shape"):
        model.backward(np.ones((5, 3), dtype))
    with pytest.raises(TypeError, match="dtype"):
        model.backward(dy.astype(other))
    with pytest.raises(ValueError, match="shape"):
        model.backward(np.ones((4, 2), dtype))


def test_kernels_check_raw_arrays_themselves():
    # the per-step kernels take ndarrays and read their data pointers; their
    # own C checks must stop a wrong array even when functional is bypassed
    from cyprop import _mse, _optim, _softmax_ce
    p, g = np.zeros(8, f32), np.zeros(8, f32)
    with pytest.raises(ValueError, match="grad"):
        _optim.sgd_step(p, np.zeros(7, f32), p, 0.1, 0.0, 0.0, 0.0, False, True, 1)
    with pytest.raises(ValueError, match="grad"):
        _optim.sgd_step(p, np.zeros(8, f64), p, 0.1, 0.0, 0.0, 0.0, False, True, 1)
    with pytest.raises(ValueError, match="param"):
        ro = np.zeros(8, f32)
        ro.flags.writeable = False
        _optim.sgd_step(ro, g, ro, 0.1, 0.0, 0.0, 0.0, False, True, 1)
    with pytest.raises(ValueError, match="exp_avg_sq"):
        _optim.adam_step(p, g, g.copy(), np.zeros(16, f32)[::2], None, 0.1, 0.9, 0.99, 1e-8,
                         0.0, False, 0.1, 0.01, 1)
    with pytest.raises(TypeError, match="pred"):
        _mse.mse(np.zeros(3, np.int64), g, g, True, 1.0, 1)
    with pytest.raises(ValueError, match="grad"):
        _mse.mse(g, g, np.zeros(9, f32), True, 1.0, 1)
    z = np.zeros((4, 3), f32)
    with pytest.raises(ValueError, match="target"):
        _softmax_ce.softmax_ce_index(z, np.zeros(4, np.int32), z, 1.0, 1)
    with pytest.raises(ValueError, match="dlogits"):
        _softmax_ce.softmax_ce_index(z, np.zeros(4, np.intp), np.zeros((3, 4), f64), 1.0, 1)
    with pytest.raises(ValueError, match="2-D"):
        _softmax_ce.softmax_ce_index(np.zeros(4, f32), np.zeros(4, np.intp), z, 1.0, 1)


def test_linear_and_activation_kernels_check_raw_arrays_themselves():
    # the same for the linear and element-wise entry points (C checks, no memoryviews)
    from cyprop import _activations, _linear
    x, W, b = np.zeros((4, 3), f32), np.zeros((3, 2), f32), np.zeros(2, f32)
    y = np.zeros((4, 2), f32)
    _linear.linear_forward(x, W, b, True, y, 0, 1)
    with pytest.raises(ValueError, match="fit together"):
        _linear.linear_forward(x, np.zeros((4, 2), f32), b, True, y, 0, 1)
    with pytest.raises(ValueError, match="fit together"):
        _linear.linear_forward(np.zeros(12, f32), W, b, True, y, 0, 1)
    with pytest.raises(ValueError, match="^y: expected"):   # too small for (4, 2): never written
        _linear.linear_forward(x, W, b, True, np.zeros((3, 2), f32), 0, 1)
    with pytest.raises(ValueError, match="^b: expected"):
        _linear.linear_forward(x, W, np.zeros(1, f32), True, y, 0, 1)
    _linear.linear_forward(x, W, np.zeros(1, f32), False, y, 0, 1)   # b unused: not checked
    with pytest.raises(ValueError, match="^W: expected"):
        _linear.linear_forward(x, np.zeros((3, 2), f64), b, True, y, 0, 1)
    with pytest.raises(TypeError, match="x"):
        _linear.linear_forward(x.astype(np.int32), W, b, True, y, 0, 1)
    args = [y, x, W, y, 1, y.copy(), x.copy(), True, W.copy(), b.copy(), True, 1]
    assert _linear.linear_backward(*args) == 0
    for i, name in [(0, "dy"), (3, "y"), (5, "delta"), (6, "dx"), (8, "dW"), (9, "db")]:
        bad = list(args)
        bad[i] = np.zeros(1, f32)
        with pytest.raises(ValueError, match=f"^{name}: expected"):
            _linear.linear_backward(*bad)
    ro = y.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^delta: expected a C-contiguous writeable"):
        _linear.linear_backward(y, x, W, y, 1, ro, x.copy(), True, W.copy(), b.copy(), True, 1)
    with pytest.raises(ValueError, match="^y: expected"):
        _activations.activation_forward(x, np.zeros((4, 2), f32), 1, 1)
    with pytest.raises(ValueError, match="^y: expected"):
        _activations.activation_forward(x, x.astype(f64), 1, 1)
    with pytest.raises(ValueError, match="^dx: expected"):
        _activations.activation_backward(x, x, np.zeros((4, 3), f32)[:, :2].copy(), 1, 1)
    with pytest.raises(TypeError, match="dy"):
        _activations.activation_backward([1.0], x, x, 1, 1)
    from cyprop import _softmax_ce
    with pytest.raises(ValueError, match="^out: expected"):
        _softmax_ce.softmax(x, np.zeros((4, 2), f32), 1)
    with pytest.raises(ValueError, match="2-D"):
        _softmax_ce.softmax(np.zeros(3, f32), np.zeros(3, f32), 1)
    z = np.zeros((4, 3), f32)
    with pytest.raises(ValueError, match="^target: expected"):
        _softmax_ce.softmax_ce_proba(z, np.zeros((4, 2), f32), z.copy(), 1.0, 1)
    with pytest.raises(ValueError, match="^dlogits: expected"):
        _softmax_ce.softmax_ce_proba(z, z, z.astype(f64), 1.0, 1)


@pytest.mark.parametrize("dtype", [f32, f64])
def test_loss_layer_fast_path_matches_and_declines(dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 5)).astype(dtype)
    y = rng.integers(0, 5, 7)
    loss_fn = nn.SoftmaxCrossEntropy()
    for logits, target in [(z, y), (np.asfortranarray(z), y), (z, y.astype(np.int32)),
                           (z, y.tolist()), (z.tolist(), y)]:
        want_loss, want_g = F.softmax_cross_entropy(logits, target)  # lists: float64
        assert loss_fn(logits, target) == want_loss
        np.testing.assert_array_equal(loss_fn.backward(), want_g)
    with pytest.raises(ValueError, match=r"outside \[0, 5\)"):
        loss_fn(z, np.where(np.arange(7) == 3, 5, y))
    with pytest.raises(ValueError, match=r"outside \[0, 5\)"):
        loss_fn(z, np.where(np.arange(7) == 3, -1, y))
    # (N, 1) and (1, N) labels hold N indices, but are not 1-D: the full path decides
    for bad in (y[:, None], y[None, :]):
        with pytest.raises(ValueError, match="target"):
            loss_fn(z, bad)
    # the gradient workspace fed back as logits: computed in place, as the functional API does
    g = loss_fn.backward()
    want = F.softmax_cross_entropy(g.copy(), y)
    assert loss_fn(g, y) == want[0]
    np.testing.assert_array_equal(loss_fn.backward(), want[1])


def test_loss_layer_reuses_its_workspace_only_when_it_fits():
    # the last call's gradient workspace is tried first: a different shape of
    # the same size, or another dtype, must not be written into it
    rng = np.random.default_rng(1)
    loss_fn = nn.SoftmaxCrossEntropy(reduction="sum")
    cases = [((4, 6), f32), ((6, 4), f32), ((24, 1), f32), ((6, 4), f64), ((6, 4), f32),
             ((4, 6), f32)]
    for shape, dtype in cases:
        z = rng.standard_normal(shape).astype(dtype)
        y = rng.integers(0, shape[1], shape[0])
        want_loss, want_g = F.softmax_cross_entropy(z, y, reduction="sum")
        assert loss_fn(z, y) == want_loss
        g = loss_fn.backward()
        assert g.shape == shape and g.dtype == dtype
        np.testing.assert_array_equal(g, want_g)


def test_non_native_byte_order_is_rejected():
    # '>f8' is float64 with the other byte order: not a dtype the kernels read
    other = np.dtype(np.float64).newbyteorder()
    with pytest.raises(TypeError, match="must be a float32 or float64 array"):
        F.relu_forward(np.zeros((2, 2), other))
    with pytest.raises(TypeError, match="must be a float32 or float64 array"):
        F.linear_forward(np.zeros((2, 2)), np.zeros((2, 2), other))


@pytest.mark.parametrize("dims, name", [((2**31, 1, 1), "N"), ((1, 2**31, 1), "in_features"),
                                        ((1, 1, 2**31), "out_features")])
def test_gemm_dimensions_beyond_int32_are_named(dims, name):
    from cyprop._validation import check_blas_dims
    check_blas_dims(2**31 - 1, 2**31 - 1, 2**31 - 1)
    with pytest.raises(ValueError, match=f"{name}={2**31} exceeds the BLAS limit"):
        check_blas_dims(*dims)
