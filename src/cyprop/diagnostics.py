"""Dead and saturated units, zero weight columns, gradient norms: ``unit_report``.

A ReLU unit that outputs 0 on every row of the data is dead: its gradient is
0 everywhere, so no update brings it back. A sigmoid or tanh unit whose
output sits in the flat tail (sigmoid outside (0.01, 0.99), ``|tanh| > 0.99``)
on more than 99% of the rows is saturated: its derivative is below 0.01
there and its gradients vanish. A Linear layer's all-zero weight column is
a unit that receives nothing from its inputs. The gradient norm per layer
(for a loss and targets, when given) shows where the gradient is lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import ArrayLike

    from ._typing import FloatArray
    from .nn import Sequential
    from .nn._loss import _Loss

__all__ = ["unit_report", "UnitReport", "LayerReport"]

_SATURATED_ROWS = 0.99   # a unit is saturated when it is in a tail on more rows than this
_TANH_TAIL = 0.99
_SIGMOID_TAIL = 0.01


@dataclass
class LayerReport:
    """One layer's line of a :class:`UnitReport`.

    Attributes
    ----------
    index : int
        Position in ``model.layers``.
    layer : str
        A short name ('Linear 64->128', 'ReLU', ...).
    units : int
        Output units (columns).
    activation : str or None
        The activation whose units are judged ('relu', 'sigmoid', 'tanh', ...).
    dead : float or None
        Fraction of ReLU units that are 0 on every row (None: not a ReLU).
    saturated : float or None
        Fraction of sigmoid/tanh units saturated on > 99% of rows (None: neither).
    zero_weight_columns : int or None
        All-zero columns of a Linear layer's W (None: no weights).
    grad_norm : float or None
        Euclidean norm of the layer's parameter gradients (None: no
        parameters, or no loss given).
    """

    index: int
    layer: str
    units: int
    activation: str | None = None
    dead: float | None = None
    saturated: float | None = None
    zero_weight_columns: int | None = None
    grad_norm: float | None = None


@dataclass
class UnitReport:
    """Per-layer unit statistics of a model on a batch; ``str()`` is a table."""

    rows: int
    layers: list[LayerReport] = field(default_factory=list)

    def __str__(self) -> str:
        def fmt(v, pct=False):
            if v is None:
                return "-"
            return f"{100 * v:.1f}%" if pct else (f"{v:.3e}" if isinstance(v, float) else str(v))
        head = (f"{'#':>2} {'layer':<22} {'units':>5} {'act':<10} {'dead':>7} {'saturated':>9} "
                f"{'zero W cols':>11} {'grad norm':>10}")
        lines = [f"unit report on {self.rows} rows", head, "-" * len(head)]
        for r in self.layers:
            lines.append(f"{r.index:>2} {r.layer:<22} {r.units:>5} {r.activation or '-':<10} "
                         f"{fmt(r.dead, True):>7} {fmt(r.saturated, True):>9} "
                         f"{fmt(r.zero_weight_columns):>11} {fmt(r.grad_norm):>10}")
        lines.append("dead: ReLU units 0 on every row; saturated: sigmoid outside (0.01, 0.99) "
                     "or |tanh| > 0.99 on > 99% of rows")
        return "\n".join(lines)


def _name(layer):
    """A short name: 'Linear 64->128', 'BatchNorm1d', ..."""
    from .nn import Linear
    if isinstance(layer, Linear):
        return f"Linear {layer.in_features}->{layer.out_features}"
    return type(layer).__name__


def _activation_of(layer):
    from .nn import Linear, ReLU, Sigmoid, Tanh
    if isinstance(layer, Linear):
        return layer.activation
    return {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}.get(type(layer),
                                                              getattr(layer, "_name", None))


def _unit_stats(activation, y):
    """(dead, saturated) fractions of the units (columns) of output y."""
    if y.shape[0] == 0 or y.shape[1] == 0:
        return (0.0 if activation == "relu" else None,
                0.0 if activation in ("sigmoid", "tanh") else None)
    if activation == "relu":
        return float(np.mean(np.all(y <= 0, axis=0))), None
    if activation == "sigmoid":
        tail = (y < _SIGMOID_TAIL) | (y > 1 - _SIGMOID_TAIL)
    elif activation == "tanh":
        tail = np.abs(y) > _TANH_TAIL
    else:
        return None, None
    return None, float(np.mean(np.mean(tail, axis=0) > _SATURATED_ROWS))


def unit_report(model: Sequential, x: ArrayLike, *,
                loss_fn: _Loss | Callable[[FloatArray, Any], tuple[float, ArrayLike]] | None = None,
                target: ArrayLike | None = None) -> UnitReport:
    """Dead ReLU units, saturated sigmoid/tanh units, zero weight columns and gradient norms.

    The model runs on ``x`` in eval mode (Dropout off, BatchNorm's running
    statistics), layer by layer; its modes, parameters and gradients are as
    before afterwards.

    Parameters
    ----------
    model : cyprop.nn.Sequential
    x : array_like (N, in)
        Rows to judge the units on (the training data, or a large sample).
    loss_fn : a cyprop.nn loss or callable, optional
        With ``target``: each layer's gradient norm under this loss. A
        callable takes ``(output, target)`` and returns ``(loss, d loss /
        d output)``.
    target : array_like, optional

    Returns
    -------
    UnitReport
        ``layers``: one :class:`LayerReport` per layer; ``str(report)`` is a
        table.

    Examples
    --------
    >>> import numpy as np
    >>> from cyprop import nn, diagnostics
    >>> model = nn.Sequential(nn.Linear(4, 8, activation="relu", seed=0), nn.Linear(8, 2, seed=1))
    >>> rep = diagnostics.unit_report(model, np.ones((10, 4), np.float32))
    >>> rep.layers[0].activation, rep.layers[0].units
    ('relu', 8)
    """
    from .nn import Linear, Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a cyprop.nn.Sequential, got {type(model).__name__}")
    if (loss_fn is None) != (target is None):
        raise ValueError("give both loss_fn and target for the gradient norms, or neither")
    x = model._input(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (N, features), got shape {x.shape}")
    modes, model_mode = [layer.training for layer in model.layers], model.training
    grads = model._grads.copy()
    report = UnitReport(rows=x.shape[0])
    try:
        model.eval()
        a = x
        for i, layer in enumerate(model.layers):
            a = layer.forward(a)
            act = _activation_of(layer)
            dead, saturated = _unit_stats(act, a)
            zero_cols = None
            if isinstance(layer, Linear):
                zero_cols = int(np.sum(np.all(layer.W == 0, axis=0)))
            report.layers.append(LayerReport(i, _name(layer), int(a.shape[1]), act, dead,
                                             saturated, zero_cols))
        if loss_fn is not None:
            # back through the layers of the forward above (no second forward of x)
            if hasattr(loss_fn, "backward"):
                loss_fn(a, target)
                dy = loss_fn.backward()
            else:
                _, dy = loss_fn(a, target)
            for i in range(len(model.layers) - 1, -1, -1):
                dy = model.layers[i].backward(dy, need_dx=i > 0)
            for r, layer in zip(report.layers, model.layers):
                params = layer.parameters()
                if params:
                    r.grad_norm = float(np.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2))
                                                    for p in params)))
    finally:
        for layer, mode in zip(model.layers, modes):
            layer.train(mode)
        model.training = model_mode
        model._grads[...] = grads
    return report
