import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import reference as R
from conftest import assert_close, numerical_grad

ACTS = [None, "relu", "sigmoid", "tanh"]
# (N, in, out): single rows and columns, sizes that are not multiples of 8;
# products with <= 3 rows or columns (run as one ?gemv each: (3, 9, 50),
# (300, 20, 2), (300, 3, 40)); the last two have narrow dW computed in 4 and 8
# fixed batch chunks (uneven at 257)
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 9), (13, 17, 1), (3, 9, 50), (300, 20, 2), (300, 3, 40),
          (33, 65, 10), (130, 31, 257), (257, 64, 40), (1000, 70, 90)]


def _data(shape, dtype, seed=0):
    n, n_in, n_out = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    dy = rng.standard_normal((n, n_out)).astype(dtype)
    return x, W, b, dy


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ACTS)
def test_forward_backward_match_reference(shape, activation, dtype, n_threads):
    x, W, b, dy = _data(shape, dtype)
    y = F.linear_forward(x, W, b, activation=activation)
    assert y.dtype == dtype and y.shape == (shape[0], shape[2])
    assert_close(y, R.linear_forward(x, W, b, activation=activation), dtype)
    got = F.linear_backward(dy, x, W, y=y, activation=activation)
    want = R.linear_backward(dy, x, W, y=y, activation=activation)
    for g, w in zip(got, want):
        assert g.dtype == dtype
        assert_close(g, w, dtype, scale=np.sqrt(shape[0]))


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", [(1, 3, 2), (4, 5, 3), (7, 2, 1)])
def test_gradients_match_finite_differences(shape, activation):
    x, W, b, G = _data(shape, np.float64, seed=1)

    def loss(x_, W_, b_):  # L = sum(G * y) so dL/dy = G
        return float((G * F.linear_forward(x_, W_, b_, activation=activation)).sum())

    y = F.linear_forward(x, W, b, activation=activation)
    dx, dW, db = F.linear_backward(G, x, W, y=y, activation=activation)
    np.testing.assert_allclose(dx, numerical_grad(lambda v: loss(v, W, b), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dW, numerical_grad(lambda v: loss(x, v, b), W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_grad(lambda v: loss(x, W, v), b), rtol=1e-6, atol=1e-8)


def test_no_bias_and_skipped_outputs(dtype):
    x, W, _, dy = _data((9, 4, 6), dtype)
    y = F.linear_forward(x, W)
    assert_close(y, x @ W, dtype)
    dx, dW, db = F.linear_backward(dy, x, W, need_dx=False, need_db=False)
    assert dx is None and db is None
    assert_close(dW, x.T @ dy, dtype)


@pytest.mark.parametrize("shape", [(6, 5, 4), (40, 7, 2), (2, 5, 9), (40, 3, 6)])
def test_out_arrays_are_written_in_place(shape, dtype):
    # NaN-filled outputs: BLAS is called with beta = 0, which must not read them
    # (thin shapes take the ?gemv path)
    n, n_in, n_out = shape
    x, W, b, dy = _data(shape, dtype)
    out = np.full((n, n_out), np.nan, dtype)
    assert F.linear_forward(x, W, b, activation="tanh", out=out) is out
    assert_close(out, R.linear_forward(x, W, b, activation="tanh"), dtype)
    dx, dW, db = (np.full(s, np.nan, dtype) for s in ((n, n_in), (n_in, n_out), (n_out,)))
    res = F.linear_backward(dy, x, W, y=out, activation="tanh", dx=dx, dW=dW, db=db)
    assert res[0] is dx and res[1] is dW and res[2] is db
    for got, want in zip(res, R.linear_backward(dy, x, W, y=out, activation="tanh")):
        assert_close(got, want, dtype)


def test_overwrite_dy_gives_same_result(dtype):
    x, W, b, dy = _data((10, 3, 7), dtype)
    y = F.linear_forward(x, W, b, activation="sigmoid")
    want = F.linear_backward(dy, x, W, y=y, activation="sigmoid")
    dy2 = dy.copy()
    got = F.linear_backward(dy2, x, W, y=y, activation="sigmoid", overwrite_dy=True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("shape", [(1000, 70, 90), (160, 150, 140), (600, 20, 2)])
def test_results_identical_across_thread_counts(shape, dtype):
    # large enough for the parallel row loops, several db chunks and GEMMs cut
    # into blocks (by rows; near-square float32 ones by columns; dW by batch)
    x, W, b, dy = _data(shape, dtype, seed=3)
    results = []
    for n in (1, 2):
        with cyprop.threads(n):
            y = F.linear_forward(x, W, b, activation="relu")
            results.append((y,) + F.linear_backward(dy, x, W, y=y, activation="relu"))
    for a, b_ in zip(*results):
        np.testing.assert_array_equal(a, b_)


def test_empty_batch(dtype):
    x, W, b, _ = _data((0, 4, 3), dtype)
    y = F.linear_forward(x, W, b, activation="relu")
    assert y.shape == (0, 3)
    dx, dW, db = F.linear_backward(np.zeros((0, 3), dtype), x, W, y=y, activation="relu")
    assert dx.shape == (0, 4)
    np.testing.assert_array_equal(dW, 0)
    np.testing.assert_array_equal(db, 0)


def test_float32_bias_gradient_accumulates_in_float64():
    # 2**20 rows of 1.0 + 1e-4 cannot be summed accurately in float32 sequentially
    n = 1 << 18
    dy = np.full((n, 1), 1.0001, np.float32)
    x = np.ones((n, 1), np.float32)
    W = np.ones((1, 1), np.float32)
    _, _, db = F.linear_backward(dy, x, W)
    assert abs(float(db[0]) - n * 1.0001) / (n * 1.0001) < 1e-6


@pytest.mark.parametrize("activation", ACTS)
def test_zero_input_features_give_act_of_bias(activation, dtype):
    # an empty sum: y = act(b), or act(0) without a bias; dW is (0, out)
    x, W = np.zeros((5, 0), dtype), np.zeros((0, 3), dtype)
    b = np.array([1.5, -2.0, 0.25], dtype)
    for bias in (b, None):
        out = np.full((5, 3), np.nan, dtype)
        y = F.linear_forward(x, W, bias, activation=activation, out=out)
        assert_close(y, R.linear_forward(x, W, bias, activation=activation), dtype)
        dx, dW, db = F.linear_backward(np.ones((5, 3), dtype), x, W, y=y, activation=activation)
        assert dx.shape == (5, 0) and dW.shape == (0, 3)
