"""The comparison script runs, prints its tables, writes JSON and a plot."""
import json

import numpy as np
import pytest

import cyprop
from cyprop import bench


def test_bench_kernels_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["--only", "kernels", "--threads", "1", "--dtype", "float32", "--repeats", "1",
            "--target", "0.001", "--json", str(out)]
    plot = pytest.importorskip("matplotlib") and tmp_path / "p.png"
    args += ["--plot", str(plot)]
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    assert "softmax-CE fwd+bwd" in text and "ratio" in text
    assert "GEMMs" not in text and "BLAS" not in text  # no GEMM-bound step, no GEMM floors
    assert "stream = " in text  # but every kernel has its memory-speed reference
    results = json.loads(out.read_text())
    assert {r["case"].split()[0] for r in results} >= {"relu", "sigmoid", "tanh", "softmax-CE"}
    assert all(r["times"][p] > 0 for r in results for p in ("cyprop", "numpy", "stream"))
    assert plot.stat().st_size > 1000


@pytest.mark.parametrize("peer", ["numpy", "torch", "jax"])
def test_every_peer_computes_the_same_training_step(peer):
    """The comparison is only fair if every peer does the same work."""
    if peer != "numpy":
        pytest.importorskip(peer)
    sizes, batch = (5, 7, 6, 3), 9
    ours = bench.cyprop_step(sizes, batch, np.float64)
    theirs = getattr(bench, f"{peer}_step")(sizes, batch, np.float64)
    for a, b in zip(ours.weights(), theirs.weights()):
        np.testing.assert_array_equal(a, b)  # same start
    for _ in range(3):
        ours()
        theirs()
    moved = False
    for a, b, w0 in zip(ours.weights(), theirs.weights(), bench._init(sizes, np.float64)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        moved |= not np.allclose(a, w0)
    assert moved


def test_bad_threads_argument():
    with pytest.raises(SystemExit):
        bench.main(["--threads", "0"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_gemm_floors_compute_the_step_products(dtype):
    """The GEMMs and BLAS columns time the same products, computed in place."""
    sizes, batch = (5, 7, 6, 3), 9
    ours, theirs = bench.gemms_step(sizes, batch, dtype), bench.blas_gemms_step(sizes, batch, dtype)
    ours()
    theirs()
    assert len(ours.outputs) == len(theirs.outputs) == 3 + 3 + 2
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(ours.outputs, theirs.outputs):
        assert a.shape == b.shape and a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol)
    # the forward products chain, so the last output depends on every one before
    x, _ = bench._data(sizes, batch, dtype)
    h = x
    for W in bench._init(sizes, dtype)[0]:
        h = h @ W
    np.testing.assert_allclose(theirs.outputs[2], h, rtol=rtol)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_stream_floor_moves_the_kernels_bytes(direction):
    """The stream column reads the kernel's inputs and writes its output, in place."""
    x, dy = bench._kernel_data(np.float32, shape=(5, 3))
    y = np.maximum(x, 0)
    inputs, expected = ((x,), -x) if direction == "forward" else ((dy, y), dy * y)
    out = np.full_like(x, np.nan)
    bench.stream_step(inputs, out)()
    np.testing.assert_array_equal(out, expected)


def test_floor_columns_stay_aligned_in_a_mixed_table():
    """A row without an earlier floor gets a '-' there, so its later floor stays in its column."""
    rows = [{"case": "step", "dtype": "float32", "threads": 1,
             "times": {"cyprop": 2.0, "numpy": 4.0, "gemms": 1.0, "blas": 1.6}},
            {"case": "relu", "dtype": "float32", "threads": 1,
             "times": {"cyprop": 1.0, "numpy": 2.0, "stream": 0.8}}]
    lines = bench.format_table(rows).splitlines()
    head, step, relu = lines[0], lines[2], lines[3]
    assert head.split()[-2:] == ["stream", "ratio"]
    assert len(relu) == len(head) and relu.split()[-2:] == ["ms", "1.25"]
    assert step.split()[-2:] == ["ms", "1.25"] and len(step) < len(head)


def test_steps_and_kernels_print_as_two_tables(capsys, monkeypatch):
    """Each table carries only its own columns: the kernels' rows no '-' for jax or GEMMs."""
    rows = [{"case": "step mlp", "dtype": "float32", "threads": 1,
             "times": {"cyprop": 2.0, "numpy": 4.0, "jax": 3.0, "gemms": 1.0, "blas": 1.6}},
            {"case": "relu forward", "dtype": "float32", "threads": 1,
             "times": {"cyprop": 1.0, "numpy": 2.0, "stream": 0.8}}]
    monkeypatch.setattr(bench, "run", lambda *args, **kwargs: rows)
    assert bench.main(["--only", "train"]) == 0
    tables = capsys.readouterr().out.split("\n\n")
    assert len(tables) == 2
    assert "jax" in tables[0] and "stream" not in tables[0] and "relu" not in tables[0]
    assert "jax" not in tables[1] and "GEMMs" not in tables[1] and " - " not in tables[1]


def test_thread_scaling_table_interleaves_one_and_more_threads(capsys, monkeypatch):
    """With 1 and n threads asked for, the compute-bound kernels get a speed-up table of their own."""
    seen = []
    real_threads = bench.cyprop.threads

    def spying_threads(n):
        seen.append(n)
        return real_threads(n)
    monkeypatch.setattr(bench.cyprop, "threads", spying_threads)
    results = bench.run(threads=(1, 2), dtypes=(np.float32,), which=("kernels",), repeats=3,
                        target=0.0005, settle=0.0, progress=False)
    scaling = [r for r in results if "scaling" in r]
    assert [r["case"].split()[0] for r in scaling] == ["sigmoid", "tanh", "softmax-CE", "gelu",
                                                      "silu"]
    assert all(r["threads"] == 2 and set(r["scaling"]) == {"1", "2"}
               and min(r["scaling"].values()) > 0 for r in scaling)
    # the kernel table's two blocks, then per case: calibration and 3 samples
    # at each count, alternating
    assert seen == [1, 2] + [1, 2] * (1 + 3) * len(scaling)
    text = bench.format_scaling(scaling)
    assert "2 threads" in text and "speed-up" in text
    assert len(text.splitlines()) == 2 + len(scaling) + 1


def test_no_scaling_table_without_one_thread():
    results = bench.run(threads=(2,), dtypes=(np.float32,), which=("kernels",), repeats=1,
                        target=0.0001, progress=False)
    assert results and not any("scaling" in r for r in results)


def test_busy_processes_run_while_the_block_does_and_are_stopped():
    with bench.busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)
    with pytest.raises(RuntimeError), bench.busy_processes(1) as procs:
        raise RuntimeError
    assert procs[0].poll() is not None


def test_under_load_table(capsys, monkeypatch):
    """--under-load N starts N busy processes and adds cyprop's 1-vs-n thread table."""
    started = []
    real = bench.busy_processes

    def spying(n):
        started.append(n)
        return real(n)
    monkeypatch.setattr(bench, "busy_processes", spying)
    monkeypatch.setattr(bench, "MLPS", [("mlp 6-9-3", (6, 9, 3), 5)])
    monkeypatch.setattr(bench, "digits_fit_step", lambda n: lambda: None)
    assert bench.main(["--only", "train", "--under-load", "1", "--dtype", "float32",
                       "--repeats", "1", "--target", "0.0001"]) == 0
    out = capsys.readouterr().out
    assert started == [1]
    assert "under load: 1 busy processes" in out and "beside 1 busy processes" in out
    table = out[out.index("beside 1 busy"):]
    assert "step mlp 6-9-3 b5" in table and "n / 1" in table
    if bench._optional("sklearn") is not None:
        assert "digits MLPClassifier fit" in table


def test_under_load_must_not_be_negative():
    with pytest.raises(SystemExit):
        bench.main(["--under-load", "-1"])


def test_tabular_numpy_peer_computes_the_same_steps():
    """The NumPy tabular recipe (BN, ReLU, dropout, BCE, AdamW, clipping, cosine) is
    cyprop's recipe step for step: the same masks, the same clipped, scheduled updates."""
    sizes, batch, p = (6, 9, 7, 1), 16, 0.2
    ours = bench.cyprop_tabular_step(sizes, batch, p, np.float64)
    theirs = bench.numpy_tabular_step(sizes, batch, p, np.float64)
    for _ in range(4):
        ours()
        theirs()
    for a, b in zip(ours.weights(), theirs.weights()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_compare_blas_times_each_library(monkeypatch, capsys, tmp_path):
    """--compare-blas: a row per MLP, dtype and thread count with each library's step and products."""
    pytest.importorskip("scipy_openblas32")
    monkeypatch.setattr(bench, "MLPS", [("mlp 6-9-3", (6, 9, 3), 5)])
    before = cyprop.blas_info()["name"]
    out_json = tmp_path / "blas.json"
    assert bench.main(["--compare-blas", "--dtype", "float64", "--threads", "1,2",
                       "--repeats", "1", "--target", "0.0001", "--settle", "0",
                       "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "step mlp 6-9-3 b5" in out and "prod scipy" in out
    rows = json.loads(out_json.read_text())
    assert [r["threads"] for r in rows] == [1, 2]
    for r in rows:
        assert set(r["blas"]) == {f"{k} {b}" for k in ("step", "products")
                                  for b in ("scipy-openblas32", "scipy")}
        assert all(t > 0 for t in r["blas"].values())
    assert cyprop.blas_info()["name"] == before  # restored


def test_hessian_table(monkeypatch, capsys):
    monkeypatch.setattr(bench, "MLPS", [("mlp 6-9-3", (6, 9, 3), 5), ("linear 6->3", (6, 3), 4)])
    assert bench.main(["--hessian", "--dtype", "float32", "--threads", "1", "--repeats", "1",
                       "--target", "0.0001", "--settle", "0"]) == 0
    out = capsys.readouterr().out
    assert "mlp 6-9-3 b5" in out and "ggnvp" in out and "linear 6->3" not in out


def test_checkpoint_table():
    rows = bench.checkpoint_memory(segments=(None, 2), depth=4, width=32, batch=64, steps=1)
    assert [r["checkpoint_segments"] for r in rows] == [None, 2]
    assert rows[1]["peak_mib"] < rows[0]["peak_mib"]
    text = bench.format_checkpoint(rows, depth=4, width=32, batch=64)
    assert "4-layer 32-wide" in text and "segments" in text


def test_sklearn_digits_rows_name_each_fit():
    """The digits comparison times each configuration against scikit-learn's, same accuracy."""
    pytest.importorskip("sklearn")
    fits = ((dict(hidden_layer_sizes=(8, 8), batch_size=32), 2),)
    rows = bench.sklearn_digits((1,), repeats=1, settle=0.0, fits=fits)
    assert [r["case"] for r in rows] == ["digits MLPClassifier fit 8x8 b32 (2 ep)"]
    assert rows[0]["times"]["cyprop"] > 0 and rows[0]["times"]["sklearn"] > 0
    assert abs(rows[0]["accuracy"]["cyprop"] - rows[0]["accuracy"]["sklearn"]) < 0.02
    assert "8x8 b32" in bench.format_sklearn(rows)
