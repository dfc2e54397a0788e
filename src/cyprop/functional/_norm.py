"""Batch and layer normalization, forward and backward (see pyx/_norm.pyx)."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _norm
from .._typing import FloatArray
from .._validation import as_float_array, call_dtype, check_out, check_real
from ._common import _n_threads, _output

_F64 = np.dtype(np.float64)


def _affine(gamma, beta, dtype, n, what):
    if (gamma is None) != (beta is None):
        raise ValueError("gamma and beta must be given together (or both None: no affine)")
    if gamma is None:
        return None, None
    gamma = as_float_array("gamma", gamma, dtype, 1)
    beta = as_float_array("beta", beta, dtype, 1)
    for name, a in (("gamma", gamma), ("beta", beta)):
        if a.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) ({what}), got {a.shape}")
    return gamma, beta


def _stats_out(name, a, n):
    if a is None:
        return np.empty(n, _F64)
    check_out(name, a, (n,), _F64)
    return a


def batch_norm_forward(x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None,
                       running_mean: FloatArray | None, running_var: FloatArray | None, *,
                       training: bool, momentum: float = 0.1, eps: float = 1e-5,
                       out: FloatArray | None = None, save_mean: NDArray[np.float64] | None = None,
                       save_invstd: NDArray[np.float64] | None = None
) -> tuple[FloatArray, NDArray[np.float64], NDArray[np.float64]]:
    """BatchNorm1d over a batch ``x`` (N, C), torch's semantics.

    Training: ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` with the
    batch mean and biased variance of each column, and the running
    statistics updated in place: ``running = (1 - momentum) running +
    momentum * batch`` (the unbiased variance, ``var * N / (N - 1)``). Eval:
    the running statistics instead. Column statistics are reduced in float64
    in a fixed order: the same bits for any thread count.

    Parameters
    ----------
    x : array_like, shape (N, C)
    gamma, beta : array_like (C,) or None
        The affine scale and shift (both None: none).
    running_mean, running_var : ndarray (C,) of x's dtype, or None
        Updated in place in training mode; read in eval mode. None in
        training mode: nothing is tracked (torch's ``track_running_stats=False``).
    training : bool
    momentum : float in [0, 1], default 0.1
    eps : float >= 0, default 1e-5
    out : ndarray (N, C), optional
        May be ``x`` itself.
    save_mean, save_invstd : ndarray float64 (C,), optional
        Written with the mean and ``1 / sqrt(var + eps)`` used.

    Returns
    -------
    y : ndarray (N, C)
    save_mean, save_invstd : ndarray float64 (C,)
        For :func:`batch_norm_backward`.

    Raises
    ------
    ValueError
        Training on a batch of one row (a variance needs two), as torch.
    """
    momentum = check_real("momentum", momentum, low=0.0, high=1.0)
    eps = check_real("eps", eps, low=0.0)
    dtype = call_dtype(("x", x), ("gamma", gamma), ("beta", beta),
                       ("running_mean", running_mean), ("running_var", running_var), ("out", out))
    x = as_float_array("x", x, dtype, 2)
    n, c = x.shape
    _check_batch_norm_rows(x.shape, training)
    gamma, beta = _affine(gamma, beta, dtype, c, "one per column")
    track = running_mean is not None or running_var is not None
    if track or not training:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean and running_var must be given together"
                             + ("" if training else " (eval mode normalizes with them)"))
        for name, a in (("running_mean", running_mean), ("running_var", running_var)):
            check_out(name, a, (c,), dtype)
    y = _output("out", out, x.shape, dtype, (("x", x), ("gamma", gamma), ("beta", beta)),
                alias_ok=("x",))
    sm, si = _stats_out("save_mean", save_mean, c), _stats_out("save_invstd", save_invstd, c)
    _norm.batch_norm_forward(x, gamma, beta, running_mean, running_var, y, sm, si,
                             bool(training), track, momentum, eps, _n_threads())
    return y, sm, si


def batch_norm_backward(dy: ArrayLike, x: ArrayLike, gamma: ArrayLike | None, save_mean: ArrayLike,
                        save_invstd: ArrayLike, *, training: bool = True,
                        dx: FloatArray | None = None, dgamma: FloatArray | None = None,
                        dbeta: FloatArray | None = None,
                        need_dx: bool = True) -> tuple[FloatArray | None, FloatArray, FloatArray]:
    """Gradients of :func:`batch_norm_forward`.

    Training mode (the statistics are functions of the batch), in one pass
    over dy and x after the column sums:
    ``dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))``,
    ``dgamma = sum(dy * xhat)``, ``dbeta = sum(dy)`` (columns, float64 sums).
    Eval mode: ``dx = gamma * invstd * dy``.

    Parameters
    ----------
    dy, x : array_like (N, C)
    gamma : array_like (C,) or None
    save_mean, save_invstd : ndarray float64 (C,)
        As returned by the forward call.
    training : bool, default True
        The mode of the forward call.
    dx : ndarray (N, C), optional
        May be ``dy`` itself.
    dgamma, dbeta : ndarray (C,), optional
    need_dx : bool, default True

    Returns
    -------
    dx : ndarray (N, C) or None
    dgamma, dbeta : ndarray (C,)
        (Returned for gamma None too: the gradients an affine layer would get.)
    """
    dtype = call_dtype(("dy", dy), ("x", x), ("gamma", gamma), ("dx", dx), ("dgamma", dgamma),
                       ("dbeta", dbeta))
    x = as_float_array("x", x, dtype, 2)
    dy = as_float_array("dy", dy, dtype, 2)
    n, c = x.shape
    if dy.shape != x.shape:
        raise ValueError(f"dy must have the shape of x {x.shape}, got {dy.shape}")
    if gamma is not None:
        gamma = as_float_array("gamma", gamma, dtype, 1)
        if gamma.shape != (c,):
            raise ValueError(f"gamma must have shape ({c},), got {gamma.shape}")
    for name, a in (("save_mean", save_mean), ("save_invstd", save_invstd)):
        if not isinstance(a, np.ndarray) or a.dtype != _F64 or a.shape != (c,):
            raise ValueError(f"{name} must be the float64 ({c},) array batch_norm_forward "
                             "returned")
    inputs = (("dy", dy), ("x", x))
    dx = _output("dx", dx, x.shape, dtype, inputs, alias_ok=("dy",)) if need_dx else None
    dgamma = _output("dgamma", dgamma, (c,), dtype, inputs)
    dbeta = _output("dbeta", dbeta, (c,), dtype, inputs)
    _norm.batch_norm_backward(dy, x, gamma, np.ascontiguousarray(save_mean),
                              np.ascontiguousarray(save_invstd), dx, dgamma, dbeta,
                              bool(training), _n_threads())
    return dx, dgamma, dbeta


def layer_norm_forward(x: ArrayLike, gamma: ArrayLike | None = None, beta: ArrayLike | None = None,
                       *, eps: float = 1e-5, out: FloatArray | None = None,
                       save_mean: NDArray[np.float64] | None = None,
                       save_invstd: NDArray[np.float64] | None = None
) -> tuple[FloatArray, NDArray[np.float64], NDArray[np.float64]]:
    """LayerNorm over the last dimension: ``(x - mean) / sqrt(var + eps) * gamma + beta``.

    Each row's mean and biased variance in float64 (torch's ``layer_norm``
    with ``normalized_shape = x.shape[-1:]``).

    Parameters
    ----------
    x : array_like, shape (..., D)
    gamma, beta : array_like (D,), optional
        Both or neither.
    eps : float >= 0, default 1e-5
    out : ndarray, optional
        May be ``x`` itself.
    save_mean, save_invstd : ndarray float64 (x.size // D,), optional

    Returns
    -------
    y : ndarray, x's shape
    save_mean, save_invstd : ndarray float64 (rows,)
    """
    eps = check_real("eps", eps, low=0.0)
    dtype = call_dtype(("x", x), ("gamma", gamma), ("beta", beta), ("out", out))
    x = as_float_array("x", x, dtype)
    if x.ndim < 1:
        raise ValueError("x must have at least 1 dimension")
    d = x.shape[-1]
    rows = x.size // d if d else int(np.prod(x.shape[:-1]))
    gamma, beta = _affine(gamma, beta, dtype, d, "the last dimension of x")
    y = _output("out", out, x.shape, dtype, (("x", x), ("gamma", gamma), ("beta", beta)),
                alias_ok=("x",))
    sm, si = _stats_out("save_mean", save_mean, rows), _stats_out("save_invstd", save_invstd,
                                                                   rows)
    _norm.layer_norm_forward(x.reshape(rows, d), gamma, beta, y.reshape(rows, d), sm, si, eps,
                             _n_threads())
    return y, sm, si


def layer_norm_backward(dy: ArrayLike, x: ArrayLike, gamma: ArrayLike | None, save_mean: ArrayLike,
                        save_invstd: ArrayLike, *, dx: FloatArray | None = None,
                        dgamma: FloatArray | None = None, dbeta: FloatArray | None = None,
                        need_dx: bool = True) -> tuple[FloatArray | None, FloatArray, FloatArray]:
    """Gradients of :func:`layer_norm_forward`.

    Per row, with ``g = dy * gamma``:
    ``dx = invstd * (g - mean(g) - xhat * mean(g * xhat))``; ``dgamma`` and
    ``dbeta`` are the column sums of ``dy * xhat`` and ``dy`` (float64, a
    fixed order).

    Parameters
    ----------
    dy, x : array_like (..., D)
    gamma : array_like (D,) or None
    save_mean, save_invstd : ndarray float64 (rows,)
    dx, dgamma, dbeta : ndarray, optional
    need_dx : bool, default True

    Returns
    -------
    dx : ndarray or None
    dgamma, dbeta : ndarray (D,)
    """
    dtype = call_dtype(("dy", dy), ("x", x), ("gamma", gamma), ("dx", dx), ("dgamma", dgamma),
                       ("dbeta", dbeta))
    x = as_float_array("x", x, dtype)
    dy = as_float_array("dy", dy, dtype)
    if dy.shape != x.shape or x.ndim < 1:
        raise ValueError(f"dy must have the shape of x {x.shape}, got {dy.shape}")
    d = x.shape[-1]
    rows = x.size // d if d else int(np.prod(x.shape[:-1]))
    if gamma is not None:
        gamma = as_float_array("gamma", gamma, dtype, 1)
        if gamma.shape != (d,):
            raise ValueError(f"gamma must have shape ({d},), got {gamma.shape}")
    for name, a in (("save_mean", save_mean), ("save_invstd", save_invstd)):
        if not isinstance(a, np.ndarray) or a.dtype != _F64 or a.shape != (rows,):
            raise ValueError(f"{name} must be the float64 ({rows},) array layer_norm_forward "
                             "returned")
    inputs = (("dy", dy), ("x", x))
    dx = _output("dx", dx, x.shape, dtype, inputs, alias_ok=("dy",)) if need_dx else None
    dgamma = _output("dgamma", dgamma, (d,), dtype, inputs)
    dbeta = _output("dbeta", dbeta, (d,), dtype, inputs)
    _norm.layer_norm_backward(dy.reshape(rows, d), x.reshape(rows, d), gamma,
                              np.ascontiguousarray(save_mean), np.ascontiguousarray(save_invstd),
                              None if dx is None else dx.reshape(rows, d), dgamma, dbeta,
                              _n_threads())
    return dx, dgamma, dbeta


def _check_batch_norm_rows(shape, training):
    """Training statistics need two rows or more (torch raises too)."""
    if training and shape[0] < 2:
        raise ValueError(f"BatchNorm needs more than 1 value per channel when training, got "
                         f"input of shape {tuple(shape)}")


def _batch_norm_relu_into(x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd,
                          training, momentum, eps):
    """``relu(batch_norm_forward(...))`` in one pass, into the caller's arrays.

    For cyprop.nn (a BatchNorm1d followed by a ReLU in a Sequential), whose
    arrays are its own and checked by the kernel in C.
    """
    _check_batch_norm_rows(x.shape, training)
    track = running_mean is not None
    _norm.batch_norm_forward(x, gamma, beta, running_mean, running_var, y, save_mean,
                             save_invstd, bool(training), track, momentum, eps, _n_threads(),
                             True)
    return y


def _batch_norm_relu_backward_into(dy, x, y, gamma, save_mean, save_invstd, dx, dgamma, dbeta,
                                   training):
    """The gradients of ``_batch_norm_relu_into``: dy is the ReLU's output gradient,
    masked by ``y > 0`` as it is read (no ReLU backward pass of its own)."""
    _norm.batch_norm_backward(dy, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta,
                              bool(training), _n_threads(), y)
    return dx
