"""Full-batch optimization of a model with scipy.optimize: L-BFGS-B, Newton-CG, trust-NCG.

The objective is the loss over all N rows, plus ``l2 / 2 * ||theta||^2``,
over the model's flat parameter buffer (``model.parameters()`` in order).
Its value and gradient come from one pass over the data (forward + backward
per row chunk, nothing evaluated twice); Newton-CG and trust-NCG get exact
Hessian-vector products from :func:`cyprop.hessian.hvp`.

Rows are taken in fixed chunks of ``chunk_rows`` (so the activations of a
large data set never all live at once); each chunk's loss and gradient is
computed with the loss summed (not averaged) over the chunk and added, in
float64 and in chunk order, to the totals, which are divided by the loss's
normalizer at the end (the row count, the element count, or the total class
weight, as the loss's ``mean`` defines it). The result does not depend on
the thread count, bit for bit; other chunk sizes change it only by rounding.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import check_positive_int, check_real

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import ArrayLike, NDArray
    from scipy.optimize import OptimizeResult

    from ..nn import Sequential
    from ..nn._loss import _Loss

__all__ = ["minimize"]

METHODS = {"l-bfgs-b": "L-BFGS-B", "newton-cg": "Newton-CG", "trust-ncg": "trust-ncg"}
DEFAULT_CHUNK_ROWS = 4096


def _check_model(model, loss_fn):
    """A Sequential with parameters, a cyprop loss, no layer whose forward is random."""
    from ..nn import Sequential
    from ..nn._loss import _Loss
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a cyprop.nn.Sequential, got {type(model).__name__}")
    if not model.parameters():
        raise ValueError("the model has no parameters")
    if not isinstance(loss_fn, _Loss):
        raise TypeError(f"loss_fn must be a cyprop.nn loss, got {type(loss_fn).__name__}")
    _check_deterministic(model)


def _check_deterministic(model):
    """Refuse layers whose training-mode forward is not a fixed function of the parameters."""
    from ..nn import BatchNorm1d, Dropout
    for layer in model.layers:
        if layer.training and (isinstance(layer, BatchNorm1d)
                               or (isinstance(layer, Dropout) and layer.p > 0)):
            raise ValueError(f"{type(layer).__name__} in training mode makes the full-batch "
                             "objective change from call to call (random masks, batch "
                             "statistics of each chunk): call model.eval() first")


def _normalizer(loss_fn, target, n_rows, out_width):
    """What the loss's 'mean' divides its sum by, over the whole data set (1 for 'sum')."""
    if loss_fn.reduction == "sum":
        return 1.0
    return _mean_normalizer(loss_fn, target, n_rows, out_width)


def _mean_normalizer(loss_fn, target, n_rows, out_width):
    """What the 'mean' of ``loss_fn``'s kind divides the sum over these rows by: the rows, the
    elements, or (class-index targets with weight/ignore_index) the total weight; additive
    over row chunks."""
    from ..nn import SoftmaxCrossEntropy
    if isinstance(loss_fn, SoftmaxCrossEntropy):
        t = np.asarray(target)
        if t.ndim == 1 and (loss_fn.weight is not None or loss_fn.ignore_index is not None):
            keep = np.ones(t.shape, bool) if loss_fn.ignore_index is None \
                else t != loss_fn.ignore_index
            w = np.ones(keep.sum()) if loss_fn.weight is None \
                else loss_fn.weight[t[keep].astype(np.intp)]
            return float(w.sum())
        return float(n_rows)
    return float(n_rows * out_width)


def _row_chunks(n, chunk_rows):
    """[(start, stop)] of the fixed row chunks of n rows."""
    return [(i, min(i + chunk_rows, n)) for i in range(0, n, chunk_rows)]


def _chunked_loss_grad(model, x, chunks, chunk_loss):
    """(loss, gradient) summed over row chunks, in chunk order, the gradient in float64.

    ``chunk_loss(out, i, j)`` gives rows [i, j)'s share of the loss and its
    gradient in the model's output ``out``; one forward and one backward per
    chunk. The model's parameters are used as they are.
    """
    total, grad = 0.0, np.zeros(model._values.size)
    for i, j in chunks:
        loss, dout = chunk_loss(model(x[i:j]), i, j)
        model.backward(dout)
        total += loss
        grad += model._grads
    return total, grad


class _FullBatch:
    """The loss, gradient and Hessian-vector products of a model over all rows, in chunks."""

    def __init__(self, model, loss_fn, x, target, chunk_rows, l2):
        _check_model(model, loss_fn)
        self.model, self.l2 = model, l2
        self.x = np.ascontiguousarray(model._input(x))
        self.target = np.asarray(target)
        n = self.x.shape[0]
        if n == 0:
            raise ValueError("x has no rows")
        if self.target.shape[:1] != (n,):
            raise ValueError(f"target must have {n} rows (one per row of x), got shape "
                             f"{self.target.shape}")
        self.chunks = _row_chunks(n, chunk_rows)
        self.summed = copy.deepcopy(loss_fn)   # the same loss, summed over each chunk
        self.summed.reduction = "sum"
        self.norm = _normalizer(loss_fn, self.target, n, model._width_at(len(model.layers)))

    def _set(self, theta):
        self.model._values[...] = theta

    def _chunk_loss(self, out, i, j):
        return float(self.summed(out, self.target[i:j])), self.summed.backward()

    def loss_grad(self, theta):
        """(f, grad) at theta, float64: one forward + backward per chunk."""
        self._set(theta)
        total, grad = _chunked_loss_grad(self.model, self.x, self.chunks, self._chunk_loss)
        total /= self.norm
        grad /= self.norm
        if self.l2:
            total += 0.5 * self.l2 * float(theta @ theta)
            grad += self.l2 * theta
        return total, grad

    def hessp(self, theta, p):
        """H(theta) p, float64, by cyprop.hessian.hvp over the chunks."""
        from .. import hessian
        self._set(theta)
        hv = np.zeros(theta.size)
        for i, j in self.chunks:
            hv += hessian.hvp(self.model, self.summed, self.x[i:j], self.target[i:j], p)
        hv /= self.norm
        if self.l2:
            hv += self.l2 * p
        return hv


def minimize(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike, *,
             method: str = "L-BFGS-B", max_iter: int | None = None, tol: float | None = None,
             l2: float = 0.0, callback: Callable[[NDArray[np.float64]], object] | None = None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS,
             options: dict[str, Any] | None = None) -> OptimizeResult:
    """Fit a model to all of (x, target) at once with ``scipy.optimize.minimize``.

    Parameters
    ----------
    model : cyprop.nn.Sequential
        Its parameters are the starting point; the solution is written into
        them. Dropout and BatchNorm layers must be in eval mode.
    loss_fn : a cyprop.nn loss
        Its ``reduction`` ('mean' or 'sum') defines the objective, over all rows.
    x : array_like (N, in)
        The data, of the model's dtype.
    target : array_like
        Targets of the N rows, as ``loss_fn`` takes them.
    method : {'L-BFGS-B', 'newton-cg', 'trust-ncg'}, default 'L-BFGS-B'
        Case-insensitive. Newton-CG and trust-NCG use exact Hessian-vector
        products (:func:`cyprop.hessian.hvp`, so the layers and losses it
        supports); L-BFGS-B needs only gradients.
    max_iter : int, optional
        Most iterations (scipy's ``maxiter``); scipy's default when None.
    tol : float, optional
        scipy's ``tol`` (for L-BFGS-B its ``ftol`` and ``gtol``).
    l2 : float, default 0.0
        Adds ``l2 / 2 * ||theta||^2`` over every parameter (biases included).
    callback : callable, optional
        Passed to scipy (called after each iteration).
    chunk_rows : int, default 4096
        Rows per forward/backward pass; the loss and gradient of the chunks
        are summed in float64 in a fixed order.
    options : dict, optional
        More scipy options for the method (e.g. ``{"maxfun": 15000}``).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` (float64) is the solution, also written into the model (in its
        dtype); ``fun``, ``nit``, ``nfev``, ``success``, ``message`` as scipy
        gives them.

    Raises
    ------
    ValueError, TypeError
        An unknown ``method``, bad ``max_iter``/``tol``/``l2``/``chunk_rows``,
        a model without parameters, layers in training mode, x and target of
        different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> from cyprop import nn, optim
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((200, 3)); y = (x[:, 0] > 0).astype(int)
    >>> model = nn.Sequential(nn.Linear(3, 8, activation="tanh", dtype=np.float64, seed=0),
    ...                       nn.Linear(8, 2, dtype=np.float64, seed=1))
    >>> res = optim.minimize(model, nn.SoftmaxCrossEntropy(), x, y, max_iter=200)
    >>> bool(res.fun < 0.1)
    True
    """
    return _run_minimize(lambda l2: _FullBatch(model, loss_fn, x, target,
                                               check_positive_int("chunk_rows", chunk_rows), l2),
                         model, method, max_iter, tol, l2, callback, options)


def _run_minimize(make_objective, model, method, max_iter, tol, l2, callback, options):
    """scipy.optimize.minimize over ``make_objective(l2)`` (an object with ``loss_grad(theta)``
    and ``hessp(theta, p)``), from the model's parameters; the solution written back."""
    import scipy.optimize

    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of 'L-BFGS-B', 'newton-cg', 'trust-ncg'; "
                         f"got {method!r}")
    method = METHODS[method.lower()]
    l2 = check_real("l2", l2, low=0.0)
    opts = dict(options or {})
    if max_iter is not None:
        opts["maxiter"] = check_positive_int("max_iter", max_iter)
    if tol is not None:
        tol = check_real("tol", tol, low=0.0)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    batch = make_objective(l2)
    theta0 = model._values.astype(np.float64)
    kwargs = {"hessp": batch.hessp} if method != "L-BFGS-B" else {}
    res = scipy.optimize.minimize(batch.loss_grad, theta0, method=method, jac=True, tol=tol,
                                  callback=callback, options=opts, **kwargs)
    batch._set(res.x)
    return res
