"""cyprop: fast CPU backpropagation for NumPy code.

Typed Cython kernels (float32 and float64, OpenMP over the batch, GEMMs in
BLAS) under a NumPy-friendly API:

* :mod:`cyprop.functional` - stateless ops (linear, activations, losses,
  optimizer updates) that validate, allocate and dispatch;
* :mod:`cyprop.reference` - the same ops in plain NumPy, same signatures;
* :mod:`cyprop.nn` - layers, ``Sequential`` and losses;
* :mod:`cyprop.optim` - SGD, Adam, AdamW, RMSprop and full-batch ``minimize``;
* :mod:`cyprop.hessian` - exact Hessian- and Gauss-Newton-vector products;
* :mod:`cyprop.diagnostics` - dead and saturated units (``unit_report``);
* thread control: :func:`set_num_threads`, :func:`get_num_threads`,
  :func:`threads`, :func:`openmp_enabled`; :func:`blas_info` (which BLAS the
  GEMMs call);
* :func:`gradcheck` and :func:`gradcheck_model`: gradients against central
  differences, for people writing their own layers;
* :func:`load` for models saved with ``Sequential.save``;
* :mod:`cyprop.sklearn` - scikit-learn estimators (needs scikit-learn).
"""
from . import diagnostics, functional, hessian, nn, optim, reference
from ._blas import blas_info
from ._gradcheck import GradcheckReport, gradcheck, gradcheck_model
from ._threads import get_num_threads, openmp_enabled, set_num_threads, threads
from .nn import load

__version__ = "0.1.0"

__all__ = ["diagnostics", "functional", "hessian", "nn", "optim", "reference", "get_num_threads", "set_num_threads",
           "threads", "openmp_enabled", "blas_info", "gradcheck", "gradcheck_model",
           "GradcheckReport", "load", "__version__"]
