"""Exact Hessian-vector and Gauss-Newton-vector products of a model's loss.

``hvp(model, loss_fn, x, target, v)`` is H v, H the Hessian of
``loss_fn(model(x), target)`` in the model's parameters, by Pearlmutter's
R-operator (forward mode over reverse: R{f} = d/dr f(theta + r v) at r = 0):

* forward, per Linear layer z = a W + b, y = act(z), with R{a} from below:
  R{z} = R{a} W + a V_W + V_b,  R{y} = act'(z) R{z};
* the loss: g = dL/dout and R{g} = H_loss R{out};
* backward, with gy = dL/dy and R{gy}:
  delta = gy act'(z),  R{delta} = R{gy} act'(z) + gy act''(z) R{z},
  (H v)_W = R{dW} = R{a}^T delta + a^T R{delta},  (H v)_b = sum_rows R{delta},
  R{g_a} = R{delta} W^T + delta V_W^T,  g_a = delta W^T.

``ggnvp`` is the Gauss-Newton product G v = J^T H_loss J v (positive
semi-definite for the convex losses here): the same R-forward (J v =
R{out}), then the plain backward of H_loss J v (no act'' and no V terms).

The matrix products run in cyprop's own fixed GEMM blocks and the
element-wise R-ops in ``pyx/_rop.pyx``, so results are bit-identical for any
thread count. Cost: the forward and R-forward take three products per layer
where a training step's forward takes one, the backward five where a step's
takes two: at most about 8/3 of a forward + backward (measured in the README).

Supported: ``nn.Sequential`` of ``Linear`` (any fused activation), the
activation layers, ``BatchNorm1d`` (batch statistics in training mode, the
running ones in eval mode; the running statistics are not touched),
``LayerNorm``, ``Dropout`` (in training mode with the mask of the layer's
current ``step``, the one its next forward draws); losses
``SoftmaxCrossEntropy`` (no ``weight``/``ignore_index``; ``label_smoothing``
and probability targets allowed), ``MSELoss``, ``BCEWithLogitsLoss`` (no
``pos_weight``), ``HuberLoss``, ``L1Loss``. Another layer type raises
TypeError. The normalizations' R-ops are NumPy expressions in float64
(``_norm_forward``/``_norm_backward``), the rest Cython kernels.
"""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import functional as F
from ._typing import FloatArray
from ._validation import ACTIVATION_PARAMS, FLOAT_DTYPES
from .nn import (BatchNorm1d, BCEWithLogitsLoss, Dropout, HuberLoss, L1Loss, LayerNorm, Linear,
                 MSELoss, ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy, Tanh)
from .nn._activation import _PreActivation
from .nn._loss import _Loss
from .nn._module import _cached, _in_use

__all__ = ["hvp", "ggnvp"]

_LINEAR_PIECES = (0, 1, 4)   # identity, ReLU, leaky ReLU: act'' = 0
_SUPPORTED = ("Linear (any activation), ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU, SiLU, "
              "Softplus, BatchNorm1d, LayerNorm, Dropout")


def _ops(model):
    """The model's layers as (kind, layer, activation code, a, b) R-op steps; identities dropped."""
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"model must be a cyprop.nn.Sequential, got {type(model).__name__}")
    ops = []
    for layer in layers:
        if isinstance(layer, Linear):
            ops.append(("linear", layer, layer._code,
                        *ACTIVATION_PARAMS.get(layer._code, (0.0, 0.0))))
        elif type(layer) in (ReLU, Sigmoid, Tanh):
            ops.append(("act", layer, layer._code, 0.0, 0.0))
        elif isinstance(layer, _PreActivation):
            ops.append(("act", layer, *F._activation2_args(layer._name, **layer._kwargs())))
        elif isinstance(layer, (BatchNorm1d, LayerNorm)):
            ops.append(("norm", layer, 0, 0.0, 0.0))
        elif isinstance(layer, Dropout):
            if layer.training and layer.p > 0:
                ops.append(("dropout", layer, 0, 0.0, 0.0))
            # else: the identity
        else:
            raise TypeError(f"{type(layer).__name__} has no R-op: hvp/ggnvp support {_SUPPORTED}")
    if not model.parameters():
        raise ValueError("the model has no parameters")
    return ops


def _split_v(model, v):
    """v as one array per parameter (model dtype), and whether it came as a list."""
    params = model.parameters()
    dtype = np.dtype(model.dtype)

    def as_float(name, a):
        a = np.asarray(a)
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must hold float32 or float64 values, got {a.dtype}")
        return a

    if isinstance(v, (list, tuple)):
        if len(v) != len(params):
            raise ValueError(f"v has {len(v)} arrays, the model {len(params)} parameters")
        parts = []
        for i, (a, p) in enumerate(zip(v, params)):
            a = as_float(f"v[{i}]", a)
            if a.shape != p.value.shape:
                raise ValueError(f"v[{i}] has shape {a.shape}, parameter {i} ({p.name}) "
                                 f"{p.value.shape}")
            parts.append(np.ascontiguousarray(a, dtype))
        return parts, True
    flat = as_float("v", v)
    size = sum(p.value.size for p in params)
    if flat.ndim != 1 or flat.size != size:
        raise ValueError(f"v must be a flat vector of {size} values (the model's parameters, "
                         f"in model.parameters() order) or a list of arrays shaped like them; "
                         f"got shape {flat.shape}")
    flat = np.ascontiguousarray(flat, dtype)
    parts, offset = [], 0
    for p in params:
        parts.append(flat[offset:offset + p.value.size].reshape(p.value.shape))
        offset += p.value.size
    return parts, False


# the point-wise losses' kernel codes (pyx/_rop.pyx, pointwise_loss_rop)
_POINTWISE = {MSELoss: 0, BCEWithLogitsLoss: 1, HuberLoss: 2, L1Loss: 3}


def _pointwise_code(loss_fn):
    """The kernel code of a point-wise loss (subclasses included), or None."""
    return next((code for cls, code in _POINTWISE.items() if isinstance(loss_fn, cls)), None)


def _check_loss(loss_fn):
    if isinstance(loss_fn, SoftmaxCrossEntropy):
        if loss_fn.weight is not None or loss_fn.ignore_index is not None:
            raise TypeError("SoftmaxCrossEntropy with weight or ignore_index has no R-op here")
    elif isinstance(loss_fn, BCEWithLogitsLoss):
        if loss_fn.pos_weight is not None:
            raise TypeError("BCEWithLogitsLoss with pos_weight has no R-op here")
    elif _pointwise_code(loss_fn) is None:
        raise TypeError(f"{type(loss_fn).__name__} has no R-op: hvp/ggnvp support "
                        "SoftmaxCrossEntropy, MSELoss, BCEWithLogitsLoss, HuberLoss, L1Loss")


def _loss_rop(loss_fn, out, target, Rout, Rg):
    """Rg = H_loss Rout at out, after ``loss_fn(out, target)`` was evaluated there."""
    mean = loss_fn.reduction == "mean"
    if isinstance(loss_fn, SoftmaxCrossEntropy):
        n = out.shape[0]
        F._softmax_ce_rop(out, Rout, Rg, np.full(n, 1.0 / n if mean and n else 1.0))
        return
    delta = loss_fn.delta if isinstance(loss_fn, HuberLoss) else 0.0
    t = np.ascontiguousarray(np.broadcast_to(np.asarray(target, dtype=out.dtype), out.shape))
    F._pointwise_loss_rop(_pointwise_code(loss_fn), out, t, Rout, Rg,
                          1.0 / out.size if mean and out.size else 1.0, delta)


class _Workspaces:
    """Arrays an hvp reuses across calls on one model and batch size (no page faults)."""

    def __init__(self):
        self.arrays = {}

    def get(self, key, shape, dtype):
        a = self.arrays.get(key)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.arrays[key] = np.empty(shape, dtype)
        return a


_WORKSPACES = weakref.WeakKeyDictionary()   # model -> {batch size: _Workspaces}


def _workspaces(model, n):
    """The model's workspaces for batch size n (a bounded cache, as the layers' own)."""
    return _cached(_WORKSPACES.setdefault(model, {}), n, _Workspaces)


def _product(model, loss_fn, x, target, v, gauss_newton):
    ops = _ops(model)
    _check_loss(loss_fn)
    V, as_list = _split_v(model, v)
    x = model._input(x)
    width = model._in_features
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"x must have shape (N, {width}), got {x.shape}")
    if x.shape[0] < 2 and any(op[0] == "norm" and isinstance(op[1], BatchNorm1d)
                              and op[1].training for op in ops):
        raise ValueError("BatchNorm1d in training mode needs more than one row")
    x = np.ascontiguousarray(x)
    if not model._call_lock.acquire(False):
        raise _in_use(model)
    try:
        return _run(model, ops, loss_fn, x, target, V, as_list, gauss_newton)
    finally:
        model._call_lock.release()


def _norm_forward(layer, x, Rx, Vg, Vb):
    """BatchNorm1d / LayerNorm and their R-forward, in float64: (y, R{y}, cache).

    x_hat = (x - mu) / s, s = sqrt(var + eps), over the batch (BatchNorm in
    training mode), the features (LayerNorm), or with the running statistics
    (BatchNorm in eval mode); y = gamma x_hat + beta. With the statistics
    from the batch, R{s} = mean(x_hat R{x}) and
    R{x_hat} = (R{x} - mean(R{x}) - x_hat R{s}) / s.
    """
    x = x.astype(np.float64)
    Rx = None if Rx is None else Rx.astype(np.float64)
    batch_stats = isinstance(layer, LayerNorm) or layer.training
    axis = 1 if isinstance(layer, LayerNorm) else 0
    if batch_stats:
        mu = x.mean(axis=axis, keepdims=True)
        s = np.sqrt(((x - mu) ** 2).mean(axis=axis, keepdims=True) + layer.eps)
    else:
        mu = layer.running_mean.astype(np.float64)
        s = np.sqrt(layer.running_var.astype(np.float64) + layer.eps)
    xh = (x - mu) / s
    if Rx is None:
        Rxh, Rs = None, None
    elif batch_stats:
        Rs = (xh * Rx).mean(axis=axis, keepdims=True)
        Rxh = (Rx - Rx.mean(axis=axis, keepdims=True) - xh * Rs) / s
    else:
        Rxh, Rs = Rx / s, None
    affine = layer.gamma is not None
    gamma = layer.gamma.astype(np.float64) if affine else 1.0
    y = gamma * xh + (layer.beta if affine else 0.0)
    Ry = None
    if Rxh is not None or affine:
        Ry = (gamma * Rxh if Rxh is not None else 0.0) + \
            ((Vg * xh + Vb) if affine else 0.0)
        Ry = np.broadcast_to(Ry, xh.shape)
    cache = dict(xh=xh, s=s, Rxh=Rxh, Rs=Rs, gamma=gamma, affine=affine, axis=axis,
                 batch_stats=batch_stats)
    return y, Ry, cache


def _norm_backward(c, g, Rg, Vg, need_dx, gauss_newton):
    """(dx, R{dx}, R{dgamma}, R{dbeta}) of a normalization; see _norm_forward.

    Plain: gxh = gamma g, dx = (gxh - mean(gxh) - x_hat mean(gxh x_hat)) / s
    with the batch statistics (gamma g / s with the running ones). R{} of it
    by the product rule, R{1/s} = -R{s} / s^2. Gauss-Newton: the plain
    backward of Rg alone.
    """
    xh, s, axis, gamma = c["xh"], c["s"], c["axis"], c["gamma"]
    Rg = Rg.astype(np.float64)
    g = None if g is None else g.astype(np.float64)

    def plain(grad):
        gxh = gamma * grad
        if not c["batch_stats"]:
            return gxh / s
        return (gxh - gxh.mean(axis=axis, keepdims=True)
                - xh * (gxh * xh).mean(axis=axis, keepdims=True)) / s

    if gauss_newton:
        Rdgamma = (Rg * xh).sum(axis=0) if c["affine"] else None
        return None, (plain(Rg) if need_dx else None), Rdgamma, Rg.sum(axis=0)
    Rxh = c["Rxh"]
    Rdgamma = None
    if c["affine"]:
        Rdgamma = (Rg * xh).sum(axis=0) + ((g * Rxh).sum(axis=0) if Rxh is not None else 0.0)
    Rdbeta = Rg.sum(axis=0)
    if not need_dx:
        return None, None, Rdgamma, Rdbeta
    dx = plain(g)
    Rgxh = gamma * Rg + (Vg * g if c["affine"] else 0.0)
    if not c["batch_stats"]:
        return dx, Rgxh / s, Rdgamma, Rdbeta
    gxh = gamma * g
    m2 = (gxh * xh).mean(axis=axis, keepdims=True)
    inner = Rgxh - Rgxh.mean(axis=axis, keepdims=True) - xh * (Rgxh * xh).mean(
        axis=axis, keepdims=True)
    if Rxh is not None:
        inner = inner - Rxh * m2 - xh * (gxh * Rxh).mean(axis=axis, keepdims=True)
    Rdx = inner / s - (dx * c["Rs"] / s if c["Rs"] is not None else 0.0)
    return dx, Rdx, Rdgamma, Rdbeta


def _dropout(layer, a):
    """a through the layer's mask of its current step (its next forward's)."""
    return F.dropout_forward(np.ascontiguousarray(a), layer.p, seed=layer.seed, step=layer.step)


def _run(model, ops, loss_fn, x, target, V, as_list, gauss_newton):
    """The two passes. Before the first layer with parameters, R{a} = 0 (None).
    After a Linear, every activation a and its R{a} live in one (2N, width)
    array, R{a} on top, so that one GEMM takes both: [R{a}; a] W gives R{a} W
    and a W, and in the backward [R{a}; a]^T [delta; R{delta}] = R{a}^T delta
    + a^T R{delta} (the weight product of the Hessian) and [delta; R{delta}]
    W^T the two input gradients. Normalization and Dropout layers work on
    the halves (and write pairs)."""
    dtype, n = x.dtype, x.shape[0]
    ws = _workspaces(model, n)

    def get(key, shape):
        return ws.get(key, shape, dtype)

    def as_pair(key, R, y):
        """A (2N, width) workspace holding [R; y] (R None: not a pair, y returned)."""
        if R is None:
            return np.ascontiguousarray(y, dtype), None
        pair = get(key, (2 * n,) + y.shape[1:])
        pair[:n], pair[n:] = R, y
        return pair[n:], pair

    # forward and R-forward
    a, pair, saved, k = x, None, [], 0
    for i, (kind, layer, code, pa, pb) in enumerate(ops):
        entry = {"kind": kind, "code": code}
        Ra = None if pair is None else pair[:n]
        if kind == "linear":
            W, b = layer.W, layer.b
            VW = V[k]
            Vb = V[k + 1] if b is not None else None
            entry.update(a=a, pair=pair, W=W, VW=VW, out=k, bias=b is not None)
            k += 1 + (b is not None)
            zpair = get(("z", i), (2 * n, W.shape[1]))
            Rz, z = zpair[:n], zpair[n:]
            if pair is None:
                F._linear_into(a, W, b, z)                  # z = a W + b
                F._linear_into(a, VW, Vb, Rz)               # R{z} = a V_W + V_b
            else:
                Rz[...] = 0 if Vb is None else Vb
                z[...] = 0 if b is None else b
                F._gemm(pair, W, zpair, beta=1.0)           # [R{a} W + V_b; a W + b]
                F._gemm(a, VW, Rz, beta=1.0)                # + a V_W
        elif kind == "norm":
            affine = layer.gamma is not None
            Vg, Vb = (V[k], V[k + 1]) if affine else (None, None)
            entry.update(out=k, affine=affine, Vg=Vg)
            k += 2 if affine else 0
            y, Ry, entry["cache"] = _norm_forward(layer, a, Ra, Vg, Vb)
            z, zpair = as_pair(("z", i), Ry, y)
            Rz = None if zpair is None else zpair[:n]
        elif kind == "dropout":
            entry["layer"] = layer
            z, zpair = as_pair(("z", i), None if Ra is None else _dropout(layer, Ra),
                               _dropout(layer, a))
            Rz = None if zpair is None else zpair[:n]
        else:
            z, Rz, zpair = a, Ra, pair
        entry["Rz"] = Rz
        if code:
            d1 = get(("d1", i), z.shape)
            d2 = None if code in _LINEAR_PIECES else get(("d2", i), z.shape)
            if zpair is None:   # no R{a} yet
                y, Ry, ypair = get(("y", i), z.shape), None, None
            else:
                ypair = get(("y", i), zpair.shape)
                Ry, y = ypair[:n], ypair[n:]
            F._act_forward_into(z, y, code, pa, pb)
            F._act_rforward(z, Rz, Ry, d1, d2, code, pa, pb)
            entry.update(d1=d1, d2=d2)
        else:
            y, ypair = z, zpair
        saved.append(entry)
        a, pair = y, ypair
    out, Rout = a, pair[:n]
    loss_fn(out, target)
    # the gradient pair [dL/dout; H_loss R{out}] (Gauss-Newton: only its lower half)
    gpair = get(("g",), (2 * n,) + out.shape[1:])
    gpair[:n] = loss_fn.backward()
    _loss_rop(loss_fn, out, target, Rout, gpair[n:])

    # backward and R-backward, on pairs [delta; R{delta}]
    results = [None] * len(V)
    first = next(i for i, e in enumerate(saved) if e["kind"] == "linear"
                 or (e["kind"] == "norm" and e["affine"]))
    for i in range(len(saved) - 1, first - 1, -1):
        e = saved[i]
        gy, Rgy = gpair[:n], gpair[n:]
        if "d1" in e:
            dpair = get(("delta", i), gpair.shape)
            second = not gauss_newton and e["code"] not in _LINEAR_PIECES
            F._act_rbackward(None if gauss_newton else gy, Rgy, e["d1"],
                             e["d2"] if second else None, e["Rz"] if second else None,
                             None if gauss_newton else dpair[:n], dpair[n:])
        else:
            dpair = gpair
        delta, Rdelta = dpair[:n], dpair[n:]
        if e["kind"] == "norm":
            dx, Rdx, Rdgamma, Rdbeta = _norm_backward(e["cache"], None if gauss_newton else delta,
                                                      Rdelta, e["Vg"], i > first, gauss_newton)
            if e["affine"]:
                results[e["out"]] = Rdgamma.astype(dtype)
                results[e["out"] + 1] = Rdbeta.astype(dtype)
            if i > first:
                gpair = get(("ga", i), gpair.shape)
                gpair[n:] = Rdx
                if not gauss_newton:
                    gpair[:n] = dx
            continue
        if e["kind"] == "dropout":
            gpair = get(("ga", i), gpair.shape)
            gpair[n:] = _dropout(e["layer"], Rdelta)
            if not gauss_newton:
                gpair[:n] = _dropout(e["layer"], delta)
            continue
        if e["kind"] != "linear":
            gpair = dpair
            continue
        W, ain, pair = e["W"], e["a"], e["pair"]
        RdW = np.empty_like(W)
        if gauss_newton or pair is None:
            F._gemm(ain, Rdelta, RdW, trans_a=True)            # a^T R{delta}
        else:
            F._gemm(pair, dpair, RdW, trans_a=True)            # R{a}^T delta + a^T R{delta}
        results[e["out"]] = RdW
        if e["bias"]:
            results[e["out"] + 1] = Rdelta.sum(axis=0, dtype=np.float64).astype(dtype)
        if i > first:
            gpair = get(("ga", i), (2 * n, W.shape[0]))
            if gauss_newton:
                F._gemm(Rdelta, W, gpair[n:], trans_b=True)    # R{delta} W^T
            else:
                F._gemm(dpair, W, gpair, trans_b=True)         # [delta W^T; R{delta} W^T]
                F._gemm(delta, e["VW"], gpair[n:], trans_b=True, beta=1.0)   # + delta V_W^T
    if as_list:
        return results
    return np.concatenate([r.ravel() for r in results])


@overload
def hvp(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike,
           v: NDArray[Any]) -> FloatArray: ...
@overload
def hvp(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike,
           v: Sequence[ArrayLike]) -> list[FloatArray]: ...
def hvp(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike,
           v: NDArray[Any] | Sequence[ArrayLike]) -> FloatArray | list[FloatArray]:
    """Hessian-vector product H v of ``loss_fn(model(x), target)`` in the model's parameters.

    Exact (Pearlmutter's R-operator), not finite differences; see the module
    docstring for the formulas and the layers and losses supported.

    Parameters
    ----------
    model : cyprop.nn.Sequential
    loss_fn : a cyprop.nn loss
    x : array_like (N, in)
        The batch, of the model's dtype.
    target : array_like
        Its targets, as ``loss_fn`` takes them.
    v : ndarray (P,) or list of ndarrays
        A flat vector over ``model.parameters()`` in their order (P values in
        all), or one array per parameter shaped like it; float32 or float64
        (computed in the model's dtype).

    Returns
    -------
    ndarray (P,) or list of ndarrays
        H v in the form ``v`` came in, in the model's dtype.

    Raises
    ------
    TypeError
        A layer or loss without an R-op, a non-float ``v``.
    ValueError
        ``v`` of the wrong length or shapes, ``x`` of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> from cyprop import nn, hessian
    >>> model = nn.Sequential(nn.Linear(3, 4, activation="tanh", dtype=np.float64, seed=0),
    ...                       nn.Linear(4, 2, dtype=np.float64, seed=1))
    >>> x, y = np.ones((5, 3)), np.zeros(5, dtype=int)
    >>> v = np.ones(sum(p.value.size for p in model.parameters()))
    >>> hessian.hvp(model, nn.SoftmaxCrossEntropy(), x, y, v).shape
    (26,)
    """
    return _product(model, loss_fn, x, target, v, gauss_newton=False)


@overload
def ggnvp(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike,
             v: NDArray[Any]) -> FloatArray: ...
@overload
def ggnvp(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike,
             v: Sequence[ArrayLike]) -> list[FloatArray]: ...
def ggnvp(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike,
             v: NDArray[Any] | Sequence[ArrayLike]) -> FloatArray | list[FloatArray]:
    """Gauss-Newton-vector product J^T H_loss J v, same signature as :func:`hvp`.

    J is the Jacobian of the model's output in its parameters, H_loss the
    Hessian of the loss in that output: the product Hessian-free and K-FAC
    style optimizers use, positive semi-definite for every loss here.
    """
    return _product(model, loss_fn, x, target, v, gauss_newton=True)
