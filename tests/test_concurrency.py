"""Threads: kernels release the GIL; results match sequential runs; misuse is refused."""
import threading

import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import nn, optim


def _train(seed, steps=30, out=None, barrier=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 40)).astype(np.float32)
    y = rng.integers(0, 5, 300)
    model = nn.Sequential(nn.Linear(40, 600, activation="relu", seed=seed),
                          nn.Linear(600, 5, seed=seed + 1))
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    if barrier is not None:
        barrier.wait()
    for _ in range(steps):
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    result = [p.value.copy() for p in model.parameters()]
    if out is not None:
        out[seed] = result
    return result


def test_two_threads_training_two_models_match_sequential_runs():
    want = {seed: _train(seed) for seed in (1, 2)}
    got = {}
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_train, args=(seed, 30, got, barrier)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        for a, b in zip(got[seed], want[seed]):
            np.testing.assert_array_equal(a, b)


def test_kernels_release_the_gil():
    """A second Python thread makes progress while a long kernel runs."""
    x = np.random.default_rng(0).standard_normal((2000, 2000)).astype(np.float32)
    W = np.random.default_rng(1).standard_normal((2000, 2000)).astype(np.float32)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=ticker)
    with cyprop.threads(1):
        t.start()
        try:
            before = len(ticks)
            for _ in range(3):
                F.linear_forward(x, W)
            during = len(ticks) - before
        finally:
            done.set()
            t.join()
    assert during > 100


def test_shared_model_concurrent_call_is_refused():
    model = nn.Sequential(nn.Linear(3, 2, seed=0))
    model._call_lock = threading.Lock()
    model._call_lock.acquire()  # as if another thread were inside forward()
    try:
        with pytest.raises(RuntimeError, match="in use by another thread"):
            model(np.zeros((1, 3), np.float32))
    finally:
        model._call_lock.release()
    model(np.zeros((1, 3), np.float32))


def test_backward_on_another_thread_is_refused():
    model = nn.Sequential(nn.Linear(3, 2, seed=0))
    loss_fn = nn.MSELoss()
    loss_fn(model(np.zeros((4, 3), np.float32)), np.zeros((4, 2), np.float32))
    errors = []

    def other():
        try:
            model.backward(loss_fn.backward())
        except RuntimeError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and "thread that ran the matching forward" in errors[0]
    model.backward(loss_fn.backward())  # the right thread still works


def test_estimator_predict_is_thread_safe():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    from cyprop.sklearn import MLPClassifier
    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X / 16, y)
    want = {k: clf.predict_proba(X[k::3] / 16) for k in range(3)}
    results, errors = [], []

    def work(k):
        try:
            for _ in range(20):
                results.append(np.array_equal(clf.predict_proba(X[k::3] / 16), want[k]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results) and len(results) == 60
