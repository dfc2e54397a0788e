"""Functional API: validate, allocate, dispatch to the Cython kernels.

Every function takes float32 or float64 arrays of one dtype (the rules are in
the README, "Input conversion"), returns arrays of that dtype, and accepts
preallocated outputs (``out=``, ``grad_out=``, ``dx=``...) that are written,
never reallocated. Kernels run without the GIL on
:func:`cyprop.get_num_threads` threads; results do not depend on that number.

The plain NumPy twin of every function, with the same signature, is
:mod:`cyprop.reference`.
"""
import math

import numpy as np

from . import _activations, _linear, _mse, _optim, _softmax_ce
from . import _threads
from ._validation import (
    activation_code,
    as_float_array,
    call_dtype,
    check_blas_dims,
    check_no_overlap,
    check_out,
    check_reduction,
)

__all__ = [
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "softmax", "softmax_cross_entropy", "mse_loss",
    "sgd_step", "adam_step",
]

# For cyprop.nn: runs a whole chain of Linear/activation layers in one call
# (it checks every array it is given; see pyx/_linear.pyx).
_ChainPlan = _linear.ChainPlan

_EMPTY = {np.dtype(np.float32): np.zeros(1, np.float32), np.dtype(np.float64): np.zeros(1, np.float64)}


_n_threads = _threads.get_num_threads


def _output(name, out, shape, dtype, inputs=(), alias_ok=()):
    """``out`` checked (or a new array) of ``shape``/``dtype``."""
    if out is None:
        return np.empty(shape, dtype)
    check_out(name, out, shape, dtype)
    check_no_overlap(name, out, inputs, alias_ok)
    return out


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------

def linear_forward(x, W, b=None, *, activation=None, out=None):
    """Fused linear layer: ``y = activation(x @ W + b)``.

    Parameters
    ----------
    x : array_like, shape (N, in)
        Input batch.
    W : array_like, shape (in, out)
        Weights.
    b : array_like, shape (out,), optional
        Bias; none if omitted.
    activation : {None, 'relu', 'sigmoid', 'tanh'}, optional
        Applied to the pre-activation in the same pass as the bias.
    out : ndarray, shape (N, out), optional
        Written with the result; must not overlap ``x``, ``W`` or ``b``.

    Returns
    -------
    y : ndarray, shape (N, out)
    """
    act = activation_code(activation)
    dtype = call_dtype(("x", x), ("W", W), ("b", b), ("out", out))
    x = as_float_array("x", x, dtype, 2)
    W = as_float_array("W", W, dtype, 2)
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features (shape {x.shape}) but W expects "
                         f"{W.shape[0]} (shape {W.shape})")
    n, n_out = x.shape[0], W.shape[1]
    check_blas_dims(n, x.shape[1], n_out)
    if b is not None:
        b = as_float_array("b", b, dtype, 1)
        if b.shape != (n_out,):
            raise ValueError(f"b must have shape ({n_out},) to match W {W.shape}, got {b.shape}")
    y = _output("out", out, (n, n_out), dtype, (("x", x), ("W", W), ("b", b)))
    _linear.linear_forward(x, W, _EMPTY[dtype] if b is None else b, b is not None,
                           y, act, _n_threads())
    return y


def linear_backward(dy, x, W, *, y=None, activation=None, dx=None, dW=None, db=None,
                    need_dx=True, need_db=True, overwrite_dy=False):
    """Gradients of ``y = activation(x @ W + b)``.

    With ``delta = dy * activation'`` (expressed in the forward output ``y``):
    ``dx = delta @ W.T``, ``dW = x.T @ delta``, ``db = delta.sum(axis=0)``.

    Parameters
    ----------
    dy : array_like, shape (N, out)
        Gradient of the loss with respect to ``y``.
    x : array_like, shape (N, in)
        The forward input.
    W : array_like, shape (in, out)
        The weights.
    y : array_like, shape (N, out), optional
        The forward output; required when ``activation`` is not None.
    activation : {None, 'relu', 'sigmoid', 'tanh'}, optional
        The activation the forward pass applied.
    dx, dW, db : ndarray, optional
        Output arrays of shapes (N, in), (in, out), (out,).
    need_dx, need_db : bool, default True
        Skip computing ``dx`` (one GEMM) or ``db``; the skipped value is
        returned as None.
    overwrite_dy : bool, default False
        Allow ``delta`` to be written into ``dy`` (when ``dy`` is a
        C-contiguous array of the call's dtype) instead of a new array.

    Returns
    -------
    dx : ndarray (N, in) or None
    dW : ndarray (in, out)
    db : ndarray (out,) or None
    """
    act = activation_code(activation)
    dtype = call_dtype(("dy", dy), ("x", x), ("W", W), ("y", y), ("dx", dx), ("dW", dW),
                       ("db", db))
    dy = as_float_array("dy", dy, dtype, 2)
    x = as_float_array("x", x, dtype, 2)
    W = as_float_array("W", W, dtype, 2)
    n, n_in = x.shape
    n_out = W.shape[1]
    if W.shape[0] != n_in:
        raise ValueError(f"x has {n_in} features (shape {x.shape}) but W expects "
                         f"{W.shape[0]} (shape {W.shape})")
    if dy.shape != (n, n_out):
        raise ValueError(f"dy must have shape {(n, n_out)} (N from x, out from W), got {dy.shape}")
    check_blas_dims(n, n_in, n_out)
    if act and y is None:
        raise ValueError(f"y (the forward output) is required when activation={activation!r}")
    if y is not None:  # checked whenever given, used only with an activation
        y = as_float_array("y", y, dtype, 2)
        if y.shape != dy.shape:
            raise ValueError(f"y must have the shape of dy {dy.shape}, got {y.shape}")
    if act:
        writable_dy = overwrite_dy and dy.flags.writeable
        delta = dy if writable_dy else np.empty((n, n_out), dtype)
    else:
        y = delta = dy  # unused by the kernel
    inputs = (("dy", dy), ("x", x), ("W", W), ("y", y if act else None))
    dW = _output("dW", dW, (n_in, n_out), dtype, inputs)
    if need_dx:
        dx = _output("dx", dx, (n, n_in), dtype, inputs + (("dW", dW),))
        dx_arr = dx
    else:
        dx = None
        dx_arr = dW  # unused by the kernel
    if need_db:
        db = _output("db", db, (n_out,), dtype, inputs + (("dW", dW), ("dx", dx)))
        db_arr = db
    else:
        db = None
        db_arr = _EMPTY[dtype]
    if _linear.linear_backward(dy, x, W, y, act, delta, dx_arr, bool(need_dx), dW, db_arr,
                               bool(need_db), _n_threads()) != 0:
        raise MemoryError("linear_backward: could not allocate the bias-gradient workspace")
    return dx, dW, db


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

def _activation_forward(act, x, out):
    dtype = call_dtype(("x", x), ("out", out))
    x = as_float_array("x", x, dtype)
    y = _output("out", out, x.shape, dtype, (("x", x),), alias_ok=("x",))
    _activations.activation_forward(x, y, act, _n_threads())
    return y


def _activation_backward(act, dy, y, out):
    dtype = call_dtype(("dy", dy), ("y", y), ("out", out))
    dy = as_float_array("dy", dy, dtype)
    y = as_float_array("y", y, dtype)
    if dy.shape != y.shape:
        raise ValueError(f"dy and y must have the same shape, got {dy.shape} and {y.shape}")
    dx = _output("out", out, dy.shape, dtype, (("dy", dy), ("y", y)), alias_ok=("dy", "y"))
    _activations.activation_backward(dy, y, dx, act, _n_threads())
    return dx


def relu_forward(x, *, out=None):
    """ReLU, ``max(x, 0)``, element-wise (NaN propagates).

    Parameters
    ----------
    x : array_like
        Any shape.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself (in place).

    Returns
    -------
    y : ndarray
    """
    return _activation_forward(1, x, out)


def relu_backward(dy, y, *, out=None):
    """ReLU gradient from the forward output: ``dx = dy * (y > 0)``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the output.
    y : array_like
        The forward output, same shape as ``dy``.
    out : ndarray, optional
        May be ``dy`` or ``y`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _activation_backward(1, dy, y, out)


def sigmoid_forward(x, *, out=None):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, stable for every finite ``x``.

    Parameters
    ----------
    x : array_like
        Any shape.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _activation_forward(2, x, out)


def sigmoid_backward(dy, y, *, out=None):
    """Sigmoid gradient from the forward output: ``dx = dy * y * (1 - y)``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the output.
    y : array_like
        The forward output, same shape as ``dy``.
    out : ndarray, optional
        May be ``dy`` or ``y`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _activation_backward(2, dy, y, out)


def tanh_forward(x, *, out=None):
    """Hyperbolic tangent, element-wise.

    Parameters
    ----------
    x : array_like
        Any shape.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
    """
    return _activation_forward(3, x, out)


def tanh_backward(dy, y, *, out=None):
    """Tanh gradient from the forward output: ``dx = dy * (1 - y**2)``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the output.
    y : array_like
        The forward output, same shape as ``dy``.
    out : ndarray, optional
        May be ``dy`` or ``y`` itself.

    Returns
    -------
    dx : ndarray
    """
    return _activation_backward(3, dy, y, out)


# ---------------------------------------------------------------------------
# Softmax and losses
# ---------------------------------------------------------------------------

def softmax(x, *, out=None):
    """Softmax along the last axis, with max-subtraction.

    Parameters
    ----------
    x : array_like, shape (N, C) or (C,)
        Logits.
    out : ndarray, optional
        Same shape and dtype as ``x``; may be ``x`` itself.

    Returns
    -------
    p : ndarray
        Rows sum to 1.
    """
    dtype = call_dtype(("x", x), ("out", out))
    x = as_float_array("x", x, dtype, (1, 2))
    p = _output("out", out, x.shape, dtype, (("x", x),), alias_ok=("x",))
    x2 = x if x.ndim == 2 else x.reshape(1, -1)
    _softmax_ce.softmax(x2, p, _n_threads())
    return p


def _reduce(total, n, reduction):
    if reduction == "sum":
        return float(total)
    return float(total) / n if n else math.nan


def softmax_cross_entropy(logits, target, *, reduction="mean", grad_out=None):
    """Fused softmax + cross-entropy loss and its gradient w.r.t. the logits.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        Unnormalised scores.
    target : array_like, shape (N,) or (N, C)
        Integer class indices in ``[0, C)`` (any integer dtype, or floats
        with integral values), or target probabilities of the logits' dtype
        (rows need not sum to 1: the gradient is ``p * sum(t) - t``).
    reduction : {'mean', 'sum'}
        Mean over the N rows (PyTorch's default) or sum. The mean of an
        empty batch is NaN, as in NumPy and PyTorch.
    grad_out : ndarray, shape (N, C), optional
        Written with d loss / d logits; may be ``logits`` itself.

    Returns
    -------
    loss : float
    dlogits : ndarray, shape (N, C)

    Raises
    ------
    ValueError
        Labels outside ``[0, C)`` or not integral, or mismatched shapes.
    """
    check_reduction(reduction)
    t_is_array = isinstance(target, np.ndarray)
    t_float = t_is_array and target.dtype.kind == "f" and target.ndim == 2
    dtype = call_dtype(("logits", logits), *((("target", target),) if t_float else ()),
                       ("grad_out", grad_out))
    z = as_float_array("logits", logits, dtype, 2)
    n, n_classes = z.shape
    target = _as_target(target, z, dtype)
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    inputs = (("logits", z), ("target", target))
    dz = _output("grad_out", grad_out, z.shape, dtype, inputs, alias_ok=("logits",))
    if target.ndim == 1:
        total, n_bad = _softmax_ce.softmax_ce_index(z, target, dz, scale, _n_threads())
        if n_bad:
            bad = target[(target < 0) | (target >= n_classes)]
            raise ValueError(f"target has {n_bad} label(s) outside [0, {n_classes}), "
                             f"e.g. {int(bad[0])}")
    else:
        total = _softmax_ce.softmax_ce_proba(z, target, dz, scale, _n_threads())
    return _reduce(total, n, reduction), dz


def _softmax_ce_into(logits, target, dlogits, reduction):
    """``softmax_cross_entropy`` for cyprop.nn's hot path, or None to take the full one.

    For C-contiguous float ``logits`` (N, C), intp ``target`` (N,) and a
    workspace ``dlogits`` of the logits' dtype and shape that is ``logits``
    itself or shares no memory with it (the caller's guarantee). The kernel
    checks the arrays in C and declines (None) anything else, and so does
    this function for labels out of range: the full path then raises.
    """
    n = logits.shape[0] if type(logits) is np.ndarray else 0
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    result = _softmax_ce.softmax_ce_index(logits, target, dlogits, scale, _n_threads(), False)
    if result is None or result[1] or not n:
        return None
    return _reduce(result[0], n, reduction), dlogits


def _as_target(target, z, dtype):
    """Class indices as intp (N,), or probabilities (N, C) of ``dtype``."""
    n, n_classes = z.shape
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise ValueError(f"target must have shape ({n},) or {z.shape}, got {t.shape}")
        if t.dtype.kind in "iu":
            return np.ascontiguousarray(t, dtype=np.intp)
        if t.dtype.kind == "f":
            ti = t.astype(np.intp)
            if not np.array_equal(ti, t):
                raise ValueError("target class indices must be integral; got non-integer values"
                                 " (pass probabilities as an (N, C) array)")
            return ti
        raise TypeError(f"target class indices must be integers, got dtype {t.dtype}")
    if t.ndim == 2:
        if t.shape != z.shape:
            raise ValueError(f"target probabilities must have the logits' shape {z.shape}, "
                             f"got {t.shape}")
        if t.dtype.kind != "f" and isinstance(target, np.ndarray):
            raise TypeError(f"target probabilities must be float, got dtype {t.dtype}")
        return as_float_array("target", t if t.dtype == dtype else t.astype(dtype), dtype, 2)
    raise ValueError(f"target must be 1-D class indices or 2-D probabilities, got shape {t.shape}")


def mse_loss(pred, target, *, reduction="mean", grad_out=None):
    """Mean squared error and its gradient w.r.t. ``pred``.

    ``loss = mean((pred - target)**2)`` over all elements (PyTorch's
    convention) and ``dpred = 2 (pred - target) / pred.size``; with
    ``reduction='sum'`` neither is divided.

    Parameters
    ----------
    pred, target : array_like
        Same shape (no broadcasting) and dtype.
    reduction : {'mean', 'sum'}
    grad_out : ndarray, optional
        Written with d loss / d pred; may be ``pred`` or ``target`` itself.

    Returns
    -------
    loss : float
    dpred : ndarray
    """
    check_reduction(reduction)
    dtype = call_dtype(("pred", pred), ("target", target), ("grad_out", grad_out))
    pred = as_float_array("pred", pred, dtype)
    target = as_float_array("target", target, dtype)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} "
                         f"and {target.shape}")
    n = pred.size
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    g = _output("grad_out", grad_out, pred.shape, dtype, (("pred", pred), ("target", target)),
                alias_ok=("pred", "target"))
    total = _mse.mse(pred, target, g, True, scale, _n_threads())
    return _reduce(total, n, reduction), g


# ---------------------------------------------------------------------------
# Optimizer updates (in place)
# ---------------------------------------------------------------------------

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
