"""Normalization layers: BatchNorm1d and LayerNorm."""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import functional as F
from .._typing import FloatArray
from .._validation import check_positive_int, check_real
from ._module import (Module, Parameter, _cached, _check_backward_thread, _check_dtype,
                      _get_ident, _in_use, _stored, _Stored)


class _Norm(Module):
    _param_attrs = (("_gamma", "_dgamma"), ("_beta", "_dbeta"))

    gamma: _Stored[FloatArray | None] = _stored(
        "_gamma", "Scale (C,) (None without affine); assigning copies in.")
    beta: _Stored[FloatArray | None] = _stored(
        "_beta", "Shift (C,) (None without affine); assigning copies in.")
    dgamma: _Stored[FloatArray | None] = _stored(
        "_dgamma", "Gradient of gamma (C,), overwritten by backward.")
    dbeta: _Stored[FloatArray | None] = _stored(
        "_dbeta", "Gradient of beta (C,), overwritten by backward.")

    def _init_affine(self, n, affine, dtype):
        self.dtype = _check_dtype(dtype)
        self.affine = bool(affine)
        self._gamma = np.ones(n, self.dtype) if affine else None
        self._beta = np.zeros(n, self.dtype) if affine else None
        self._dgamma = np.zeros(n, self.dtype) if affine else None
        self._dbeta = np.zeros(n, self.dtype) if affine else None
        self._x = self._y = None

    def parameters(self) -> list[Parameter]:
        if not self.affine:
            return []
        return [Parameter(self._gamma, self._dgamma, "gamma"),
                Parameter(self._beta, self._dbeta, "beta")]

    def _grad_out(self, name):
        """The layer's dgamma/dbeta, or a scratch (C,) array without affine."""
        g = getattr(self, name)
        return g if g is not None else self._workspace(name, (self._n,))


class BatchNorm1d(_Norm):
    """Batch normalization over the batch of (N, C) inputs (torch's ``nn.BatchNorm1d``).

    In training mode each column is normalized with the batch mean and
    biased variance, and the running statistics are updated with
    ``momentum`` (the unbiased variance); in eval mode the running statistics
    normalize. See :func:`cyprop.functional.batch_norm_forward`.

    Parameters
    ----------
    num_features : int
        C.
    eps : float >= 0, default 1e-5
    momentum : float in [0, 1], default 0.1
    affine : bool, default True
        Learn ``gamma`` (ones) and ``beta`` (zeros).
    dtype : {np.float32, np.float64}

    Attributes
    ----------
    gamma, beta, dgamma, dbeta : ndarray (C,) or None
    running_mean, running_var : ndarray (C,)
        Buffers (zeros and ones at first): saved and loaded with the model,
        not touched by optimizers.
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, dtype: DTypeLike = np.float32) -> None:
        self.num_features = self._n = check_positive_int("num_features", num_features)
        self.eps = check_real("eps", eps, low=0.0)
        self.momentum = check_real("momentum", momentum, low=0.0, high=1.0)
        self._init_affine(self._n, affine, dtype)
        self._running_mean = np.zeros(self._n, self.dtype)
        self._running_var = np.ones(self._n, self.dtype)
        self._save_mean = np.zeros(self._n)
        self._save_invstd = np.ones(self._n)
        self._fwd_training = True

    running_mean: _Stored[FloatArray] = _stored(
        "_running_mean", "Running mean (C,), a buffer; assigning copies in.")
    running_var: _Stored[FloatArray] = _stored(
        "_running_var", "Running variance (C,), a buffer; assigning copies in.")

    def __repr__(self) -> str:
        return (f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, dtype={self.dtype})")

    def buffers(self) -> list[FloatArray]:
        """{name: array} of the state that is not a parameter (saved with the model)."""
        return {"running_mean": self._running_mean, "running_var": self._running_var}

    # In a Sequential's ChainPlan (relu: a ReLU after it, fused into its passes)
    def _chain_step(self, n, width, relu=False):
        return F._BatchNormStep(n, self._gamma, self._beta, self._dgamma, self._dbeta,
                                self._running_mean, self._running_var, self._save_mean,
                                self._save_invstd, relu)

    def _sync_step(self, step, n):
        F._check_batch_norm_rows((n, self._n), self.training)
        step.set(self.training, self.momentum, self.eps)

    def forward(self, x: ArrayLike) -> FloatArray:
        """Normalize x (N, C); returns the layer's (N, C) workspace."""
        return self._forward(x, False)

    def backward(self, dy: ArrayLike, *, need_dx: bool = True,
                 _overwrite_dy: bool = False) -> FloatArray | None:
        """Write dgamma, dbeta for ``dy`` (N, C); return dx (None if not ``need_dx``)."""
        return self._backward(dy, need_dx, _overwrite_dy, False)

    # BatchNorm1d -> ReLU as one pass each way, for Sequential: the ReLU in the
    # normalize pass, its mask (y > 0) applied to dy as the backward reads it.
    def _forward_relu(self, x):
        return self._forward(x, True)

    def _backward_relu(self, dy, *, need_dx=True, _overwrite_dy=False):
        return self._backward(dy, need_dx, _overwrite_dy, True)

    def _forward(self, x, relu):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            if x.ndim != 2 or x.shape[1] != self._n:
                raise ValueError(f"x must have shape (N, {self._n}), got {x.shape}")
            y = self._workspace("y", x.shape)
            if relu:
                F._batch_norm_relu_into(x, self._gamma, self._beta, self._running_mean,
                                        self._running_var, y, self._save_mean,
                                        self._save_invstd, self.training, self.momentum,
                                        self.eps)
            else:
                F.batch_norm_forward(x, self._gamma, self._beta, self._running_mean,
                                     self._running_var, training=self.training,
                                     momentum=self.momentum, eps=self.eps, out=y,
                                     save_mean=self._save_mean, save_invstd=self._save_invstd)
            self._x, self._y, self._fwd_training = x, y, self.training
            return y
        finally:
            self._call_lock.release()

    def _backward(self, dy, need_dx, overwrite_dy, relu):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            x = self._saved("_x")
            _check_backward_thread(self)
            dy = self._check_dy(dy, x.shape)
            dx = (dy if overwrite_dy else self._workspace("dx", x.shape)) if need_dx else None
            dgamma, dbeta = self._grad_out("_dgamma"), self._grad_out("_dbeta")
            if relu:
                F._batch_norm_relu_backward_into(dy, x, self._y, self._gamma, self._save_mean,
                                                 self._save_invstd, dx, dgamma, dbeta,
                                                 self._fwd_training)
            else:
                F.batch_norm_backward(dy, x, self._gamma, self._save_mean, self._save_invstd,
                                      training=self._fwd_training, dx=dx, dgamma=dgamma,
                                      dbeta=dbeta, need_dx=need_dx)
            return dx
        finally:
            self._call_lock.release()


class LayerNorm(_Norm):
    """Layer normalization over the last dimension (torch's ``nn.LayerNorm``).

    Parameters
    ----------
    normalized_shape : int or tuple of one int
        D, the size of the last dimension (cyprop normalizes over one).
    eps : float >= 0, default 1e-5
    elementwise_affine : bool, default True
    dtype : {np.float32, np.float64}
    """

    def __init__(self, normalized_shape: int | tuple[int], *, eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype: DTypeLike = np.float32) -> None:
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError("normalized_shape must be an int or a tuple of one int (cyprop "
                                 f"normalizes over the last dimension), got {normalized_shape!r}")
            normalized_shape = normalized_shape[0]
        if not isinstance(normalized_shape, numbers.Integral):
            raise TypeError(f"normalized_shape must be an int, got {normalized_shape!r}")
        self.normalized_shape = (check_positive_int("normalized_shape", normalized_shape),)
        self._n = self.normalized_shape[0]
        self.eps = check_real("eps", eps, low=0.0)
        self._init_affine(self._n, elementwise_affine, dtype)
        self.elementwise_affine = self.affine

    def __repr__(self) -> str:
        return (f"LayerNorm({self._n}, eps={self.eps}, elementwise_affine={self.affine}, "
                f"dtype={self.dtype})")

    def forward(self, x: ArrayLike) -> FloatArray:
        """Normalize each row of x (..., D); returns the layer's workspace."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            if x.ndim < 1 or x.shape[-1] != self._n:
                raise ValueError(f"x must have shape (..., {self._n}), got {x.shape}")
            rows = x.size // self._n
            y = self._workspace("y", x.shape)
            sm, si = self._workspace_f64("mean", rows), self._workspace_f64("invstd", rows)
            F.layer_norm_forward(x, self._gamma, self._beta, eps=self.eps, out=y, save_mean=sm,
                                 save_invstd=si)
            self._x, self._y, self._stats = x, y, (sm, si)
            return y
        finally:
            self._call_lock.release()

    def _chain_step(self, n, width, relu=False):
        return F._LayerNormStep(n, width, self.dtype.name, self._gamma, self._beta,
                                self._dgamma, self._dbeta, np.empty(n), np.empty(n))

    def _sync_step(self, step, n):
        step.set(self.eps)

    def _workspace_f64(self, name, n):
        return _cached(self.__dict__.setdefault("_workspaces", {}), (name, n),
                       lambda: np.empty(n, np.float64))

    def backward(self, dy: ArrayLike, *, need_dx: bool = True,
                 _overwrite_dy: bool = False) -> FloatArray | None:
        """Write dgamma, dbeta for ``dy``; return dx (None if not ``need_dx``)."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            x = self._saved("_x")
            _check_backward_thread(self)
            dy = self._check_dy(dy, x.shape)
            dx = (dy if _overwrite_dy else self._workspace("dx", x.shape)) if need_dx else None
            sm, si = self._stats
            dx, _, _ = F.layer_norm_backward(dy, x, self._gamma, sm, si, dx=dx,
                                             dgamma=self._grad_out("_dgamma"),
                                             dbeta=self._grad_out("_dbeta"), need_dx=need_dx)
            return dx
        finally:
            self._call_lock.release()
