"""The base of every layer and loss: Parameter, Module, workspaces, the thread guard."""
from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike

from .._typing import FloatArray
from .._validation import FLOAT_DTYPES, as_float_array, call_dtype

_M = TypeVar("_M", bound="Module")
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

    def __init__(self, value: FloatArray, grad: FloatArray, name: str = "") -> None:
        self.value, self.grad, self.name = value, grad, name

    def __repr__(self) -> str:
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


_T = TypeVar("_T")


class _Stored(Generic[_T]):
    """The type of a :func:`_stored` attribute (for type checkers): reading gives a
    ``_T``, assigning takes any array-like of the buffer's shape."""

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Stored[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object, owner: type | None = None) -> _T | _Stored[_T]:
        raise NotImplementedError   # pragma: no cover - the attributes are properties

    def __set__(self, obj: object, value: ArrayLike) -> None:
        raise NotImplementedError   # pragma: no cover


def _stored(attr: str, doc: str) -> Any:
    """A property over a fixed buffer: reading returns it, assigning copies into it.

    Declared in the class as ``W: _Stored[FloatArray] = _stored("_W", doc)``."""
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
    """Base class: ``module(x)`` is ``module.forward(x)``.

    ``training`` (True after construction) is the mode, as in torch:
    :meth:`train` and :meth:`eval` set it (a ``Sequential`` sets its layers'),
    and it changes what BatchNorm1d and Dropout do.
    """

    dtype = None
    training = True
    # (value, gradient) attribute pairs of the parameters, in order (see _adopt)
    _param_attrs = ()

    def train(self: _M, mode: bool = True) -> _M:
        """Set training mode (``mode=True``) or evaluation mode; returns the module."""
        self.training = bool(mode)
        return self

    def eval(self: _M) -> _M:
        """Set evaluation mode (``train(False)``); returns the module."""
        return self.train(False)

    def _adopt(self, values, grads, offset):
        """Move parameters and gradients into ``values``/``grads`` at ``offset``."""
        for attr, gattr in self._param_attrs:
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

    def __call__(self, x: ArrayLike) -> FloatArray:
        return self.forward(x)

    def forward(self, x: ArrayLike) -> FloatArray:
        """Compute the output for the batch ``x``."""
        raise NotImplementedError

    def backward(self, dy: ArrayLike, *, need_dx: bool = True) -> FloatArray | None:
        """Back-propagate ``dy`` (gradient w.r.t. the last output); return dx."""
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        """List of :class:`Parameter` objects (empty for parameter-free layers)."""
        return []

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero."""
        for p in self.parameters():
            p.grad.fill(0)

    def __getstate__(self):
        # workspaces and the last forward's arrays are rebuilt on demand
        state = self.__dict__.copy()
        state.pop("_workspaces", None)
        state.pop("_call_lock", None)
        state.pop("_forward_thread", None)
        for key in ("_x", "_y", "_z"):
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
