"""Sequential: a chain of layers, run in one kernel call where it can be."""
from __future__ import annotations

import numbers
import os
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from .. import functional as F
from .._threads import get_num_threads
from .._typing import FloatArray
from .._validation import ACTIVATION_PARAMS, FIRST_PRE_ACTIVATION
from ._activation import ReLU, Sigmoid, Tanh, _PreActivation
from ._dropout import Dropout
from ._io import save
from ._linear import Linear
from ._module import Module, Parameter, _cached, _check_backward_thread, _get_ident, _in_use
from ._norm import BatchNorm1d, LayerNorm

# layers a ChainPlan runs with kernels of its own...
_PLAN_OPS = (Linear, ReLU, Sigmoid, Tanh)
# ...and with steps of the other kernel modules (their _chain_step/_sync_step)
_PLAN_STEPS = (BatchNorm1d, LayerNorm, Dropout)


_S = TypeVar("_S", bound="Sequential")


class Sequential(Module):
    """A chain of layers; ``backward`` runs them in reverse.

    Parameters
    ----------
    *layers : Module
        Layers of one dtype. Parameter-free activation layers take the dtype
        of the layers around them.
    checkpoint_segments : int, optional
        Activation checkpointing in (at most) this many segments; None (the
        default) stores every activation. See :attr:`checkpoint_segments`.
        Not kept by ``save`` (a runtime setting; pickling keeps it).

    Notes
    -----
    The layers' parameters and gradients are moved into one contiguous
    buffer each (assigning ``layer.W = ...`` still works: it copies in). When
    every layer is one of cyprop.nn's (``Linear`` with any activation, the
    activation layers, ``BatchNorm1d``, ``LayerNorm``, ``Dropout``), forward
    and backward each run the whole chain in one kernel call (a plan per batch
    size, its workspaces allocated once); a chain with a layer of another
    kind runs layer by layer. Either way a ``BatchNorm1d`` followed by a
    ``ReLU`` runs as one fused pass each way (the ReLU in BatchNorm's
    normalize pass, its mask applied as the backward reads the gradient), and
    a ``Dropout`` in eval mode passes its input on without a copy.
    ``train()``/``eval()`` set every layer's mode; the layers' settings
    (mode, momentum, eps, p, seed, parameters of the activations) are read at
    each forward.
    """

    def __init__(self, *layers: Module, checkpoint_segments: int | None = None) -> None:
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {i} must be a cyprop.nn.Module, got {type(layer).__name__}")
        # layers with arrays of their own (parameters, BatchNorm's running statistics)
        # fix the dtype; the others take it

        def has_arrays(layer):
            return bool(layer.parameters()) or bool(getattr(layer, "buffers", dict)())
        dtypes = {layer.dtype for layer in layers if has_arrays(layer)}
        if len(dtypes) > 1:
            raise TypeError(f"all layers must share one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop() if dtypes else layers[0].dtype
        for layer in layers:
            if not has_arrays(layer):
                layer.dtype = self.dtype
        self.layers = list(layers)
        self._steps = self._fused_steps()
        self._gather_parameters()
        self._in_features = self._chain_input_width()
        self._plans = {}
        self._last = None
        self._checkpoint = None
        self.checkpoint_segments = checkpoint_segments

    # --- activation checkpointing ---------------------------------------------
    @property
    def checkpoint_segments(self) -> int | None:
        """Activation checkpointing: None (off) or the number of segments k.

        With k segments, forward keeps only each segment's input (and the
        output); backward runs each segment's forward again, from its
        input, just before its backward. Memory for stored activations falls
        to about one segment's plus k inputs; the price is one more forward
        of all but the last segment. Gradients are bit-identical to the
        plain model's. Segments hold about len(layers) / k layers each (a
        BatchNorm1d and the ReLU it fuses stay together).
        """
        return self._checkpoint

    @checkpoint_segments.setter
    def checkpoint_segments(self, k: int | None) -> None:
        if k is not None:
            if isinstance(k, bool) or not isinstance(k, numbers.Integral):
                raise TypeError(f"checkpoint_segments must be None or an int, got {k!r}")
            if not 1 <= k <= len(self.layers):
                raise ValueError(f"checkpoint_segments must be between 1 and the number of "
                                 f"layers ({len(self.layers)}), got {k}")
            if self._in_features is None:
                raise ValueError("checkpoint_segments needs every layer to be one of "
                                 "cyprop.nn's (the model runs layer by layer)")
            k = int(k)
        self._checkpoint = k
        self._plans = {}
        self._last = None

    def _segment_bounds(self):
        """[(start, stop)] layer ranges of the checkpoint segments: about equal layer
        counts, never splitting a BatchNorm1d from the ReLU it fuses."""
        n_layers, k = len(self.layers), self._checkpoint
        cuts = [round(j * n_layers / k) for j in range(1, k)]
        cuts = [c + 1 if c > 0 and self._fuses_relu(c - 1) else c for c in cuts]
        cuts = sorted(set(c for c in cuts if 0 < c < n_layers))
        edges = [0] + cuts + [n_layers]
        return list(zip(edges[:-1], edges[1:]))

    def _width_at(self, index):
        """Input width of layer ``index`` in the chain."""
        width = self._in_features
        for layer in self.layers[:index]:
            if isinstance(layer, Linear):
                width = layer.out_features
            elif isinstance(layer, (BatchNorm1d, LayerNorm)):
                width = layer._n
        return width

    def _op_count(self, start, stop):
        """How many ChainPlan ops layers [start, stop) make."""
        count, i = 0, start
        while i < stop:
            layer = self.layers[i]
            if isinstance(layer, Linear):
                count += 1 + (layer._code >= FIRST_PRE_ACTIVATION)
            elif type(layer) not in _PLAN_OPS:
                i += self._fuses_relu(i)
                count += 1
            else:
                count += 1
            i += 1
        return count

    def _build_checkpointed(self, n):
        """The segments' ChainPlans, sharing one set of workspaces, as one plan entry:
        (_CheckpointPlan, output, input gradient, the steps' (sync, step) pairs).

        Op t of every segment uses the same y/delta (and dx) arrays; a
        segment's last output is its own array (the next segment's stored
        input, or the model's output), and the segments' input gradients
        alternate between two arrays (segment j's is what j - 1's backward
        reads).
        """
        width_max = max(self._width_at(i) for i in range(len(self.layers) + 1))
        pool = {}

        def slot(key, shape):
            flat = pool.get(key)
            if flat is None:
                flat = pool[key] = np.empty(n * width_max, self.dtype)
            return flat[:shape[0] * shape[1]].reshape(shape)

        carries = [np.empty(n * width_max, self.dtype) for _ in range(2)]
        segments, syncs = [], []
        for j, (start, stop) in enumerate(self._segment_bounds()):
            n_ops = self._op_count(start, stop)
            holder = np.empty((n, self._width_at(stop)), self.dtype)
            # a Dropout in eval mode passes its dy on unchanged: then each op its own dx
            own_dx = any(isinstance(layer, Dropout) for layer in self.layers[start:stop])

            def alloc(kind, t, shape, j=j, n_ops=n_ops, holder=holder, own_dx=own_dx):
                if kind == "y":
                    return holder if t == n_ops - 1 else slot(("y", t), shape)
                if kind == "dx":
                    if t == 0:
                        return carries[j % 2][:shape[0] * shape[1]].reshape(shape)
                    return slot(("dx", t) if own_dx else ("dx", t % 2), shape)
                return slot(("delta", t), shape)

            plan, _, dx, seg_syncs = self._build_plan(n, start, stop, alloc)
            syncs += seg_syncs
            # what the second forward of a segment must leave as the first left it
            state = [a for layer in self.layers[start:stop]
                     for a in (list(layer.buffers().values()) if hasattr(layer, "buffers")
                               else [layer._counter] if isinstance(layer, Dropout) else [])]
            segments.append((plan, holder, state, dx))
        return _CheckpointPlan(segments), segments[-1][1], segments[0][3], syncs

    def __getstate__(self):
        state = super().__getstate__()
        state["_plans"], state["_last"] = {}, None
        state.pop("_steps", None)   # bound methods: rebuilt on load
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._steps = self._fused_steps()
        self._gather_parameters()  # pickling copied each view: tile one buffer again

    def _gather_parameters(self):
        size = sum(p.value.size for p in self.parameters())
        values, grads = np.empty(size, self.dtype), np.zeros(size, self.dtype)
        offset = 0
        for layer in self.layers:
            offset = layer._adopt(values, grads, offset)
        self._values, self._grads = values, grads

    def _fused_steps(self):
        """The layer-by-layer path's steps: (forward, backward) callables, a
        BatchNorm1d followed by a ReLU as one fused pair."""
        steps, i, layers = [], 0, self.layers
        while i < len(layers):
            layer = layers[i]
            if self._fuses_relu(i):
                steps.append((layer._forward_relu, layer._backward_relu))
                i += 2
            else:
                steps.append((layer.forward, layer.backward))
                i += 1
        return steps

    def _fuses_relu(self, i):
        """Whether layer i is a BatchNorm1d whose following ReLU runs inside it."""
        layers = self.layers
        return type(layers[i]) is BatchNorm1d and i + 1 < len(layers) and \
            type(layers[i + 1]) is ReLU

    def _chain_input_width(self):
        """Input width if the whole model can run as one ChainPlan, else None."""
        if not all(type(layer) in _PLAN_OPS or type(layer) in _PLAN_STEPS
                   or isinstance(layer, _PreActivation) for layer in self.layers):
            return None
        # the layers before the first one of fixed width (Linear, the norms) are
        # element-wise: the model's input width is that layer's
        first = width = None
        for layer in self.layers:
            if isinstance(layer, Linear):
                n_in, n_out = layer.in_features, layer.out_features
            elif isinstance(layer, (BatchNorm1d, LayerNorm)):
                n_in = n_out = layer._n
            else:
                continue
            if width is not None and n_in != width:
                raise ValueError(f"{layer!r} takes {n_in} features but the layer before it "
                                 f"gives {width}")
            first = n_in if first is None else first
            width = n_out
        return first

    def train(self: _S, mode: bool = True) -> _S:
        """Set training (or, ``mode=False``, evaluation) mode on every layer; returns self."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def __repr__(self) -> str:
        inner = ",\n  ".join(map(repr, self.layers))
        return f"Sequential(\n  {inner}\n)"

    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    @classmethod
    def from_torch(cls, module: Any) -> Sequential:
        """A Sequential with the layers and values of a torch module (see ``nn._torch``).

        Parameters
        ----------
        module : torch.nn.Module
            A ``torch.nn.Sequential`` (or one layer) of Linear, ReLU, Sigmoid,
            Tanh, LeakyReLU, ELU, GELU, SiLU, Softplus, BatchNorm1d,
            LayerNorm, Dropout (Identity/Flatten skipped), float32 or float64.

        Returns
        -------
        Sequential
        """
        from ._torch import from_torch
        return from_torch(module)

    def to_torch(self) -> Any:
        """This model as a ``torch.nn.Sequential`` (W transposed, dtype and mode kept).

        Returns
        -------
        torch.nn.Sequential
        """
        from ._torch import to_torch
        return to_torch(self)

    def to_onnx(self, path: str | os.PathLike[str], *, opset: int = 17) -> Any:
        """Export the model (as in eval mode) to an ONNX file; see ``nn._onnx``.

        Parameters
        ----------
        path : str or path-like
        opset : int, default 17
            >= 17 (LayerNormalization), at most the installed onnx's newest.

        Returns
        -------
        onnx.ModelProto
            The model written, checked by ``onnx.checker``. Needs ``onnx``
            (``pip install "cyprop[onnx]"``).
        """
        from ._onnx import to_onnx
        return to_onnx(self, path, opset=opset)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the model to ``path`` (an ``.npz`` file; no suffix is added).

        The file holds the parameter arrays and a JSON description of the
        layers; :func:`cyprop.load` reads it back exactly: parameters and
        buffers (BatchNorm1d's running statistics), the layers' settings
        (Dropout's seed included; its step starts again at 0). Every layer
        type of :mod:`cyprop.nn` can be saved; a model loads in training mode,
        as a new one starts.
        """
        save(self, path)

    def _plan(self, n):
        """The ChainPlan (and its output and input-gradient arrays) for batch size n;
        with checkpointing, the segments' plans (see _build_checkpointed)."""
        # one kind of entry at a time: setting checkpoint_segments empties the cache
        build = self._build_plan if self._checkpoint is None else self._build_checkpointed
        return _cached(self._plans, n, lambda: build(n))

    def _build_plan(self, n, start=0, stop=None, alloc=None):
        """A ChainPlan of layers [start, stop) for batch size n with its workspaces:
        (plan, output, input gradient, the steps' (sync, step) pairs).

        ``alloc(kind, t, shape)`` gives op t's array of kind "y", "dx" or
        "delta" (default: a new one each).
        """
        stop = len(self.layers) if stop is None else stop
        plan = F._ChainPlan(n, self.dtype, 2 * (stop - start))
        width, layers = self._width_at(start), self.layers
        dxs, syncs = [], []   # every op's input gradient, in order; the steps' settings
        if alloc is None:
            def alloc(kind, t, shape):
                return np.empty(shape, self.dtype)

        def add_step(step):
            t = len(dxs)
            y, dx = alloc("y", t, (n, width)), alloc("dx", t, (n, width))
            plan.add_step(step, y, dx)
            dxs.append(dx)
            return y

        i = start
        while i < stop:
            layer = layers[i]
            if isinstance(layer, Linear):
                t = len(dxs)
                pre_act = layer._code >= FIRST_PRE_ACTIVATION
                y, dx = alloc("y", t, (n, layer.out_features)), \
                    alloc("dx", t, (n, layer.in_features))
                delta = alloc("delta", t, y.shape) if layer._code and not pre_act else None
                plan.add_linear(layer._W, layer._b, layer._dW, layer._db, y, dx, delta,
                                0 if pre_act else layer._code)
                dxs.append(dx)
                width = layer.out_features
                if pre_act:   # GEMM into the pre-activation, then the activation's own pass
                    step = F._Activation2Step(n, width, self.dtype.name)
                    step.set(layer._code, *ACTIVATION_PARAMS.get(layer._code, (0.0, 0.0)))
                    y = add_step(step)
            elif type(layer) in _PLAN_OPS:
                t = len(dxs)
                y, dx = alloc("y", t, (n, width)), alloc("dx", t, (n, width))
                plan.add_activation(y, dx, layer._code)
                dxs.append(dx)
            else:
                relu = self._fuses_relu(i)
                step = layer._chain_step(n, width, relu)
                layer._sync_step(step, n)   # settings now, so that the step can be used
                syncs.append((layer._sync_step, step))
                y = add_step(step)
                i += relu   # the ReLU runs inside the step
            i += 1
        return plan, y, dxs[0], syncs

    @staticmethod
    def _sync(entry, n):
        """Give a plan's steps their layers' mode and settings, as they are now."""
        for sync, step in entry[3]:
            sync(step, n)

    def forward(self, x: ArrayLike) -> FloatArray:
        """Run the layers in order; returns the last layer's output workspace."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            if self._in_features is None:
                for forward, _ in self._steps:
                    x = forward(x)
                return x
            n_threads = get_num_threads()
            # fast path: a C-contiguous ndarray of our dtype and width, for a batch
            # size seen before (the plan checks it in C and declines anything else)
            entry = self._plans.get(x.shape[0]) if type(x) is np.ndarray and x.ndim == 2 else None
            if entry is not None:
                self._sync(entry, x.shape[0])
            if entry is None or not entry[0].forward(x, n_threads, False):
                x = self._input(x)
                if x.ndim != 2 or x.shape[1] != self._in_features:
                    raise ValueError(f"x must have shape (N, {self._in_features}), got {x.shape}")
                entry = self._plan(x.shape[0])   # perhaps not the one synced above
                self._sync(entry, x.shape[0])
                entry[0].forward(x, n_threads)
            self._last = entry
            return entry[1]
        finally:
            self._call_lock.release()

    def backward(self, dy: ArrayLike, *, need_dx: bool = False) -> FloatArray | None:
        """Back-propagate ``dy``; fills every layer's parameter gradients.

        Parameters
        ----------
        dy : array_like
            Gradient of the loss w.r.t. the model's output.
        need_dx : bool, default False
            Also compute the gradient w.r.t. the model's input (one more GEMM),
            as PyTorch does only for inputs that require it.

        Returns
        -------
        dx : ndarray or None
        """
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            _check_backward_thread(self)
            if self._in_features is None:
                last = len(self._steps) - 1
                for i in range(last, -1, -1):
                    # the gradients between layers are our own workspaces: safe to overwrite
                    dy = self._steps[i][1](dy, need_dx=need_dx or i > 0,
                                           _overwrite_dy=i < last)
                return dy
            if self._last is None:
                raise ValueError("Sequential.backward() called before forward()")
            plan, y, first_dx, _ = self._last
            n_threads = get_num_threads()
            if not plan.backward(dy, bool(need_dx), n_threads, False):
                plan.backward(self._check_dy(dy, y.shape), bool(need_dx), n_threads)
            return first_dx if need_dx else None
        finally:
            self._call_lock.release()


class _CheckpointPlan:
    """A ChainPlan's forward/backward over checkpoint segments (Sequential.checkpoint_segments).

    ``segments``: (plan, output, state arrays, input gradient) per segment.
    Forward runs them in order and keeps each one's input and the state its
    layers had before it (BatchNorm's running statistics, Dropout's step);
    backward runs them in reverse, each but the last after a second forward
    from its kept input, with that state put back for it (and the state after
    the first forward restored), so the recomputed activations, masks
    included, are the first forward's bit for bit.
    """

    def __init__(self, segments):
        self.segments = segments
        self.inputs = None

    def forward(self, x, n_threads, check=True):
        inputs, a = [], x
        for j, (plan, out, state, _) in enumerate(self.segments):
            before = [s.copy() for s in state]
            if not plan.forward(a, n_threads, check and j == 0 or j > 0):
                return False   # only the first segment can decline (an unsuitable x)
            inputs.append((a, before))
            a = out
        self.inputs = inputs
        return True

    def backward(self, dy, need_dx, n_threads, check=True):
        if self.inputs is None:
            raise ValueError("backward() called before forward()")
        last = len(self.segments) - 1
        grad = dy
        for j in range(last, -1, -1):
            plan, _, state, dx = self.segments[j]
            if j < last:
                a, before = self.inputs[j]
                after = [s.copy() for s in state]
                for s, b in zip(state, before):
                    s[...] = b
                plan.forward(a, n_threads)
                for s, b in zip(state, after):
                    s[...] = b
            if not plan.backward(grad, bool(need_dx or j > 0), n_threads, check or j < last):
                return False   # only the last segment can decline (an unsuitable dy)
            grad = dx
        return True
