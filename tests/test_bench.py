"""The comparison script runs, prints its table, writes JSON and a plot."""
import json

import numpy as np
import pytest

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
    results = json.loads(out.read_text())
    assert {r["case"].split()[0] for r in results} >= {"relu", "sigmoid", "tanh", "softmax-CE"}
    assert all(r["times"]["cyprop"] > 0 and r["times"]["numpy"] > 0 for r in results)
    assert plot.stat().st_size > 1000


def test_training_steps_of_every_peer_compute_the_same_update():
    sizes, batch = (5, 7, 3), 4
    ours = bench.cyprop_step(sizes, batch, np.float64)
    ref = bench.numpy_step(sizes, batch, np.float64)
    ours()
    ref()  # both run without error; equality of the math is tested in test_nn/test_optim


def test_bad_threads_argument():
    with pytest.raises(SystemExit):
        bench.main(["--threads", "0"])
