"""python -m cyprop demo / bench entry points."""
import subprocess
import sys

import pytest

from cyprop.__main__ import main

pytest.importorskip("sklearn")
pytest.importorskip("tqdm")


def test_demo_trains_and_compares(tmp_path, capsys):
    plot = tmp_path / "curves.png"
    args = ["demo", "--epochs", "3", "--hidden", "16", "--threads", "1"]
    if pytest.importorskip("matplotlib"):
        args += ["--plot", str(plot)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cyprop test accuracy" in out and "scikit-learn" in out and "fit time" in out
    assert plot.stat().st_size > 1000


def test_demo_learns_the_digits(capsys):
    assert main(["demo", "--epochs", "15", "--no-compare", "--dtype", "float64"]) == 0
    acc = float(capsys.readouterr().out.split("cyprop test accuracy:")[1].split()[0])
    assert acc > 0.95


@pytest.mark.parametrize("args", [["demo", "--hidden", "0"], ["demo", "--epochs", "-1"],
                                  ["demo", "--dtype", "int8"]])
def test_demo_rejects_bad_options(args):
    with pytest.raises(SystemExit) as err:
        main(args)
    assert err.value.code == 2


def test_usage_and_module_entry_point():
    assert main([]) == 2
    assert main(["--help"]) == 0
    run = subprocess.run([sys.executable, "-m", "cyprop", "nope"], capture_output=True, text=True)
    assert run.returncode == 2 and "usage" in run.stdout


def test_demo_diagnose_prints_the_unit_report(capsys):
    assert main(["demo", "--epochs", "2", "--hidden", "16,8", "--no-compare", "--diagnose"]) == 0
    out = capsys.readouterr().out
    assert "unit report on 1347 rows" in out and "Linear 64->16" in out and "grad norm" in out
