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
activation layers, ``Dropout`` in eval mode (or p = 0); losses
``SoftmaxCrossEntropy`` (no ``weight``/``ignore_index``; ``label_smoothing``
and probability targets allowed), ``MSELoss``, ``BCEWithLogitsLoss`` (no
``pos_weight``), ``HuberLoss``, ``L1Loss``. Other layers (``BatchNorm1d``,
``LayerNorm``, Dropout in training mode) raise TypeError.
"""
import weakref

import numpy as np

from . import functional as F
from ._validation import ACTIVATION_PARAMS, FLOAT_DTYPES
from .nn import (BCEWithLogitsLoss, Dropout, HuberLoss, L1Loss, Linear, MSELoss, ReLU, Sigmoid,
                 SoftmaxCrossEntropy, Tanh)
from .nn._activation import _PreActivation
from .nn._module import _in_use

__all__ = ["hvp", "ggnvp"]

_SUPPORTED = ("Linear (any activation), ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU, SiLU, "
              "Softplus, Dropout in eval mode")


def _ops(model):
    """The model's layers as (layer, activation code, a, b) R-op steps; Dropout(eval) dropped."""
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"model must be a cyprop.nn.Sequential, got {type(model).__name__}")
    ops = []
    for layer in layers:
        if isinstance(layer, Linear):
            ops.append((layer, layer._code, *ACTIVATION_PARAMS.get(layer._code, (0.0, 0.0))))
        elif type(layer) in (ReLU, Sigmoid, Tanh):
            ops.append((layer, layer._code, 0.0, 0.0))
        elif isinstance(layer, _PreActivation):
            ops.append((layer, *F._activation2_args(layer._name, **layer._kwargs())))
        elif isinstance(layer, Dropout) and (not layer.training or layer.p == 0):
            continue   # the identity
        else:
            what = "Dropout in training mode (call model.eval())" if isinstance(layer, Dropout) \
                else type(layer).__name__
            raise TypeError(f"{what} has no R-op: hvp/ggnvp support {_SUPPORTED}")
    if not any(isinstance(op[0], Linear) for op in ops):
        raise ValueError("the model has no parameters (no Linear layer)")
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


def _check_loss(loss_fn):
    if isinstance(loss_fn, SoftmaxCrossEntropy):
        if loss_fn.weight is not None or loss_fn.ignore_index is not None:
            raise TypeError("SoftmaxCrossEntropy with weight or ignore_index has no R-op here")
    elif isinstance(loss_fn, BCEWithLogitsLoss):
        if loss_fn.pos_weight is not None:
            raise TypeError("BCEWithLogitsLoss with pos_weight has no R-op here")
    elif not isinstance(loss_fn, (MSELoss, HuberLoss, L1Loss)):
        raise TypeError(f"{type(loss_fn).__name__} has no R-op: hvp/ggnvp support "
                        "SoftmaxCrossEntropy, MSELoss, BCEWithLogitsLoss, HuberLoss, L1Loss")


def _loss_rop(loss_fn, out, target, Rout):
    """(dL/dout, H_loss Rout) at out; the loss is evaluated by loss_fn itself."""
    loss_fn(out, target)
    g = np.array(loss_fn.backward(), dtype=out.dtype, order="C")
    Rg = np.empty_like(out)
    mean = loss_fn.reduction == "mean"
    if isinstance(loss_fn, SoftmaxCrossEntropy):
        n = out.shape[0]
        F._softmax_ce_rop(out, Rout, Rg, np.full(n, 1.0 / n if mean and n else 1.0))
        return g, Rg
    code, param = {MSELoss: (0, 0.0), BCEWithLogitsLoss: (1, 0.0), L1Loss: (3, 0.0),
                   HuberLoss: (2, getattr(loss_fn, "delta", 0.0))}[type(loss_fn)]
    t = np.ascontiguousarray(np.broadcast_to(np.asarray(target, dtype=out.dtype), out.shape))
    F._pointwise_loss_rop(code, out, t, Rout, Rg, 1.0 / out.size if mean and out.size else 1.0,
                          param)
    return g, Rg


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
    per_model = _WORKSPACES.setdefault(model, {})
    if n not in per_model and len(per_model) >= 4:
        per_model.clear()
    return per_model.setdefault(n, _Workspaces())


def _product(model, loss_fn, x, target, v, gauss_newton):
    ops = _ops(model)
    _check_loss(loss_fn)
    V, as_list = _split_v(model, v)
    x = model._input(x)
    first = next(op[0] for op in ops if isinstance(op[0], Linear))
    if x.ndim != 2 or x.shape[1] != first.in_features:
        raise ValueError(f"x must have shape (N, {first.in_features}), got {x.shape}")
    x = np.ascontiguousarray(x)
    if not model._call_lock.acquire(False):
        raise _in_use(model)
    try:
        return _run(model, ops, loss_fn, x, target, V, as_list, gauss_newton)
    finally:
        model._call_lock.release()


def _run(model, ops, loss_fn, x, target, V, as_list, gauss_newton):
    dtype, n = x.dtype, x.shape[0]
    ws = _workspaces(model, n)

    def get(key, shape):
        return ws.get(key, shape, dtype)

    # forward and R-forward; R{a} None stands for zero (below the first Linear)
    a, Ra, saved, k = x, None, [], 0
    for i, (layer, code, pa, pb) in enumerate(ops):
        if isinstance(layer, Linear):
            W, b = layer.W, layer.b
            VW = V[k]
            Vb = V[k + 1] if b is not None else None
            k += 1 + (b is not None)
            z = get(("z", i), (n, W.shape[1]))
            F._linear_into(a, W, b, z)              # z = a W + b
            Rz = get(("Rz", i), z.shape)
            F._linear_into(a, VW, Vb, Rz)           # R{z} = a V_W + V_b ...
            if Ra is not None:
                F._gemm(Ra, W, Rz, beta=1.0)        # ... + R{a} W
            entry = {"a": a, "Ra": Ra, "W": W, "VW": VW, "out": k - 1 - (b is not None),
                     "bias": b is not None, "Rz": Rz}
        else:
            z, Rz, entry = a, Ra, {"Rz": Ra}
        if code:
            y, d1, d2 = (get((name, i), z.shape) for name in ("y", "d1", "d2"))
            F._act_forward_into(z, y, code, pa, pb)
            Ry = None if Rz is None else get(("Ry", i), z.shape)
            F._act_rforward(z, Rz, Ry, d1, d2, code, pa, pb)
            entry.update(d1=d1, d2=d2)
        else:
            y, Ry = z, Rz
        saved.append(entry)
        a, Ra = y, Ry
    g, Rg = _loss_rop(loss_fn, a, target, Ra)

    # backward and R-backward (Gauss-Newton: the plain backward of Rg alone)
    results = [None] * len(V)
    gy, Rgy = (None, Rg) if gauss_newton else (g, Rg)
    first_linear = next(i for i, e in enumerate(saved) if "W" in e)
    for i in range(len(saved) - 1, first_linear - 1, -1):
        e = saved[i]
        if "d1" in e:
            delta = None if gy is None else get(("delta", i), Rgy.shape)
            Rdelta = get(("Rdelta", i), Rgy.shape)
            F._act_rbackward(gy, Rgy, e["d1"], e["d2"], None if gauss_newton else e["Rz"],
                             delta, Rdelta)
        else:
            delta, Rdelta = gy, Rgy
        if "W" not in e:
            gy, Rgy = delta, Rdelta
            continue
        W, ain, Rain = e["W"], e["a"], e["Ra"]
        RdW = np.empty_like(W)
        F._gemm(ain, Rdelta, RdW, trans_a=True)                 # a^T R{delta}
        if not gauss_newton and Rain is not None:
            F._gemm(Rain, delta, RdW, trans_a=True, beta=1.0)   # + R{a}^T delta
        results[e["out"]] = RdW
        if e["bias"]:
            results[e["out"] + 1] = Rdelta.sum(axis=0, dtype=np.float64).astype(dtype)
        if i > first_linear:
            Rga = get(("Rga", i), ain.shape)
            F._gemm(Rdelta, W, Rga, trans_b=True)                # R{delta} W^T
            if not gauss_newton:
                F._gemm(delta, e["VW"], Rga, trans_b=True, beta=1.0)   # + delta V_W^T
                ga = get(("ga", i), ain.shape)
                F._gemm(delta, W, ga, trans_b=True)
                gy = ga
            Rgy = Rga
    if as_list:
        return results
    return np.concatenate([r.ravel() for r in results])


def hvp(model, loss_fn, x, target, v):
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
    >>> v = np.ones(model._values.size)
    >>> hessian.hvp(model, nn.SoftmaxCrossEntropy(), x, y, v).shape
    (26,)
    """
    return _product(model, loss_fn, x, target, v, gauss_newton=False)


def ggnvp(model, loss_fn, x, target, v):
    """Gauss-Newton-vector product J^T H_loss J v, same signature as :func:`hvp`.

    J is the Jacobian of the model's output in its parameters, H_loss the
    Hessian of the loss in that output: the product Hessian-free and K-FAC
    style optimizers use, positive semi-definite for every loss here.
    """
    return _product(model, loss_fn, x, target, v, gauss_newton=True)
