"""Optimizer updates, in place, with PyTorch's semantics."""
import numpy as np

from .. import _optim
from .._validation import as_float_array, call_dtype, check_no_overlap, check_out
from ._common import _n_threads


def _check_state(name, a, like):
    check_out(name, a, like.shape, like.dtype)
    check_no_overlap(name, a, (("param", like),))
    return a


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


def _adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    _optim.adam_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
                     1 - beta1 ** step, 1 - beta2 ** step, _n_threads())


def _add_l2(W, dW, coef):
    """``dW += coef * W`` and return ``sum(W**2)`` (float64), in one pass.

    The L2 penalty's gradient and value, for arrays cyprop owns (the kernel
    checks dtype, order, size and writeability in C).
    """
    return _optim.sq_norm_axpy(W, dW, coef, _n_threads())


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, first_step=True):
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
        _check_state("momentum_buffer", momentum_buffer, param)
    else:
        momentum_buffer = None  # unused by the kernel
    _sgd_update(param, grad, momentum_buffer, float(lr), float(momentum), float(dampening),
                float(weight_decay), bool(nesterov), bool(first_step))
    return param


def adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, betas=(0.9, 0.999),
              eps=1e-8, weight_decay=0.0):
    """One in-place Adam update with ``torch.optim.Adam`` semantics.

    Parameters
    ----------
    param : ndarray
        C-contiguous, writeable; updated in place.
    grad : array_like
        Same shape as ``param``.
    exp_avg, exp_avg_sq : ndarray
        First and second moment estimates, updated in place.
    step : int
        The step number, starting at 1 (for the bias corrections).
    lr, eps, weight_decay : float
    betas : (float, float)

    Returns
    -------
    param : ndarray
    """
    param, grad = _param_and_grad(param, grad)
    _check_state("exp_avg", exp_avg, param)
    _check_state("exp_avg_sq", exp_avg_sq, param)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    beta1, beta2 = betas
    _adam_update(param, grad, exp_avg, exp_avg_sq, step, float(lr), float(beta1), float(beta2),
                 float(eps), float(weight_decay))
    return param
