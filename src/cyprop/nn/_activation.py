"""Element-wise activations as layers of their own."""
from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import functional as F
from .._typing import FloatArray
from .._validation import activation_code, check_real
from ._module import Module, _check_backward_thread, _check_dtype, _get_ident, _in_use


class _Activation(Module):
    _forward = _backward = None

    def __init__(self, dtype: DTypeLike = np.float32) -> None:
        self.dtype = _check_dtype(dtype)
        self._y = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def forward(self, x: ArrayLike) -> FloatArray:
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

    def backward(self, dy: ArrayLike, *, need_dx: bool = True,
                 _overwrite_dy: bool = False) -> FloatArray | None:
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


class _PreActivation(Module):
    """An activation whose backward takes the forward input (see cyprop.functional)."""

    _name = None

    def __init__(self, dtype: DTypeLike = np.float32) -> None:
        self.dtype = _check_dtype(dtype)
        self._x = self._y = None

    def _kwargs(self):
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs().items())
        return f"{type(self).__name__}({args})"

    def _keeps_output(self):
        return False

    # In a Sequential's ChainPlan (see Sequential): the step that runs this layer
    # for batches of n rows of width features, and its settings before each forward
    def _chain_step(self, n, width, relu=False):
        return F._Activation2Step(n, width, self.dtype.name)

    def _sync_step(self, step, n):
        step.set(*F._activation2_args(self._name, **self._kwargs()))

    def forward(self, x: ArrayLike) -> FloatArray:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            y = self._workspace("y", x.shape)
            getattr(F, f"{self._name}_forward")(x, out=y, **self._kwargs())
            self._x, self._y = (None, y) if self._keeps_output() else (x, y)
            return y
        finally:
            self._call_lock.release()

    def backward(self, dy: ArrayLike, *, need_dx: bool = True,
                 _overwrite_dy: bool = False) -> FloatArray | None:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            y = self._saved("_y")
            _check_backward_thread(self)
            dy = self._check_dy(dy, y.shape)
            if not need_dx:
                return None
            v = y if self._keeps_output() else self._x
            dx = dy if _overwrite_dy else self._workspace("dx", y.shape)
            return getattr(F, f"{self._name}_backward")(dy, v, out=dx, **self._kwargs())
        finally:
            self._call_lock.release()


class LeakyReLU(_PreActivation):
    """Leaky ReLU, ``x if x > 0 else negative_slope * x`` (torch's ``nn.LeakyReLU``).

    Parameters
    ----------
    negative_slope : float, default 0.01
    dtype : {np.float32, np.float64}
    """

    _name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01, *, dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.negative_slope = check_real("negative_slope", negative_slope)

    def _kwargs(self):
        return {"negative_slope": self.negative_slope}

    def _keeps_output(self):
        return self.negative_slope >= 0   # y has x's sign: the input need not be kept


class ELU(_PreActivation):
    """ELU, ``x if x > 0 else alpha * (exp(x) - 1)`` (torch's ``nn.ELU``).

    Parameters
    ----------
    alpha : float, default 1.0
    dtype : {np.float32, np.float64}
    """

    _name = "elu"

    def __init__(self, alpha: float = 1.0, *, dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.alpha = check_real("alpha", alpha)

    def _kwargs(self):
        return {"alpha": self.alpha}


class GELU(_PreActivation):
    """GELU, ``x * Phi(x)``, or its tanh approximation (torch's ``nn.GELU``).

    Parameters
    ----------
    approximate : {'none', 'tanh'}
    dtype : {np.float32, np.float64}
    """

    _name = "gelu"

    def __init__(self, approximate: Literal["none", "tanh"] = "none", *,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _kwargs(self):
        return {"approximate": self.approximate}


class SiLU(_PreActivation):
    """SiLU (swish), ``x * sigmoid(x)`` (torch's ``nn.SiLU``)."""

    _name = "silu"

    def __init__(self, *, dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)


class Softplus(_PreActivation):
    """Softplus, ``log1p(exp(beta x)) / beta``, linear past ``threshold`` (torch's ``nn.Softplus``).

    Parameters
    ----------
    beta : float > 0, default 1.0
    threshold : float, default 20.0
    dtype : {np.float32, np.float64}
    """

    _name = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.beta = check_real("beta", beta, low=0.0, low_open=True)
        self.threshold = check_real("threshold", threshold)

    def _kwargs(self):
        return {"beta": self.beta, "threshold": self.threshold}
