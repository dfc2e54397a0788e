"""Element-wise activations and their gradients."""
from __future__ import annotations

from typing import Literal

from numpy.typing import ArrayLike

from .. import _activations
from .._typing import FloatArray
from .._validation import as_float_array, call_dtype, check_real
from ._common import _n_threads, _output


def _activation_forward(act, x, out):
    dtype = call_dtype(("x", x), ("out", out))
    x = as_float_array("x", x, dtype)
    y = _output("out", out, x.shape, dtype, (("x", x),), alias_ok=("x",))
    _activations.activation_forward(x, y, act, _n_threads())
    return y


def _activation_backward(act, dy, y, out):
    dtype = call_dtype(("dy", dy), ("y", y), ("out", out))
    dy = as_float_array("dy", dy, dtype)
    y = as_float_array("y", y, dtype)
    if dy.shape != y.shape:
        raise ValueError(f"dy and y must have the same shape, got {dy.shape} and {y.shape}")
    dx = _output("out", out, dy.shape, dtype, (("dy", dy), ("y", y)), alias_ok=("dy", "y"))
    _activations.activation_backward(dy, y, dx, act, _n_threads())
    return dx


def relu_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """ReLU, ``max(x, 0)``, element-wise (NaN propagates).

    Parameters
    ----------
    x : array_like
        Any shape.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself (in place).

    Returns
    -------
    y : ndarray
    """
    return _activation_forward(1, x, out)


def relu_backward(dy: ArrayLike, y: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """ReLU gradient from the forward output: ``dx = dy * (y > 0)``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the output.
    y : array_like
        The forward output, same shape as ``dy``.
    out : ndarray, optional
        May be ``dy`` or ``y`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _activation_backward(1, dy, y, out)


def sigmoid_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, stable for every finite ``x``.

    Parameters
    ----------
    x : array_like
        Any shape.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _activation_forward(2, x, out)


def sigmoid_backward(dy: ArrayLike, y: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Sigmoid gradient from the forward output: ``dx = dy * y * (1 - y)``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the output.
    y : array_like
        The forward output, same shape as ``dy``.
    out : ndarray, optional
        May be ``dy`` or ``y`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _activation_backward(2, dy, y, out)


def tanh_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Hyperbolic tangent, element-wise.

    Parameters
    ----------
    x : array_like
        Any shape.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _activation_forward(3, x, out)


def tanh_backward(dy: ArrayLike, y: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Tanh gradient from the forward output: ``dx = dy * (1 - y**2)``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the output.
    y : array_like
        The forward output, same shape as ``dy``.
    out : ndarray, optional
        May be ``dy`` or ``y`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _activation_backward(3, dy, y, out)


# ---------------------------------------------------------------------------
# The activations with parameters. Their backward takes the pre-activation x
# (leaky_relu's takes x, or y when negative_slope >= 0: the signs agree).
def _activation2_args(name, *, negative_slope=0.01, alpha=1.0, approximate="none", beta=1.0,
                      threshold=20.0):
    """(kernel code, a, b) of the activation ``name`` with its parameters, validated:
    what ``_activations.activation2_*`` take (also for cyprop.nn's layers)."""
    if name == "leaky_relu":
        return 4, check_real("negative_slope", negative_slope), 0.0
    if name == "elu":
        return 5, check_real("alpha", alpha), 0.0
    if name == "gelu":
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        return (6 if approximate == "none" else 7), 0.0, 0.0
    if name == "silu":
        return 8, 0.0, 0.0
    if name == "softplus":
        return (9, check_real("beta", beta, low=0.0, low_open=True),
                check_real("threshold", threshold))
    raise ValueError(f"no activation with parameters is called {name!r}")


def _act2_forward(args, x, out):
    act, a, b = args
    dtype = call_dtype(("x", x), ("out", out))
    x = as_float_array("x", x, dtype)
    y = _output("out", out, x.shape, dtype, (("x", x),), alias_ok=("x",))
    _activations.activation2_forward(x, y, act, a, b, _n_threads())
    return y


def _act2_backward(args, dy, v, out, vname="x"):
    act, a, b = args
    dtype = call_dtype(("dy", dy), (vname, v), ("out", out))
    dy = as_float_array("dy", dy, dtype)
    v = as_float_array(vname, v, dtype)
    if dy.shape != v.shape:
        raise ValueError(f"dy and {vname} must have the same shape, got {dy.shape} and {v.shape}")
    dx = _output("out", out, dy.shape, dtype, (("dy", dy), (vname, v)), alias_ok=("dy", vname))
    _activations.activation2_backward(dy, v, dx, act, a, b, _n_threads())
    return dx


def leaky_relu_forward(x: ArrayLike, *, negative_slope: float = 0.01,
                       out: FloatArray | None = None) -> FloatArray:
    """Leaky ReLU, ``x if x > 0 else negative_slope * x`` (torch's default slope 0.01).

    Parameters
    ----------
    x : array_like
        Any shape.
    negative_slope : float, default 0.01
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _act2_forward(_activation2_args("leaky_relu", negative_slope=negative_slope), x, out)


def leaky_relu_backward(dy: ArrayLike, x_or_y: ArrayLike, *, negative_slope: float = 0.01,
                        out: FloatArray | None = None) -> FloatArray:
    """Leaky ReLU gradient: ``dx = dy * (1 if v > 0 else negative_slope)``.

    Parameters
    ----------
    dy : array_like
    x_or_y : array_like
        The pre-activation x; or the forward output y, which has the same
        sign when ``negative_slope >= 0`` (so a forward pass may run in place).
    negative_slope : float, default 0.01
    out : ndarray, optional
        May be ``dy`` or ``x_or_y`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _act2_backward(_activation2_args("leaky_relu", negative_slope=negative_slope), dy,
                          x_or_y, out, vname="x_or_y")


def elu_forward(x: ArrayLike, *, alpha: float = 1.0, out: FloatArray | None = None) -> FloatArray:
    """ELU, ``x if x > 0 else alpha * expm1(x)`` (expm1: exact near 0).

    Parameters
    ----------
    x : array_like
    alpha : float, default 1.0
    out : ndarray, optional
        May be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _act2_forward(_activation2_args("elu", alpha=alpha), x, out)


def elu_backward(dy: ArrayLike, x: ArrayLike, *, alpha: float = 1.0,
                 out: FloatArray | None = None) -> FloatArray:
    """ELU gradient from the pre-activation: ``dx = dy * (1 if x > 0 else alpha * exp(x))``.

    Parameters
    ----------
    dy : array_like
    x : array_like
        The forward input (pre-activation), same shape as ``dy``.
    alpha : float, default 1.0
    out : ndarray, optional
        May be ``dy`` or ``x`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _act2_backward(_activation2_args("elu", alpha=alpha), dy, x, out)


def gelu_forward(x: ArrayLike, *, approximate: Literal["none", "tanh"] = "none",
                 out: FloatArray | None = None) -> FloatArray:
    """GELU, ``x * Phi(x)`` with Phi the standard normal CDF (``approximate='none'``).

    ``Phi(x) = erfc(-x / sqrt(2)) / 2``, computed without cancellation for
    negative x. ``approximate='tanh'`` is ``0.5 x (1 + tanh(u))``,
    ``u = sqrt(2/pi) (x + 0.044715 x**3)``, as torch's.

    Parameters
    ----------
    x : array_like
    approximate : {'none', 'tanh'}
    out : ndarray, optional
        May be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _act2_forward(_activation2_args("gelu", approximate=approximate), x, out)


def gelu_backward(dy: ArrayLike, x: ArrayLike, *, approximate: Literal["none", "tanh"] = "none",
                  out: FloatArray | None = None) -> FloatArray:
    """GELU gradient from the pre-activation: ``dx = dy * (Phi(x) + x * phi(x))``.

    Parameters
    ----------
    dy : array_like
    x : array_like
        The forward input (pre-activation), same shape as ``dy``.
    approximate : {'none', 'tanh'}
    out : ndarray, optional
        May be ``dy`` or ``x`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _act2_backward(_activation2_args("gelu", approximate=approximate), dy, x, out)


def silu_forward(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """SiLU (swish), ``x * sigmoid(x)``.

    Parameters
    ----------
    x : array_like
    out : ndarray, optional
        May be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _act2_forward(_activation2_args("silu"), x, out)


def silu_backward(dy: ArrayLike, x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """SiLU gradient from the pre-activation: ``dx = dy * s * (1 + x * (1 - s))``, s = sigmoid(x).

    Parameters
    ----------
    dy : array_like
    x : array_like
        The forward input (pre-activation), same shape as ``dy``.
    out : ndarray, optional
        May be ``dy`` or ``x`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _act2_backward(_activation2_args("silu"), dy, x, out)


def softplus_forward(x: ArrayLike, *, beta: float = 1.0, threshold: float = 20.0,
                     out: FloatArray | None = None) -> FloatArray:
    """Softplus, ``log1p(exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``.

    As torch's (beta=1, threshold=20); stable for every x
    (``max(z, 0) + log1p(exp(-|z|))``).

    Parameters
    ----------
    x : array_like
    beta : float > 0, default 1.0
    threshold : float, default 20.0
    out : ndarray, optional
        May be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _act2_forward(_activation2_args("softplus", beta=beta, threshold=threshold), x, out)


def softplus_backward(dy: ArrayLike, x: ArrayLike, *, beta: float = 1.0, threshold: float = 20.0,
                      out: FloatArray | None = None) -> FloatArray:
    """Softplus gradient from the pre-activation: ``dy * sigmoid(beta x)`` (``dy`` past the threshold).

    Parameters
    ----------
    dy : array_like
    x : array_like
        The forward input (pre-activation), same shape as ``dy``.
    beta : float > 0, default 1.0
    threshold : float, default 20.0
    out : ndarray, optional
        May be ``dy`` or ``x`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _act2_backward(_activation2_args("softplus", beta=beta, threshold=threshold), dy, x,
                          out)
