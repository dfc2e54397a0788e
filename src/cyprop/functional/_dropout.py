"""Dropout with a counter-based mask: the same mask for any thread count, none stored."""
from __future__ import annotations

import numbers

from numpy.typing import ArrayLike

from .. import _dropout
from .._typing import FloatArray
from .._validation import as_float_array, call_dtype, check_real
from ._common import _n_threads, _output

_U64 = 2 ** 64


def _check_index(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < _U64:
        raise ValueError(f"{name} must be an int in [0, 2**64), got {v!r}")
    return int(v)


def _mask_params(p):
    """(threshold, scale): keep an element when its 32-bit draw >= threshold."""
    p = check_real("p", p, low=0.0, high=1.0, high_open=True)
    return round(p * 2 ** 32), 1.0 / (1.0 - p)


def dropout_forward(x: ArrayLike, p: float, *, seed: int, step: int = 0,
                    out: FloatArray | None = None) -> FloatArray:
    """Inverted dropout: ``y = x * mask / (1 - p)``, each element dropped with probability p.

    The mask is Philox4x32-10 keyed by ``seed`` at counter (element index,
    ``step``), so it depends on ``(seed, step)`` and the element's flat
    index only: never on the thread count, and :func:`dropout_backward`
    regenerates it instead of storing it. Call with a new ``step`` (a layer
    counts its forward calls) for a new mask. ``p = 0`` is an exact identity.

    Parameters
    ----------
    x : array_like
        Any shape.
    p : float in [0, 1)
        Drop probability (P(drop) is ``round(p 2**32) / 2**32``).
    seed : int in [0, 2**64)
    step : int in [0, 2**64), default 0
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _apply_mask("x", x, p, seed, step, out)


def dropout_backward(dy: ArrayLike, p: float, *, seed: int, step: int = 0,
                     out: FloatArray | None = None) -> FloatArray:
    """Dropout's gradient, ``dx = dy * mask / (1 - p)``, the mask of the same ``(seed, step)``.

    Parameters
    ----------
    dy : array_like
        Gradient w.r.t. the forward output (the forward input's shape).
    p : float in [0, 1)
    seed, step : int
        Those of the forward call.
    out : ndarray, optional
        May be ``dy`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _apply_mask("dy", dy, p, seed, step, out)


def _apply_mask(name, a, p, seed, step, out):
    """``a * mask / (1 - p)`` into ``out`` (validated; may be ``a``): forward and backward
    are the same operation, on x and on dy."""
    thr, scale = _mask_params(p)
    seed, step = _check_index("seed", seed), _check_index("step", step)
    dtype = call_dtype((name, a), ("out", out))
    a = as_float_array(name, a, dtype)
    res = _output("out", out, a.shape, dtype, ((name, a),), alias_ok=(name,))
    _dropout.dropout(a, res, thr, scale, seed, step, _n_threads())
    return res
