"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (torch.nn.utils')."""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

from .. import functional as F
from .._validation import FLOAT_DTYPES, check_nonneg_float
from ._optimizer import _flat_span

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..nn import Module, Parameter


def _gradients(parameters):
    """The gradient arrays of ``parameters`` (a Module, or Parameters): one flat span if
    they tile one buffer (a Sequential's), else one array each."""
    if hasattr(parameters, "parameters") and callable(parameters.parameters):
        parameters = parameters.parameters()
    grads = []
    for i, p in enumerate(parameters):
        g = getattr(p, "grad", None)
        if not isinstance(g, np.ndarray):
            raise TypeError(f"parameters[{i}] must have an ndarray .grad (a cyprop.nn.Parameter),"
                            f" got {type(p).__name__}")
        if g.dtype not in FLOAT_DTYPES or not (g.flags.c_contiguous and g.flags.writeable):
            raise ValueError(f"parameters[{i}].grad must be a writeable C-contiguous float32 or "
                             f"float64 array, got dtype {g.dtype}")
        grads.append(g)
    flat = _flat_span(grads) if grads else None
    return [flat] if flat is not None else grads


def clip_grad_norm_(parameters: Module | Iterable[Parameter], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Scale the gradients in place so that their total norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the norm of all gradients taken
    together as one vector; if it exceeds ``max_norm`` every gradient is
    multiplied by ``max_norm / (total_norm + 1e-6)``. The 2-norm is
    accumulated in float64 in a fixed order (torch sums in the gradients'
    dtype), so it does not depend on the thread count.

    Parameters
    ----------
    parameters : Module or iterable of Parameter
        Their ``.grad`` arrays are clipped.
    max_norm : float
        >= 0.
    norm_type : float, default 2.0
        p of the p-norm, > 0, or ``inf`` (the largest absolute value).
    error_if_nonfinite : bool, default False
        Raise if the total norm is NaN or infinite (instead of scaling by NaN,
        as torch does).

    Returns
    -------
    total_norm : float
        The norm before clipping.

    Raises
    ------
    RuntimeError
        With ``error_if_nonfinite``, when the norm is not finite.
    """
    max_norm = check_nonneg_float("max_norm", max_norm)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or not norm_type > 0:
        raise ValueError(f"norm_type must be a number > 0 or inf, got {norm_type!r}")
    grads = _gradients(parameters)
    if not grads:
        return 0.0
    p = float(norm_type)
    if p == 2.0:
        total = math.sqrt(sum(F._sq_norm(g) for g in grads))
    elif p == math.inf:
        total = max((float(np.max(np.abs(g))) for g in grads if g.size), default=0.0)
    else:
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** p)) for g in grads) ** (1 / p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {total}: "
                           "they cannot be clipped")
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # also for a NaN norm: the gradients become NaN, as in torch
        for g in grads:
            F._scale(g, coef)
    return total


def clip_grad_value_(parameters: Module | Iterable[Parameter], clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]`` in place.

    As ``torch.nn.utils.clip_grad_value_`` (NaN stays NaN).

    Parameters
    ----------
    parameters : Module or iterable of Parameter
    clip_value : float
        >= 0.
    """
    clip_value = check_nonneg_float("clip_value", clip_value)
    for g in _gradients(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
