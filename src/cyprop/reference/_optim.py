"""Reference optimizer updates (torch.optim's formulas), in place."""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .._typing import FloatArray


def sgd_step(param: FloatArray, grad: ArrayLike, momentum_buffer: FloatArray | None = None, *,
             lr: float, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False, first_step: bool = True) -> FloatArray:
    """Reference SGD update (``torch.optim.SGD``), in place."""
    g = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if first_step:
            momentum_buffer[...] = g
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * g
        g = g + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * g
    return param


def adam_step(param: FloatArray, grad: ArrayLike, exp_avg: FloatArray, exp_avg_sq: FloatArray,
              max_exp_avg_sq: FloatArray | None = None, *, step: int, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0, amsgrad: bool = False) -> FloatArray:
    """Reference Adam update (``torch.optim.Adam``), in place."""
    g = grad + weight_decay * param if weight_decay else grad
    return _adam(param, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, betas, eps, amsgrad)


def adamw_step(param: FloatArray, grad: ArrayLike, exp_avg: FloatArray, exp_avg_sq: FloatArray,
               max_exp_avg_sq: FloatArray | None = None, *, step: int, lr: float = 1e-3,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 1e-2, amsgrad: bool = False) -> FloatArray:
    """Reference AdamW update (``torch.optim.AdamW``: decoupled decay), in place."""
    param *= 1 - lr * weight_decay
    return _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, betas, eps, amsgrad)


def _adam(param, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, betas, eps, amsgrad):
    beta1, beta2 = betas
    exp_avg *= beta1
    exp_avg += (1 - beta1) * g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    v = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    step_size = lr / (1 - beta1 ** step)
    denom = np.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps
    param -= step_size * exp_avg / denom
    return param


def rmsprop_step(param: FloatArray, grad: ArrayLike, square_avg: FloatArray,
                 grad_avg: FloatArray | None = None, momentum_buffer: FloatArray | None = None, *,
                 lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> FloatArray:
    """Reference RMSprop update (``torch.optim.RMSprop``), in place."""
    g = grad + weight_decay * param if weight_decay else grad
    square_avg *= alpha
    square_avg += (1 - alpha) * g * g
    if centered:
        grad_avg += (1 - alpha) * (g - grad_avg)
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += g / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * (g / avg)
    return param
