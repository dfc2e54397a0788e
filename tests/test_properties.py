"""hypothesis: shape and value properties of the kernels against the reference."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cyprop import functional as F
from cyprop import reference as R

dtypes = st.sampled_from([np.float32, np.float64])
dims = st.integers(min_value=1, max_value=40)
finite = dict(allow_nan=False, allow_infinity=False)
TOL = {np.float32: 1e-4, np.float64: 1e-10}


def _floats(dtype, bound):
    width = 32 if dtype == np.float32 else 64
    bound = float(dtype(bound))  # representable in the dtype
    return st.floats(-bound, bound, width=width, **finite)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=dtypes, n=dims, n_in=dims, n_out=dims,
       act=st.sampled_from([None, "relu", "sigmoid", "tanh"]))
def test_linear_matches_reference(data, dtype, n, n_in, n_out, act):
    x = data.draw(arrays(dtype, (n, n_in), elements=_floats(dtype, 10)))
    W = data.draw(arrays(dtype, (n_in, n_out), elements=_floats(dtype, 1)))
    b = data.draw(arrays(dtype, (n_out,), elements=_floats(dtype, 10)))
    y = F.linear_forward(x, W, b, activation=act)
    yr = R.linear_forward(x, W, b, activation=act)
    scale = 1 + np.abs(x).max() * n_in + np.abs(b).max()
    np.testing.assert_allclose(y, yr, rtol=TOL[dtype], atol=TOL[dtype] * scale)
    dy = np.ones_like(y)
    for g, gr in zip(F.linear_backward(dy, x, W, y=y, activation=act),
                     R.linear_backward(dy, x, W, y=y, activation=act)):
        np.testing.assert_allclose(g, gr, rtol=TOL[dtype], atol=TOL[dtype] * scale * n)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), dtype=dtypes, n=dims, c=dims, bound=st.sampled_from([1.0, 1e3, 1e30]))
def test_softmax_ce_properties(data, dtype, n, c, bound):
    bound = min(bound, float(np.finfo(dtype).max) / 4)
    z = data.draw(arrays(dtype, (n, c), elements=_floats(dtype, bound)))
    t = np.asarray(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    loss, g = F.softmax_cross_entropy(z, t)
    assert np.isfinite(loss) and loss >= 0
    assert np.all(np.isfinite(g))
    # each gradient row sums to zero and lies in [-1/N, 1/N]
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=TOL[dtype] * 10)
    assert np.all(np.abs(g) <= 1 / n + TOL[dtype])
    p = F.softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=TOL[dtype] * 10)
    rloss, rg = R.softmax_cross_entropy(z.astype(np.float64), t)
    np.testing.assert_allclose(loss, rloss, rtol=TOL[dtype] * 10, atol=TOL[dtype])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=dtypes, shape=st.lists(dims, min_size=1, max_size=3),
       name=st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_activations_bounded_and_match(data, dtype, shape, name):
    info = np.finfo(dtype)
    x = data.draw(arrays(dtype, tuple(shape), elements=_floats(dtype, float(info.max))))
    y = getattr(F, f"{name}_forward")(x)
    assert y.shape == x.shape and y.dtype == dtype
    if name == "sigmoid":
        assert np.all((y >= 0) & (y <= 1))
    elif name == "tanh":
        assert np.all((y >= -1) & (y <= 1))
    else:
        assert np.all(y >= 0)
    with np.errstate(over="ignore", under="ignore"):
        np.testing.assert_allclose(y, getattr(R, f"{name}_forward")(x), rtol=TOL[dtype],
                                   atol=TOL[dtype])


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=dtypes, shape=st.lists(dims, min_size=1, max_size=3))
def test_mse_nonnegative_and_matches(data, dtype, shape):
    p = data.draw(arrays(dtype, tuple(shape), elements=_floats(dtype, 1e3)))
    t = data.draw(arrays(dtype, tuple(shape), elements=_floats(dtype, 1e3)))
    loss, g = F.mse_loss(p, t)
    rloss, rg = R.mse_loss(p.astype(np.float64), t.astype(np.float64))
    assert loss >= 0
    np.testing.assert_allclose(loss, rloss, rtol=TOL[dtype] * 10, atol=TOL[dtype])
    np.testing.assert_allclose(g, rg, rtol=TOL[dtype] * 10, atol=TOL[dtype])
