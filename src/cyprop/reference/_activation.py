"""Reference element-wise activations and their gradients."""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .._typing import FloatArray
from ._common import _sigmoid, _store

_ACT = {
    None: lambda a: a,
    "identity": lambda a: a,
    "relu": lambda a: np.maximum(a, 0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}
_DACT = {  # derivative in terms of the forward output y
    None: lambda dy, y: dy,
    "identity": lambda dy, y: dy,
    "relu": lambda dy, y: dy * (y > 0),
    "sigmoid": lambda dy, y: dy * y * (1 - y),
    "tanh": lambda dy, y: dy * (1 - y * y),
}


def relu_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference ReLU."""
    return _store(np.maximum(x, 0), out)


def relu_backward(dy: ArrayLike, y: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference ReLU gradient ``dy * (y > 0)``."""
    return _store(dy * (y > 0), out)


def sigmoid_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference sigmoid."""
    return _store(_sigmoid(x), out)


def sigmoid_backward(dy: ArrayLike, y: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference sigmoid gradient ``dy * y * (1 - y)``."""
    return _store(dy * y * (1 - y), out)


def tanh_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference tanh."""
    return _store(np.tanh(x), out)


def tanh_backward(dy: ArrayLike, y: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference tanh gradient ``dy * (1 - y**2)``."""
    return _store(dy * (1 - y * y), out)


# The activations whose backward takes the pre-activation x, written as the
# textbook formulas (in float64 where the dtype's own exp would overflow).
def _f64(fn):
    def wrapped(x, *args):
        return fn(np.asarray(x, np.float64), *args).astype(np.asarray(x).dtype, copy=False)
    return wrapped


@_f64
def _leaky(x, slope):
    return np.where(x > 0, x, slope * x)


@_f64
def _dleaky(v, slope):
    return np.where(v > 0, 1.0, slope)


@_f64
def _elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


@_f64
def _delu(x, alpha):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


@_f64
def _gelu(x):
    return x * special.ndtr(x)


@_f64
def _dgelu(x):
    return special.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


_C = math.sqrt(2 / math.pi)


@_f64
def _gelu_tanh(x):
    # 0.5 x (1 + tanh u) = x sigmoid(2u): no cancellation in 1 + tanh u for u << 0
    return x * special.expit(2 * _C * (x + 0.044715 * x ** 3))


@_f64
def _dgelu_tanh(x):
    u = _C * (x + 0.044715 * x ** 3)
    s, sn = special.expit(2 * u), special.expit(-2 * u)   # (1 + tanh u) / 2, (1 - tanh u) / 2
    return s + 2 * x * s * sn * _C * (1 + 3 * 0.044715 * x * x)


@_f64
def _silu(x):
    return x * special.expit(x)


@_f64
def _dsilu(x):
    s = special.expit(x)
    return s * (1 + x * special.expit(-x))


@_f64
def _softplus(x, beta, threshold):
    z = beta * x
    return np.where(z > threshold, x, np.logaddexp(0, z) / beta)


@_f64
def _dsoftplus(x, beta, threshold):
    z = beta * x
    return np.where(z > threshold, 1.0, special.expit(z))


def leaky_relu_forward(x: ArrayLike, *, negative_slope: float = 0.01,
                       out: FloatArray | None = None) -> FloatArray:
    """Reference leaky ReLU."""
    return _store(_leaky(x, negative_slope), out)


def leaky_relu_backward(dy: ArrayLike, x_or_y: ArrayLike, *, negative_slope: float = 0.01,
                        out: FloatArray | None = None) -> FloatArray:
    """Reference leaky ReLU gradient."""
    return _store(dy * _dleaky(x_or_y, negative_slope), out)


def elu_forward(x: ArrayLike, *, alpha: float = 1.0, out: FloatArray | None = None) -> FloatArray:
    """Reference ELU."""
    return _store(_elu(x, alpha), out)


def elu_backward(dy: ArrayLike, x: ArrayLike, *, alpha: float = 1.0,
                 out: FloatArray | None = None) -> FloatArray:
    """Reference ELU gradient from the pre-activation."""
    return _store(dy * _delu(x, alpha), out)


def gelu_forward(x: ArrayLike, *, approximate: Literal["none", "tanh"] = "none",
                 out: FloatArray | None = None) -> FloatArray:
    """Reference GELU (exact, or the tanh approximation)."""
    return _store(_gelu(x) if approximate == "none" else _gelu_tanh(x), out)


def gelu_backward(dy: ArrayLike, x: ArrayLike, *, approximate: Literal["none", "tanh"] = "none",
                  out: FloatArray | None = None) -> FloatArray:
    """Reference GELU gradient from the pre-activation."""
    return _store(dy * (_dgelu(x) if approximate == "none" else _dgelu_tanh(x)), out)


def silu_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference SiLU."""
    return _store(_silu(x), out)


def silu_backward(dy: ArrayLike, x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference SiLU gradient from the pre-activation."""
    return _store(dy * _dsilu(x), out)


def softplus_forward(x: ArrayLike, *, beta: float = 1.0, threshold: float = 20.0,
                     out: FloatArray | None = None) -> FloatArray:
    """Reference softplus."""
    return _store(_softplus(x, beta, threshold), out)


def softplus_backward(dy: ArrayLike, x: ArrayLike, *, beta: float = 1.0, threshold: float = 20.0,
                      out: FloatArray | None = None) -> FloatArray:
    """Reference softplus gradient from the pre-activation."""
    return _store(dy * _dsoftplus(x, beta, threshold), out)


# activation=<name> of linear_forward: torch's default parameters
_ACT2 = {
    "leaky_relu": lambda z: _leaky(z, 0.01), "elu": lambda z: _elu(z, 1.0), "gelu": _gelu,
    "gelu_tanh": _gelu_tanh, "silu": _silu, "softplus": lambda z: _softplus(z, 1.0, 20.0),
}
_DACT2 = {
    "leaky_relu": lambda z: _dleaky(z, 0.01), "elu": lambda z: _delu(z, 1.0), "gelu": _dgelu,
    "gelu_tanh": _dgelu_tanh, "silu": _dsilu, "softplus": lambda z: _dsoftplus(z, 1.0, 20.0),
}
