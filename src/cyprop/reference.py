"""Plain-NumPy reference implementation of :mod:`cyprop.functional`.

Same signatures, same return values, written the way a NumPy user would
(``x @ W + b``, ``np.maximum``, softmax with max-subtraction), with no
attempt at speed. The tests check the Cython kernels against it, and the
benchmarks use it as the NumPy peer. It does no input validation beyond what
NumPy itself does.
"""
import math

import numpy as np

__all__ = [
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "softmax", "softmax_cross_entropy", "mse_loss",
    "sgd_step", "adam_step", "adamw_step", "rmsprop_step",
]


def _store(result, out):
    if out is None:
        return result
    out[...] = result
    return out


def _sigmoid(x):
    # 1/(1+exp(-x)) overflows exp for x < -88 (float32); split by sign instead
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)


_ACT = {
    None: lambda a: a,
    "identity": lambda a: a,
    "relu": lambda a: np.maximum(a, 0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}
_DACT = {  # derivative in terms of the forward output y
    None: lambda dy, y: dy,
    "identity": lambda dy, y: dy,
    "relu": lambda dy, y: dy * (y > 0),
    "sigmoid": lambda dy, y: dy * y * (1 - y),
    "tanh": lambda dy, y: dy * (1 - y * y),
}


def linear_forward(x, W, b=None, *, activation=None, out=None):
    """Reference ``activation(x @ W + b)``; see :func:`cyprop.functional.linear_forward`."""
    a = x @ W
    if b is not None:
        a = a + b
    return _store(_ACT[activation](a), out)


def linear_backward(dy, x, W, *, y=None, activation=None, dx=None, dW=None, db=None,
                    need_dx=True, need_db=True, overwrite_dy=False):
    """Reference gradients; see :func:`cyprop.functional.linear_backward`."""
    delta = _DACT[activation](dy, y)
    dW = _store(x.T @ delta, dW)
    dx = _store(delta @ W.T, dx) if need_dx else None
    db = _store(delta.sum(axis=0), db) if need_db else None
    return dx, dW, db


def relu_forward(x, *, out=None):
    """Reference ReLU."""
    return _store(np.maximum(x, 0), out)


def relu_backward(dy, y, *, out=None):
    """Reference ReLU gradient ``dy * (y > 0)``."""
    return _store(dy * (y > 0), out)


def sigmoid_forward(x, *, out=None):
    """Reference sigmoid."""
    return _store(_sigmoid(x), out)


def sigmoid_backward(dy, y, *, out=None):
    """Reference sigmoid gradient ``dy * y * (1 - y)``."""
    return _store(dy * y * (1 - y), out)


def tanh_forward(x, *, out=None):
    """Reference tanh."""
    return _store(np.tanh(x), out)


def tanh_backward(dy, y, *, out=None):
    """Reference tanh gradient ``dy * (1 - y**2)``."""
    return _store(dy * (1 - y * y), out)


def softmax(x, *, out=None):
    """Reference softmax along the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return _store(e / e.sum(axis=-1, keepdims=True), out)


def softmax_cross_entropy(logits, target, *, reduction="mean", grad_out=None):
    """Reference softmax cross-entropy; see :func:`cyprop.functional.softmax_cross_entropy`."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    logp = shifted - lse
    p = np.exp(logp)
    target = np.asarray(target)
    if target.ndim == 1:
        t = target.astype(np.intp)
        loss_rows = -logp[np.arange(n), t]
        grad = p.copy()
        grad[np.arange(n), t] -= 1
    else:
        loss_rows = -(target * logp).sum(axis=1)
        grad = p * target.sum(axis=1, keepdims=True) - target
    if reduction == "mean":
        loss = loss_rows.sum() / n if n else math.nan
        grad = grad / max(n, 1)
    else:
        loss = loss_rows.sum()
    return float(loss), _store(grad.astype(logits.dtype, copy=False), grad_out)


def mse_loss(pred, target, *, reduction="mean", grad_out=None):
    """Reference mean squared error; see :func:`cyprop.functional.mse_loss`."""
    diff = pred - target
    if reduction == "mean":
        n = diff.size
        loss = float((diff * diff).sum() / n) if n else math.nan
        grad = 2 * diff / max(n, 1)
    else:
        loss = float((diff * diff).sum())
        grad = 2 * diff
    return loss, _store(grad.astype(pred.dtype, copy=False), grad_out)


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, first_step=True):
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


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3,
              betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    """Reference Adam update (``torch.optim.Adam``), in place."""
    g = grad + weight_decay * param if weight_decay else grad
    return _adam(param, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, betas, eps, amsgrad)


def adamw_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3,
               betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
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


def rmsprop_step(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr=1e-2,
                 alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
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
