"""Argument checks shared by cyprop.functional (and the layers above it).

Conversion rules (documented in the README):

* The call's dtype is the dtype shared by its ndarray float arguments; a call
  whose float arrays disagree (float32 with float64) raises TypeError.
* ndarray arguments must be float32 or float64: integer, bool, complex,
  float16 and object arrays raise TypeError (an implicit cast would be a
  silent copy and usually a bug; call ``.astype`` explicitly).
* NumPy scalars count as arrays of their dtype. Other array-likes of real
  numbers (lists, tuples, Python numbers) are converted to the call's dtype:
  that of the ndarray arguments, else of the ``out=`` array, else float64.
* Non-contiguous and Fortran-ordered arrays are copied to C order.
* ``out=`` arrays are never reallocated or converted: wrong type, dtype,
  shape, order or a read-only array raises.
"""
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT_SET = frozenset(FLOAT_DTYPES)   # native float32/float64 (a dtype hashes as it compares)
_ARRAY_TYPES = (np.ndarray, np.generic)
ACTIVATIONS = {None: 0, "identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3,
               "leaky_relu": 4, "elu": 5, "gelu": 6, "gelu_tanh": 7, "silu": 8, "softplus": 9}
# codes from here on are the activations whose backward takes the pre-activation
# (leaky_relu's may take either); the fused GEMM epilogue runs only codes below it
FIRST_PRE_ACTIVATION = 4
# torch's defaults for the activations' parameters, used by activation=<name>
ACTIVATION_PARAMS = {4: (0.01, 0.0), 5: (1.0, 0.0), 9: (1.0, 20.0)}
REDUCTIONS = ("mean", "sum")
_BLAS_MAX = 2**31 - 1  # BLAS dimensions are 32-bit ints


def activation_code(activation, name="activation"):
    """Kernel code of an activation name (None, 'relu', 'sigmoid', 'tanh', 'leaky_relu', ...)."""
    try:
        return ACTIVATIONS[activation]
    except (KeyError, TypeError):
        names = ", ".join(repr(k) for k in ACTIVATIONS if k not in (None, "identity"))
        raise ValueError(f"{name} must be one of None, {names}, got {activation!r}") from None


def check_real(name, v, *, low=None, low_open=False, high=None, high_open=False):
    """``v`` as a finite float within the given bounds, else TypeError/ValueError naming it."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {v!r} of type {type(v).__name__}")
    v = float(v)
    ok = v == v and abs(v) != float("inf")
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + repr(float(low))
        hi = "" if high is None else repr(float(high)) + (")" if high_open else "]")
        rng = f" in {lo or '(-inf'}, {hi or 'inf)'}" if (low is not None or high is not None) else ""
        raise ValueError(f"{name} must be a finite number{rng}, got {v}")
    return v


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def call_dtype(*named):
    """The dtype shared by the ndarray arguments among ``(name, value)`` pairs.

    Raises TypeError for a non-float ndarray or for mixed float dtypes; returns
    float64 when none of the values is an ndarray. (Called on every functional
    call: the common case, ndarrays of one native float dtype, compares dtype
    objects by identity and looks them up in a set.)
    """
    dtype = first = None
    for name, a in named:
        if a is None or not isinstance(a, _ARRAY_TYPES):
            continue
        dt = a.dtype
        if dt is dtype:
            continue
        if dt not in _FLOAT_SET:
            raise TypeError(
                f"{name} must be a float32 or float64 array, got dtype {dt}"
                + ("" if dt.kind not in "biu" else f" (use {name}.astype(np.float32))")
            )
        if dtype is None:
            dtype, first = dt, name
        elif dt != dtype:
            raise TypeError(
                f"{name} has dtype {dt} but {first} has dtype {dtype}; "
                "cyprop does not mix dtypes, convert one with .astype()"
            )
    return dtype if dtype is not None else FLOAT_DTYPES[1]


def as_float_array(name, a, dtype, ndim=None):
    """``a`` as a C-contiguous array of ``dtype`` (see the module's rules).

    ``call_dtype`` must have accepted ``a`` already when it is an ndarray.
    ``ndim`` may be an int or a tuple of accepted ints.
    """
    if type(a) is np.ndarray:  # the common case first
        pass
    elif isinstance(a, np.generic):
        a = np.asarray(a)
    elif not isinstance(a, np.ndarray):
        try:
            arr = np.asarray(a)
        except Exception as exc:  # ragged lists and other non-arrays
            raise TypeError(f"{name} must be array-like of real numbers: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be array-like of real numbers, got dtype {arr.dtype}")
        a = arr.astype(dtype)
    if ndim is not None and a.ndim != ndim and not (isinstance(ndim, tuple) and a.ndim in ndim):
        want = ndim if isinstance(ndim, int) else " or ".join(map(str, ndim))
        raise ValueError(f"{name} must be {want}-D, got shape {a.shape}")
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a


def check_out(name, out, shape, dtype):
    """Check a caller-provided output array; returns it unchanged."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array")
    return out


def _same_memory(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape)


def check_no_overlap(out_name, out, inputs, alias_ok=()):
    """Raise ValueError if ``out`` overlaps any ``(name, array)`` in ``inputs``.

    An input named in ``alias_ok`` may be exactly ``out`` (same memory, same
    shape), for kernels that work in place.
    """
    for name, a in inputs:
        if a is not None and np.may_share_memory(out, a):
            if name in alias_ok and _same_memory(out, a):
                continue
            raise ValueError(
                f"{out_name} overlaps {name}"
                + (f"; it may only be {name} itself" if name in alias_ok else "")
            )


def check_blas_dims(n, n_in, n_out):
    """Raise ValueError if a GEMM dimension (N, in_features, out_features) exceeds int32."""
    if n > _BLAS_MAX or n_in > _BLAS_MAX or n_out > _BLAS_MAX:
        for name, v in (("N", n), ("in_features", n_in), ("out_features", n_out)):
            if v > _BLAS_MAX:
                raise ValueError(f"{name}={v} exceeds the BLAS limit of {_BLAS_MAX}")


def check_positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {v!r} of type {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return int(v)


def check_nonneg_float(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {v!r} of type {type(v).__name__}")
    v = float(v)
    if not v >= 0 or v == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v
