import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import reference as R
from conftest import assert_close, numerical_grad

NAMES = ["relu", "sigmoid", "tanh"]
SHAPES = [(1,), (1, 1), (7, 3), (5, 1, 9), (130, 257)]


def _fns(mod, name):
    return getattr(mod, f"{name}_forward"), getattr(mod, f"{name}_backward")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_match_reference(name, shape, dtype, n_threads):
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    fwd, bwd = _fns(F, name)
    rfwd, rbwd = _fns(R, name)
    y = fwd(x)
    assert y.dtype == dtype and y.shape == shape
    assert_close(y, rfwd(x), dtype)
    assert_close(bwd(dy, y), rbwd(dy, y), dtype)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from relu's kink
    G = rng.standard_normal((4, 5))
    fwd, bwd = _fns(F, name)
    num = numerical_grad(lambda v: float((G * fwd(v)).sum()), x)
    np.testing.assert_allclose(bwd(G, fwd(x)), num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_in_place(name, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4)).astype(dtype)
    fwd, bwd = _fns(F, name)
    want = fwd(x)
    buf = x.copy()
    assert fwd(buf, out=buf) is buf
    np.testing.assert_array_equal(buf, want)
    dy = rng.standard_normal((6, 4)).astype(dtype)
    want_dx = bwd(dy, want)
    assert bwd(dy, want, out=dy) is dy
    np.testing.assert_array_equal(dy, want_dx)


def test_sigmoid_extremes(dtype):
    info = np.finfo(dtype)
    x = np.array([-info.max, -1e4, -100, -30, 0, 30, 100, 1e4, info.max], dtype)
    with np.errstate(all="raise"):  # the reference must not overflow either
        y = F.sigmoid_forward(x)
    assert np.all(np.isfinite(y))
    assert y[0] == 0 and y[-1] == 1 and y[4] == 0.5
    assert 0 < F.sigmoid_forward(np.array([-30], dtype))[0] < 1e-12
    assert_close(y, R.sigmoid_forward(x), dtype)


def test_tanh_and_relu_extremes(dtype):
    info = np.finfo(dtype)
    x = np.array([-info.max, -100, -1e-30, 0, 1e-30, 100, info.max], dtype)
    np.testing.assert_array_equal(F.tanh_forward(x), np.tanh(x))
    np.testing.assert_array_equal(F.relu_forward(x), np.maximum(x, 0))


def test_nan_and_inf_propagate_like_numpy(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1.0], dtype)
    np.testing.assert_array_equal(F.relu_forward(x), np.maximum(x, 0))
    np.testing.assert_array_equal(F.tanh_forward(x), np.tanh(x))
    np.testing.assert_array_equal(F.sigmoid_forward(x), [np.nan, 1, 0, R.sigmoid_forward(x)[3]])


@pytest.mark.parametrize("name", NAMES)
def test_identical_across_thread_counts(name, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 401)).astype(dtype)  # above the parallel threshold
    fwd, bwd = _fns(F, name)
    out = []
    for n in (1, 2):
        with cyprop.threads(n):
            y = fwd(x)
            out.append((y, bwd(x, y)))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])



def _ulp_error(got, want, dtype):
    """|got - want| in units of the last place of ``want`` rounded to ``dtype``."""
    spacing = np.spacing(np.abs(want).astype(dtype)).astype(np.longdouble)
    return np.abs(got.astype(np.longdouble) - want) / spacing


@pytest.mark.parametrize("name, max_ulp", [("tanh", {np.float32: 6, np.float64: 1.5}),
                                           ("sigmoid", {np.float32: 4, np.float64: 4})])
def test_accuracy_in_ulp_over_a_dense_grid(name, max_ulp, dtype):
    # the README's accuracy claims, against references in extended precision:
    # every 64th float32 bit pattern from 2^-20 to 20, both signs (for float64
    # moved off the float32 grid)
    if dtype == np.float64 and np.finfo(np.longdouble).nmant < 60:
        pytest.skip("no extended-precision long double on this platform")
    lo, hi = np.float32(2.0**-20).view(np.uint32), np.float32(20.0).view(np.uint32)
    x = np.arange(lo, hi, 64, dtype=np.uint32).view(np.float32).astype(dtype)
    if dtype == np.float64:
        x = x * (1 + np.random.default_rng(0).random(x.size) * 2.0**-23)
    x = np.concatenate([x, -x])
    got = getattr(F, f"{name}_forward")(x)
    xl = x.astype(np.longdouble)
    want = np.tanh(xl) if name == "tanh" else np.exp(np.minimum(xl, 0)) / (1 + np.exp(-np.abs(xl)))
    assert _ulp_error(got, want, dtype).max() <= max_ulp[dtype]
