"""Fuzzing in a subprocess: a crash fails this test instead of killing the run."""
import os
import subprocess
import sys

WORKER = os.path.join(os.path.dirname(__file__), "fuzz_worker.py")


def test_fuzz_every_public_function():
    n = os.environ.get("CYPROP_FUZZ_EXAMPLES", "4000")
    proc = subprocess.run([sys.executable, WORKER, n], capture_output=True, text=True,
                          timeout=900)
    report = f"exit code {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert proc.returncode >= 0, "the fuzz worker CRASHED (signal): " + report
    assert proc.returncode == 0, report
    assert "no crash" in proc.stdout
