"""Memory stays flat over many calls (a bounded version of 100,000 forward/backward calls)."""
import gc
import os

import numpy as np
import pytest

from cyprop import functional as F
from cyprop import nn, optim

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                       reason="RSS is read from /proc (Linux)"),
    # AddressSanitizer keeps freed memory in quarantine on purpose: RSS then
    # measures its allocator, not cyprop (.ci/sanitize sets this variable)
    pytest.mark.skipif(os.environ.get("CYPROP_SANITIZE") == "1",
                       reason="RSS is not meaningful under AddressSanitizer"),
]


def _rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _growth(fn, calls, warmup=500):
    for _ in range(warmup):
        fn()
    gc.collect()
    before = _rss_mb()
    for _ in range(calls):
        fn()
    gc.collect()
    return _rss_mb() - before


def test_training_steps_do_not_leak():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 20)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model = nn.Sequential(nn.Linear(20, 64, activation="relu", seed=0), nn.Tanh(),
                          nn.Linear(64, 3, seed=1))
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.Adam(model.parameters())

    def step():
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()

    assert _growth(step, 20_000) < 2.0


def test_functional_calls_and_their_errors_do_not_leak():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 33))
    W = rng.standard_normal((33, 17))
    b = rng.standard_normal(17)
    bad_labels = np.full(64, 99)

    def calls():
        y = F.linear_forward(x, W, b, activation="sigmoid")
        F.linear_backward(y, x, W, y=y, activation="sigmoid")
        F.softmax_cross_entropy(y, np.arange(64) % 17)
        F.mse_loss(y, y)
        F.tanh_backward(y, F.tanh_forward(y))
        for bad in ((y, bad_labels), (y.astype(np.float32), [0])):
            try:
                F.softmax_cross_entropy(*bad)
            except (ValueError, TypeError):
                pass

    assert _growth(calls, 10_000) < 2.0
