"""Softmax and the losses, each with its gradient in the same pass."""
import numpy as np

from .. import _mse, _softmax_ce
from .._validation import as_float_array, call_dtype, check_reduction
from ._common import _n_threads, _output, _reduce


def softmax(x, *, out=None):
    """Softmax along the last axis, with max-subtraction.

    Parameters
    ----------
    x : array_like, shape (N, C) or (C,)
        Logits.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    p : ndarray
        Rows sum to 1.
    """
    dtype = call_dtype(("x", x), ("out", out))
    x = as_float_array("x", x, dtype, (1, 2))
    p = _output("out", out, x.shape, dtype, (("x", x),), alias_ok=("x",))
    x2 = x if x.ndim == 2 else x.reshape(1, -1)
    _softmax_ce.softmax(x2, p, _n_threads())
    return p


def softmax_cross_entropy(logits, target, *, reduction="mean", grad_out=None):
    """Fused softmax + cross-entropy loss and its gradient w.r.t. the logits.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        Unnormalised scores.
    target : array_like, shape (N,) or (N, C)
        Integer class indices in ``[0, C)`` (any integer dtype, or floats
        with integral values), or target probabilities of the logits' dtype
        (rows need not sum to 1: the gradient is ``p * sum(t) - t``).
    reduction : {'mean', 'sum'}
        Mean over the N rows (PyTorch's default) or sum. The mean of an
        empty batch is NaN, as in NumPy and PyTorch.
    grad_out : ndarray, shape (N, C), optional
        Written with d loss / d logits; may be ``logits`` itself.

    Returns
    -------
    loss : float
    dlogits : ndarray, shape (N, C)

    Raises
    ------
    ValueError
        Labels outside ``[0, C)`` or not integral, or mismatched shapes.
    """
    check_reduction(reduction)
    t_is_array = isinstance(target, np.ndarray)
    t_float = t_is_array and target.dtype.kind == "f" and target.ndim == 2
    dtype = call_dtype(("logits", logits), *((("target", target),) if t_float else ()),
                       ("grad_out", grad_out))
    z = as_float_array("logits", logits, dtype, 2)
    n, n_classes = z.shape
    target = _as_target(target, z, dtype)
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    inputs = (("logits", z), ("target", target))
    dz = _output("grad_out", grad_out, z.shape, dtype, inputs, alias_ok=("logits",))
    if target.ndim == 1:
        total, n_bad = _softmax_ce.softmax_ce_index(z, target, dz, scale, _n_threads())
        if n_bad:
            bad = target[(target < 0) | (target >= n_classes)]
            raise ValueError(f"target has {n_bad} label(s) outside [0, {n_classes}), "
                             f"e.g. {int(bad[0])}")
    else:
        total = _softmax_ce.softmax_ce_proba(z, target, dz, scale, _n_threads())
    return _reduce(total, n, reduction), dz


def _softmax_ce_into(logits, target, dlogits, reduction):
    """``softmax_cross_entropy`` for cyprop.nn's hot path, or None to take the full one.

    For C-contiguous float ``logits`` (N, C), intp ``target`` (N,) and a
    workspace ``dlogits`` of the logits' dtype and shape that is ``logits``
    itself or shares no memory with it (the caller's guarantee). The kernel
    checks the arrays in C and declines (None) anything else, and so does
    this function for labels out of range: the full path then raises.
    """
    n = logits.shape[0] if type(logits) is np.ndarray else 0
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    result = _softmax_ce.softmax_ce_index(logits, target, dlogits, scale, _n_threads(), False)
    if result is None or result[1] or not n:
        return None
    return _reduce(result[0], n, reduction), dlogits


def _as_target(target, z, dtype):
    """Class indices as intp (N,), or probabilities (N, C) of ``dtype``."""
    n, n_classes = z.shape
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise ValueError(f"target must have shape ({n},) or {z.shape}, got {t.shape}")
        if t.dtype.kind in "iu":
            return np.ascontiguousarray(t, dtype=np.intp)
        if t.dtype.kind == "f":
            ti = t.astype(np.intp)
            if not np.array_equal(ti, t):
                raise ValueError("target class indices must be integral; got non-integer values"
                                 " (pass probabilities as an (N, C) array)")
            return ti
        raise TypeError(f"target class indices must be integers, got dtype {t.dtype}")
    if t.ndim == 2:
        if t.shape != z.shape:
            raise ValueError(f"target probabilities must have the logits' shape {z.shape}, "
                             f"got {t.shape}")
        if t.dtype.kind != "f" and isinstance(target, np.ndarray):
            raise TypeError(f"target probabilities must be float, got dtype {t.dtype}")
        return as_float_array("target", t if t.dtype == dtype else t.astype(dtype), dtype, 2)
    raise ValueError(f"target must be 1-D class indices or 2-D probabilities, got shape {t.shape}")


def mse_loss(pred, target, *, reduction="mean", grad_out=None):
    """Mean squared error and its gradient w.r.t. ``pred``.

    ``loss = mean((pred - target)**2)`` over all elements (PyTorch's
    convention) and ``dpred = 2 (pred - target) / pred.size``; with
    ``reduction='sum'`` neither is divided.

    Parameters
    ----------
    pred, target : array_like
        Same shape (no broadcasting) and dtype.
    reduction : {'mean', 'sum'}
    grad_out : ndarray, optional
        Written with d loss / d pred; may be ``pred`` or ``target`` itself.

    Returns
    -------
    loss : float
    dpred : ndarray
    """
    check_reduction(reduction)
    dtype = call_dtype(("pred", pred), ("target", target), ("grad_out", grad_out))
    pred = as_float_array("pred", pred, dtype)
    target = as_float_array("target", target, dtype)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} "
                         f"and {target.shape}")
    n = pred.size
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    g = _output("grad_out", grad_out, pred.shape, dtype, (("pred", pred), ("target", target)),
                alias_ok=("pred", "target"))
    total = _mse.mse(pred, target, g, True, scale, _n_threads())
    return _reduce(total, n, reduction), g
