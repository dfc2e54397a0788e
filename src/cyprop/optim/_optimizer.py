"""The optimizers: SGD, Adam, AdamW, RMSprop (PyTorch's update rules)."""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import functional as F
from .._validation import FLOAT_DTYPES, check_nonneg_float

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..nn import Parameter


class Optimizer:
    """Base class holding the parameter list.

    Parameters
    ----------
    params : iterable of Parameter
        Objects with ``.value`` and ``.grad`` arrays (C-contiguous, writeable,
        same shape and float dtype), e.g. ``model.parameters()``.
    lr : float
        Learning rate (> 0).
    """

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for i, p in enumerate(self.params):
            value, grad = getattr(p, "value", None), getattr(p, "grad", None)
            if not isinstance(value, np.ndarray) or not isinstance(grad, np.ndarray):
                raise TypeError(f"params[{i}] must have ndarray .value and .grad "
                                f"(a cyprop.nn.Parameter), got {type(p).__name__}")
            if value.dtype not in FLOAT_DTYPES or grad.dtype != value.dtype:
                raise TypeError(f"params[{i}] must be float32/float64 with a grad of the same "
                                f"dtype, got {value.dtype} and {grad.dtype}")
            if grad.shape != value.shape:
                raise ValueError(f"params[{i}].grad has shape {grad.shape}, value {value.shape}")
            if not (value.flags.c_contiguous and value.flags.writeable):
                raise ValueError(f"params[{i}].value must be C-contiguous and writeable")
        self.lr = _check_lr(lr)
        self._groups = _groups(self.params)

    def state_dict(self) -> dict[str, Any]:
        """Copies of the optimizer's state (step counters and buffers)."""
        return {key: ([b.copy() if b is not None else None for b in value]
                      if isinstance(value, list) else value)
                for key, value in vars(self).items() if key in self._state_keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an optimizer over the same parameters."""
        for key in self._state_keys:
            current, new = getattr(self, key), state[key]
            if isinstance(current, list):
                if len(new) != len(current):
                    raise ValueError(f"state {key!r} has {len(new)} buffers, expected {len(current)}")
                for i, ((value, _), src) in enumerate(zip(self._groups, new)):
                    if src is None:
                        current[i] = None  # not made yet (a buffer made on first use)
                        continue
                    if np.shape(src) != value.shape:
                        raise ValueError(f"state {key!r}: shape {np.shape(src)} != {value.shape}")
                    if current[i] is None:
                        current[i] = np.zeros_like(value)
                    current[i][...] = src
            else:
                setattr(self, key, new)

    def zero_grad(self) -> None:
        """Set every gradient to zero (cyprop's backward overwrites them anyway)."""
        for p in self.params:
            p.grad.fill(0)

    def step(self) -> None:
        """Update every parameter in place."""
        raise NotImplementedError


def _check_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    return float(lr)


def _address(a):
    return a.__array_interface__["data"][0]


def _groups(params):
    """(value, grad) pairs the kernels update: one flat pair, or one per parameter."""
    values = _flat_span([p.value for p in params])
    grads = _flat_span([p.grad for p in params])
    if values is not None and grads is not None:
        return [(values, grads)]
    return [(p.value, p.grad) for p in params]


def _flat_span(arrays):
    """A 1-D view covering ``arrays`` if they lie back to back in one buffer, else None."""
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    address = _address(arrays[0])
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or _address(a) != address:
            return None
        address += a.nbytes
    start = (_address(arrays[0]) - _address(base)) // base.itemsize
    return base[start:start + sum(a.size for a in arrays)]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, default 1e-3
    momentum : float, default 0
    dampening : float, default 0
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    nesterov : bool, default False
        Requires momentum > 0 and dampening = 0.
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = check_nonneg_float("momentum", momentum)
        self.dampening = check_nonneg_float("dampening", dampening)
        self.weight_decay = check_nonneg_float("weight_decay", weight_decay)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        self.nesterov = bool(nesterov)
        self._state_keys = ("_buffers", "_first")
        self._buffers = [None] * len(self._groups)
        self._first = True

    def set_lr(self, lr: float, *, keep_velocity: bool = False) -> None:
        """Change the learning rate.

        Parameters
        ----------
        lr : float
            The new learning rate (> 0).
        keep_velocity : bool, default False
            Rescale the momentum buffer by ``old_lr / lr`` so that the velocity
            ``lr * buffer`` carries over unchanged: the update then follows the
            velocity formulation ``v = momentum * v - lr * g; p += v`` of
            scikit-learn and Keras exactly, also across learning-rate changes.
            (Without it, PyTorch's: the whole buffer is scaled by the new rate.)
        """
        lr = _check_lr(lr)
        if keep_velocity and not self._first:
            for buf in self._buffers:
                if buf is not None:
                    buf *= self.lr / lr
        self.lr = float(lr)

    def step(self) -> None:
        if self.momentum and self._buffers[0] is None:
            # made on the first step with momentum (a schedule may turn it on),
            # which sets them to the gradient, as torch does
            self._buffers = [np.zeros_like(value) for value, _ in self._groups]
            self._first = True
        for (value, grad), buf in zip(self._groups, self._buffers):
            # arrays checked when the optimizer was built (and by the kernel, in C)
            F._sgd_update(value, grad, buf, self.lr, self.momentum, self.dampening,
                          self.weight_decay, self.nesterov, self._first)
        self._first = False


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 weight decay added to the gradient).

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
        Use the running maximum of the second moment (Reddi et al., 2018).
    """

    _decoupled = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        self.betas = F._optim._check_betas(betas)
        self.eps = check_nonneg_float("eps", eps)
        self.weight_decay = check_nonneg_float("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        self._state_keys = ("_m", "_v", "_vmax", "t")
        self._m = [np.zeros_like(value) for value, _ in self._groups]
        self._v = [np.zeros_like(value) for value, _ in self._groups]
        self._vmax = [np.zeros_like(value) if self.amsgrad else None for value, _ in self._groups]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        for (value, grad), m, v, vmax in zip(self._groups, self._m, self._v, self._vmax):
            F._adam_update(value, grad, m, v, vmax, self.t, self.lr, *self.betas, self.eps,
                           self.weight_decay, self._decoupled)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: decoupled weight decay.

    Each step first scales the parameters by ``1 - lr * weight_decay``, then
    takes Adam's step without an L2 term in the gradient.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 1e-2 (torch's)
    amsgrad : bool, default False
    """

    _decoupled = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the running mean of squared gradients.
    eps : float, default 1e-8
        Added to the root mean square.
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    momentum : float, default 0
    centered : bool, default False
        Divide by the gradient's estimated standard deviation rather than its
        root mean square.
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha = check_nonneg_float("alpha", alpha)
        self.eps = check_nonneg_float("eps", eps)
        self.weight_decay = check_nonneg_float("weight_decay", weight_decay)
        self.momentum = check_nonneg_float("momentum", momentum)
        self.centered = bool(centered)
        self._state_keys = ("_square_avg", "_grad_avg", "_buffers")
        self._square_avg = [np.zeros_like(value) for value, _ in self._groups]
        self._grad_avg = [np.zeros_like(value) if self.centered else None
                          for value, _ in self._groups]
        self._buffers = [None] * len(self._groups)

    def step(self) -> None:
        if self.momentum and self._buffers[0] is None:  # zeros, as torch's
            self._buffers = [np.zeros_like(value) for value, _ in self._groups]
        for (value, grad), sq, avg, buf in zip(self._groups, self._square_avg, self._grad_avg,
                                               self._buffers):
            F._rmsprop_update(value, grad, sq, avg, buf if self.momentum else None, self.lr,
                              self.alpha, self.eps, self.weight_decay, self.momentum)
