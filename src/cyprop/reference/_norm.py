"""Reference batch and layer normalization, written as the textbook formulas in float64."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._typing import FloatArray
from ._common import _store


def batch_norm_forward(x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None,
                       running_mean: FloatArray | None, running_var: FloatArray | None, *,
                       training: bool, momentum: float = 0.1, eps: float = 1e-5,
                       out: FloatArray | None = None, save_mean: NDArray[np.float64] | None = None,
                       save_invstd: NDArray[np.float64] | None = None
) -> tuple[FloatArray, NDArray[np.float64], NDArray[np.float64]]:
    """Reference BatchNorm1d forward; see :func:`cyprop.functional.batch_norm_forward`."""
    xd = x.astype(np.float64)
    if training:
        mean, var = xd.mean(axis=0), xd.var(axis=0)
        if running_mean is not None:
            n = x.shape[0]
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            running_var[...] = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    invstd = 1 / np.sqrt(var + eps)
    y = (xd - mean) * invstd
    if gamma is not None:
        y = y * gamma + beta
    return (_store(y.astype(x.dtype), out), _store(mean, save_mean),
            _store(invstd, save_invstd))


def batch_norm_backward(dy: ArrayLike, x: ArrayLike, gamma: ArrayLike | None, save_mean: ArrayLike,
                        save_invstd: ArrayLike, *, training: bool = True,
                        dx: FloatArray | None = None, dgamma: FloatArray | None = None,
                        dbeta: FloatArray | None = None,
                        need_dx: bool = True) -> tuple[FloatArray | None, FloatArray, FloatArray]:
    """Reference BatchNorm1d backward (the closed form)."""
    dyd, xhat = dy.astype(np.float64), (x.astype(np.float64) - save_mean) * save_invstd
    g = 1.0 if gamma is None else gamma.astype(np.float64)
    if training:
        grad = g * save_invstd * (dyd - dyd.mean(axis=0) - xhat * (dyd * xhat).mean(axis=0))
    else:
        grad = g * save_invstd * dyd
    dx = _store(grad.astype(x.dtype), dx) if need_dx else None
    return (dx, _store((dyd * xhat).sum(axis=0).astype(x.dtype), dgamma),
            _store(dyd.sum(axis=0).astype(x.dtype), dbeta))


def layer_norm_forward(x: ArrayLike, gamma: ArrayLike | None = None, beta: ArrayLike | None = None,
                       *, eps: float = 1e-5, out: FloatArray | None = None,
                       save_mean: NDArray[np.float64] | None = None,
                       save_invstd: NDArray[np.float64] | None = None
) -> tuple[FloatArray, NDArray[np.float64], NDArray[np.float64]]:
    """Reference LayerNorm over the last dimension."""
    xd = x.astype(np.float64)
    mean, var = xd.mean(axis=-1, keepdims=True), xd.var(axis=-1, keepdims=True)
    invstd = 1 / np.sqrt(var + eps)
    y = (xd - mean) * invstd
    if gamma is not None:
        y = y * gamma + beta
    return (_store(y.astype(x.dtype), out), _store(mean.reshape(-1), save_mean),
            _store(invstd.reshape(-1), save_invstd))


def layer_norm_backward(dy: ArrayLike, x: ArrayLike, gamma: ArrayLike | None, save_mean: ArrayLike,
                        save_invstd: ArrayLike, *, dx: FloatArray | None = None,
                        dgamma: FloatArray | None = None, dbeta: FloatArray | None = None,
                        need_dx: bool = True) -> tuple[FloatArray | None, FloatArray, FloatArray]:
    """Reference LayerNorm backward."""
    d = x.shape[-1]
    xd, dyd = x.astype(np.float64).reshape(-1, d), dy.astype(np.float64).reshape(-1, d)
    mean, inv = save_mean[:, None], save_invstd[:, None]
    xhat = (xd - mean) * inv
    g = dyd if gamma is None else dyd * gamma
    grad = inv * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1,
                                                                             keepdims=True))
    dx = _store(grad.reshape(x.shape).astype(x.dtype), dx) if need_dx else None
    return (dx, _store((dyd * xhat).sum(axis=0).astype(x.dtype), dgamma),
            _store(dyd.sum(axis=0).astype(x.dtype), dbeta))
