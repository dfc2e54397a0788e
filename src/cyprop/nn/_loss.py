"""Losses as objects: ``loss = loss_fn(pred, target)``, then ``loss_fn.backward()``."""
from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .. import functional as F
from .._typing import FloatArray
from .._validation import FLOAT_DTYPES, check_real, check_reduction
from ._module import _cached, _check_backward_thread, _get_ident, _Guarded, _in_use


class _Loss(_Guarded):
    def __init__(self, reduction: Literal["mean", "sum"] = "mean") -> None:
        check_reduction(reduction)
        self.reduction = reduction
        self._grad = None
        self._workspaces = {}

    def __call__(self, pred: ArrayLike, target: ArrayLike) -> float:
        return self.forward(pred, target)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_grad=None, _workspaces={})
        state.pop("_call_lock", None)
        state.pop("_forward_thread", None)
        return state

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        """The loss of ``pred`` against ``target``; keeps its gradient for :meth:`backward`."""
        raise NotImplementedError

    def backward(self) -> FloatArray:
        """Gradient of the last loss w.r.t. the prediction (a workspace of this loss)."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            if self._grad is None:
                raise ValueError(f"{type(self).__name__}.backward() called before forward()")
            _check_backward_thread(self)
            return self._grad
        finally:
            self._call_lock.release()

    def _grad_buffer(self, pred):
        """The gradient workspace for ``pred``: ours, so ``pred`` itself or disjoint from it.

        The last call's gradient first (a training loop keeps one shape), else
        one per (shape, dtype); None for what the functional layer must
        convert or reject.
        """
        last = self._grad
        if (last is not None and type(pred) is np.ndarray and pred.shape == last.shape
                and pred.dtype == last.dtype):
            return last
        if not isinstance(pred, np.ndarray) or pred.dtype not in FLOAT_DTYPES:
            return None  # let the functional layer convert or raise
        return _cached(self._workspaces, (pred.shape, pred.dtype),
                       lambda: np.empty(pred.shape, pred.dtype))


class SoftmaxCrossEntropy(_Loss):
    """Softmax + cross-entropy over logits (N, C) with class indices or probabilities.

    ``loss = loss_fn(logits, target)`` returns a float; ``loss_fn.backward()``
    returns d loss / d logits. See :func:`cyprop.functional.softmax_cross_entropy`.

    Parameters
    ----------
    reduction : {'mean', 'sum'}
    weight : array_like (C,), optional
        A weight per class.
    label_smoothing : float in [0, 1], default 0.0
    ignore_index : int, optional
        Class index whose rows are skipped (default None: none; torch's is -100).
    """

    def __init__(self, reduction: Literal["mean", "sum"] = "mean", *,
                 weight: ArrayLike | None = None, label_smoothing: float = 0.0,
                 ignore_index: int | None = None) -> None:
        super().__init__(reduction)
        check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)
        self.weight = None if weight is None else np.array(weight, dtype=np.float64)
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(f"weight must be 1-D (one per class), got shape {self.weight.shape}")
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = ignore_index
        self._plain = self.weight is None and not self.label_smoothing and ignore_index is None

    def forward(self, logits: ArrayLike, target: ArrayLike) -> float:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            grad = self._grad_buffer(logits)
            if self._plain:
                fast = None if grad is None else F._softmax_ce_into(logits, target, grad,
                                                                   self.reduction)
                loss, self._grad = fast or F.softmax_cross_entropy(
                    logits, target, reduction=self.reduction, grad_out=grad)
                return loss
            weight = self.weight
            if weight is not None and isinstance(logits, np.ndarray):
                weight = weight.astype(logits.dtype, copy=False)
            loss, self._grad = F.softmax_cross_entropy(
                logits, target, weight=weight, label_smoothing=self.label_smoothing,
                ignore_index=self.ignore_index, reduction=self.reduction, grad_out=grad)
            return loss
        finally:
            self._call_lock.release()


class MSELoss(_Loss):
    """Mean squared error (mean over all elements, as PyTorch).

    See :func:`cyprop.functional.mse_loss`.
    """

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            loss, self._grad = F.mse_loss(pred, target, reduction=self.reduction,
                                          grad_out=self._grad_buffer(pred))
            return loss
        finally:
            self._call_lock.release()


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy on logits (torch's ``nn.BCEWithLogitsLoss``).

    See :func:`cyprop.functional.binary_cross_entropy_with_logits`.

    Parameters
    ----------
    reduction : {'mean', 'sum'}
    pos_weight : float or array_like (C,), optional
        Weight of the positive term, per class.
    """

    def __init__(self, reduction: Literal["mean", "sum"] = "mean", *,
                 pos_weight: ArrayLike | None = None) -> None:
        super().__init__(reduction)
        self.pos_weight = None if pos_weight is None else np.array(pos_weight, dtype=np.float64)

    def forward(self, logits: ArrayLike, target: ArrayLike) -> float:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            pw = self.pos_weight
            if pw is not None and isinstance(logits, np.ndarray):
                pw = pw.astype(logits.dtype, copy=False)
            loss, self._grad = F.binary_cross_entropy_with_logits(
                logits, target, pos_weight=pw, reduction=self.reduction,
                grad_out=self._grad_buffer(logits))
            return loss
        finally:
            self._call_lock.release()


class HuberLoss(_Loss):
    """Huber loss (torch's ``nn.HuberLoss``); see :func:`cyprop.functional.huber_loss`.

    Parameters
    ----------
    reduction : {'mean', 'sum'}
    delta : float > 0, default 1.0
    """

    def __init__(self, reduction: Literal["mean", "sum"] = "mean", *, delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = check_real("delta", delta, low=0.0, low_open=True)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            loss, self._grad = F.huber_loss(pred, target, delta=self.delta,
                                            reduction=self.reduction,
                                            grad_out=self._grad_buffer(pred))
            return loss
        finally:
            self._call_lock.release()


class L1Loss(_Loss):
    """Mean absolute error (torch's ``nn.L1Loss``); see :func:`cyprop.functional.l1_loss`."""

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            loss, self._grad = F.l1_loss(pred, target, reduction=self.reduction,
                                         grad_out=self._grad_buffer(pred))
            return loss
        finally:
            self._call_lock.release()
