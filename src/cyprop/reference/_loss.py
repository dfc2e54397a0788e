"""Reference softmax and losses."""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .._typing import FloatArray
from ._common import _store


def softmax(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray:
    """Reference softmax along the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return _store(e / e.sum(axis=-1, keepdims=True), out)


def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                          label_smoothing: float = 0.0, ignore_index: int | None = None,
                          reduction: Literal["mean", "sum"] = "mean",
                          grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
    """Reference softmax cross-entropy; see :func:`cyprop.functional.softmax_cross_entropy`.

    With weight / label_smoothing / ignore_index the loss is torch's formula
    (``_ce_general``) and the gradient ``p sum(T) - T`` for the effective
    target T, scaled as the loss.
    """
    if weight is not None or label_smoothing or ignore_index is not None:
        return _ce_general_with_grad(logits, target, weight, label_smoothing, ignore_index,
                                     reduction, grad_out)
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    logp = shifted - lse
    p = np.exp(logp)
    target = np.asarray(target)
    if target.ndim == 1:
        t = target.astype(np.intp)
        loss_rows = -logp[np.arange(n), t]
        grad = p.copy()
        grad[np.arange(n), t] -= 1
    else:
        loss_rows = -(target * logp).sum(axis=1)
        grad = p * target.sum(axis=1, keepdims=True) - target
    if reduction == "mean":
        loss = loss_rows.sum() / n if n else math.nan
        grad = grad / max(n, 1)
    else:
        loss = loss_rows.sum()
    return float(loss), _store(grad.astype(logits.dtype, copy=False), grad_out)


def mse_loss(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = "mean",
             grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
    """Reference mean squared error; see :func:`cyprop.functional.mse_loss`."""
    diff = pred - target
    if reduction == "mean":
        n = diff.size
        loss = float((diff * diff).sum() / n) if n else math.nan
        grad = 2 * diff / max(n, 1)
    else:
        loss = float((diff * diff).sum())
        grad = 2 * diff
    return loss, _store(grad.astype(pred.dtype, copy=False), grad_out)


def _kept_rows(target, ignore_index):
    """(mask of the rows not ignored, their labels with 0 in the ignored rows)."""
    keep = np.ones(len(target), bool) if ignore_index is None else target != ignore_index
    return keep, np.where(keep, target, 0).astype(np.intp)


def _ce_general(logits, target, weight, label_smoothing, ignore_index, reduction):
    """torch's cross_entropy with weight / label_smoothing / ignore_index, as torch writes it:
    (1 - eps) * weighted NLL + (eps / C) * the smoothing term, the mean over the
    total weight of the rows kept (N for probability targets)."""
    n, c = logits.shape
    z = logits.astype(np.float64)
    logp = z - z.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    target = np.asarray(target)
    if target.ndim == 2:
        t = target.astype(np.float64) * (1 - eps) + eps / c
        rows = -(logp * t * w).sum(axis=1)
        loss = rows.sum() / n if reduction == "mean" else rows.sum()
        return float(loss)
    keep, y = _kept_rows(target, ignore_index)
    nll = np.where(keep, -w[y] * logp[np.arange(n), y], 0.0)
    smooth = np.where(keep, -(logp * w).sum(axis=1), 0.0)
    if reduction == "mean":
        denom = np.where(keep, w[y], 0.0).sum()
        return float(((1 - eps) * nll.sum() + eps / c * smooth.sum()) / denom) if denom \
            else math.nan
    return float((1 - eps) * nll.sum() + eps / c * smooth.sum())


def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     pos_weight: ArrayLike | None = None,
                                     reduction: Literal["mean", "sum"] = "mean",
                                     grad_out: FloatArray | None = None
) -> tuple[float, FloatArray]:
    """Reference BCE on logits: ``-(w t log s + (1 - t) log(1 - s))``, s = sigmoid(x)."""
    x = np.asarray(logits, np.float64)
    t = np.asarray(target, np.float64)
    w = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    log_s, log_1ms = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    terms = -(w * t * log_s + (1 - t) * log_1ms)
    grad = -(w * t * np.exp(log_1ms) - (1 - t) * np.exp(log_s))   # d/dx: s' = s (1 - s)
    n = x.size
    if reduction == "mean":
        loss = terms.sum() / n if n else math.nan
        grad = grad / max(n, 1)
    else:
        loss = terms.sum()
    return float(loss), _store(grad.astype(logits.dtype, copy=False), grad_out)


def huber_loss(pred: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
               reduction: Literal["mean", "sum"] = "mean",
               grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
    """Reference Huber loss."""
    r = pred.astype(np.float64) - target
    ar = np.abs(r)
    terms = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))
    grad = np.clip(r, -delta, delta)
    n = r.size
    if reduction == "mean":
        loss = terms.sum() / n if n else math.nan
        grad = grad / max(n, 1)
    else:
        loss = terms.sum()
    return float(loss), _store(grad.astype(pred.dtype, copy=False), grad_out)


def l1_loss(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = "mean",
            grad_out: FloatArray | None = None) -> tuple[float, FloatArray]:
    """Reference mean absolute error."""
    r = pred.astype(np.float64) - target
    grad = np.sign(r)
    n = r.size
    if reduction == "mean":
        loss = np.abs(r).sum() / n if n else math.nan
        grad = grad / max(n, 1)
    else:
        loss = np.abs(r).sum()
    return float(loss), _store(grad.astype(pred.dtype, copy=False), grad_out)


def _ce_general_with_grad(logits, target, weight, eps, ignore_index, reduction, grad_out):
    n, c = logits.shape
    loss = _ce_general(logits, target, weight, eps, ignore_index, reduction)
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    target = np.asarray(target)
    if target.ndim == 2:
        T = (target.astype(np.float64) * (1 - eps) + eps / c) * w
        denom = n
    else:
        keep, y = _kept_rows(target, ignore_index)
        T = np.zeros((n, c))
        T[keep] = eps / c * w
        T[np.flatnonzero(keep), y[keep]] += (1 - eps) * w[y[keep]]
        denom = np.where(keep, w[y], 0.0).sum()
    p = softmax(logits.astype(np.float64))
    grad = p * T.sum(axis=1, keepdims=True) - T
    if target.ndim == 1:
        grad[~keep] = 0   # an ignored row has no gradient (a NaN logit there included)
    if reduction == "mean":
        grad = grad / denom if denom else np.zeros_like(grad)
    return loss, _store(grad.astype(logits.dtype, copy=False), grad_out)
