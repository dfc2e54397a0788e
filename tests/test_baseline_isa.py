"""The baseline (non-AVX2) copies of the vectorized loops, tested on an AVX2 machine.

exp, sigmoid, tanh, the softmax row passes and the optimizer updates are
compiled twice, for the baseline x86-64 ISA and for AVX2 + FMA, and the AVX2
copy is picked at run time (round 2's loops - the activations with
parameters, the losses, the norms, dropout - a third time, for AVX-512, off
with ``CYPROP_NO_AVX512=1``). On a machine with AVX2 the rest of the suite only
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
                                              "test_optim.py", "test_linear.py", "test_mse.py",
                                              "test_activations_param.py", "test_losses.py",
                                              "test_norm.py", "test_dropout.py")]
# round 2's span families (_special.h, _norm.h, _philox.h) have a third copy, AVX-512,
# and so have round 1's compute-bound spans (sigmoid, tanh, softmax's exp-and-sum)
AVX512_TESTS = KERNEL_TESTS[:2] + KERNEL_TESTS[5:]


def _run(args, env_value, var="CYPROP_NO_AVX2"):
    # same interpreter, working directory and environment (so the same cyprop)
    env = dict(os.environ, **{var: env_value})
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


@pytest.mark.skipif(_activations.vector_isa3() != "avx512",
                    reason="this CPU has no AVX-512: the AVX2 copies run in this process")
def test_avx512_kernel_tests_pass_on_the_avx2_copies():
    res = _run(["-c", "from cyprop import _activations; print(_activations.vector_isa3())"], "1",
               "CYPROP_NO_AVX512")
    assert res.stdout.strip() == "avx2", res.stderr
    res = _run(["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *AVX512_TESTS], "1",
               "CYPROP_NO_AVX512")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout


_SAME_BITS_SCRIPT = """
import hashlib
import numpy as np
from cyprop import functional as F
rng = np.random.default_rng(5)
out = []
for dtype in (np.float32, np.float64):
    p, t = (rng.standard_normal(3 * 8192 + 37).astype(dtype) for _ in range(2))
    loss, g = F.mse_loss(p, t)
    # short sums too, where a fused multiply-add would show in the last bits
    losses = [F.mse_loss(p[:k], t[:k])[0] for k in range(16, 300)]
    out.append(hashlib.sha1(np.array(losses).tobytes()).hexdigest())
    w, dw = rng.standard_normal(1001).astype(dtype), rng.standard_normal(1001).astype(dtype)
    m, v = np.zeros_like(w), np.zeros_like(w)
    F.adam_step(w, dw, m, v, step=1, lr=1e-2, weight_decay=1e-2)
    F.sgd_step(w, dw, lr=1e-2, weight_decay=1e-2)
    out.append(repr(loss) + hashlib.sha1(g.tobytes() + w.tobytes()).hexdigest())
print(" ".join(out))
"""


@pytest.mark.skipif(_activations.vector_isa() != "avx2",
                    reason="this process already runs the baseline copies")
def test_mse_and_optimizer_updates_give_the_same_bits_on_both_copies():
    # built without FMA, these loops must not depend on the CPU (README: optimizers)
    runs = [_run(["-c", _SAME_BITS_SCRIPT], value) for value in ("1", "0")]
    for res in runs:
        assert res.returncode == 0, res.stderr
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.strip()


_TRANSCENDENTAL_SCRIPT = """
import hashlib
import numpy as np
from cyprop import functional as F
rng = np.random.default_rng(6)
out = []
for dtype in (np.float32, np.float64):
    x = (rng.standard_normal(70001) * 6).astype(dtype)
    z = (rng.standard_normal((301, 37)) * 8).astype(dtype)
    loss, g = F.softmax_cross_entropy(z, rng.integers(0, 37, 301))
    out.append(repr(loss) + hashlib.sha1(F.sigmoid_forward(x).tobytes() + F.tanh_forward(x).tobytes()
                                         + g.tobytes() + F.softmax(z).tobytes()).hexdigest())
print(" ".join(out))
"""


@pytest.mark.skipif(_activations.vector_isa3() != "avx512",
                    reason="this CPU has no AVX-512: the AVX2 copies run in this process")
def test_sigmoid_tanh_softmax_give_the_same_bits_on_the_avx512_and_avx2_copies():
    # the same operations in the same order (pyx/_vecmath.h, CP_DISPATCH_TRANSCENDENTAL)
    runs = [_run(["-c", _TRANSCENDENTAL_SCRIPT], value, "CYPROP_NO_AVX512") for value in ("1", "0")]
    for res in runs:
        assert res.returncode == 0, res.stderr
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.strip()
