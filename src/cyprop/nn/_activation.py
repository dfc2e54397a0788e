"""Element-wise activations as layers of their own."""
import numpy as np

from .. import functional as F
from .._validation import activation_code
from ._module import Module, _check_backward_thread, _check_dtype, _get_ident, _in_use


class _Activation(Module):
    _forward = _backward = None

    def __init__(self, dtype=np.float32):
        self.dtype = _check_dtype(dtype)
        self._y = None

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, x):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            y = self._workspace("y", x.shape)
            type(self)._forward(x, out=y)
            self._y = y
            return y
        finally:
            self._call_lock.release()

    def backward(self, dy, *, need_dx=True, _overwrite_dy=False):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            y = self._saved("_y")
            _check_backward_thread(self)
            dy = self._check_dy(dy, y.shape)
            if not need_dx:
                return None
            dx = dy if _overwrite_dy else self._workspace("dx", y.shape)
            return type(self)._backward(dy, y, out=dx)
        finally:
            self._call_lock.release()


class ReLU(_Activation):
    """ReLU as a separate layer (``Linear(..., activation='relu')`` fuses it)."""

    _code = activation_code("relu")
    _forward = staticmethod(F.relu_forward)
    _backward = staticmethod(F.relu_backward)


class Sigmoid(_Activation):
    """Logistic sigmoid as a separate layer."""

    _code = activation_code("sigmoid")
    _forward = staticmethod(F.sigmoid_forward)
    _backward = staticmethod(F.sigmoid_backward)


class Tanh(_Activation):
    """Tanh as a separate layer."""

    _code = activation_code("tanh")
    _forward = staticmethod(F.tanh_forward)
    _backward = staticmethod(F.tanh_backward)
