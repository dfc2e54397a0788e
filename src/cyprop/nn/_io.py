"""Saving and loading models: ``model.save(path)``, ``cyprop.load(path)``."""
from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from ._activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh
from ._dropout import Dropout
from ._linear import Linear
from ._norm import BatchNorm1d, LayerNorm

if TYPE_CHECKING:
    from ._sequential import Sequential

_FORMAT = "cyprop.Sequential"
_META_KEY = "__cyprop__"
_ACTIVATION_LAYERS = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh}
# layers described by their constructor's keyword arguments, and the arrays
# (parameters and buffers) saved beside them
_KEYWORD_LAYERS = {
    "LeakyReLU": (LeakyReLU, ("negative_slope",), ()),
    "ELU": (ELU, ("alpha",), ()),
    "GELU": (GELU, ("approximate",), ()),
    "SiLU": (SiLU, (), ()),
    "Softplus": (Softplus, ("beta", "threshold"), ()),
    "Dropout": (Dropout, ("p", "seed"), ()),
    "BatchNorm1d": (BatchNorm1d, ("num_features", "eps", "momentum", "affine"),
                    ("gamma", "beta", "running_mean", "running_var")),
    "LayerNorm": (LayerNorm, ("normalized_shape", "eps", "elementwise_affine"),
                  ("gamma", "beta")),
}


def save(model: Sequential, path: str | os.PathLike[str]) -> None:
    """Write a :class:`Sequential` to ``path``; see :meth:`Sequential.save`."""
    layers, arrays = [], {}
    for i, layer in enumerate(model.layers):
        if type(layer) is Linear:
            layers.append({"type": "Linear", "in_features": layer.in_features,
                           "out_features": layer.out_features,
                           "activation": layer.activation, "bias": layer.b is not None})
            arrays[f"layer{i}.W"] = layer.W
            if layer.b is not None:
                arrays[f"layer{i}.b"] = layer.b
        elif type(layer) in _ACTIVATION_LAYERS.values():
            layers.append({"type": type(layer).__name__})
        elif type(layer).__name__ in _KEYWORD_LAYERS and \
                _KEYWORD_LAYERS[type(layer).__name__][0] is type(layer):
            _, kwargs, array_names = _KEYWORD_LAYERS[type(layer).__name__]
            spec = {"type": type(layer).__name__}
            for k in kwargs:
                v = getattr(layer, k)
                spec[k] = list(v) if isinstance(v, tuple) else v
            layers.append(spec)
            for name in array_names:
                if getattr(layer, name) is not None:
                    arrays[f"layer{i}.{name}"] = getattr(layer, name)
        else:
            raise TypeError(f"cannot save layer {i} of type {type(layer).__name__}")
    meta = {"format": _FORMAT, "version": 1, "dtype": model.dtype.name, "layers": layers}
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays, **{_META_KEY: np.array(json.dumps(meta))})


def load(path: str | os.PathLike[str]) -> Sequential:
    """Load a model written by :meth:`Sequential.save`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Sequential

    Raises
    ------
    ValueError
        If the file is not a readable cyprop model (corrupt, foreign, or
        inconsistent). Arrays are read with ``allow_pickle=False``.
    """
    path = os.fspath(path)

    def bad(why):
        return ValueError(f"{path!r} is not a valid cyprop model file: {why}")

    try:
        with np.load(path, allow_pickle=False) as data:
            files = {k: data[k] for k in data.files}
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise bad(f"cannot read it as .npz ({exc})") from None
    if _META_KEY not in files:
        raise bad("no cyprop description inside")
    try:
        meta = json.loads(str(files.pop(_META_KEY)))
        if meta.get("format") != _FORMAT or meta.get("version") != 1:
            raise bad(f"unknown format {meta.get('format')!r} version {meta.get('version')!r}")
        dtype = np.dtype(meta["dtype"])
        layers = []
        for i, spec in enumerate(meta["layers"]):
            if spec["type"] == "Linear":
                layer = Linear(spec["in_features"], spec["out_features"],
                               activation=spec["activation"], bias=spec["bias"], dtype=dtype)
                layer.W = _stored_array(files, f"layer{i}.W", layer.W, bad)
                if spec["bias"]:
                    layer.b = _stored_array(files, f"layer{i}.b", layer.b, bad)
            elif spec["type"] in _ACTIVATION_LAYERS:
                layer = _ACTIVATION_LAYERS[spec["type"]](dtype=dtype)
            elif spec["type"] in _KEYWORD_LAYERS:
                cls, kwargs, array_names = _KEYWORD_LAYERS[spec["type"]]
                args = {k: spec[k] for k in kwargs}
                if "normalized_shape" in args:
                    args["normalized_shape"] = tuple(args["normalized_shape"])
                layer = cls(**args, dtype=dtype)
                for name in array_names:
                    if getattr(layer, name) is not None:
                        setattr(layer, name, _stored_array(files, f"layer{i}.{name}",
                                                           getattr(layer, name), bad))
            else:
                raise bad(f"unknown layer type {spec['type']!r}")
            layers.append(layer)
        from ._sequential import Sequential  # noqa: PLC0415 (it imports this module)

        return Sequential(*layers)
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise bad(f"malformed description ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        if str(exc).startswith(repr(path)):
            raise
        raise bad(str(exc)) from None


def _stored_array(files, key, like, bad):
    if key not in files:
        raise bad(f"missing array {key!r}")
    a = files[key]
    if a.shape != like.shape or a.dtype != like.dtype:
        raise bad(f"array {key!r} has shape {a.shape} and dtype {a.dtype}, "
                  f"expected {like.shape} and {like.dtype}")
    return a
