"""Optimizer updates, in place, with PyTorch's semantics."""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from .. import _optim
from .._typing import FloatArray
from .._validation import as_float_array, call_dtype, check_no_overlap, check_nonneg_float, check_out
from ._common import _n_threads


def _check_state(name, a, like, others=()):
    """An optimizer state buffer: param's shape and dtype, overlapping nothing else."""
    check_out(name, a, like.shape, like.dtype)
    check_no_overlap(name, a, (("param", like),) + tuple(others))
    return a


def _check_states(param, grad, **states):
    """Check the named state buffers (None: unused) against param, grad and each other."""
    seen = [("grad", grad)]
    for name, a in states.items():
        if a is not None:
            _check_state(name, a, param, seen)
            seen.append((name, a))


def _check_step(step):
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"step must be an int >= 1, got {step!r}")
    return int(step)


def _check_betas(betas):
    try:
        beta1, beta2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair of floats, got {betas!r}") from None
    for name, b in (("betas[0]", beta1), ("betas[1]", beta2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {b}")
    return beta1, beta2


def _param_and_grad(param, grad):
    dtype = call_dtype(("param", param), ("grad", grad))
    if not isinstance(param, np.ndarray):
        raise TypeError(f"param must be a numpy.ndarray (updated in place), got {type(param).__name__}")
    check_out("param", param, param.shape, dtype)
    grad = as_float_array("grad", grad, dtype)
    if grad.shape != param.shape:
        raise ValueError(f"grad must have the shape of param {param.shape}, got {grad.shape}")
    return param, grad


# For cyprop.optim, which validates its arrays once when it is built: the
# kernels still check dtype, order, size and writeability in C.
def _sgd_update(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
                first_step):
    _optim.sgd_step(param, grad, param if momentum_buffer is None else momentum_buffer, lr,
                    momentum, dampening, weight_decay, nesterov, first_step, _n_threads())


def _adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                 weight_decay, decoupled):
    """Adam (``decoupled=False``: L2 in the gradient) or AdamW; max_exp_avg_sq for amsgrad."""
    _optim.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
                     0.0 if decoupled else weight_decay, weight_decay if decoupled else 0.0,
                     1 - beta1 ** step, 1 - beta2 ** step, _n_threads())


def _rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
                    weight_decay, momentum):
    _optim.rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
                        weight_decay, momentum, _n_threads())


def _sq_norm(a):
    """sum(a**2) in float64, for an array cyprop owns (checked in C)."""
    return _optim.sq_norm_axpy(a, None, 0.0, _n_threads())


def _scale(a, factor):
    """a *= factor in place, for an array cyprop owns (checked in C)."""
    _optim.scale(a, factor, _n_threads())


def _add_l2(W, dW, coef):
    """``dW += coef * W`` and return ``sum(W**2)`` (float64), in one pass.

    The L2 penalty's gradient and value, for arrays cyprop owns (the kernel
    checks dtype, order, size and writeability in C).
    """
    return _optim.sq_norm_axpy(W, dW, coef, _n_threads())


def sgd_step(param: FloatArray, grad: ArrayLike, momentum_buffer: FloatArray | None = None, *,
             lr: float, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False, first_step: bool = True) -> FloatArray:
    """One in-place SGD update with ``torch.optim.SGD`` semantics.

    Parameters
    ----------
    param : ndarray
        C-contiguous, writeable; updated in place.
    grad : array_like
        Same shape as ``param``.
    momentum_buffer : ndarray, optional
        Required when ``momentum != 0``; updated in place. On the first step
        it is set to the gradient (as PyTorch does).
    lr, momentum, dampening, weight_decay : float
    nesterov : bool
    first_step : bool
        Whether ``momentum_buffer`` is still uninitialised.

    Returns
    -------
    param : ndarray
    """
    param, grad = _param_and_grad(param, grad)
    if momentum != 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer is required when momentum != 0")
        _check_state("momentum_buffer", momentum_buffer, param, (("grad", grad),))
    else:
        momentum_buffer = None  # unused by the kernel
    _sgd_update(param, grad, momentum_buffer, float(lr), float(momentum), float(dampening),
                float(weight_decay), bool(nesterov), bool(first_step))
    return param


def adam_step(param: FloatArray, grad: ArrayLike, exp_avg: FloatArray, exp_avg_sq: FloatArray,
              max_exp_avg_sq: FloatArray | None = None, *, step: int, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0, amsgrad: bool = False) -> FloatArray:
    """One in-place Adam update with ``torch.optim.Adam`` semantics.

    ``g = grad + weight_decay * param`` (L2, added to the gradient);
    ``m = beta1 m + (1 - beta1) g``; ``v = beta2 v + (1 - beta2) g^2``;
    ``param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)``,
    with ``v`` replaced by its running maximum under ``amsgrad``.

    Parameters
    ----------
    param : ndarray
        C-contiguous, writeable; updated in place.
    grad : array_like
        Same shape as ``param``.
    exp_avg, exp_avg_sq : ndarray
        First and second moment estimates, updated in place.
    max_exp_avg_sq : ndarray, optional
        The running maximum of ``exp_avg_sq``, updated in place; required with
        ``amsgrad=True`` (start it at zeros).
    step : int
        The step number, starting at 1 (for the bias corrections).
    lr, eps, weight_decay : float
    betas : (float, float)
    amsgrad : bool, default False

    Returns
    -------
    param : ndarray
    """
    return _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, betas, eps,
                 weight_decay, amsgrad, decoupled=False)


def adamw_step(param: FloatArray, grad: ArrayLike, exp_avg: FloatArray, exp_avg_sq: FloatArray,
               max_exp_avg_sq: FloatArray | None = None, *, step: int, lr: float = 1e-3,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 1e-2, amsgrad: bool = False) -> FloatArray:
    """One in-place AdamW update with ``torch.optim.AdamW`` semantics.

    Decoupled weight decay: ``param *= 1 - lr * weight_decay`` first, then the
    Adam update of :func:`adam_step` without the L2 term. The parameters are
    those of :func:`adam_step`; ``weight_decay`` defaults to torch's 0.01.

    Returns
    -------
    param : ndarray
    """
    return _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, betas, eps,
                 weight_decay, amsgrad, decoupled=True)


def _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, betas, eps, weight_decay,
          amsgrad, decoupled):
    param, grad = _param_and_grad(param, grad)
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError("max_exp_avg_sq is required when amsgrad=True")
    _check_states(param, grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                  max_exp_avg_sq=max_exp_avg_sq if amsgrad else None)
    step = _check_step(step)
    beta1, beta2 = _check_betas(betas)
    _adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None, step,
                 check_nonneg_float("lr", lr), beta1, beta2, check_nonneg_float("eps", eps),
                 check_nonneg_float("weight_decay", weight_decay), decoupled)
    return param


def rmsprop_step(param: FloatArray, grad: ArrayLike, square_avg: FloatArray,
                 grad_avg: FloatArray | None = None, momentum_buffer: FloatArray | None = None, *,
                 lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> FloatArray:
    """One in-place RMSprop update with ``torch.optim.RMSprop`` semantics.

    ``g = grad + weight_decay * param``; ``s = alpha s + (1 - alpha) g^2``;
    ``avg = sqrt(s) + eps``, or, ``centered``, ``a += (1 - alpha) (g - a)`` and
    ``avg = sqrt(s - a^2) + eps``; then ``buf = momentum buf + g / avg`` and
    ``param -= lr buf`` when ``momentum > 0``, else ``param -= lr g / avg``.

    Parameters
    ----------
    param : ndarray
        C-contiguous, writeable; updated in place.
    grad : array_like
        Same shape as ``param``.
    square_avg : ndarray
        The running mean of ``g^2`` (start it at zeros), updated in place.
    grad_avg : ndarray, optional
        The running mean of ``g``; required when ``centered``.
    momentum_buffer : ndarray, optional
        Required when ``momentum > 0`` (start it at zeros).
    lr, alpha, eps, weight_decay, momentum : float
    centered : bool, default False

    Returns
    -------
    param : ndarray
    """
    param, grad = _param_and_grad(param, grad)
    momentum = check_nonneg_float("momentum", momentum)
    if centered and grad_avg is None:
        raise ValueError("grad_avg is required when centered=True")
    if momentum > 0 and momentum_buffer is None:
        raise ValueError("momentum_buffer is required when momentum > 0")
    grad_avg = grad_avg if centered else None
    momentum_buffer = momentum_buffer if momentum > 0 else None
    _check_states(param, grad, square_avg=square_avg, grad_avg=grad_avg,
                  momentum_buffer=momentum_buffer)
    _rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer,
                    check_nonneg_float("lr", lr), check_nonneg_float("alpha", alpha),
                    check_nonneg_float("eps", eps),
                    check_nonneg_float("weight_decay", weight_decay), momentum)
    return param
