"""The PyTorch bridge: ``Sequential.from_torch(module)`` and ``model.to_torch()``.

Layer for layer, for the types both libraries have: ``Linear`` (torch keeps
W as (out, in), cyprop as (in, out): transposed on the way), ``ReLU``,
``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``ELU``, ``GELU``, ``SiLU``,
``Softplus``, ``BatchNorm1d`` (running statistics and momentum included),
``LayerNorm`` (over the last dimension), ``Dropout`` (p; cyprop draws its
own masks). A cyprop ``Linear`` with a fused activation becomes a torch
``Linear`` followed by the activation module. Dtypes are kept (float32 or
float64), as are the training/eval modes. torch is imported only here, when
one of the two is called.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh
from ._dropout import Dropout
from ._linear import Linear
from ._norm import BatchNorm1d, LayerNorm

if TYPE_CHECKING:
    from ._sequential import Sequential

_SIMPLE = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "SiLU": SiLU}
_SUPPORTED = ("Linear, ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU, SiLU, Softplus, BatchNorm1d, "
              "LayerNorm, Dropout, Identity, Flatten of (N, D) inputs, nested Sequential")


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("the PyTorch bridge needs torch: pip install torch") from None
    return torch


def _numpy(t):
    return t.detach().cpu().numpy()


def _dtype_of(module):
    torch = _torch()
    dtypes = {p.dtype for p in module.parameters()} | {b.dtype for b in module.buffers()
                                                      if b.is_floating_point()}
    if len(dtypes) > 1:
        raise TypeError(f"the module mixes dtypes {sorted(map(str, dtypes))}")
    dtype = dtypes.pop() if dtypes else torch.float32
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"cyprop takes float32 or float64 modules, got {dtype}")
    return np.float32 if dtype == torch.float32 else np.float64


def _flatten(module):
    """The leaf modules of a torch module (nested Sequentials unrolled)."""
    torch = _torch()
    if isinstance(module, torch.nn.Sequential):
        return [leaf for child in module for leaf in _flatten(child)]
    return [module]


def from_torch(module: Any) -> Sequential:
    """A cyprop ``Sequential`` with the layers and values of a torch module.

    Parameters
    ----------
    module : torch.nn.Module
        A ``torch.nn.Sequential`` (nested ones are unrolled) or a single layer
        of the supported types (see the module docstring).

    Returns
    -------
    cyprop.nn.Sequential
        Same layers, parameters (copied), buffers, dtype and mode.

    Raises
    ------
    TypeError
        A layer type cyprop does not have, or a dtype other than float32/float64.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    dtype = _dtype_of(module)
    layers = []
    for i, m in enumerate(_flatten(module)):
        name = type(m).__name__
        if isinstance(m, torch.nn.Linear):
            layer = Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=dtype)
            layer.W = _numpy(m.weight).T
            if m.bias is not None:
                layer.b = _numpy(m.bias)
        elif name in _SIMPLE and type(m) is getattr(torch.nn, name):
            layer = _SIMPLE[name](dtype=dtype)
        elif isinstance(m, torch.nn.LeakyReLU):
            layer = LeakyReLU(m.negative_slope, dtype=dtype)
        elif isinstance(m, torch.nn.ELU):
            layer = ELU(m.alpha, dtype=dtype)
        elif isinstance(m, torch.nn.GELU):
            layer = GELU(m.approximate, dtype=dtype)
        elif isinstance(m, torch.nn.Softplus):
            layer = Softplus(m.beta, m.threshold, dtype=dtype)
        elif isinstance(m, torch.nn.BatchNorm1d):
            if not m.track_running_stats or m.momentum is None:
                raise TypeError(f"layer {i}: BatchNorm1d without running statistics or with "
                                "momentum=None (a cumulative average) has no cyprop counterpart")
            layer = BatchNorm1d(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                                dtype=dtype)
            layer.running_mean = _numpy(m.running_mean)
            layer.running_var = _numpy(m.running_var)
            if m.affine:
                layer.gamma, layer.beta = _numpy(m.weight), _numpy(m.bias)
        elif isinstance(m, torch.nn.LayerNorm):
            if len(m.normalized_shape) != 1:
                raise TypeError(f"layer {i}: cyprop's LayerNorm normalizes over the last "
                                f"dimension only, got normalized_shape={tuple(m.normalized_shape)}")
            if m.elementwise_affine and m.bias is None:
                raise TypeError(f"layer {i}: LayerNorm(bias=False) has no cyprop counterpart")
            layer = LayerNorm(m.normalized_shape[0], eps=m.eps,
                              elementwise_affine=m.elementwise_affine, dtype=dtype)
            if m.elementwise_affine:
                layer.gamma, layer.beta = _numpy(m.weight), _numpy(m.bias)
        elif isinstance(m, torch.nn.Dropout):
            layer = Dropout(m.p, dtype=dtype)
        elif isinstance(m, (torch.nn.Identity, torch.nn.Flatten)):
            continue   # the identity on the (N, D) rows cyprop takes
        else:
            raise TypeError(f"layer {i} ({name}) has no cyprop counterpart; supported: "
                            f"{_SUPPORTED}")
        layer.train(m.training)
        layers.append(layer)
    if not layers:
        raise ValueError("the module has no layers cyprop can run")
    from ._sequential import Sequential
    return Sequential(*layers).train(module.training)


def _torch_activation(torch, name, layer=None):
    """The torch module of activation ``name``, its parameters from ``layer`` (an
    activation layer) or, for a Linear's fused activation, torch's defaults (cyprop's)."""
    tn = torch.nn
    if name in ("relu", "sigmoid", "tanh", "silu"):
        return {"relu": tn.ReLU, "sigmoid": tn.Sigmoid, "tanh": tn.Tanh, "silu": tn.SiLU}[name]()
    if name == "leaky_relu":
        return tn.LeakyReLU(getattr(layer, "negative_slope", 0.01))
    if name == "elu":
        return tn.ELU(getattr(layer, "alpha", 1.0))
    if name in ("gelu", "gelu_tanh"):
        tanh = name == "gelu_tanh" or getattr(layer, "approximate", "none") == "tanh"
        return tn.GELU(approximate="tanh" if tanh else "none")
    return tn.Softplus(getattr(layer, "beta", 1.0), getattr(layer, "threshold", 20.0))


def to_torch(model: Sequential) -> Any:
    """A ``torch.nn.Sequential`` with the layers and values of a cyprop ``Sequential``.

    Returns
    -------
    torch.nn.Sequential
        Parameters and buffers copied (W transposed to torch's (out, in)), in
        the model's dtype and mode. A Linear with a fused activation becomes a
        torch Linear followed by that activation.
    """
    torch = _torch()
    tdtype = torch.float32 if np.dtype(model.dtype) == np.float32 else torch.float64

    def tensor(a):
        return torch.tensor(np.ascontiguousarray(a), dtype=tdtype)

    mods = []
    for i, layer in enumerate(model.layers):
        kind = type(layer)
        if kind is Linear:
            lin = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.b is not None,
                                  dtype=tdtype)
            with torch.no_grad():
                lin.weight.copy_(tensor(layer.W.T))
                if layer.b is not None:
                    lin.bias.copy_(tensor(layer.b))
            mods.append(lin)
            if layer.activation is not None:
                mods.append(_torch_activation(torch, layer.activation))
        elif kind in (ReLU, Sigmoid, Tanh, SiLU):
            mods.append(_torch_activation(torch, kind.__name__.lower()))
        elif kind in (LeakyReLU, ELU, GELU, Softplus):
            mods.append(_torch_activation(torch, layer._name, layer))
        elif kind is BatchNorm1d:
            bn = torch.nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                                      affine=layer.affine, dtype=tdtype)
            with torch.no_grad():
                bn.running_mean.copy_(tensor(layer.running_mean))
                bn.running_var.copy_(tensor(layer.running_var))
                if layer.affine:
                    bn.weight.copy_(tensor(layer.gamma))
                    bn.bias.copy_(tensor(layer.beta))
            mods.append(bn)
        elif kind is LayerNorm:
            ln = torch.nn.LayerNorm(layer._n, eps=layer.eps,
                                    elementwise_affine=layer.elementwise_affine, dtype=tdtype)
            if layer.elementwise_affine:
                with torch.no_grad():
                    ln.weight.copy_(tensor(layer.gamma))
                    ln.bias.copy_(tensor(layer.beta))
            mods.append(ln)
        elif kind is Dropout:
            mods.append(torch.nn.Dropout(layer.p))
        else:
            raise TypeError(f"layer {i} ({kind.__name__}) has no torch counterpart here")
        mods[-1].train(layer.training)
    return torch.nn.Sequential(*mods).train(model.training)
