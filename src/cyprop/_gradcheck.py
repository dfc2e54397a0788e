"""Gradient checks by central differences, for people writing their own layers.

``gradcheck(fn, inputs)`` compares the gradient a user's code computes with
central differences of the function's value,

    g_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),

in float64 (truncation error O(eps^2 f'''), rounding O(|f| u / eps): with
eps = 1e-6 both sit near 1e-10 for a well-scaled f). ``gradcheck_model``
does the same for a whole model's parameter gradients under a loss.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validation import check_real

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .nn import Sequential
    from .nn._loss import _Loss

__all__ = ["gradcheck", "gradcheck_model", "GradcheckReport"]


@dataclass
class GradcheckReport:
    """What :func:`gradcheck` found.

    Attributes
    ----------
    passed : bool
        Every entry satisfied ``|analytic - numeric| <= atol + rtol * |numeric|``.
    max_abs_error, max_rel_error : float
        The largest absolute difference, and the largest difference relative
        to ``max(|numeric|, atol)``.
    worst : tuple
        ``(input index, element index)`` of the entry furthest outside the
        tolerance (or, when all pass, with the largest absolute error).
    analytic, numeric : float
        The two gradients at ``worst``.
    n_checked : int
        How many entries were compared.
    """

    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst: tuple[int, int]
    analytic: float
    numeric: float
    n_checked: int

    def __str__(self) -> str:
        where = f"input {self.worst[0]}, element {self.worst[1]}"
        return (f"gradcheck {'passed' if self.passed else 'FAILED'}: {self.n_checked} entries, "
                f"max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}"
                f"; worst at {where}: analytic {self.analytic!r}, numeric {self.numeric!r}")


def _scalar(value, what):
    v = np.asarray(value)
    if v.shape != () and v.size != 1:
        raise ValueError(f"{what} must return a scalar value, got an array of shape {v.shape}")
    if not np.issubdtype(v.dtype, np.number) or np.iscomplexobj(v):
        raise TypeError(f"{what} must return a real scalar, got {v.dtype}")
    return float(v.reshape(()))


def _compare(analytic, numeric, rtol, atol):
    """The report for lists of analytic and numeric gradients (flat float64 arrays)."""
    worst, worst_excess, max_abs, max_rel = (0, 0), -np.inf, 0.0, 0.0
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        if a.size == 0:
            continue
        err = np.abs(a - n)
        nan = np.isnan(err)
        excess = np.where(nan, np.inf, err - (atol + rtol * np.abs(n)))
        i = int(np.argmax(excess))
        if nan.any():   # a NaN on either side: the errors are unbounded
            max_abs = max_rel = np.inf
        else:
            max_abs = max(max_abs, float(err.max()))
            max_rel = max(max_rel, float((err / np.maximum(np.abs(n), atol)).max()))
        if excess[i] > worst_excess:
            worst, worst_excess = (k, i), excess[i]
    k, i = worst
    a_w = float(analytic[k][i]) if analytic and analytic[k].size else float("nan")
    n_w = float(numeric[k][i]) if numeric and numeric[k].size else float("nan")
    return GradcheckReport(passed=bool(worst_excess <= 0), max_abs_error=max_abs,
                           max_rel_error=max_rel, worst=worst, analytic=a_w, numeric=n_w,
                           n_checked=sum(a.size for a in analytic))


def _central_differences(flat, f, eps):
    """(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for each entry i of the view ``flat``,
    perturbed in place (and put back, whatever f raises)."""
    num = np.empty(flat.size)
    for i in range(flat.size):
        orig = flat[i]
        try:
            flat[i] = orig + eps
            f_plus = f()
            flat[i] = orig - eps
            f_minus = f()
        finally:
            flat[i] = orig
        num[i] = (f_plus - f_minus) / (2 * eps)
    return num


def _finish(report, raise_on_failure):
    if raise_on_failure and not report.passed:
        raise AssertionError(str(report))
    return report


def _check_tolerances(eps, rtol, atol):
    check_real("eps", eps, low=0.0, low_open=True)
    check_real("rtol", rtol, low=0.0)
    check_real("atol", atol, low=0.0)


def gradcheck(fn: Callable[..., tuple[Any, Any]], inputs: ArrayLike | Sequence[ArrayLike], *,
              eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8,
              raise_on_failure: bool = True) -> GradcheckReport:
    """Check a user-computed gradient against central differences in float64.

    Parameters
    ----------
    fn : callable
        ``fn(*inputs)`` returns ``(value, grad)``: the scalar value and its
        gradient with respect to each input (one array for one input, else a
        sequence of arrays shaped like the inputs).
    inputs : array_like or sequence of array_like
        The point to check at. Converted to float64 copies: ``fn`` receives
        those, and each is perturbed in place, one entry at a time.
    eps : float, default 1e-6
        Step of the central differences.
    rtol, atol : float
        An entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
    raise_on_failure : bool, default True
        Raise ``AssertionError`` (with the worst entry) when an entry fails;
        with False, return the report either way.

    Returns
    -------
    GradcheckReport

    Raises
    ------
    AssertionError
        If an entry fails (unless ``raise_on_failure=False``).
    ValueError, TypeError
        If ``fn`` does not return a real scalar and one gradient per input
        of the input's shape, or the tolerances are not valid.

    Examples
    --------
    >>> import numpy as np, cyprop
    >>> def f(x):
    ...     return float(np.sum(np.tanh(x))), 1 - np.tanh(x) ** 2
    >>> cyprop.gradcheck(f, np.linspace(-2, 2, 5)).passed
    True
    """
    _check_tolerances(eps, rtol, atol)
    single = isinstance(inputs, np.ndarray) or np.isscalar(inputs)
    xs = [np.array(inputs if single else x, dtype=np.float64) for x in
          ([inputs] if single else list(inputs))]
    if not xs:
        raise ValueError("gradcheck needs at least one input")
    for k, x in enumerate(xs):
        if not np.isfinite(x).all():
            raise ValueError(f"input {k} holds NaN or infinity")
    out = fn(*xs)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError("fn must return a (value, grad) pair")
    value, grads = out
    _scalar(value, "fn")
    if single and not isinstance(grads, (list, tuple)):
        grads = [grads]
    grads = list(grads)
    if len(grads) != len(xs):
        raise ValueError(f"fn returned {len(grads)} gradients for {len(xs)} inputs")
    analytic = []
    for k, (g, x) in enumerate(zip(grads, xs)):
        g = np.asarray(g, dtype=np.float64)
        if g.shape != x.shape:
            raise ValueError(f"gradient {k} has shape {g.shape}, but input {k} has {x.shape}")
        analytic.append(g.ravel().copy())
    numeric = [_central_differences(x.reshape(-1), lambda: _scalar(fn(*xs)[0], "fn"), eps)
               for x in xs]
    return _finish(_compare(analytic, numeric, rtol, atol), raise_on_failure)


def _model_loss(model, loss_fn, x, target, dropout_steps):
    for layer, step in dropout_steps:   # the same masks at every evaluation
        layer.step = step
    return float(loss_fn(model(x), target))


def gradcheck_model(model: Sequential, loss_fn: _Loss, x: ArrayLike, target: ArrayLike, *,
                    eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8,
                    raise_on_failure: bool = True) -> GradcheckReport:
    """Check a model's parameter gradients under a loss against central differences.

    The analytic gradient is the model's own ``backward`` of
    ``loss_fn(model(x), target)``; the numeric one perturbs each entry of the
    model's parameters in turn (they, a Dropout's step and a BatchNorm's
    running statistics are restored afterwards). A Dropout layer in training
    mode draws the same mask at every evaluation.

    Parameters
    ----------
    model : cyprop.nn.Sequential (or a cyprop.nn.Module with parameters), float64
    loss_fn : a cyprop.nn loss (``SoftmaxCrossEntropy``, ``MSELoss``, ...)
    x, target : array_like
        A batch and its targets.
    eps, rtol, atol, raise_on_failure
        As in :func:`gradcheck`.

    Returns
    -------
    GradcheckReport
        Input index ``k`` of ``worst`` is the index of the parameter in
        ``model.parameters()``.

    Raises
    ------
    TypeError
        If the model is not float64 (differences of float32 values are
        accurate to only ~1e-3) or not a cyprop module.
    AssertionError
        If an entry fails (unless ``raise_on_failure=False``).
    """
    from .nn import Dropout, Module

    _check_tolerances(eps, rtol, atol)
    if not isinstance(model, Module):
        raise TypeError(f"model must be a cyprop.nn.Module, got {type(model).__name__}")
    if np.dtype(model.dtype) != np.float64:
        raise TypeError(f"gradcheck_model needs a float64 model (central differences of "
                        f"{np.dtype(model.dtype)} values are too coarse); got {model.dtype}")
    params = model.parameters()
    if not params:
        raise ValueError("the model has no parameters to check")
    layers = getattr(model, "layers", [model])
    dropout_steps = [(layer, layer.step) for layer in layers if isinstance(layer, Dropout)]
    # BatchNorm's running statistics move at each training-mode forward: put back after
    buffers = [(a, a.copy()) for layer in layers if hasattr(layer, "buffers")
               for a in layer.buffers().values()]
    _model_loss(model, loss_fn, x, target, dropout_steps)
    model.backward(loss_fn.backward())
    analytic = [p.grad.ravel().astype(np.float64) for p in params]
    try:
        numeric = [_central_differences(
            p.value.reshape(-1), lambda: _model_loss(model, loss_fn, x, target, dropout_steps),
            eps) for p in params]
    finally:
        for layer, step in dropout_steps:
            layer.step = step
        for a, saved in buffers:
            a[...] = saved
    return _finish(_compare(analytic, numeric, rtol, atol), raise_on_failure)
