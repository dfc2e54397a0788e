"""The fused linear layer, ``activation(x @ W + b)``, and its gradients."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .. import _activations, _dropout, _linear, _norm
from .._typing import FloatArray
from .._validation import (ACTIVATION_PARAMS, FIRST_PRE_ACTIVATION, activation_code,
                           as_float_array, call_dtype, check_blas_dims)
from ._common import _EMPTY, _n_threads, _output

# For cyprop.nn: runs a whole chain of Linear/activation layers in one call
# (it checks every array it is given; see pyx/_linear.pyx).
_ChainPlan = _linear.ChainPlan
# ...and the steps of the other kernel modules a plan can hold (pyx/_step.pxd)
_BatchNormStep, _LayerNormStep = _norm.BatchNormStep, _norm.LayerNormStep
_DropoutStep, _Activation2Step = _dropout.DropoutStep, _activations.Activation2Step


def linear_forward(x: ArrayLike, W: ArrayLike, b: ArrayLike | None = None, *,
                   activation: str | None = None, out: FloatArray | None = None,
                   pre_out: FloatArray | None = None) -> FloatArray:
    """Fused linear layer: ``y = activation(x @ W + b)``.

    ReLU, sigmoid and tanh are applied in the GEMM's epilogue, in the same
    pass as the bias. The others (leaky_relu, elu, gelu, gelu_tanh, silu,
    softplus, with torch's default parameters) need the pre-activation
    ``z = x @ W + b`` for their backward: it is written to ``pre_out`` (pass
    it to :func:`linear_backward` as ``pre=``) and the activation runs as a
    second pass over it.

    Parameters
    ----------
    x : array_like, shape (N, in)
        Input batch.
    W : array_like, shape (in, out)
        Weights.
    b : array_like, shape (out,), optional
        Bias; none if omitted.
    activation : {None, 'relu', 'sigmoid', 'tanh', 'leaky_relu', 'elu', 'gelu', 'gelu_tanh', 'silu', 'softplus'}, optional
    out : ndarray, shape (N, out), optional
        Written with the result; must not overlap ``x``, ``W`` or ``b``.
    pre_out : ndarray, shape (N, out), optional
        For the activations from leaky_relu on: written with the
        pre-activation (a new array when omitted); must not overlap ``out``.
        Ignored for None, relu, sigmoid and tanh.

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
    bias = _EMPTY[dtype] if b is None else b
    if act < FIRST_PRE_ACTIVATION:
        _linear.linear_forward(x, W, bias, b is not None, y, act, _n_threads())
        return y
    z = _output("pre_out", pre_out, (n, n_out), dtype, (("x", x), ("W", W), ("b", b), ("out", y)))
    _linear.linear_forward(x, W, bias, b is not None, z, 0, _n_threads())
    _activations.activation2_forward(z, y, act, *ACTIVATION_PARAMS.get(act, (0.0, 0.0)),
                                     _n_threads())
    return y


def linear_backward(dy: ArrayLike, x: ArrayLike, W: ArrayLike, *, y: ArrayLike | None = None,
                    activation: str | None = None, dx: FloatArray | None = None,
                    dW: FloatArray | None = None, db: FloatArray | None = None,
                    need_dx: bool = True, need_db: bool = True, overwrite_dy: bool = False,
                    pre: ArrayLike | None = None
) -> tuple[FloatArray | None, FloatArray, FloatArray | None]:
    """Gradients of ``y = activation(x @ W + b)``.

    With ``delta = dy * activation'`` (in the forward output ``y`` for relu,
    sigmoid and tanh; in the pre-activation ``pre`` for the others):
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
        The forward output; required for relu, sigmoid and tanh.
    activation : {None, 'relu', 'sigmoid', 'tanh', 'leaky_relu', 'elu', 'gelu', 'gelu_tanh', 'silu', 'softplus'}, optional
        The activation the forward pass applied.
    pre : array_like, shape (N, out), optional
        The pre-activation (``linear_forward``'s ``pre_out``); required for
        leaky_relu, elu, gelu, gelu_tanh, silu and softplus.
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
    if act >= FIRST_PRE_ACTIVATION:
        if pre is None:
            raise ValueError(f"pre (the forward pre-activation) is required when "
                             f"activation={activation!r}")
        dtype_pre = call_dtype(("dy", dy), ("pre", pre))
        pre = as_float_array("pre", pre, dtype_pre, 2)
        if pre.shape != dy.shape:
            raise ValueError(f"pre must have the shape of dy {dy.shape}, got {pre.shape}")
        writable_dy = overwrite_dy and dy.flags.writeable
        delta = dy if writable_dy else np.empty((n, n_out), dtype)
        _activations.activation2_backward(dy, pre, delta, act,
                                          *ACTIVATION_PARAMS.get(act, (0.0, 0.0)), _n_threads())
        return linear_backward(delta, x, W, dx=dx, dW=dW, db=db, need_dx=need_dx,
                               need_db=need_db)
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
