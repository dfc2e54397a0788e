"""Dropout as a layer: a new mask every training forward, none in eval mode."""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import functional as F
from .._typing import FloatArray
from .._validation import check_real
from ._module import Module, _check_backward_thread, _check_dtype, _get_ident, _in_use


class Dropout(Module):
    """Inverted dropout (torch's ``nn.Dropout``): zero each element with probability p.

    In training mode ``forward`` returns ``x * mask / (1 - p)`` with a new
    mask each call (the layer's ``seed`` and a step that counts its training
    forwards: see :func:`cyprop.functional.dropout_forward`); in eval mode,
    and for ``p = 0``, the input itself.

    Parameters
    ----------
    p : float in [0, 1), default 0.5
    seed : int in [0, 2**64), optional
        None draws one from the operating system's entropy. The masks depend
        on the seed and the step only, never on the thread count.
    dtype : {np.float32, np.float64}

    Attributes
    ----------
    step : int
        The number of training forwards so far (the next mask's counter).
    """

    def __init__(self, p: float = 0.5, *, seed: int | None = None,
                 dtype: DTypeLike = np.float32) -> None:
        self.p = check_real("p", p, low=0.0, high=1.0, high_open=True)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or \
                not 0 <= seed < 2 ** 64:
            raise ValueError(f"seed must be None or an int in [0, 2**64), got {seed!r}")
        self.seed = int(seed)
        self.dtype = _check_dtype(dtype)
        self._counter = np.zeros(1, np.uint64)   # the step, shared with ChainPlan steps
        self._x = self._y = None
        self._mask_step = None   # the step of the last forward's mask; None: identity

    @property
    def step(self) -> int:
        return int(self._counter[0])

    @step.setter
    def step(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
                not 0 <= value < 2 ** 64:
            raise ValueError(f"step must be an int in [0, 2**64), got {value!r}")
        self._counter[0] = value

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    # In a Sequential's ChainPlan: the step advances the layer's counter itself
    def _chain_step(self, n, width, relu=False):
        return F._DropoutStep(n, width, self.dtype.name, self._counter)

    def _sync_step(self, step, n):
        thr, scale = F._dropout_mask_params(self.p)
        step.set(self.training, thr, scale, self.seed)

    def forward(self, x: ArrayLike) -> FloatArray:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            self._forward_thread = _get_ident()
            x = self._input(x)
            self._x = x
            if not self.training or self.p == 0.0:
                self._mask_step, self._y = None, x
                return x
            y = self._workspace("y", x.shape)
            F.dropout_forward(x, self.p, seed=self.seed, step=self.step, out=y)
            self._mask_step, self._y = self.step, y
            self._counter[0] += 1
            return y
        finally:
            self._call_lock.release()

    def backward(self, dy: ArrayLike, *, need_dx: bool = True,
                 _overwrite_dy: bool = False) -> FloatArray | None:
        if not self._call_lock.acquire(False):
            raise _in_use(self)
        try:
            x = self._saved("_x")
            _check_backward_thread(self)
            dy = self._check_dy(dy, x.shape)
            if not need_dx:
                return None
            if self._mask_step is None:
                return dy
            dx = dy if _overwrite_dy else self._workspace("dx", x.shape)
            return F.dropout_backward(dy, self.p, seed=self.seed, step=self._mask_step, out=dx)
        finally:
            self._call_lock.release()
