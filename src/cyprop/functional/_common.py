"""What every functional op shares: outputs checked or allocated, the thread count."""
import math

import numpy as np

from .. import _threads
from .._validation import check_no_overlap, check_out

_EMPTY = {np.dtype(np.float32): np.zeros(1, np.float32), np.dtype(np.float64): np.zeros(1, np.float64)}


_n_threads = _threads.get_num_threads


def _output(name, out, shape, dtype, inputs=(), alias_ok=()):
    """``out`` checked (or a new array) of ``shape``/``dtype``."""
    if out is None:
        return np.empty(shape, dtype)
    check_out(name, out, shape, dtype)
    check_no_overlap(name, out, inputs, alias_ok)
    return out


def _reduce(total, n, reduction):
    if reduction == "sum":
        return float(total)
    return float(total) / n if n else math.nan
