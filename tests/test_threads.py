import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

import cyprop


def test_openmp_is_reported():
    assert isinstance(cyprop.openmp_enabled(), bool)


def test_set_get_and_context_manager():
    before = cyprop.get_num_threads()
    with cyprop.threads(1):
        assert cyprop.get_num_threads() == 1
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(n == 1 for n in blas)
    assert cyprop.get_num_threads() == before
    cyprop.set_num_threads(1)
    try:
        assert cyprop.get_num_threads() == 1
    finally:
        cyprop.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_counts_raise(bad):
    with pytest.raises(ValueError, match="n_threads"):
        cyprop.set_num_threads(bad)
    with pytest.raises(ValueError, match="n_threads"):
        with cyprop.threads(bad):
            pass


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_non_int_counts_raise(bad):
    with pytest.raises(TypeError, match="n_threads"):
        cyprop.set_num_threads(bad)


@pytest.mark.skipif(not cyprop.openmp_enabled(), reason="built without OpenMP")
def test_omp_num_threads_is_respected():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", "import cyprop; print(cyprop.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
