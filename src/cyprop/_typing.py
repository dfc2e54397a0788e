"""Type aliases of the public API, for annotations (numpy.typing).

``FloatArray`` is what every op returns: an ndarray of float32 or of float64
(the call's dtype, see :mod:`cyprop._validation`); inputs are ``ArrayLike``
where lists and scalars are converted, ``FloatArray`` where an array is
written in place (``out=``, parameters, optimizer state).
"""
from typing import Union

import numpy as np
from numpy.typing import NDArray

FloatArray = Union[NDArray[np.float32], NDArray[np.float64]]

__all__ = ["FloatArray"]
