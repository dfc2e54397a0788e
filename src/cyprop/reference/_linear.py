"""Reference fused linear layer."""
from ._activation import _ACT, _DACT, _ACT2, _DACT2
from ._common import _store


def linear_forward(x, W, b=None, *, activation=None, out=None, pre_out=None):
    """Reference ``activation(x @ W + b)``; see :func:`cyprop.functional.linear_forward`."""
    a = x @ W
    if b is not None:
        a = a + b
    if activation in _ACT2:
        z = _store(a, pre_out)
        return _store(_ACT2[activation](z), out)
    return _store(_ACT[activation](a), out)


def linear_backward(dy, x, W, *, y=None, activation=None, dx=None, dW=None, db=None,
                    need_dx=True, need_db=True, overwrite_dy=False, pre=None):
    """Reference gradients; see :func:`cyprop.functional.linear_backward`."""
    delta = dy * _DACT2[activation](pre) if activation in _ACT2 else _DACT[activation](dy, y)
    dW = _store(x.T @ delta, dW)
    dx = _store(delta @ W.T, dx) if need_dx else None
    db = _store(delta.sum(axis=0), db) if need_db else None
    return dx, dW, db
