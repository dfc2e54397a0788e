"""The baseline (non-AVX2) copies of the vectorized loops, tested on an AVX2 machine.

exp, sigmoid, tanh, the softmax row passes and the optimizer updates are
compiled twice, for the baseline x86-64 ISA and for AVX2 + FMA, and the AVX2
copy is picked at run time. On a machine with AVX2 the rest of the suite only
ever runs that copy; here the kernel tests run again in a fresh interpreter
with ``CYPROP_NO_AVX2=1``, which makes every module take the baseline copies.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cyprop
from cyprop import _activations

HERE = Path(__file__).parent
KERNEL_TESTS = [str(HERE / name) for name in ("test_activations.py", "test_softmax_ce.py",
                                              "test_optim.py", "test_linear.py", "test_mse.py")]


def _run(args, env_value):
    # same interpreter, working directory and environment (so the same cyprop)
    env = dict(os.environ, CYPROP_NO_AVX2=env_value)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("value, want", [("1", "baseline"), ("0", None), ("", None)])
def test_the_switch_selects_the_copy(value, want):
    res = _run(["-c", "import cyprop; from cyprop import _activations; "
                      "print(cyprop.__file__); print(_activations.vector_isa())"], value)
    assert res.returncode == 0, res.stderr
    path, isa = res.stdout.split()
    assert path == cyprop.__file__
    # "0" and "" leave the choice to the CPU, as in this process
    assert isa == (want or _activations.vector_isa())


@pytest.mark.skipif(_activations.vector_isa() != "avx2",
                    reason="this process already runs the baseline copies")
def test_kernel_tests_pass_on_the_baseline_copies():
    res = _run(["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *KERNEL_TESTS], "1")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout
