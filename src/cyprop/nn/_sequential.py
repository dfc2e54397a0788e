"""Sequential: a chain of layers, run in one kernel call where it can be."""
import numpy as np

from .. import functional as F
from .._threads import get_num_threads
from .._validation import ACTIVATION_PARAMS, FIRST_PRE_ACTIVATION
from ._activation import ReLU, Sigmoid, Tanh, _PreActivation
from ._dropout import Dropout
from ._io import save
from ._linear import Linear
from ._module import Module, _cached, _check_backward_thread, _get_ident, _in_use
from ._norm import BatchNorm1d, LayerNorm

# layers a ChainPlan runs with kernels of its own...
_PLAN_OPS = (Linear, ReLU, Sigmoid, Tanh)
# ...and with steps of the other kernel modules (their _chain_step/_sync_step)
_PLAN_STEPS = (BatchNorm1d, LayerNorm, Dropout)


class Sequential(Module):
    """A chain of layers; ``backward`` runs them in reverse.

    Parameters
    ----------
    *layers : Module
        Layers of one dtype. Parameter-free activation layers take the dtype
        of the layers around them.

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

    def __init__(self, *layers):
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

    def train(self, mode=True):
        """Set training (or, ``mode=False``, evaluation) mode on every layer; returns self."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def __repr__(self):
        inner = ",\n  ".join(map(repr, self.layers))
        return f"Sequential(\n  {inner}\n)"

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def save(self, path):
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
        """The ChainPlan (and its output and input-gradient arrays) for batch size n."""
        return _cached(self._plans, n, lambda: self._build_plan(n))

    def _build_plan(self, n):
        """A ChainPlan for batch size n with its workspaces:
        (plan, output, input gradient, the steps' (sync, step) pairs)."""
        plan = F._ChainPlan(n, self.dtype, 2 * len(self.layers))
        width, layers = self._in_features, self.layers
        dxs, syncs = [], []   # every op's input gradient, in order; the steps' settings

        def arrays(w):
            return np.empty((n, w), self.dtype), np.empty((n, w), self.dtype)

        def add_step(step):
            y, dx = arrays(width)
            plan.add_step(step, y, dx)
            dxs.append(dx)
            return y

        i = 0
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, Linear):
                pre_act = layer._code >= FIRST_PRE_ACTIVATION
                y, dx = np.empty((n, layer.out_features), self.dtype), \
                    np.empty((n, layer.in_features), self.dtype)
                delta = np.empty_like(y) if layer._code and not pre_act else None
                plan.add_linear(layer._W, layer._b, layer._dW, layer._db, y, dx, delta,
                                0 if pre_act else layer._code)
                dxs.append(dx)
                width = layer.out_features
                if pre_act:   # GEMM into the pre-activation, then the activation's own pass
                    step = F._Activation2Step(n, width, self.dtype.name)
                    step.set(layer._code, *ACTIVATION_PARAMS.get(layer._code, (0.0, 0.0)))
                    y = add_step(step)
            elif type(layer) in _PLAN_OPS:
                y, dx = arrays(width)
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

    def forward(self, x):
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

    def backward(self, dy, *, need_dx=False):
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
