"""Layers with state: Linear, activations, Sequential, and losses.

Every layer computes on workspaces it keeps per batch size, so a training
step in steady state allocates no arrays. The array a layer's ``forward``
(or ``backward``) returns is that workspace: it stays valid until the next
``forward`` (``backward``) call of the same layer with the same batch size.
Copy it (``y.copy()``) to keep it longer. ``backward`` overwrites the
parameter gradients (``Linear.dW``, ``Linear.db``); it does not accumulate.

Threads: the kernels release the GIL, so different models train in parallel
from different Python threads (with the same results as one after the
other). One model (or layer, or loss) is not thread-safe - its workspaces
are shared - and this is enforced: a call while another thread is inside one
raises RuntimeError, as does a ``backward`` on another thread than the
matching ``forward``. Use one model per thread, or a lock.

Parameters live in fixed buffers: assigning ``layer.W = values`` copies the
values in. A ``Sequential`` gathers its layers' parameters (and gradients)
into one contiguous buffer each, so an optimizer updates them all in one
kernel call; and a ``Sequential`` of ``Linear``/activation layers runs its
whole forward (and backward) pass in one kernel call per batch size. A layer
belongs to one ``Sequential``; create optimizers after the model.
"""
import json
import os
import threading
import zipfile

import numpy as np

from . import functional as F
from ._threads import get_num_threads
from ._validation import (
    FLOAT_DTYPES,
    activation_code,
    as_float_array,
    call_dtype,
    check_positive_int,
    check_reduction,
)

__all__ = ["Parameter", "Module", "Linear", "ReLU", "Sigmoid", "Tanh", "Sequential",
           "SoftmaxCrossEntropy", "MSELoss", "load"]

_MAX_WORKSPACES = 8  # buffers (or batch-size plans) kept per module, see _cached


class Parameter:
    """A trainable array and its gradient, updated in place by optimizers.

    Attributes
    ----------
    value : ndarray
        The parameter (C-contiguous, writeable).
    grad : ndarray
        Its gradient, same shape and dtype; written by ``backward``.
    name : str
    """

    __slots__ = ("value", "grad", "name")

    def __init__(self, value, grad, name=""):
        self.value, self.grad, self.name = value, grad, name

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"


def _check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _cached(cache, key, make):
    """``cache[key]``, made by ``make()`` on a miss; a full cache is emptied first.

    Bounds the workspaces and plans kept per module (one per batch size in use).
    """
    value = cache.get(key)
    if value is None:
        if len(cache) >= _MAX_WORKSPACES:
            cache.clear()
        value = cache[key] = make()
    return value


# Thread-safety guard: each public method of a layer or loss starts with
#     if not self._call_lock.acquire(False): raise _in_use(self)
# and releases the lock in a ``finally``. Written out in each method rather than
# as a decorator: a wrapper with *args costs 0.3 us per call, a tenth of a
# small model's Python overhead per training step.
_get_ident = threading.get_ident


def _in_use(obj):
    return RuntimeError(f"{type(obj).__name__} is in use by another thread: a cyprop "
                        "model is not thread-safe; use one per thread, or a lock")


class _Guarded:
    """Base giving every instance its ``_call_lock`` (also when unpickled or copied)."""

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj._call_lock = threading.Lock()
        return obj

    def __setstate__(self, state):
        # pickle protocols 0 and 1 rebuild objects without calling __new__
        self.__dict__.update(state)
        self._call_lock = threading.Lock()


def _check_backward_thread(obj):
    if obj.__dict__.get("_forward_thread", _get_ident()) != _get_ident():
        raise RuntimeError(f"{type(obj).__name__}.backward() must run on the thread that ran "
                           "the matching forward()")


def _stored(attr, doc):
    """A property over a fixed buffer: reading returns it, assigning copies into it."""
    name = attr.lstrip("_")

    def get(self):
        return getattr(self, attr)

    def set(self, value):
        target = getattr(self, attr)
        if target is None:
            raise AttributeError(f"{name} is None: the layer was built with bias=False")
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}, got {value.shape}")
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real numbers, got dtype {value.dtype}")
        target[...] = value

    return property(get, set, doc=doc)


class Module(_Guarded):
    """Base class: ``module(x)`` is ``module.forward(x)``."""

    dtype = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """Compute the output for the batch ``x``."""
        raise NotImplementedError

    def backward(self, dy, *, need_dx=True):
        """Back-propagate ``dy`` (gradient w.r.t. the last output); return dx."""
        raise NotImplementedError

    def parameters(self):
        """List of :class:`Parameter` objects (empty for parameter-free layers)."""
        return []

    def zero_grad(self):
        """Set every parameter gradient to zero."""
        for p in self.parameters():
            p.grad.fill(0)

    def __getstate__(self):
        # workspaces and the last forward's arrays are rebuilt on demand
        state = self.__dict__.copy()
        state.pop("_workspaces", None)
        state.pop("_call_lock", None)
        state.pop("_forward_thread", None)
        for key in ("_x", "_y"):
            if key in state:
                state[key] = None
        return state

    def _workspace(self, name, shape):
        return _cached(self.__dict__.setdefault("_workspaces", {}), (name, shape),
                       lambda: np.empty(shape, self.dtype))

    def _input(self, x, name="x"):
        """Validate a forward input against this layer's dtype."""
        call_dtype((name, x))
        if isinstance(x, np.ndarray) and x.dtype != self.dtype:
            raise TypeError(f"{type(self).__name__} has dtype {self.dtype} but {name} has dtype "
                            f"{x.dtype}; convert with {name}.astype(np.{self.dtype})")
        return as_float_array(name, x, self.dtype)

    def _saved(self, name):
        v = self.__dict__.get(name)
        if v is None:
            raise ValueError(f"{type(self).__name__}.backward() called before forward()")
        return v

    def _check_dy(self, dy, shape):
        dy = self._input(dy, "dy")
        if dy.shape != shape:
            raise ValueError(f"dy must have the shape of the last forward output {shape}, "
                             f"got {dy.shape}")
        return dy


class Linear(Module):
    """Fully connected layer ``y = activation(x @ W + b)``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (>= 1).
    activation : {None, 'relu', 'sigmoid', 'tanh'}, optional
        Fused into the layer's forward and backward passes.
    bias : bool, default True
    dtype : {np.float32, np.float64}, default np.float32
    seed : int or numpy.random.Generator, optional
        For the initial weights. He-uniform (``U(-a, a)``, ``a = sqrt(6/in)``)
        for ReLU, Glorot-uniform (``a = sqrt(6/(in+out))``) otherwise; the
        bias starts at zero.

    Attributes
    ----------
    W : ndarray (in, out)
    b : ndarray (out,) or None
    dW, db : ndarray
        Gradients, overwritten by each ``backward``.
    """

    def __init__(self, in_features, out_features, *, activation=None, bias=True,
                 dtype=np.float32, seed=None):
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        activation_code(activation)
        self.activation = None if activation == "identity" else activation
        self.dtype = _check_dtype(dtype)
        self._code = activation_code(activation)
        rng = np.random.default_rng(seed)
        fan = in_features if activation == "relu" else in_features + out_features
        limit = np.sqrt(6.0 / fan)
        self._W = rng.uniform(-limit, limit, (in_features, out_features)).astype(self.dtype)
        self._dW = np.zeros_like(self._W)
        self._b = np.zeros(out_features, self.dtype) if bias else None
        self._db = np.zeros_like(self._b) if bias else None
        self._x = self._y = None

    W = _stored("_W", "Weights (in, out); assigning copies into the buffer.")
    b = _stored("_b", "Bias (out,) or None; assigning copies into the buffer.")
    dW = _stored("_dW", "Weight gradient (in, out), overwritten by backward.")
    db = _stored("_db", "Bias gradient (out,) or None, overwritten by backward.")

    def _adopt(self, values, grads, offset):
        """Move parameters and gradients into ``values``/``grads`` at ``offset``."""
        for attr, gattr in (("_W", "_dW"), ("_b", "_db")):
            old, old_grad = getattr(self, attr), getattr(self, gattr)
            if old is None:
                continue
            end = offset + old.size
            new = values[offset:end].reshape(old.shape)
            new[...] = old
            new_grad = grads[offset:end].reshape(old.shape)
            new_grad[...] = old_grad
            setattr(self, attr, new)
            setattr(self, gattr, new_grad)
            offset = end
        return offset

    def __repr__(self):
        act = f", activation={self.activation!r}" if self.activation else ""
        return f"Linear({self.in_features}, {self.out_features}{act}, dtype={self.dtype})"

    def parameters(self):
        ps = [Parameter(self._W, self._dW, "W")]
        if self._b is not None:
            ps.append(Parameter(self._b, self._db, "b"))
        return ps

    def forward(self, x):
        """``activation(x @ W + b)`` for x (N, in); returns the layer's (N, out) workspace."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            if x.ndim != 2 or x.shape[1] != self.in_features:
                raise ValueError(f"x must have shape (N, {self.in_features}), got {x.shape}")
            y = self._workspace("y", (x.shape[0], self.out_features))
            F.linear_forward(x, self._W, self._b, activation=self.activation, out=y)
            self._x, self._y = x, y
            return y
        finally:
            self._call_lock.release()

    def backward(self, dy, *, need_dx=True, _overwrite_dy=False):
        """Write dW, db for ``dy`` (N, out); return dx (N, in) (None if not ``need_dx``)."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            x, y = self._saved("_x"), self._y
            _check_backward_thread(self)
            dy = self._check_dy(dy, y.shape)
            dx = self._workspace("dx", x.shape) if need_dx else None
            dx, _, _ = F.linear_backward(dy, x, self._W, y=y, activation=self.activation, dx=dx,
                                         dW=self._dW, db=self._db, need_dx=need_dx,
                                         need_db=self._b is not None, overwrite_dy=_overwrite_dy)
            return dx
        finally:
            self._call_lock.release()


class _Activation(Module):
    _forward = _backward = None

    def __init__(self, dtype=np.float32):
        self.dtype = _check_dtype(dtype)
        self._y = None

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, x):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            y = self._workspace("y", x.shape)
            type(self)._forward(x, out=y)
            self._y = y
            return y
        finally:
            self._call_lock.release()

    def backward(self, dy, *, need_dx=True, _overwrite_dy=False):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            y = self._saved("_y")
            _check_backward_thread(self)
            dy = self._check_dy(dy, y.shape)
            if not need_dx:
                return None
            dx = dy if _overwrite_dy else self._workspace("dx", y.shape)
            return type(self)._backward(dy, y, out=dx)
        finally:
            self._call_lock.release()


class ReLU(_Activation):
    """ReLU as a separate layer (``Linear(..., activation='relu')`` fuses it)."""

    _code = activation_code("relu")
    _forward = staticmethod(F.relu_forward)
    _backward = staticmethod(F.relu_backward)


class Sigmoid(_Activation):
    """Logistic sigmoid as a separate layer."""

    _code = activation_code("sigmoid")
    _forward = staticmethod(F.sigmoid_forward)
    _backward = staticmethod(F.sigmoid_backward)


class Tanh(_Activation):
    """Tanh as a separate layer."""

    _code = activation_code("tanh")
    _forward = staticmethod(F.tanh_forward)
    _backward = staticmethod(F.tanh_backward)


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
    every layer is a ``Linear``, ``ReLU``, ``Sigmoid`` or ``Tanh``, forward
    and backward each run the whole chain in one kernel call.
    """

    def __init__(self, *layers):
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {i} must be a cyprop.nn.Module, got {type(layer).__name__}")
        dtypes = {layer.dtype for layer in layers if layer.parameters()}
        if len(dtypes) > 1:
            raise TypeError(f"all layers must share one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop() if dtypes else layers[0].dtype
        for layer in layers:
            if not layer.parameters():
                layer.dtype = self.dtype
        self.layers = list(layers)
        self._gather_parameters()
        self._in_features = self._chain_input_width()
        self._plans = {}
        self._last = None

    def __getstate__(self):
        state = super().__getstate__()
        state["_plans"], state["_last"] = {}, None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._gather_parameters()  # pickling copied each view: tile one buffer again

    def _gather_parameters(self):
        size = sum(p.value.size for p in self.parameters())
        values, grads = np.empty(size, self.dtype), np.zeros(size, self.dtype)
        offset = 0
        for layer in self.layers:
            if isinstance(layer, Linear):
                offset = layer._adopt(values, grads, offset)
        self._values, self._grads = values, grads

    def _chain_input_width(self):
        """Input width if the whole model can run as one ChainPlan, else None."""
        if not all(type(layer) in (Linear, ReLU, Sigmoid, Tanh) for layer in self.layers):
            return None
        widths = [layer.in_features for layer in self.layers if isinstance(layer, Linear)]
        if not widths:
            return None
        width = widths[0]
        for layer in self.layers:
            if isinstance(layer, Linear):
                if layer.in_features != width:
                    raise ValueError(f"{layer!r} takes {layer.in_features} features but the "
                                     f"layer before it gives {width}")
                width = layer.out_features
        return widths[0]

    def __repr__(self):
        inner = ",\n  ".join(map(repr, self.layers))
        return f"Sequential(\n  {inner}\n)"

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def save(self, path):
        """Save the model to ``path`` (an ``.npz`` file; no suffix is added).

        The file holds the parameter arrays and a JSON description of the
        layers; :func:`cyprop.load` reads it back exactly. Only models made of
        ``Linear``, ``ReLU``, ``Sigmoid`` and ``Tanh`` layers can be saved.
        """
        layers, arrays = [], {}
        for i, layer in enumerate(self.layers):
            if type(layer) is Linear:
                layers.append({"type": "Linear", "in_features": layer.in_features,
                               "out_features": layer.out_features,
                               "activation": layer.activation, "bias": layer.b is not None})
                arrays[f"layer{i}.W"] = layer.W
                if layer.b is not None:
                    arrays[f"layer{i}.b"] = layer.b
            elif type(layer) in _ACTIVATION_LAYERS.values():
                layers.append({"type": type(layer).__name__})
            else:
                raise TypeError(f"cannot save layer {i} of type {type(layer).__name__}")
        meta = {"format": _FORMAT, "version": 1, "dtype": self.dtype.name, "layers": layers}
        with open(os.fspath(path), "wb") as f:
            np.savez(f, **arrays, **{_META_KEY: np.array(json.dumps(meta))})

    def _plan(self, n):
        """The ChainPlan (and its output and input-gradient arrays) for batch size n."""
        return _cached(self._plans, n, lambda: self._build_plan(n))

    def _build_plan(self, n):
        """A ChainPlan for batch size n with its workspaces: (plan, output, input gradient)."""
        plan = F._ChainPlan(n, self.dtype, len(self.layers))
        width = self._in_features
        first_dx = y = None
        for layer in self.layers:
            if isinstance(layer, Linear):
                y = np.empty((n, layer.out_features), self.dtype)
                dx = np.empty((n, layer.in_features), self.dtype)
                delta = np.empty_like(y) if layer._code else None
                plan.add_linear(layer._W, layer._b, layer._dW, layer._db, y, dx, delta,
                                layer._code)
            else:
                y, dx = np.empty((n, width), self.dtype), np.empty((n, width), self.dtype)
                plan.add_activation(y, dx, layer._code)
            width = y.shape[1]
            first_dx = dx if first_dx is None else first_dx
        return plan, y, first_dx

    def forward(self, x):
        """Run the layers in order; returns the last layer's output workspace."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            if self._in_features is None:
                for layer in self.layers:
                    x = layer.forward(x)
                return x
            n_threads = get_num_threads()
            # fast path: a C-contiguous ndarray of our dtype and width, for a batch
            # size seen before (the plan checks it in C and declines anything else)
            entry = self._plans.get(x.shape[0]) if type(x) is np.ndarray and x.ndim == 2 else None
            if entry is None or not entry[0].forward(x, n_threads, False):
                x = self._input(x)
                if x.ndim != 2 or x.shape[1] != self._in_features:
                    raise ValueError(f"x must have shape (N, {self._in_features}), got {x.shape}")
                entry = self._plan(x.shape[0])
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
                last = len(self.layers) - 1
                for i in range(last, -1, -1):
                    # the gradients between layers are our own workspaces: safe to overwrite
                    dy = self.layers[i].backward(dy, need_dx=need_dx or i > 0,
                                                 _overwrite_dy=i < last)
                return dy
            if self._last is None:
                raise ValueError("Sequential.backward() called before forward()")
            plan, y, first_dx = self._last
            n_threads = get_num_threads()
            if not plan.backward(dy, bool(need_dx), n_threads, False):
                plan.backward(self._check_dy(dy, y.shape), bool(need_dx), n_threads)
            return first_dx if need_dx else None
        finally:
            self._call_lock.release()


class _Loss(_Guarded):
    def __init__(self, reduction="mean"):
        check_reduction(reduction)
        self.reduction = reduction
        self._grad = None
        self._workspaces = {}

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_grad=None, _workspaces={})
        state.pop("_call_lock", None)
        state.pop("_forward_thread", None)
        return state

    def backward(self):
        """Gradient of the last loss w.r.t. the prediction (a workspace of this loss)."""
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            if self._grad is None:
                raise ValueError(f"{type(self).__name__}.backward() called before forward()")
            _check_backward_thread(self)
            return self._grad
        finally:
            self._call_lock.release()

    def _grad_buffer(self, pred):
        """The gradient workspace for ``pred``: ours, so ``pred`` itself or disjoint from it.

        The last call's gradient first (a training loop keeps one shape), else
        one per (shape, dtype); None for what the functional layer must
        convert or reject.
        """
        last = self._grad
        if (last is not None and type(pred) is np.ndarray and pred.shape == last.shape
                and pred.dtype == last.dtype):
            return last
        if not isinstance(pred, np.ndarray) or pred.dtype not in FLOAT_DTYPES:
            return None  # let the functional layer convert or raise
        return _cached(self._workspaces, (pred.shape, pred.dtype),
                       lambda: np.empty(pred.shape, pred.dtype))


class SoftmaxCrossEntropy(_Loss):
    """Softmax + cross-entropy over logits (N, C) with class indices or probabilities.

    ``loss = loss_fn(logits, target)`` returns a float; ``loss_fn.backward()``
    returns d loss / d logits. See :func:`cyprop.functional.softmax_cross_entropy`.
    """

    def forward(self, logits, target):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            grad = self._grad_buffer(logits)
            fast = None if grad is None else F._softmax_ce_into(logits, target, grad,
                                                               self.reduction)
            loss, self._grad = fast or F.softmax_cross_entropy(
                logits, target, reduction=self.reduction, grad_out=grad)
            return loss
        finally:
            self._call_lock.release()


class MSELoss(_Loss):
    """Mean squared error (mean over all elements, as PyTorch).

    See :func:`cyprop.functional.mse_loss`.
    """

    def forward(self, pred, target):
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            loss, self._grad = F.mse_loss(pred, target, reduction=self.reduction,
                                          grad_out=self._grad_buffer(pred))
            return loss
        finally:
            self._call_lock.release()


_FORMAT = "cyprop.Sequential"
_META_KEY = "__cyprop__"
_ACTIVATION_LAYERS = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh}


def load(path):
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
            else:
                raise bad(f"unknown layer type {spec['type']!r}")
            layers.append(layer)
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
