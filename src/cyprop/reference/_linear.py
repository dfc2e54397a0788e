"""Reference fused linear layer."""
from __future__ import annotations

from numpy.typing import ArrayLike

from .._typing import FloatArray
from ._activation import _ACT, _DACT, _ACT2, _DACT2
from ._common import _store


def linear_forward(x: ArrayLike, W: ArrayLike, b: ArrayLike | None = None, *,
                   activation: str | None = None, out: FloatArray | None = None,
                   pre_out: FloatArray | None = None) -> FloatArray:
    """Reference ``activation(x @ W + b)``; see :func:`cyprop.functional.linear_forward`."""
    a = x @ W
    if b is not None:
        a = a + b
    if activation in _ACT2:
        z = _store(a, pre_out)
        return _store(_ACT2[activation](z), out)
    return _store(_ACT[activation](a), out)


def linear_backward(dy: ArrayLike, x: ArrayLike, W: ArrayLike, *, y: ArrayLike | None = None,
                    activation: str | None = None, dx: FloatArray | None = None,
                    dW: FloatArray | None = None, db: FloatArray | None = None,
                    need_dx: bool = True, need_db: bool = True, overwrite_dy: bool = False,
                    pre: ArrayLike | None = None
) -> tuple[FloatArray | None, FloatArray, FloatArray | None]:
    """Reference gradients; see :func:`cyprop.functional.linear_backward`."""
    delta = dy * _DACT2[activation](pre) if activation in _ACT2 else _DACT[activation](dy, y)
    dW = _store(x.T @ delta, dW)
    dx = _store(delta @ W.T, dx) if need_dx else None
    db = _store(delta.sum(axis=0), db) if need_db else None
    return dx, dW, db
