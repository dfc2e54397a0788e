# Stub of the compiled module pyx/_softmax_ce.pyx (softmax and fused softmax cross-entropy).

from typing import Literal, overload

import numpy as np
from numpy.typing import NDArray

from ._typing import FloatArray

def softmax(z: FloatArray, p: FloatArray, n_threads: int) -> None: ...
def _set_log_flush(limit: float) -> float: ...
@overload
def softmax_ce_index(z: FloatArray, target: NDArray[np.intp], dz: FloatArray, scale: float,
                     n_threads: int, check: Literal[True] = True) -> tuple[float, int]: ...
@overload
def softmax_ce_index(z: FloatArray, target: NDArray[np.intp], dz: FloatArray, scale: float,
                     n_threads: int, check: bool) -> tuple[float, int] | None: ...
def softmax_ce_proba(z: FloatArray, target: FloatArray, dz: FloatArray | None, scale: float,
                     n_threads: int) -> float: ...
