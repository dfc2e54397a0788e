"""Softmax and the losses, each with its gradient in the same pass."""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .. import _losses, _mse, _softmax_ce
from .._typing import FloatArray
from .._validation import as_float_array, call_dtype, check_real, check_reduction
from ._common import _n_threads, _output, _reduce


def softmax(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
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


def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                          label_smoothing: float = 0.0, ignore_index: int | None = None,
                          reduction: Literal["mean", "sum"] = "mean",
                          grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
    """Fused softmax + cross-entropy loss and its gradient w.r.t. the logits.

    With ``weight``, ``label_smoothing`` or ``ignore_index`` the loss is
    torch's ``cross_entropy`` with the same arguments: for class indices y,
    row i's target becomes ``(1 - eps) w[y_i] onehot(y_i) + (eps / C) w``
    (zero for an ignored row), and ``'mean'`` divides the sum by the total
    weight of the rows not ignored, ``sum_i w[y_i]`` (NaN when every row is
    ignored, whose gradient is then 0); for probability targets t,
    ``t (1 - eps) + eps / C`` weighted by ``w`` per class, and ``'mean'``
    divides by N.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        Unnormalised scores.
    target : array_like, shape (N,) or (N, C)
        Integer class indices in ``[0, C)`` (any integer dtype, or floats
        with integral values), or target probabilities of the logits' dtype
        (rows need not sum to 1: the gradient is ``p * sum(t) - t``).
    weight : array_like, shape (C,), optional
        A weight per class (torch's ``weight``).
    label_smoothing : float in [0, 1], default 0.0
    ignore_index : int, optional
        Rows whose class index equals it add nothing to the loss or the
        gradient (and nothing to the mean's denominator). Default None:
        every label must be in ``[0, C)``. (torch's default is -100; pass
        ``ignore_index=-100`` for its behaviour.) Ignored for probability
        targets, as in torch.
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
                       ("weight", weight), ("grad_out", grad_out))
    z = as_float_array("logits", logits, dtype, 2)
    n, n_classes = z.shape
    plain = weight is None and ignore_index is None and label_smoothing == 0.0
    if not plain:
        return _softmax_ce_general(z, target, dtype, weight, label_smoothing, ignore_index,
                                   reduction, grad_out)
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


def _softmax_ce_general(z, target, dtype, weight, label_smoothing, ignore_index, reduction,
                        grad_out):
    """softmax_cross_entropy with weight / label_smoothing / ignore_index, as torch.

    The options become one dense target matrix T (N, C) and a divisor; the
    probability-target kernel then gives loss = -sum T log p and the gradient
    p sum_c T - T in one pass (see the docstring above for T).
    """
    n, n_classes = z.shape
    eps = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)
    w = None
    if weight is not None:
        call_dtype(("logits", z), ("weight", weight))
        w = as_float_array("weight", weight, dtype)
        if w.shape != (n_classes,):
            raise ValueError(f"weight must have shape ({n_classes},) (one per class), got "
                             f"{w.shape}")
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    t_is_proba = isinstance(target, np.ndarray) and target.ndim == 2 or np.ndim(target) == 2
    if t_is_proba:
        t = _as_target(target, z, dtype)
        T = t * dtype.type(1.0 - eps) + dtype.type(eps / n_classes) if eps else t.copy()
        if w is not None:
            T *= w
        divisor = n
    else:
        labels = np.asarray(target)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"target must have shape ({n},) or {z.shape}, got {labels.shape}")
        keep = np.ones(n, bool) if ignore_index is None else labels != ignore_index
        labels = _as_target(np.where(keep, labels, 0) if labels.dtype.kind in "iuf" else labels,
                            z, dtype)
        bad = keep & ((labels < 0) | (labels >= n_classes))
        if bad.any():
            raise ValueError(f"target has {int(bad.sum())} label(s) outside [0, {n_classes}), "
                             f"e.g. {int(labels[bad][0])}")
        w_full = np.ones(n_classes, dtype) if w is None else w
        w_row = np.where(keep, w_full[labels], 0).astype(dtype)
        T = np.zeros((n, n_classes), dtype)
        if eps:
            T += dtype.type(eps / n_classes) * w_full
            T *= keep[:, None]
        T[np.arange(n), labels] += dtype.type(1.0 - eps) * w_row
        divisor = float(np.sum(w_row, dtype=np.float64))
    scale = 1.0
    if reduction == "mean":
        scale = 1.0 / divisor if divisor else 0.0
    dz = _output("grad_out", grad_out, z.shape, dtype, (("logits", z), ("target", T)),
                 alias_ok=("logits",))
    if not t_is_proba and not keep.all():
        # ignored rows take no part: not in the loss (a NaN logit there included),
        # and their gradient is exactly 0
        rows = np.flatnonzero(keep)
        dz_kept = np.empty((rows.size, n_classes), dtype)
        total = _softmax_ce.softmax_ce_proba(np.ascontiguousarray(z[rows]), T[rows], dz_kept,
                                             scale, _n_threads())
        dz[...] = 0
        dz[rows] = dz_kept
    else:
        total = _softmax_ce.softmax_ce_proba(z, T, dz, scale, _n_threads())
    if reduction == "sum":
        return float(total), dz
    return (float(total) / divisor if divisor else math.nan), dz


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


def mse_loss(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = "mean",
             grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
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


def _pred_target(pred, target, pred_name="pred", grad_out=None, extra=()):
    dtype = call_dtype((pred_name, pred), ("target", target), ("grad_out", grad_out), *extra)
    pred = as_float_array(pred_name, pred, dtype)
    target = as_float_array("target", target, dtype)
    if pred.shape != target.shape:
        raise ValueError(f"{pred_name} and target must have the same shape, got {pred.shape} "
                         f"and {target.shape}")
    return dtype, pred, target


def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     pos_weight: ArrayLike | None = None,
                                     reduction: Literal["mean", "sum"] = "mean",
                                     grad_out: FloatArray | None = None
) -> tuple[float, FloatArray]:
    """Sigmoid + binary cross-entropy on logits, and its gradient w.r.t. the logits.

    ``loss = -[w t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]`` per element,
    ``w = pos_weight`` (1 without it), computed as
    ``(1 - t) x + (1 + (w - 1) t) softplus(-x)``: finite for logits of any
    size, as torch's. ``dx = (1 - t) - (1 + (w - 1) t) sigmoid(-x)``.

    Parameters
    ----------
    logits : array_like
        Any shape.
    target : array_like
        Same shape and dtype; values in [0, 1] (not checked, as torch).
    pos_weight : array_like, optional
        Weight of the positive term: a scalar, or one per class, shape (C,)
        for logits (..., C) (broadcast over the rows, as torch).
    reduction : {'mean', 'sum'}
        Mean over all elements (torch's default) or sum.
    grad_out : ndarray, optional
        Written with d loss / d logits; may be ``logits`` or ``target``.

    Returns
    -------
    loss : float
    dlogits : ndarray
    """
    check_reduction(reduction)
    dtype, x, t = _pred_target(logits, target, "logits", grad_out, (("pos_weight", pos_weight),))
    pw = None
    if pos_weight is not None:
        pw = np.ascontiguousarray(as_float_array("pos_weight", pos_weight, dtype), dtype=dtype)
        n_cols = x.shape[-1] if x.ndim else 1
        if pw.ndim > 1 or (pw.size != 1 and pw.size != n_cols) or (pw.ndim == 1 and x.ndim == 0):
            raise ValueError(f"pos_weight must be a scalar or have shape ({n_cols},) (the "
                             f"logits' last dimension), got shape {pw.shape}")
        pw = pw.reshape(-1)
    n = x.size
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    g = _output("grad_out", grad_out, x.shape, dtype, (("logits", x), ("target", t)),
                alias_ok=("logits", "target"))
    total = _losses.bce_with_logits(x, t, pw, g, scale, _n_threads()) if n else 0.0
    return _reduce(total, n, reduction), g


def huber_loss(pred: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
               reduction: Literal["mean", "sum"] = "mean",
               grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
    """Huber loss (torch's ``huber_loss``) and its gradient w.r.t. ``pred``.

    Per element, with ``r = pred - target``: ``r**2 / 2`` where
    ``|r| <= delta``, else ``delta * (|r| - delta / 2)``; the gradient is
    ``clip(r, -delta, delta)`` (divided by the element count for the mean).

    Parameters
    ----------
    pred, target : array_like
        Same shape and dtype.
    delta : float > 0, default 1.0
    reduction : {'mean', 'sum'}
    grad_out : ndarray, optional
        May be ``pred`` or ``target`` itself.

    Returns
    -------
    loss : float
    dpred : ndarray
    """
    check_reduction(reduction)
    delta = check_real("delta", delta, low=0.0, low_open=True)
    dtype, p, t = _pred_target(pred, target, grad_out=grad_out)
    n = p.size
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    g = _output("grad_out", grad_out, p.shape, dtype, (("pred", p), ("target", t)),
                alias_ok=("pred", "target"))
    total = _losses.huber(p, t, g, delta, scale, _n_threads())
    return _reduce(total, n, reduction), g


def l1_loss(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = "mean",
            grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
    """Mean absolute error and its gradient ``sign(pred - target)`` (0 where equal).

    Parameters
    ----------
    pred, target : array_like
        Same shape and dtype.
    reduction : {'mean', 'sum'}
    grad_out : ndarray, optional
        May be ``pred`` or ``target`` itself.

    Returns
    -------
    loss : float
    dpred : ndarray
    """
    check_reduction(reduction)
    dtype, p, t = _pred_target(pred, target, grad_out=grad_out)
    n = p.size
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    g = _output("grad_out", grad_out, p.shape, dtype, (("pred", p), ("target", t)),
                alias_ok=("pred", "target"))
    total = _losses.l1(p, t, g, scale, _n_threads())
    return _reduce(total, n, reduction), g
