"""Losses as objects: ``loss = loss_fn(pred, target)``, then ``loss_fn.backward()``."""
import numpy as np

from .. import functional as F
from .._validation import FLOAT_DTYPES, check_reduction
from ._module import _cached, _check_backward_thread, _get_ident, _Guarded, _in_use


class _Loss(_Guarded):
    def __init__(self, reduction="mean"):
        check_reduction(reduction)
        self.reduction = reduction
        self._grad = None
        self._workspaces = {}

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_grad=None, _workspaces={})
        state.pop("_call_lock", None)
        state.pop("_forward_thread", None)
        return state

    def backward(self):
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
    """

    def forward(self, logits, target):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            grad = self._grad_buffer(logits)
            fast = None if grad is None else F._softmax_ce_into(logits, target, grad,
                                                               self.reduction)
            loss, self._grad = fast or F.softmax_cross_entropy(
                logits, target, reduction=self.reduction, grad_out=grad)
            return loss
        finally:
            self._call_lock.release()


class MSELoss(_Loss):
    """Mean squared error (mean over all elements, as PyTorch).

    See :func:`cyprop.functional.mse_loss`.
    """

    def forward(self, pred, target):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            loss, self._grad = F.mse_loss(pred, target, reduction=self.reduction,
                                          grad_out=self._grad_buffer(pred))
            return loss
        finally:
            self._call_lock.release()
