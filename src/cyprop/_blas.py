"""Which BLAS cyprop's GEMMs call, and the hooks that keep it single-threaded.

The kernels (``pyx/_linear.pyx``) call ``?gemm``/``?gemv`` through function
pointers. By default they point at the OpenBLAS of the ``scipy-openblas32``
package (the packaging build NumPy and SciPy themselves build against), which
is a newer OpenBLAS than the one SciPy's wheels bundle behind
``scipy.linalg.cython_blas``: measured here (AMD EPYC, AVX-512), its float32
GEMMs are 4-8% faster on every bench shape, float64 the same. Without that
package, or with the environment variable ``CYPROP_BLAS=scipy`` set before
import, the kernels use ``scipy.linalg.cython_blas``.

The library is found through its Python package and its symbols resolved with
ctypes at import, as SciPy's own ``cython_blas`` resolves them, so nothing in
the build links to it (no rpath, nothing to vendor in a wheel), and the choice
can be made per process.

Whichever library is used, cyprop's kernels run it single-threaded inside
their own OpenMP blocks (see ``pyx/_linear.pyx``), through that library's
``openblas_get/set_num_threads``, whose addresses are registered here.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import sys
from typing import Any

from threadpoolctl import ThreadpoolController

from . import _linear

__all__ = ["blas_info"]

_CHOICES = ("auto", "scipy-openblas32", "scipy")
_info = {}  # what blas_info() returns
_keep = []  # the ctypes handles, alive as long as the process


def _scipy_openblas32():
    """(handle, path, version) of scipy-openblas32's library, or None if not installed."""
    try:
        import scipy_openblas32  # loads the library (RTLD_GLOBAL) on import
    except ImportError:
        return None
    lib_dir = scipy_openblas32.get_lib_dir()
    ext = {"win32": "*.dll", "darwin": "*.dylib"}.get(sys.platform, "*.so*")
    paths = sorted(glob.glob(os.path.join(lib_dir, "libscipy_openblas" + ext)))
    if not paths:
        return None
    return ctypes.CDLL(paths[0]), paths[0], scipy_openblas32.__version__


def _address(lib, name):
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


def _thread_functions(lib):
    """Addresses of (get, set) num-threads of an OpenBLAS handle, or None."""
    for prefix in ("scipy_", ""):
        for suffix in ("", "64_"):
            try:
                return (_address(lib, f"{prefix}openblas_get_num_threads{suffix}"),
                        _address(lib, f"{prefix}openblas_set_num_threads{suffix}"))
            except AttributeError:
                continue
    return None


def _scipy_thread_functions():
    """Thread functions of the OpenBLAS behind scipy's cython_blas, or None.

    SciPy wheels bundle their own OpenBLAS (in ``scipy.libs`` or
    ``scipy/.dylibs``); elsewhere scipy and numpy may share one system
    OpenBLAS, which is then the one to use if it is the only one loaded.
    """
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library)

    scipy_root = os.path.dirname(os.path.realpath(scipy.__file__))
    # scipy/.dylibs (macOS) is inside the package, scipy.libs (Linux wheels) beside it
    # (and scipy_openblas32/, also beside it, is not scipy's)
    roots = (scipy_root + os.sep, scipy_root + ".libs" + os.sep)
    libs = [c for c in ThreadpoolController().lib_controllers if c.internal_api == "openblas"]
    ours = [c for c in libs if os.path.realpath(c.filepath).startswith(roots)]
    candidates = ours or (libs if len(libs) == 1 else [])
    if len(candidates) != 1:
        return None, None
    return _thread_functions(ctypes.CDLL(candidates[0].filepath)), candidates[0]


def _scipy_openblas32_choice(found):
    """(function addresses, thread hooks, info) of scipy-openblas32's library, or None."""
    lib, path, version = found
    try:
        addresses = [_address(lib, f"scipy_{name}_") for name in ("sgemm", "dgemm", "sgemv", "dgemv")]
    except AttributeError:
        return None
    hooks = _thread_functions(lib)
    if hooks is None:
        return None
    _keep.append(lib)
    return addresses, hooks, dict(name="scipy-openblas32", version=version, filepath=path)


def _scipy_choice():
    hooks, controller = _scipy_thread_functions()
    return [], hooks, dict(name="scipy", version=getattr(controller, "version", None),
                           filepath=getattr(controller, "filepath", None))


def _select(choice):
    """(function addresses, thread hooks, info) for the BLAS ``choice`` names; changes nothing."""
    if choice not in _CHOICES:
        raise ValueError(f"CYPROP_BLAS must be one of {', '.join(_CHOICES)}; got {choice!r}")
    if choice != "scipy":
        found = _scipy_openblas32()
        picked = _scipy_openblas32_choice(found) if found is not None else None
        if picked is not None:
            return picked
        if choice == "scipy-openblas32":
            raise ImportError("CYPROP_BLAS=scipy-openblas32, but the scipy-openblas32 package "
                              "is not installed or its library lacks ?gemm/?gemv")
    return _scipy_choice()


def blas_info() -> dict[str, Any]:
    """Describe the BLAS library cyprop's GEMMs call.

    Returns
    -------
    dict
        ``name`` ("scipy-openblas32" or "scipy"), ``version`` and
        ``filepath`` of the library, and ``deterministic``: True when cyprop
        controls that library's threads, so that GEMM results do not depend on
        the thread count.

    Examples
    --------
    >>> import cyprop
    >>> cyprop.blas_info()["name"] in ("scipy-openblas32", "scipy")
    True
    """
    return dict(_info, deterministic=_hooks is not None)


def _set_backend(choice):
    """Switch the kernels' BLAS (for benchmarks and tests; no kernel may be running).

    Nothing changes when ``choice`` cannot be had (the error propagates).
    """
    global _hooks
    addresses, hooks, info = _select(choice)
    _linear.set_blas_functions(*addresses)
    _hooks = hooks
    _linear.set_blas_thread_hooks(*(hooks or (0, 0)))
    _info.clear()
    _info.update(info)


@contextlib.contextmanager
def _using(choice):
    """Run the block with the kernels on BLAS ``choice``, then restore (benchmarks, tests)."""
    previous = _info["name"]
    _set_backend(choice)
    try:
        yield
    finally:
        _set_backend(previous)


_hooks = None
_set_backend(os.environ.get("CYPROP_BLAS", "auto").strip().lower() or "auto")
