"""Reference dropout: Philox4x32-10 written out in NumPy uint64 arithmetic."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._typing import FloatArray
from ._common import _store

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_LO = np.uint64(0xFFFFFFFF)


def philox4x32_10(c0: ArrayLike, c1: ArrayLike, c2: ArrayLike, c3: ArrayLike, k0: int,
                  k1: int) -> list[NDArray[np.uint64]]:
    """The four words of Philox4x32-10 (Salmon et al., SC11) for uint64 arrays of 32-bit values."""
    c = [np.asarray(v, np.uint64) & _LO for v in (c0, c1, c2, c3)]
    k0, k1 = int(k0), int(k1)
    s32 = np.uint64(32)
    for _ in range(10):
        p0, p1 = _M0 * c[0], _M1 * c[2]
        c = [(p1 >> s32) ^ c[1] ^ np.uint64(k0), p1 & _LO, (p0 >> s32) ^ c[3] ^ np.uint64(k1),
             p0 & _LO]
        k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
    return c


def dropout_mask(shape: tuple[int, ...], p: float, seed: int, step: int = 0) -> NDArray[np.bool_]:
    """The keep mask of :func:`cyprop.functional.dropout_forward` (bool array of ``shape``)."""
    n = int(np.prod(shape))
    ctr = np.arange((n + 3) // 4, dtype=np.uint64)
    words = philox4x32_10(ctr & _LO, ctr >> np.uint64(32), step & 0xFFFFFFFF, step >> 32,
                          seed & 0xFFFFFFFF, seed >> 32)
    draws = np.stack(words, axis=1).reshape(-1)[:n]
    return (draws >= np.uint64(round(p * 2 ** 32))).reshape(shape)


def dropout_forward(x: ArrayLike, p: float, *, seed: int, step: int = 0,
                    out: FloatArray | None = None) -> FloatArray:
    """Reference dropout ``x * mask / (1 - p)``; a dropped inf or NaN gives NaN (x * 0)."""
    scale = x.dtype.type(1.0 / (1.0 - p))
    with np.errstate(invalid="ignore"):
        y = x * np.where(dropout_mask(x.shape, p, seed, step), scale, x.dtype.type(0))
    return _store(y, out)


def dropout_backward(dy: ArrayLike, p: float, *, seed: int, step: int = 0,
                     out: FloatArray | None = None) -> FloatArray:
    """Reference dropout gradient."""
    return dropout_forward(dy, p, seed=seed, step=step, out=out)
