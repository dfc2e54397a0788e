"""Data-parallel training and full-batch gradients on Dask (``pip install "cyprop[distributed]"``).

Backprop has one parallelism, the sum over data points; this module spreads
that sum over the workers of a ``distributed`` cluster.

Design
------
* The data is cut into **parts** by rows: a dask array's row chunks as they
  are, a NumPy array into ``parts`` equal row ranges (default: one per
  worker). A part is computed on a worker and stays there (a NumPy part is a
  task's argument, so the scheduler can compute it again on another worker
  if its worker dies); only parameters and gradients move.
* Every worker process keeps a **replica** of the model and a copy of the
  loss with ``reduction="sum"`` (one per worker thread). A task sets the
  replica's parameters to the broadcast vector ``theta``, runs one forward and
  one backward over its rows of one part and returns the summed loss, the
  summed gradient (float64, for float32 models too) and the part's share of
  the loss's normalizer (rows, elements or class weight).
* The parts' sums are added by tasks in a **fixed tree** by part index
  (``(p0 + p1) + (p2 + p3)``...), whichever worker runs them, then divided
  by the normalizer: the result depends on the parts, never on the number
  of workers or where a task ran. A step of :class:`DataParallel` then runs
  the optimizer once, on the driver's model, and broadcasts the new
  parameters.
* A global batch of ``fit`` is a slice of the epoch's row order (a
  permutation from ``shuffle_seed``, or the rows in order); each part works
  on the batch's rows that it holds, in batch order. Parameters after
  training equal those of single-process training that sums the same parts
  in the same tree (bit for bit, in both dtypes, for any number of workers);
  against the plain single-process loop (one backward over the whole batch)
  they differ by the rounding of the sum's order: ~1e-15 relative per step in
  float64, an ulp or two of the float32 gradient.

With ``client=None`` each call starts a ``distributed.LocalCluster`` (worker
processes, one per core, one thread and ``OMP_NUM_THREADS=1`` each) and
closes it afterwards; pass a ``distributed.Client`` to use a running cluster.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        "cyprop.distributed needs dask[distributed]: pip install 'cyprop[distributed]'"
    ) from exc

from . import hessian, nn
from .optim._minimize import _check_model, _mean_normalizer, _run_minimize
from .optim._optimizer import Optimizer

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from scipy.optimize import OptimizeResult

    from .nn._loss import _Loss

__all__ = ["DataParallel", "full_batch_loss_and_grad", "minimize", "local_cluster"]


# ---------------------------------------------------------------------------
# The cluster
@contextlib.contextmanager
def local_cluster(n_workers: int | None = None) -> Iterator[Client]:
    """A ``distributed.LocalCluster`` of worker processes and its client, closed on exit.

    One worker per core (``n_workers`` to choose), one thread each, and
    ``OMP_NUM_THREADS=1`` in each worker so that the workers share the cores
    instead of each starting an OpenMP team the size of the machine.
    """
    n = n_workers if n_workers is not None else (os.cpu_count() or 1)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR,
                           env={"OMP_NUM_THREADS": "1"})
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextlib.contextmanager
def _session(client: Client | None) -> Iterator[Client]:
    if client is None:
        with local_cluster() as c:
            yield c
    else:
        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client or None, got "
                            f"{type(client).__name__}")
        yield client


def _n_workers(client: Client) -> int:
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


# ---------------------------------------------------------------------------
# What runs on the workers
_REPLICAS: dict[tuple[str, int], tuple[Any, Any]] = {}   # (fit token, thread) -> model, loss
_REPLICAS_LOCK = threading.Lock()
_INLINE_PARTS = 4     # up to this many parts, each task carries theta itself


def _replica(token: str, template: tuple[Any, Any]) -> tuple[Any, Any]:
    """This thread's copy of the (model, summed loss) ``template`` of a fit."""
    key = (token, threading.get_ident())
    with _REPLICAS_LOCK:
        r = _REPLICAS.get(key)
        if r is None:
            r = _REPLICAS[key] = copy.deepcopy(template)
    return r


def _drop_replicas(token: str) -> None:
    with _REPLICAS_LOCK:
        for key in [k for k in _REPLICAS if k[0] == token]:
            del _REPLICAS[key]


def _held(value: Any) -> Any:
    """A value the driver sends as a task's argument, so that the scheduler can compute it
    again (send it to another worker) if the worker holding it dies; a scattered value
    would be lost with its worker."""
    return value


def _make_part(x: Any, y: Any) -> tuple[Any, Any]:
    """A part as a worker holds it: C-contiguous rows and their targets."""
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _part_loss_grad(token: str, template: tuple[Any, Any], theta: Any, part: tuple[Any, Any],
                    rows: Any, mean: bool) -> tuple[float, Any, float]:
    """(summed loss, summed gradient in float64, normalizer share) of ``rows`` of a part."""
    model, summed = _replica(token, template)
    x, y = part
    if rows is not None:
        x, y = x[rows], y[rows]
    x = model._input(x)    # the single-process path's dtype and shape errors
    model._values[...] = theta
    loss = float(summed(model(x), y))
    model.backward(summed.backward())
    norm = _mean_normalizer(summed, y, x.shape[0], model._width_at(len(model.layers))) \
        if mean else 0.0
    return loss, model._grads.astype(np.float64), norm


def _part_hvp(token: str, template: tuple[Any, Any], theta: Any, part: tuple[Any, Any],
              p: Any) -> tuple[float, Any, float]:
    """(0, H v of the part's summed loss in float64, 0): the Hessian-vector product's share."""
    model, summed = _replica(token, template)
    x, y = part
    model._values[...] = theta
    return 0.0, hessian.hvp(model, summed, x, y, p).astype(np.float64), 0.0


def _add(a: tuple[float, Any, float], b: tuple[float, Any, float]) -> tuple[float, Any, float]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


# ---------------------------------------------------------------------------
# The driver's side
class _Parts:
    """The data's row parts on the cluster: futures of (x rows, y rows), their row ranges."""

    def __init__(self, client: Client, model: Any, X: Any, y: Any, n_parts: int | None) -> None:
        self.client = client
        if isinstance(X, da.Array):
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (rows, features), got {X.ndim}-D")
            if any(math.isnan(c) for c in X.chunks[0]):
                raise ValueError("X has row chunks of unknown size: call X.compute_chunk_sizes()")
            if len(X.chunks[1]) > 1:
                X = X.rechunk({1: -1})
            sizes = list(X.chunks[0])
            if isinstance(y, da.Array):
                if y.shape[:1] != X.shape[:1]:
                    raise ValueError(f"y must have {X.shape[0]} rows (one per row of X), got "
                                     f"shape {y.shape}")
                if list(y.chunks[0]) != sizes:
                    raise ValueError(f"X and y must have the same row chunks, got {X.chunks[0]} "
                                     f"and {y.chunks[0]}")
                if y.ndim > 1 and len(y.chunks[1]) > 1:
                    y = y.rechunk({1: -1})
            else:
                y = np.asarray(y)
                if y.shape[:1] != X.shape[:1]:
                    raise ValueError(f"y must have {X.shape[0]} rows (one per row of X), got "
                                     f"shape {y.shape}")
                y = da.from_array(y, chunks=(tuple(sizes),) + tuple((s,) for s in y.shape[1:]))
            xs, ys = X.to_delayed().ravel(), y.to_delayed().ravel()
            self.futures = client.compute([dask.delayed(_make_part)(a, b)
                                           for a, b in zip(xs, ys)])
        else:
            X = model._input(X, "X")
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (rows, features), got shape {X.shape}")
            y = np.asarray(y)
            if y.shape[:1] != X.shape[:1]:
                raise ValueError(f"y must have {X.shape[0]} rows (one per row of X), got shape "
                                 f"{y.shape}")
            n = X.shape[0]
            k = max(1, min(n, n_parts if n_parts is not None else _n_workers(client)))
            bounds = np.linspace(0, n, k + 1).round().astype(int)
            sizes = [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]
            with warnings.catch_warnings():
                # the parts are sent once, as task arguments, so that the scheduler can
                # make a part again if its worker dies: dask's advice against large
                # graphs (load the data with dask) is for data that is not in memory
                warnings.filterwarnings("ignore", message=".*large graph", category=UserWarning)
                self.futures = [client.submit(_make_part, X[a:b], y[a:b], pure=False)
                                for a, b in zip(bounds[:-1], bounds[1:])]
        if not sizes or sum(sizes) == 0:
            raise ValueError("X has no rows")
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_rows = int(self.starts[-1])

    def close(self) -> None:
        self.client.cancel(self.futures)


class _Job:
    """One fit's state on the cluster: the replica template, the parts."""

    def __init__(self, client: Client, model: Any, loss_fn: Any, X: Any, y: Any,
                 n_parts: int | None) -> None:
        _check_model(model, loss_fn)
        self.client, self.model = client, model
        summed = copy.deepcopy(loss_fn)
        summed.reduction = "sum"
        self.mean = loss_fn.reduction == "mean"
        self.token = uuid.uuid4().hex
        self.template = client.submit(_held, (model, summed), pure=False)
        self.parts = _Parts(client, model, X, y, n_parts)
        self.bytes_sent = 0
        self.norm = 1.0      # the last loss_grad's normalizer

    def close(self) -> None:
        self.parts.close()
        self.client.cancel([self.template])
        with contextlib.suppress(Exception):
            self.client.run(_drop_replicas, self.token)

    def _theta(self) -> Any:
        """The parameters for this step's tasks: with few parts, the array itself (each task
        carries it: no task to wait for first), else a task's result the parts fetch (one
        copy to each worker)."""
        theta = self.model._values.copy()
        if len(self.parts.futures) <= _INLINE_PARTS:
            return theta
        self.bytes_sent += theta.nbytes * _n_workers(self.client)
        return self.client.submit(_held, theta, pure=False)

    def _reduce(self, futures: list[Any]) -> tuple[float, Any, float]:
        """The fixed tree (by part index) of the parts' (loss, grad, norm): its levels run on
        the cluster down to two sums, which the driver fetches and adds (the same tree)."""
        n_tasks = len(futures)
        while len(futures) > 2:
            futures = [self.client.submit(_add, futures[i], futures[i + 1], pure=False)
                       if i + 1 < len(futures) else futures[i]
                       for i in range(0, len(futures), 2)]
        sums = self.client.gather(futures)
        # one float64 gradient from each part that ran, into a sum or to the driver
        self.bytes_sent += sums[0][1].nbytes * n_tasks
        return sums[0] if len(sums) == 1 else _add(sums[0], sums[1])

    def loss_grad(self, rows: Any = None) -> tuple[float, Any]:
        """(loss, gradient) at the model's parameters: of all rows, or of the global rows
        ``rows`` (a batch, in its order); float64, normalized as the loss's reduction says."""
        theta = self._theta()
        tasks = []
        for k, part in enumerate(self.parts.futures):
            local = None
            if rows is not None:
                lo, hi = self.parts.starts[k], self.parts.starts[k + 1]
                local = rows[(rows >= lo) & (rows < hi)] - lo
                if local.size == 0:
                    continue
            if isinstance(theta, np.ndarray):
                self.bytes_sent += theta.nbytes
            tasks.append(self.client.submit(_part_loss_grad, self.token, self.template, theta,
                                            part, local, self.mean, pure=False))
        loss, grad, norm = self._reduce(tasks)
        self.norm = norm if self.mean else 1.0
        return loss / self.norm, grad / self.norm

    def hvp(self, p: Any) -> Any:
        """H p over all rows at the model's parameters, normalized as the last loss_grad."""
        theta = self._theta()
        pf = self.client.submit(_held, p, pure=False)
        tasks = [self.client.submit(_part_hvp, self.token, self.template, theta, part, pf,
                                    pure=False) for part in self.parts.futures]
        return self._reduce(tasks)[1] / self.norm


def full_batch_loss_and_grad(model: nn.Sequential, loss_fn: _Loss, X: ArrayLike | da.Array,
                             y: ArrayLike | da.Array, *, client: Client | None = None,
                             parts: int | None = None) -> tuple[float, NDArray[np.float64]]:
    """Loss and gradient of ``loss_fn(model(X), y)`` over all rows, summed on the workers.

    Each row part (a dask array's row chunk, or one of ``parts`` row ranges
    of a NumPy array) is one forward and backward on the worker holding it;
    the sums are combined in a fixed tree by part index, in float64.

    Parameters
    ----------
    model : cyprop.nn.Sequential
        Its parameters are used as they are (and not changed). BatchNorm1d
        and Dropout must be in eval mode.
    loss_fn : a cyprop.nn loss
        Its ``reduction`` ('mean' or 'sum') is that of the result, over all rows.
    X : ndarray or dask array (N, in)
        Float data of the model's dtype; a dask array chunked by rows.
    y : ndarray or dask array
        N targets; a dask array must have X's row chunks.
    client : distributed.Client, optional
        None: a LocalCluster for this call (see :func:`local_cluster`).
    parts : int, optional
        Row parts of a NumPy ``X`` (default: one per worker).

    Returns
    -------
    loss : float
    grad : ndarray float64 (P,)
        Over ``model.parameters()`` in order, flattened.
    """
    with _session(client) as c:
        job = _Job(c, model, loss_fn, X, y, parts)
        try:
            return job.loss_grad()
        finally:
            job.close()


class _DistributedObjective:
    """The objective interface of optim.minimize (``loss_grad``, ``hessp``) over a job's parts."""

    def __init__(self, job: _Job, l2: float) -> None:
        self.job, self.l2, self.model = job, l2, job.model

    def _set(self, theta: Any) -> None:
        self.model._values[...] = theta

    def loss_grad(self, theta: Any) -> tuple[float, Any]:
        self._set(theta)
        loss, grad = self.job.loss_grad()
        if self.l2:
            loss += 0.5 * self.l2 * float(theta @ theta)
            grad = grad + self.l2 * theta
        return loss, grad

    def hessp(self, theta: Any, p: Any) -> Any:
        # scipy evaluates loss_grad first: the job knows the data's normalizer by then
        self._set(theta)
        hv = self.job.hvp(p)
        if self.l2:
            hv = hv + self.l2 * p
        return hv


def minimize(model: nn.Sequential, loss_fn: _Loss, X: ArrayLike | da.Array,
             y: ArrayLike | da.Array, *, method: str = "L-BFGS-B",
             client: Client | None = None, parts: int | None = None,
             max_iter: int | None = None, tol: float | None = None, l2: float = 0.0,
             callback: Callable[[NDArray[np.float64]], object] | None = None,
             options: dict[str, Any] | None = None) -> OptimizeResult:
    """:func:`cyprop.optim.minimize` with the loss, gradient and Hessian-vector products
    summed over the cluster (:func:`full_batch_loss_and_grad`), for data that does not fit
    on one machine.

    Same parameters and result as :func:`cyprop.optim.minimize`, plus
    ``client`` and ``parts`` as :func:`full_batch_loss_and_grad` takes them
    (``chunk_rows`` is the parts'). Newton-CG and trust-NCG run
    :func:`cyprop.hessian.hvp` on each part.
    """
    with _session(client) as c:
        job = _Job(c, model, loss_fn, X, y, parts)
        try:
            return _run_minimize(lambda l2: _DistributedObjective(job, l2), model, method,
                                 max_iter, tol, l2, callback, options)
        finally:
            job.close()


class DataParallel:
    """Synchronous data-parallel minibatch training on a Dask cluster.

    Parameters
    ----------
    model : cyprop.nn.Sequential
        Trained in place (the driver's copy; the workers hold replicas).
        BatchNorm1d and Dropout must be in eval mode: a part's batch
        statistics and masks are not those of the global batch.
    loss_fn : a cyprop.nn loss
    optimizer : cyprop.optim.Optimizer
        Over ``model.parameters()``; it steps once per global batch, on the driver.
    client : distributed.Client, optional
        None: a LocalCluster for each :meth:`fit` (see :func:`local_cluster`).
    parts : int, optional
        Row parts of a NumPy ``X`` (default: one per worker of the cluster).
        The result depends on the parts, not on the number of workers.

    Attributes
    ----------
    loss_curve_ : list of float
        Mean loss of each epoch's batches (at the parameters each batch saw).
    n_steps_ : int
        Optimizer steps taken.
    bytes_per_step_ : float
        Parameter and gradient bytes moved per step (the broadcast to every
        worker, one gradient per part), after :meth:`fit`.
    seconds_per_step_ : float
        Wall time per step of the last :meth:`fit`, its setup (sending the
        data's parts, the model's replicas) not counted.

    Examples
    --------
    >>> import numpy as np
    >>> from cyprop import nn, optim
    >>> from cyprop.distributed import DataParallel
    >>> x = np.random.default_rng(0).standard_normal((512, 4)); y = (x[:, 0] > 0).astype(int)
    >>> model = nn.Sequential(nn.Linear(4, 16, activation="relu", seed=0, dtype=np.float64),
    ...                       nn.Linear(16, 2, seed=1, dtype=np.float64))
    >>> dp = DataParallel(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters()))
    >>> dp.fit(x, y, epochs=2, batch_size=128, shuffle_seed=0, progress=False).n_steps_
    8
    """

    def __init__(self, model: nn.Sequential, loss_fn: _Loss, optimizer: Optimizer, *,
                 client: Client | None = None, parts: int | None = None) -> None:
        _check_model(model, loss_fn)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a cyprop.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        values = model._values
        if not all(np.shares_memory(p.value, values) for p in optimizer.params):
            raise ValueError("optimizer must be over model.parameters()")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.client, self.parts = client, parts
        self.loss_curve_: list[float] = []
        self.n_steps_ = 0
        self.bytes_per_step_ = 0.0
        self.seconds_per_step_ = 0.0

    def fit(self, X: ArrayLike | da.Array, y: ArrayLike | da.Array, *, epochs: int = 1,
            batch_size: int = 256, shuffle_seed: int | None = None,
            progress: bool = True) -> DataParallel:
        """Train for ``epochs`` passes over (X, y) in global batches of ``batch_size`` rows.

        Parameters
        ----------
        X : ndarray or dask array (N, in)
            A dask array chunked by rows; its chunks are the parts.
        y : ndarray or dask array
            N targets (a dask array with X's row chunks).
        epochs : int, default 1
        batch_size : int, default 256
            Rows per global batch (the last one of an epoch may be smaller).
        shuffle_seed : int, optional
            The row order of each epoch is a permutation drawn from
            ``numpy.random.default_rng(shuffle_seed)``; None: the rows in order.
        progress : bool, default True
            A tqdm bar over the steps (when tqdm is installed).

        Returns
        -------
        self
        """
        from ._validation import check_positive_int
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        if shuffle_seed is not None and (isinstance(shuffle_seed, bool)
                                         or not isinstance(shuffle_seed, (int, np.integer))):
            raise TypeError(f"shuffle_seed must be an int or None, got {shuffle_seed!r}")
        with _session(self.client) as c:
            job = _Job(c, self.model, self.loss_fn, X, y, self.parts)
            try:
                self._train(job, epochs, batch_size, shuffle_seed, progress)
            finally:
                job.close()
        return self

    def _train(self, job: _Job, epochs: int, batch_size: int, shuffle_seed: int | None,
               progress: bool) -> None:
        n = job.parts.n_rows
        rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        n_batches = -(-n // batch_size)
        bar = None
        if progress:
            try:
                from tqdm.auto import tqdm
                bar = tqdm(total=epochs * n_batches, desc="DataParallel", unit="step")
            except ImportError:  # pragma: no cover
                bar = None
        grads = self.model._grads
        steps0, bytes0 = self.n_steps_, job.bytes_sent
        start = time.perf_counter()
        try:
            for _ in range(epochs):
                order = rng.permutation(n) if rng is not None else np.arange(n)
                total = 0.0
                for b in range(n_batches):
                    rows = order[b * batch_size:(b + 1) * batch_size]
                    loss, grad = job.loss_grad(rows)
                    grads[...] = grad
                    self.optimizer.step()
                    total += loss
                    self.n_steps_ += 1
                    if bar is not None:
                        bar.update(1)
                self.loss_curve_.append(total / n_batches)
        finally:
            if bar is not None:
                bar.close()
        steps = self.n_steps_ - steps0
        self.bytes_per_step_ = (job.bytes_sent - bytes0) / steps if steps else 0.0
        self.seconds_per_step_ = (time.perf_counter() - start) / steps if steps else 0.0
