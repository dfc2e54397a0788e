"""The fully connected layer, with its activation fused."""
from __future__ import annotations


import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import functional as F
from .._typing import FloatArray
from .._validation import FIRST_PRE_ACTIVATION, activation_code, check_positive_int
from ._module import (Module, Parameter, _check_backward_thread, _check_dtype, _get_ident,
                      _in_use, _stored, _Stored)


class Linear(Module):
    """Fully connected layer ``y = activation(x @ W + b)``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (>= 1).
    activation : {None, 'relu', 'sigmoid', 'tanh', 'leaky_relu', 'elu', 'gelu', 'gelu_tanh', \
'silu', 'softplus'}, optional
        Fused into the layer's forward and backward passes (the activations
        from leaky_relu on with torch's default parameters; the layer then
        keeps the pre-activation for backward, see
        :func:`cyprop.functional.linear_forward`).
    bias : bool, default True
    dtype : {np.float32, np.float64}, default np.float32
    seed : int or numpy.random.Generator, optional
        For the initial weights. He-uniform (``U(-a, a)``, ``a = sqrt(6/in)``)
        for ReLU, Glorot-uniform (``a = sqrt(6/(in+out))``) otherwise; the
        bias starts at zero.

    Attributes
    ----------
    W : ndarray (in, out)
    b : ndarray (out,) or None
    dW, db : ndarray
        Gradients, overwritten by each ``backward``.
    """

    def __init__(self, in_features: int, out_features: int, *, activation: str | None = None,
                 bias: bool = True, dtype: DTypeLike = np.float32, seed: int | None = None) -> None:
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        activation_code(activation)
        self.activation = None if activation == "identity" else activation
        self.dtype = _check_dtype(dtype)
        self._code = activation_code(activation)
        rng = np.random.default_rng(seed)
        fan = in_features if activation in ("relu", "leaky_relu") else in_features + out_features
        limit = np.sqrt(6.0 / fan)
        self._W = rng.uniform(-limit, limit, (in_features, out_features)).astype(self.dtype)
        self._dW = np.zeros_like(self._W)
        self._b = np.zeros(out_features, self.dtype) if bias else None
        self._db = np.zeros_like(self._b) if bias else None
        self._x = self._y = self._z = None

    _param_attrs = (("_W", "_dW"), ("_b", "_db"))

    W: _Stored[FloatArray] = _stored("_W", "Weights (in, out); assigning copies into the buffer.")
    b: _Stored[FloatArray | None] = _stored(
        "_b", "Bias (out,) or None; assigning copies into the buffer.")
    dW: _Stored[FloatArray] = _stored("_dW", "Weight gradient (in, out), overwritten by backward.")
    db: _Stored[FloatArray | None] = _stored(
        "_db", "Bias gradient (out,) or None, overwritten by backward.")

    def __repr__(self) -> str:
        act = f", activation={self.activation!r}" if self.activation else ""
        return f"Linear({self.in_features}, {self.out_features}{act}, dtype={self.dtype})"

    def parameters(self) -> list[Parameter]:
        ps = [Parameter(self._W, self._dW, "W")]
        if self._b is not None:
            ps.append(Parameter(self._b, self._db, "b"))
        return ps

    def forward(self, x: ArrayLike) -> FloatArray:
        """``activation(x @ W + b)`` for x (N, in); returns the layer's (N, out) workspace."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            if x.ndim != 2 or x.shape[1] != self.in_features:
                raise ValueError(f"x must have shape (N, {self.in_features}), got {x.shape}")
            shape = (x.shape[0], self.out_features)
            y = self._workspace("y", shape)
            z = self._workspace("z", shape) if self._code >= FIRST_PRE_ACTIVATION else None
            F.linear_forward(x, self._W, self._b, activation=self.activation, out=y, pre_out=z)
            self._x, self._y, self._z = x, y, z
            return y
        finally:
            self._call_lock.release()

    def backward(self, dy: ArrayLike, *, need_dx: bool = True,
                 _overwrite_dy: bool = False) -> FloatArray | None:
        """Write dW, db for ``dy`` (N, out); return dx (N, in) (None if not ``need_dx``)."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            x, y = self._saved("_x"), self._y
            _check_backward_thread(self)
            dy = self._check_dy(dy, y.shape)
            dx = self._workspace("dx", x.shape) if need_dx else None
            dx, _, _ = F.linear_backward(dy, x, self._W, y=y, activation=self.activation, dx=dx,
                                         dW=self._dW, db=self._db, need_dx=need_dx,
                                         need_db=self._b is not None, overwrite_dy=_overwrite_dy,
                                         pre=self._z)
            return dx
        finally:
            self._call_lock.release()
