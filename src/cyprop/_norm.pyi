# Stub of the compiled module pyx/_norm.pyx (batch and layer normalization).
from numpy.typing import DTypeLike

from ._typing import FloatArray

def batch_norm_forward(x: FloatArray, gamma: FloatArray | None, beta: FloatArray | None,
                       running_mean: FloatArray | None, running_var: FloatArray | None,
                       y: FloatArray, save_mean: FloatArray, save_invstd: FloatArray,
                       training: bool, update: bool, momentum: float, eps: float,
                       n_threads: int, relu: bool = False) -> None: ...
def batch_norm_backward(dy: FloatArray, x: FloatArray, gamma: FloatArray | None,
                        save_mean: FloatArray, save_invstd: FloatArray, dx: FloatArray | None,
                        dgamma: FloatArray | None, dbeta: FloatArray | None, training: bool,
                        n_threads: int, relu_out: FloatArray | None = None) -> None: ...
def layer_norm_forward(x: FloatArray, gamma: FloatArray | None, beta: FloatArray | None,
                       y: FloatArray, save_mean: FloatArray, save_invstd: FloatArray,
                       eps: float, n_threads: int) -> None: ...
def layer_norm_backward(dy: FloatArray, x: FloatArray, gamma: FloatArray | None,
                        save_mean: FloatArray, save_invstd: FloatArray, dx: FloatArray | None,
                        dgamma: FloatArray | None, dbeta: FloatArray | None,
                        n_threads: int) -> None: ...

class _NormStep:
    def address(self) -> int: ...

class BatchNormStep(_NormStep):
    def __init__(self, n: int, gamma: FloatArray | None, beta: FloatArray | None,
                 dgamma: FloatArray | None, dbeta: FloatArray | None, running_mean: FloatArray,
                 running_var: FloatArray, save_mean: FloatArray, save_invstd: FloatArray,
                 relu: bool) -> None: ...
    def set(self, training: bool, momentum: float, eps: float) -> None: ...

class LayerNormStep(_NormStep):
    def __init__(self, n: int, width: int, dtype: DTypeLike, gamma: FloatArray | None,
                 beta: FloatArray | None, dgamma: FloatArray | None, dbeta: FloatArray | None,
                 save_mean: FloatArray, save_invstd: FloatArray) -> None: ...
    def set(self, eps: float) -> None: ...
