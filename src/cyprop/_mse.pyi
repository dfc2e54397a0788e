# Stub of the compiled module pyx/_mse.pyx (squared error and its gradient).
from ._typing import FloatArray

def mse(pred: FloatArray, target: FloatArray, grad: FloatArray, need_grad: bool,
        scale: float, n_threads: int) -> float: ...
