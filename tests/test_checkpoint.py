"""Sequential(checkpoint_segments=k): activations recomputed per segment, gradients bit-identical."""
import pickle
import tracemalloc

import numpy as np
import pytest

import cyprop
from cyprop import nn, optim


def _layers(dtype):
    return [nn.Linear(12, 20, activation="relu", dtype=dtype, seed=0),
            nn.BatchNorm1d(20, dtype=dtype), nn.ReLU(), nn.Dropout(0.3, seed=5),
            nn.Linear(20, 18, activation="gelu", dtype=dtype, seed=1),
            nn.LayerNorm(18, dtype=dtype), nn.Tanh(),
            nn.Linear(18, 9, activation="sigmoid", dtype=dtype, seed=2),
            nn.Linear(9, 4, dtype=dtype, seed=3)]


def _run(model, x, y, steps=3, need_dx=True):
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-2)
    seen = []
    for _ in range(steps):
        out = model(x)
        loss_fn(out, y)
        dx = model.backward(loss_fn.backward(), need_dx=need_dx)
        seen.append([out.copy(), model._grads.copy(), None if dx is None else dx.copy(),
                     model.layers[1].buffers()["running_var"].copy(), model.layers[3].step])
        opt.step()
    return seen


@pytest.mark.parametrize("k", [1, 2, 3, 4, 9])
@pytest.mark.parametrize("n", [2, 37, 300])
def test_bit_identical_to_the_plain_model(k, n, dtype, n_threads):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, 12)).astype(dtype), rng.integers(0, 4, n)
    with cyprop.threads(n_threads):
        want = _run(nn.Sequential(*_layers(dtype)), x, y)
        got = _run(nn.Sequential(*_layers(dtype), checkpoint_segments=k), x, y)
    for g_step, w_step in zip(got, want):
        for g, w in zip(g_step[:4], w_step[:4]):
            np.testing.assert_array_equal(g, w)
        assert g_step[4] == w_step[4]   # Dropout's step advanced once per forward


def test_eval_mode_and_no_input_gradient():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 12)), rng.integers(0, 4, 16)
    plain = nn.Sequential(*_layers(np.float64)).eval()
    ck = nn.Sequential(*_layers(np.float64), checkpoint_segments=3).eval()
    for g, w in zip(_run(ck, x, y, 2, need_dx=False), _run(plain, x, y, 2, need_dx=False)):
        for a, b in zip(g[:2], w[:2]):
            np.testing.assert_array_equal(a, b)
        assert g[2] is None


def test_setter_switches_and_validates():
    model = nn.Sequential(*_layers(np.float64))
    x, y = np.ones((5, 12)), np.zeros(5, int)
    want = _run(model, x, y, 1)[0][1]
    model.checkpoint_segments = 2
    assert model.checkpoint_segments == 2
    np.testing.assert_array_equal(_run(model, x, y, 1)[0][1].shape, want.shape)
    model.checkpoint_segments = None
    assert model.checkpoint_segments is None
    for bad, exc in [(0, ValueError), (10, ValueError), (-1, ValueError), (1.5, TypeError),
                     (True, TypeError), ("2", TypeError)]:
        with pytest.raises(exc, match="checkpoint_segments"):
            model.checkpoint_segments = bad
    with pytest.raises(ValueError, match="between 1 and the number of layers"):
        nn.Sequential(nn.Linear(3, 2), checkpoint_segments=2)


class _Custom(nn.Module):
    dtype = np.dtype(np.float32)

    def forward(self, x):
        return x

    def backward(self, dy, *, need_dx=True):
        return dy


def test_models_that_run_layer_by_layer_are_refused():
    with pytest.raises(ValueError, match="one of cyprop.nn's"):
        nn.Sequential(nn.Linear(3, 3), _Custom(), checkpoint_segments=2)


def test_errors_and_pickling():
    model = nn.Sequential(*_layers(np.float32), checkpoint_segments=3)
    with pytest.raises(ValueError, match="before forward"):
        model.backward(np.ones((4, 4), np.float32))
    model(np.ones((4, 12), np.float32))
    with pytest.raises(ValueError, match="dy must"):
        model.backward(np.ones((4, 5), np.float32))
    restored = pickle.loads(pickle.dumps(model))
    assert restored.checkpoint_segments == 3
    np.testing.assert_array_equal(restored(np.ones((4, 12), np.float32)),
                                  model(np.ones((4, 12), np.float32)))


def test_stored_activations_shrink():
    def peak(k):
        model = nn.Sequential(*[nn.Linear(256, 256, activation="relu", seed=i) for i in range(8)],
                              checkpoint_segments=k)
        x = np.ones((512, 256), np.float32)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        model(x)
        model.backward(np.ones((512, 256), np.float32))
        p = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return p
    assert peak(4) < 0.5 * peak(None)
