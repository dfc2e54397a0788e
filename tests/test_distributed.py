"""cyprop.distributed on a LocalCluster of 2 worker processes (started here, closed after).

Equality with single-process training is checked two ways: bit for bit
against the same part sums computed in this process (for 1 and 2 workers),
and to rounding against the plain single-process loop.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from cyprop import nn, optim  # noqa: E402
from cyprop import distributed as D  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with D.local_cluster(2) as c:
        c.wait_for_workers(2)
        yield c


def _data(n=600, d=7, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = ((X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)).astype(int)
    return X, y


def _model(dtype=np.float64, d=7):
    return nn.Sequential(nn.Linear(d, 13, activation="tanh", dtype=dtype, seed=0),
                         nn.Linear(13, 9, activation="relu", dtype=dtype, seed=1),
                         nn.Linear(9, 3, dtype=dtype, seed=2))


def _tree(items):
    while len(items) > 1:
        items = [items[i] + items[i + 1] if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


def _part_sums(model, loss_fn, X, y, bounds, rows=None):
    """What the cluster computes, here: each part's summed loss/gradient, the fixed tree."""
    summed = type(loss_fn)(reduction="sum")
    losses, grads, counts = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        xs, ys = X[a:b], y[a:b]
        if rows is not None:
            local = rows[(rows >= a) & (rows < b)] - a
            if local.size == 0:
                continue
            xs, ys = xs[local], ys[local]
        losses.append(float(summed(model(xs), ys)))
        model.backward(summed.backward())
        grads.append(model._grads.astype(np.float64))
        counts.append(float(len(xs)))
    n = _tree(counts)
    return _tree(losses) / n, _tree(grads) / n


def _bounds(n, k):
    return np.linspace(0, n, k + 1).round().astype(int)


def _local_training(dtype, X, y, parts, epochs, batch_size, seed, lr=0.05):
    model = _model(dtype)
    opt = optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    bounds = _bounds(len(X), parts)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for b in range(-(-len(X) // batch_size)):
            rows = order[b * batch_size:(b + 1) * batch_size]
            _, g = _part_sums(model, nn.SoftmaxCrossEntropy(), X, y, bounds, rows)
            model._grads[...] = g
            opt.step()
    return model


def test_import_cyprop_does_not_import_dask():
    code = "import sys, cyprop, cyprop.nn, cyprop.optim; assert 'dask' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_full_batch_loss_and_grad(client, parts):
    X, y = _data()
    model, ce = _model(), nn.SoftmaxCrossEntropy()
    loss, grad = D.full_batch_loss_and_grad(model, ce, X, y, client=client, parts=parts)
    want_loss, want_grad = _part_sums(model, ce, X, y, _bounds(len(X), parts))
    assert loss == want_loss and np.array_equal(grad, want_grad)
    # and the plain single-process loss and gradient, to rounding
    plain = ce(model(X), y)
    model.backward(ce.backward())
    assert loss == pytest.approx(plain, rel=1e-14)
    np.testing.assert_allclose(grad, model._grads, rtol=1e-12, atol=1e-15)


def test_full_batch_dask_array_is_its_chunks(client):
    X, y = _data()
    chunks = (150, 250, 200)
    Xd, yd = da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=(chunks,))
    model, ce = _model(), nn.SoftmaxCrossEntropy()
    loss, grad = D.full_batch_loss_and_grad(model, ce, Xd, yd, client=client)
    want_loss, want_grad = _part_sums(model, ce, X, y, np.array([0, 150, 400, 600]))
    assert loss == want_loss and np.array_equal(grad, want_grad)
    # y as NumPy is cut like X
    assert D.full_batch_loss_and_grad(model, ce, Xd, y, client=client)[0] == loss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_data_parallel_equals_single_process_bit_for_bit(client, dtype):
    X, y = _data(dtype=dtype)
    model = _model(dtype)
    dp = D.DataParallel(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=0.05),
                        client=client, parts=3)
    dp.fit(X, y, epochs=2, batch_size=128, shuffle_seed=7, progress=False)
    assert dp.n_steps_ == 10 and len(dp.loss_curve_) == 2
    want = _local_training(dtype, X, y, 3, 2, 128, 7)
    assert np.array_equal(model._values, want._values)
    assert dp.bytes_per_step_ > model._values.nbytes


def test_data_parallel_does_not_depend_on_the_number_of_workers(client):
    X, y = _data()
    results = []
    for c in (client, None):
        model = _model()
        dp = D.DataParallel(model, nn.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=0.1),
                            client=c, parts=4)
        if c is None:
            with D.local_cluster(1) as one:
                dp.client = one
                dp.fit(X, y, epochs=1, batch_size=100, shuffle_seed=3, progress=False)
        else:
            dp.fit(X, y, epochs=1, batch_size=100, shuffle_seed=3, progress=False)
        results.append(model._values.copy())
    assert np.array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_data_parallel_against_the_plain_loop(client, dtype):
    X, y = _data(dtype=dtype)
    model, plain = _model(dtype), _model(dtype)
    ce = nn.SoftmaxCrossEntropy()
    D.DataParallel(model, ce, optim.SGD(model.parameters(), lr=0.1), client=client).fit(
        X, y, epochs=1, batch_size=200, progress=False)
    opt = optim.SGD(plain.parameters(), lr=0.1)
    for b in range(3):
        ce(plain(X[b * 200:(b + 1) * 200]), y[b * 200:(b + 1) * 200])
        plain.backward(ce.backward())
        opt.step()
    if dtype == np.float64:
        np.testing.assert_allclose(model._values, plain._values, rtol=1e-12, atol=1e-14)
    else:   # a few float32 ulps of the gradients, three steps on
        np.testing.assert_allclose(model._values, plain._values, rtol=2e-6, atol=2e-7)


def test_data_parallel_dask_array_input(client):
    X, y = _data()
    chunks = (200, 200, 200)
    Xd, yd = da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=(chunks,))
    a, b = _model(), _model()
    for m, xs, ys in ((a, Xd, yd), (b, X, y)):
        D.DataParallel(m, nn.SoftmaxCrossEntropy(), optim.Adam(m.parameters(), lr=0.05),
                       client=client, parts=3).fit(xs, ys, epochs=1, batch_size=150,
                                                   shuffle_seed=1, progress=False)
    assert np.array_equal(a._values, b._values)


def test_killed_worker_costs_a_retry_not_the_run(client):
    X, y = _data(n=800)
    kwargs = dict(epochs=4, batch_size=40, shuffle_seed=5, progress=False)
    ref = _model()
    D.DataParallel(ref, nn.SoftmaxCrossEntropy(), optim.Adam(ref.parameters(), lr=0.02),
                   client=client, parts=2).fit(X, y, **kwargs)
    pids = list(client.run(os.getpid).values())
    model = _model()
    dp = D.DataParallel(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=0.02),
                        client=client, parts=2)
    killed = []

    def kill_one():
        while dp.n_steps_ < 10:
            time.sleep(0.005)
        os.kill(pids[0], signal.SIGKILL)
        killed.append(dp.n_steps_)

    t = threading.Thread(target=kill_one)
    t.start()
    dp.fit(X, y, **kwargs)
    t.join()
    assert killed and killed[0] < dp.n_steps_   # the worker died in the middle of the fit
    assert np.array_equal(model._values, ref._values)
    client.wait_for_workers(2, timeout=60)


def test_worker_error_is_the_single_process_error(client):
    X, y = _data()
    model = _model(np.float32)
    with pytest.raises(TypeError) as single:
        model(X)
    Xd = da.from_array(X, chunks=(300, -1))   # float64 shards for a float32 model
    with pytest.raises(TypeError) as dist:
        D.full_batch_loss_and_grad(model, nn.SoftmaxCrossEntropy(), Xd, y, client=client)
    assert str(dist.value) == str(single.value)


def test_bad_input(client):
    X, y = _data()
    model, ce = _model(), nn.SoftmaxCrossEntropy()
    Xd = da.from_array(X, chunks=(300, -1))
    with pytest.raises(ValueError, match="same row chunks"):
        D.full_batch_loss_and_grad(model, ce, Xd, da.from_array(y, chunks=(200,)), client=client)
    with pytest.raises(ValueError, match="rows"):
        D.full_batch_loss_and_grad(model, ce, X, y[:-1], client=client)
    with pytest.raises(TypeError, match="float32 or float64"):
        D.full_batch_loss_and_grad(model, ce, X.astype(np.int64), y, client=client)
    with pytest.raises(ValueError, match="no parameters"):
        D.full_batch_loss_and_grad(nn.Sequential(nn.ReLU(dtype=np.float64)), ce, X, y,
                                   client=client)
    with pytest.raises(TypeError, match="client"):
        D.full_batch_loss_and_grad(model, ce, X, y, client="tcp://nowhere:8786")
    with pytest.raises(ValueError, match="model.parameters"):
        D.DataParallel(model, ce, optim.SGD(_model().parameters(), lr=0.1), client=client)
    with pytest.raises(TypeError, match="Optimizer"):
        D.DataParallel(model, ce, object(), client=client)
    bn = nn.Sequential(nn.Linear(7, 4, dtype=np.float64), nn.BatchNorm1d(4, dtype=np.float64))
    with pytest.raises(ValueError, match="eval"):
        D.DataParallel(bn, nn.MSELoss(), optim.SGD(bn.parameters(), lr=0.1), client=client)
    dp = D.DataParallel(model, ce, optim.SGD(model.parameters(), lr=0.1), client=client)
    with pytest.raises(ValueError, match="batch_size"):
        dp.fit(X, y, batch_size=0)
    with pytest.raises(TypeError, match="shuffle_seed"):
        dp.fit(X, y, shuffle_seed=0.5)


def test_minimize_on_the_cluster(client):
    X, y = _data()
    local, remote = _model(), _model()
    ce = nn.SoftmaxCrossEntropy()
    r_local = optim.minimize(local, ce, X, y, max_iter=15)
    r_remote = D.minimize(remote, ce, X, y, client=client, max_iter=15, parts=3)
    assert r_remote.nit == r_local.nit
    assert r_remote.fun == pytest.approx(r_local.fun, rel=1e-9)
    np.testing.assert_allclose(remote._values, local._values, rtol=1e-6, atol=1e-9)
    r_ncg = D.minimize(_model(), ce, X, y, method="newton-cg", client=client, max_iter=3, l2=1e-3)
    r_ncg_local = optim.minimize(_model(), ce, X, y, method="newton-cg", max_iter=3, l2=1e-3)
    assert r_ncg.fun == pytest.approx(r_ncg_local.fun, rel=1e-9)


def test_progress_bar(client, capsys):
    pytest.importorskip("tqdm")
    X, y = _data(n=200)
    model = _model()
    D.DataParallel(model, nn.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=0.1),
                   client=client).fit(X, y, batch_size=100)
    assert "DataParallel" in capsys.readouterr().err


def test_embedded_local_cluster():
    X, y = _data(n=200)
    model, ce = _model(), nn.SoftmaxCrossEntropy()
    loss, grad = D.full_batch_loss_and_grad(model, ce, X, y)   # starts and closes its own
    assert loss == pytest.approx(ce(model(X), y), rel=1e-14)


def test_estimators_under_the_dask_joblib_backend(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    from cyprop.sklearn import MLPClassifier
    X, y = _data(n=300)
    grid = {"alpha": [1e-4, 1e-2]}
    est = MLPClassifier((16,), max_iter=30, random_state=0, n_threads=1)
    serial = GridSearchCV(est, grid, cv=2).fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(est, grid, cv=2, n_jobs=-1).fit(X, y)
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    assert remote.best_params_ == serial.best_params_


def test_bench_costs_and_table(client):
    from cyprop import bench
    costs = bench.cluster_costs(client, repeats=3, nbytes=1 << 20)
    assert costs["round_trip_s"] > 0 and costs["per_task_s"] > 0 and costs["per_byte_s"] >= 0
    row = {"case": "20-64-64-2", "batch": 256, "parameters": 5634, "workers": 2,
           "single_step_s": 1e-4, "distributed_step_s": 2e-2, "bytes_per_step": 1.4e5,
           "single_threads": 2, **costs}
    # more workers: the compute shrinks, the per-task costs grow
    assert bench.projected_step(row, 64) > bench.projected_step(row, 2)
    text = bench.format_distributed([row])
    assert "20-64-64-2" in text and "W=16" in text and "ns/byte" in text


def test_readme_example_runs_as_written(tmp_path):
    """The README's Dask example, verbatim, as a script (its LocalCluster's workers are
    spawned processes, hence the script's ``__main__`` guard)."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    section = text.split("## Beyond one machine: Dask", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    curve = [float(v) for v in proc.stdout.strip().splitlines()[-1].strip("[]").split(",")]
    assert len(curve) == 3 and curve[-1] < curve[0]
