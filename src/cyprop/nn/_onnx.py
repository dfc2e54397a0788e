"""ONNX export: ``model.to_onnx(path, *, opset=17)``.

One graph, input ``input`` (N, in) and output ``output``, float32 or float64
as the model, N left symbolic. Each layer becomes the standard ONNX
operators, evaluated as cyprop evaluates the layer in eval mode:

=================  ==========================================================
Linear             Gemm(x, W, b) (W stored (in, out), transB = 0), then its
                   fused activation as a separate node
ReLU/Sigmoid/Tanh  Relu / Sigmoid / Tanh
LeakyReLU          Where(x > 0, x, slope x) (LeakyRelu's alpha attribute is a
                   float32: 0.2 would be 0.2 + 3e-9)
ELU                Where(x > 0, x, alpha expm1(max(x, -50))), expm1 from Exp,
                   Log and Where (Kahan's formula)
GELU               0.5 x (1 + Erf(x / sqrt 2)); approximate='tanh':
                   x Sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)), which is
                   0.5 x (1 + tanh(...)) without its cancellation for x < 0
SiLU               x * Sigmoid(x)
Softplus           Where(beta x > threshold, x, softplus(beta x) / beta),
                   softplus(z) = Relu(z) + log1p(Exp(-Abs(z))), log1p from
                   Log, Div and Where (Goldberg's formula)
BatchNorm1d        BatchNormalization with the running statistics
LayerNorm          LayerNormalization(axis = -1, epsilon) (opset >= 17)
Dropout            nothing (the identity at inference)
=================  ==========================================================

The GELU and Softplus forms use opset-17 operators only (no Gelu node), so
one export serves every runtime from opset 17 on. onnxruntime's CPU kernels
for Erf (and Softplus, which is not used) take float32 only: a float64 model
with an erf-form GELU is valid ONNX (checked, and run by ``onnx.reference``)
that onnxruntime refuses to load; export it in float32, or use
``approximate='tanh'``. The erf form, 0.5 x (1 + erf(x / sqrt 2)), is the
standard one (torch's exporter writes the same) and cancels for x < -3,
where cyprop computes 0.5 x erfc(-x / sqrt 2): 1e-13 relative at x = -3,
1e-10 at -5 (absolute errors below 1e-16). Needs the ``onnx``
package (``pip install "cyprop[onnx]"``); imported only here.
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ._activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh
from ._dropout import Dropout
from ._linear import Linear
from ._norm import BatchNorm1d, LayerNorm

if TYPE_CHECKING:
    from ._sequential import Sequential

MIN_OPSET = 17   # LayerNormalization


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'cyprop[onnx]'") \
            from None
    return onnx


class _Graph:
    """Nodes and initializers being built, with fresh names."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem, value):
        name = self.name(stem)
        arr = np.asarray(value, dtype=self.dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _log1p(g, u):
    """log(1 + u) to full precision without a Log1p operator (there is none in ONNX):
    w = 1 + u rounded, log1p(u) = u log(w) / (w - 1), and u itself where w == 1
    (Goldberg's formula: the rounding of w cancels between the two factors)."""
    w = g.node("Add", [u, g.const("one", 1.0)])
    d = g.node("Sub", [w, g.const("one", 1.0)])
    ratio = g.node("Div", [g.node("Mul", [u, g.node("Log", [w])]), d])
    return g.node("Where", [g.node("Equal", [d, g.const("zero", 0.0)]), u, ratio])


def _expm1(g, x):
    """exp(x) - 1 to full precision near 0 (no Expm1 operator in ONNX): Kahan's
    u = exp(x), (u - 1) x / log(u), and x itself where u == 1."""
    u = g.node("Exp", [x])
    d = g.node("Sub", [u, g.const("one", 1.0)])
    ratio = g.node("Div", [g.node("Mul", [d, x]), g.node("Log", [u])])
    return g.node("Where", [g.node("Equal", [d, g.const("zero", 0.0)]), x, ratio])


def _activation(g, x, name, layer=None):
    """Nodes of activation ``name`` applied to x (parameters from ``layer`` or torch's defaults)."""
    if name == "relu":
        return g.node("Relu", [x])
    if name == "sigmoid":
        return g.node("Sigmoid", [x])
    if name == "tanh":
        return g.node("Tanh", [x])
    if name == "leaky_relu":   # not LeakyRelu: its alpha attribute is a float32
        slope = g.const("slope", float(getattr(layer, "negative_slope", 0.01)))
        return g.node("Where", [g.node("Greater", [x, g.const("zero", 0.0)]), x,
                                g.node("Mul", [x, slope])])
    if name == "elu":   # from Exp and Log: onnxruntime has no float64 Elu kernel
        neg = g.node("Max", [g.node("Min", [x, g.const("zero", 0.0)]), g.const("floor", -50.0)])
        tail = g.node("Mul", [_expm1(g, neg), g.const("alpha", float(getattr(layer, "alpha", 1.0)))])
        return g.node("Where", [g.node("Greater", [x, g.const("zero", 0.0)]), x, tail])
    if name in ("gelu", "gelu_tanh"):
        tanh_form = name == "gelu_tanh" or getattr(layer, "approximate", "none") == "tanh"
        if tanh_form:   # 0.5 x (1 + tanh u) = x sigmoid(2u): no cancellation for x < 0
            cube = g.node("Mul", [g.node("Mul", [x, x]), x])
            inner = g.node("Add", [x, g.node("Mul", [cube, g.const("k", 0.044715)])])
            two_u = g.node("Mul", [inner, g.const("c", 2 * math.sqrt(2 / math.pi))])
            return g.node("Mul", [x, g.node("Sigmoid", [two_u])])
        t = g.node("Erf", [g.node("Mul", [x, g.const("inv_sqrt2", 1 / math.sqrt(2))])])
        half_x = g.node("Mul", [x, g.const("half", 0.5)])
        return g.node("Mul", [half_x, g.node("Add", [t, g.const("one", 1.0)])])
    if name == "silu":
        return g.node("Mul", [x, g.node("Sigmoid", [x])])
    if name == "softplus":
        beta = float(getattr(layer, "beta", 1.0))
        threshold = float(getattr(layer, "threshold", 20.0))
        bx = g.node("Mul", [x, g.const("beta", beta)])
        # softplus(z) = max(z, 0) + log(1 + exp(-|z|)): never overflows (and
        # onnxruntime has no float64 Softplus kernel)
        u = g.node("Exp", [g.node("Neg", [g.node("Abs", [bx])])])
        soft = g.node("Div", [g.node("Add", [g.node("Relu", [bx]), _log1p(g, u)]),
                              g.const("beta", beta)])
        return g.node("Where", [g.node("Greater", [bx, g.const("threshold", threshold)]), x,
                                soft])
    raise TypeError(f"activation {name!r} has no ONNX form here")


def to_onnx(model: Sequential, path: str | os.PathLike[str], *, opset: int = MIN_OPSET) -> Any:
    """Write ``model`` (a cyprop ``Sequential``) to ``path`` as an ONNX model; return it.

    Parameters
    ----------
    model : cyprop.nn.Sequential
    path : str or path-like
    opset : int, default 17
        The ai.onnx opset to declare, >= 17 (LayerNormalization) and at most
        what the installed onnx knows.

    Returns
    -------
    onnx.ModelProto
        The model written (``onnx.checker.check_model`` passed on it).
    """
    onnx = _onnx()
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise TypeError(f"opset must be an int, got {opset!r}")
    latest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= latest:
        raise ValueError(f"opset must be between {MIN_OPSET} and {latest} (the installed "
                         f"onnx's newest), got {opset}")
    width = model._in_features
    if width is None:
        raise TypeError("only models of cyprop.nn's layers can be exported")
    g = _Graph(onnx, model.dtype)
    x = "input"
    for i, layer in enumerate(model.layers):
        kind = type(layer)
        if kind is Linear:
            inputs = [x, g.const("W", layer.W)] + ([g.const("b", layer.b)]
                                                   if layer.b is not None else [])
            x = g.node("Gemm", inputs)
            if layer.activation is not None:
                x = _activation(g, x, layer.activation)
        elif kind in (ReLU, Sigmoid, Tanh):
            x = _activation(g, x, kind.__name__.lower())
        elif kind in (LeakyReLU, ELU, GELU, SiLU, Softplus):
            x = _activation(g, x, layer._name, layer)
        elif kind is BatchNorm1d:
            n = layer.num_features
            scale = layer.gamma if layer.affine else np.ones(n)
            shift = layer.beta if layer.affine else np.zeros(n)
            x = g.node("BatchNormalization", [x, g.const("gamma", scale), g.const("beta", shift),
                                              g.const("mean", layer.running_mean),
                                              g.const("var", layer.running_var)],
                       epsilon=float(layer.eps))
        elif kind is LayerNorm:
            n = layer._n
            scale = layer.gamma if layer.elementwise_affine else np.ones(n)
            shift = layer.beta if layer.elementwise_affine else np.zeros(n)
            x = g.node("LayerNormalization", [x, g.const("gamma", scale), g.const("beta", shift)],
                       axis=-1, epsilon=float(layer.eps))
        elif kind is Dropout:
            continue
        else:
            raise TypeError(f"layer {i} ({kind.__name__}) has no ONNX export")
    if x == "input":   # a model of Dropouts only: still one node
        x = g.node("Identity", [x])
    elem = onnx.TensorProto.FLOAT if np.dtype(model.dtype) == np.float32 else \
        onnx.TensorProto.DOUBLE
    out_width = model._width_at(len(model.layers))
    g.nodes[-1].output[0] = "output"
    graph = onnx.helper.make_graph(
        g.nodes, "cyprop_sequential",
        [onnx.helper.make_tensor_value_info("input", elem, ["N", width])],
        [onnx.helper.make_tensor_value_info("output", elem, ["N", out_width])],
        initializer=g.inits)
    opsets = [onnx.helper.make_opsetid("", opset)]
    # the oldest IR version that opset allows: runtimes refuse a newer IR than they know
    proto = onnx.helper.make_model(graph, producer_name="cyprop", opset_imports=opsets,
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return proto
