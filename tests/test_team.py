"""The parallel regions' back-off on a shared machine (pyx/_team.h).

The rule is tested on made-up regions (``_team_simulate_region``: wall time,
thread 0's time in blocks, its blocks, all blocks), and the kernels' results
while backed off and beside a busy process against their 1-thread results.
"""
import subprocess
import sys

import numpy as np
import pytest

import cyprop
from cyprop import _openmp, nn, optim
from cyprop import functional as F

MS = 1_000_000  # ns


@pytest.fixture
def team():
    """The back-off as it runs outside the test suite, from a clean state."""
    fixed = _openmp._team_fix(False)
    _openmp._team_reset()
    yield _openmp._team_simulate_region
    _openmp._team_reset()
    _openmp._team_fix(fixed)


def test_a_lone_short_loss_is_forgiven(team):
    # 5 ms for work that would take 2 ms on one thread: lost, but alone
    losses, backoff, left = team(5 * MS, 1 * MS, 1, 2)
    assert (losses, backoff, left) == (1, 0, 0)


@pytest.mark.parametrize("wall, busy, blocks", [
    (9 * MS, 1 * MS, 1),   # 7 ms lost: a thread off the CPU for a time slice
    (6 * MS, 0, 0),        # thread 0 computed no block in 6 ms: it was off the CPU
])
def test_a_stall_backs_off_at_once(team, wall, busy, blocks):
    losses, backoff, left = team(wall, busy, blocks, 2)
    assert losses == 1 and backoff == 50 * MS and 0 < left <= backoff


def test_a_second_loss_backs_off_doubling_up_to_a_cap(team):
    team(5 * MS, 1 * MS, 1, 2)
    losses, first, left = team(5 * MS, 1 * MS, 1, 2)
    assert losses == 2 and first == 50 * MS and 0 < left <= first
    assert team(5 * MS, 1 * MS, 1, 2)[1] == 2 * first
    for _ in range(10):
        _, backoff, _ = team(5 * MS, 1 * MS, 1, 2)
    assert backoff == 1000 * MS


@pytest.mark.parametrize("wall, busy, blocks, n_blocks", [
    (1_200_000, 500_000, 1, 2),   # 200 us over its 1 ms: below the 250 us slack
    (120 * MS, 50 * MS, 1, 2),    # 20% over a long region's 100 ms: below 1.25x
    (200_000, 0, 0, 2),           # thread 0 computed no block, but all was over in 0.2 ms
    (3 * MS, 1 * MS, 1, 4),       # 4 ms of work done in 3: a win
])
def test_what_is_not_a_loss(team, wall, busy, blocks, n_blocks):
    for _ in range(3):
        losses, backoff, _ = team(wall, busy, blocks, n_blocks)
    assert losses == 0 and backoff == 0


def test_a_cold_region_is_not_judged(team):
    """Threads woken after a pause can stall on a quiet machine too."""
    for _ in range(3):
        assert team(20 * MS, 1 * MS, 1, 2, True) == (0, 0, 0)


def test_fixed_never_backs_off(team):
    _openmp._team_fix(True)
    for _ in range(3):
        assert team(5 * MS, 1 * MS, 1, 2) == (0, 0, 0)


def _ops(n_threads):
    """A forward and backward of every kernel family, on sizes above their thresholds."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 257))
    W = rng.standard_normal((257, 130)) / 16
    with cyprop.threads(n_threads):
        y = F.linear_forward(x, W, np.ones(130), activation="tanh")
        dx, dW, db = F.linear_backward(np.cos(y), x, W, y=y, activation="tanh")
        s = F.sigmoid_forward(dx)
        loss, dz = F.softmax_cross_entropy(s, rng.integers(0, 257, 600))
        mse, dp = F.mse_loss(dz, s)
        p = W.copy()
        F.adam_step(p, dW, np.zeros_like(p), np.zeros_like(p), step=1)
    return y, dx, dW, db, s, loss, dz, mse, dp, p


@pytest.mark.skipif(not cyprop.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_too_small_to_share_run_no_parallel_region(team, dtype):
    # (32, 128) @ (128, 128), the digits estimator's hidden layer at batch 32, is
    # one BLAS call on the calling thread; four times the rows are cut into blocks
    _openmp._team_fix(True)
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((128, 128)).astype(dtype), np.zeros(128, dtype)
    with cyprop.threads(2):
        for rows, parallel in ((32, False), (128, True)):
            x = rng.standard_normal((rows, 128)).astype(dtype)
            before = _openmp._team_last_end()
            y = F.linear_forward(x, W, b, activation="relu")
            F.linear_backward(y, x, W, y=y, activation="relu")
            assert (_openmp._team_last_end() != before) == parallel, rows


@pytest.mark.skipif(not cyprop.openmp_enabled(), reason="built without OpenMP")
def test_backed_off_kernels_give_the_same_bits(team):
    for _ in range(12):  # back off for the longest time, 1 s
        team(5 * MS, 1 * MS, 1, 2)
    serial = _ops(2)
    assert _openmp.team_stats()[2] > 0  # still backed off: these ran on one thread
    _openmp._team_fix(True)
    for a, b, c in zip(_ops(1), serial, _ops(2)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def _train(n_threads, steps=150):
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Linear(64, 256, activation="relu", dtype=np.float64, seed=0),
                          nn.Linear(256, 256, activation="relu", dtype=np.float64, seed=1),
                          nn.Linear(256, 10, dtype=np.float64, seed=2))
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-3)
    x, y = rng.standard_normal((256, 64)), rng.integers(0, 10, 256)
    with cyprop.threads(n_threads):
        for _ in range(steps):
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            opt.step()
    return [p.value.copy() for p in model.parameters()]


@pytest.mark.skipif(not cyprop.openmp_enabled(), reason="built without OpenMP")
def test_training_beside_a_busy_process_gives_the_same_parameters(team):
    """Whichever regions back off, and whichever thread takes a block, the bits agree."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = _train(2)
    finally:
        busy.kill()
        busy.wait()
    for a, b in zip(_train(1), loaded):
        np.testing.assert_array_equal(a, b)
