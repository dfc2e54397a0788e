"""Element-wise activations and their gradients."""
from .. import _activations
from .._validation import as_float_array, call_dtype
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


def relu_forward(x, *, out=None):
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


def relu_backward(dy, y, *, out=None):
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


def sigmoid_forward(x, *, out=None):
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


def sigmoid_backward(dy, y, *, out=None):
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


def tanh_forward(x, *, out=None):
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


def tanh_backward(dy, y, *, out=None):
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
