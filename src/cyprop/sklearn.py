"""Drop-in scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor``.

Same constructor parameters, defaults and fitted attributes as
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` (solvers "sgd",
"adam" and "lbfgs"), plus ``dtype`` and ``n_threads``; built on cyprop's
layers, losses and optimizers. ``solver="lbfgs"`` is scikit-learn's
full-batch L-BFGS-B through ``scipy.optimize.minimize`` (``max_iter``,
``max_fun``, ``tol`` as its ``gtol``, ``alpha``; ``n_iter_`` and ``loss_``
set, no ``loss_curve_``, a ConvergenceWarning when it stops short, no
``partial_fit``), with the loss and gradient of all rows from one forward +
backward pass per chunk of rows.

Semantics follow scikit-learn: the same weight initialisation (Glorot
uniform, bound ``sqrt(6 / (fan_in + fan_out))``, ``sqrt(2 / ...)`` for
logistic, from ``random_state``), ``batch_size="auto"`` = min(200, n), the
L2 penalty ``alpha`` (``alpha * W / n_batch`` added to weight gradients,
``alpha / 2 * ||W||^2 / n_batch`` to the loss), the squared loss halved,
the same output activations (softmax; logistic for binary and multilabel;
identity for regression), learning-rate schedules, early stopping and
``n_iter_no_change``/``tol`` stopping. Two details differ: SGD follows
scikit-learn's trajectory exactly (the momentum buffer is rescaled when the
learning rate changes, ``SGD.set_lr(keep_velocity=True)``); Adam uses
PyTorch's formulation (epsilon added to ``sqrt(v_hat)`` instead of
``sqrt(v)``), so Adam trajectories differ in the last digits; and there is no
sparse input support.

Requires scikit-learn (``pip install "cyprop[sklearn]"``).
"""
from __future__ import annotations

import numbers
import threading
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if as _available_if
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "cyprop.sklearn needs scikit-learn >= 1.6: pip install 'cyprop[sklearn]'"
    ) from exc

if TYPE_CHECKING:
    # scikit-learn has no type information; its available_if keeps the method as it is
    _Method = TypeVar("_Method", bound=Callable[..., Any])

    def available_if(check: Callable[[Any], bool]) -> Callable[[_Method], _Method]: ...
else:
    available_if = _available_if

from . import functional as F
from . import nn, optim
from .optim._minimize import _chunked_loss_grad, _row_chunks
from ._threads import threads
from .nn._module import _cached
from ._typing import FloatArray

if TYPE_CHECKING:
    from .diagnostics import UnitReport

__all__ = ["MLPClassifier", "MLPRegressor"]

_LBFGS_CHUNK_ROWS = 4096   # rows per forward/backward pass of the full-batch solver


def _stochastic_solver(est):
    """partial_fit exists for the stochastic solvers only (as in scikit-learn)."""
    if est.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{est.solver} is not stochastic.")
    return True


_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


_E = TypeVar("_E", bound="_BaseMLP")


class _BaseMLP(BaseEstimator):
    """Shared fitting code (the structure of sklearn's BaseMultilayerPerceptron)."""

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,), activation: str = "relu",
                 *, solver: Literal["adam", "sgd", "lbfgs"] = "adam", alpha: float = 0.0001,
                 batch_size: int | Literal["auto"] = "auto",
                 learning_rate: Literal["constant", "invscaling", "adaptive"] = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: int | np.random.RandomState | None = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000, dtype: DTypeLike | None = None,
                 n_threads: int | None = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.n_threads = n_threads

    # ------------------------------------------------------------ validation
    def _validate_hyperparameters(self):
        def real(name, low, high=None, low_open=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ValueError(f"{name} must be a real number, got {v!r}")
            if (v <= low if low_open else v < low) or (high is not None and v >= high):
                bound = f"in {'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
                raise ValueError(f"{name} must be {bound}, got {v!r}")

        def integer(name, low):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")

        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
               for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.solver not in ("sgd", "adam", "lbfgs"):
            raise ValueError(f"solver must be 'sgd', 'adam' or 'lbfgs', got {self.solver!r}")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise ValueError("learning_rate must be 'constant', 'invscaling' or 'adaptive', "
                             f"got {self.learning_rate!r}")
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, numbers.Integral)
                                              and not isinstance(self.batch_size, bool)
                                              and self.batch_size >= 1)):
            raise ValueError(f"batch_size must be 'auto' or an int >= 1, got {self.batch_size!r}")
        real("alpha", 0.0)
        real("learning_rate_init", 0.0, low_open=True)
        real("power_t", 0.0)
        integer("max_iter", 1)
        real("tol", 0.0)
        real("momentum", 0.0, 1.0 + 1e-12)
        real("validation_fraction", 0.0, 1.0, low_open=True)
        real("beta_1", 0.0, 1.0)
        real("beta_2", 0.0, 1.0)
        real("epsilon", 0.0, low_open=True)
        integer("n_iter_no_change", 1)
        if self.dtype is not None and np.dtype(self.dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}")
        if self.n_threads is not None:
            integer("n_threads", 1)
        return sizes

    def _validate_input(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse=False, dtype=(np.float64, np.float32),
                             multi_output=True, y_numeric=not is_classifier(self), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _model_dtype(self, X):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)

    # --------------------------------------------------------- model state
    def _build(self, layer_units, dtype, coefs=None, intercepts=None):
        """The cyprop model (and coefs_/intercepts_ views into it)."""
        act = _ACTIVATIONS[self.activation]
        last = len(layer_units) - 2
        layers = [nn.Linear(a, b, activation=None if i == last else act, dtype=dtype)
                  for i, (a, b) in enumerate(zip(layer_units[:-1], layer_units[1:]))]
        if coefs is None:  # sklearn's _init_coef, in its order, from its random state
            factor = 2.0 if self.activation == "logistic" else 6.0
            for layer, a, b in zip(layers, layer_units[:-1], layer_units[1:]):
                bound = np.sqrt(factor / (a + b))
                layer.W = self._random_state.uniform(-bound, bound, (a, b))
                layer.b = self._random_state.uniform(-bound, bound, b)
        else:
            for layer, W, b in zip(layers, coefs, intercepts):
                layer.W, layer.b = W, b
        self._model = nn.Sequential(*layers)
        # predictions from several threads share the model's workspaces: serialise them
        self._model_lock = threading.Lock()
        self._dlogits = {}   # the softmax loss's gradient workspaces, by batch shape
        self.coefs_ = [layer.W for layer in layers]
        self.intercepts_ = [layer.b for layer in layers]

    def _make_optimizer(self):
        params = self._model.parameters()
        if self.solver == "lbfgs":   # full batch, through scipy (_fit_lbfgs)
            self._optimizer = None
        elif self.solver == "sgd":
            self._optimizer = optim.SGD(params, lr=self.learning_rate_init,
                                        momentum=self.momentum,
                                        nesterov=self.nesterovs_momentum and self.momentum > 0)
        else:
            self._optimizer = optim.Adam(params, lr=self.learning_rate_init,
                                         betas=(self.beta_1, self.beta_2), eps=self.epsilon)

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        self._build(layer_units, dtype)
        self._make_optimizer()
        if self.solver != "lbfgs":   # as sklearn: no loss curve or early-stopping state
            self._init_stochastic_state()

    def _init_stochastic_state(self):
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def __getstate__(self):
        state = self.__dict__.copy()
        opt = state.pop("_optimizer", None)
        if opt is not None:
            state["_optimizer_state"] = opt.state_dict()
        state.pop("_model", None)
        state.pop("_model_lock", None)
        state.pop("_dlogits", None)
        return state

    def __setstate__(self, state):
        opt_state = state.pop("_optimizer_state", None)
        self.__dict__.update(state)
        if "coefs_" in state:
            units = [self.coefs_[0].shape[0]] + [W.shape[1] for W in self.coefs_]
            self._build(units, self.coefs_[0].dtype, self.coefs_, self.intercepts_)
            self._make_optimizer()
            if opt_state is not None:
                self._optimizer.load_state_dict(opt_state)

    # ------------------------------------------------------------- training
    def _loss_grad(self, out, y, n):
        """Loss of one batch (sklearn's conventions) and d loss / d out."""
        if self.out_activation_ == "softmax":
            if y.ndim == 1:   # class indices: the kernel's hot path, into a workspace of ours
                dz = _cached(self._dlogits, (out.shape, out.dtype),
                             lambda: np.empty(out.shape, out.dtype))
                result = F._softmax_ce_into(out, y, dz, "mean")
                if result is not None:
                    return result
            return F.softmax_cross_entropy(out, y)
        if self.out_activation_ == "logistic":
            # sigmoid + binary log-loss per output == 2-class softmax over [0, z]
            z = out.reshape(-1, 1)
            logits = np.concatenate([np.zeros_like(z), z], axis=1)
            t = y.reshape(-1, 1).astype(out.dtype)
            loss, g = F.softmax_cross_entropy(logits, np.concatenate([1 - t, t], axis=1),
                                              reduction="sum")
            return loss / n, (g[:, 1] / n).reshape(out.shape)
        # squared error: mean over elements / 2; gradient (pred - y) / n
        loss, g = F.mse_loss(out, y.reshape(out.shape).astype(out.dtype, copy=False),
                             reduction="sum")
        g *= 0.5 / n
        return loss / (2 * out.size), g

    def _fit(self, X, y, incremental):
        sizes = self._validate_hyperparameters()
        dtype = self._model_dtype(X)
        X = X.astype(dtype, copy=False)
        y = self._encode_y(y, incremental)
        n_samples, n_features = X.shape
        layer_units = [n_features] + sizes + [self._n_model_outputs()]
        first = not hasattr(self, "_model") or (not self.warm_start and not incremental)
        if first:
            self._random_state = check_random_state(self.random_state)
            self._initialize(y, layer_units, dtype)
        elif self.coefs_[0].dtype != dtype:
            X = X.astype(self.coefs_[0].dtype)
        if self.solver == "lbfgs" and self._optimizer is not None:
            self._make_optimizer()   # set_params(solver="lbfgs") after a stochastic fit
        with self._model_lock, (threads(self.n_threads) if self.n_threads is not None
                                else nullcontext()):
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, y)
            else:
                if self._optimizer is None:   # a warm start after an lbfgs fit
                    self._make_optimizer()
                    self._init_stochastic_state()
                self._fit_stochastic(X, y, incremental)
        return self

    def _fit_lbfgs(self, X, y):
        """scikit-learn's lbfgs solver: L-BFGS-B over all rows (scipy), alpha on the weights."""
        model = self._model
        n = X.shape[0]
        chunks = _row_chunks(n, _LBFGS_CHUNK_ROWS)
        # where the weights (not the biases) lie in the flat parameter buffer
        is_weight = np.zeros(model._values.size, bool)
        offset = 0
        for p in model.parameters():
            is_weight[offset:offset + p.value.size] = p.value.ndim == 2
            offset += p.value.size

        def chunk_loss(out, i, j):   # the chunk's mean loss and gradient, weighted by its rows
            loss, g = self._loss_grad(out, y[i:j], j - i)
            g *= (j - i) / n
            return loss * (j - i) / n, g

        def loss_grad(theta):
            model._values[...] = theta
            total, grad = _chunked_loss_grad(model, X, chunks, chunk_loss)
            if self.alpha:
                w = theta[is_weight]
                total += 0.5 * self.alpha * float(w @ w) / n
                grad[is_weight] += self.alpha * w / n
            return total, grad

        import scipy.optimize
        res = scipy.optimize.minimize(loss_grad, model._values.astype(np.float64),
                                      method="L-BFGS-B", jac=True,
                                      options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                               "gtol": self.tol})
        model._values[...] = res.x
        if res.status != 0:
            message = res.message.decode("latin1") if isinstance(res.message, bytes) \
                else res.message
            warnings.warn(f"lbfgs failed to converge after {res.nit} iteration(s) "
                          f"(status={res.status}):\n{message}\n\nIncrease the number of "
                          f"iterations to improve the convergence (max_iter={self.max_iter}).",
                          ConvergenceWarning, stacklevel=4)
        self.n_iter_ = min(res.nit, self.max_iter)
        self.loss_ = float(res.fun)

    def _fit_stochastic(self, X, y, incremental):
        model, opt = self._model, self._optimizer
        early_stopping = self.early_stopping and not incremental
        if early_stopping:
            # as sklearn: stratified only for a single output (its y is one-hot otherwise)
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            X, X_val, y, y_val = train_test_split(
                X, y, random_state=self._random_state, test_size=self.validation_fraction,
                stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small: raise validation_fraction "
                                 "or provide more samples")
        n_samples = X.shape[0]
        batch_size = (min(200, n_samples) if self.batch_size == "auto"
                      else int(np.clip(self.batch_size, 1, n_samples)))
        if self.batch_size != "auto" and not 1 <= self.batch_size <= n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going"
                          " to be clipped", stacklevel=3)
        idx = np.arange(n_samples)
        weights = [(layer._W, layer._dW) for layer in model.layers] if self.alpha else []
        X_epoch, y_epoch = X, y
        for _ in range(self.max_iter):
            if self.shuffle:  # as sklearn: shuffle the previous epoch's order
                idx = idx[self._random_state.permutation(n_samples)]
                # one gather per epoch, so that each batch is a slice (a view) of it
                X_epoch, y_epoch = X.take(idx, axis=0), y.take(idx, axis=0)
            accumulated = 0.0
            for start in range(0, n_samples, batch_size):
                stop = min(start + batch_size, n_samples)
                nb = stop - start
                loss, grad = self._loss_grad(model(X_epoch[start:stop]), y_epoch[start:stop], nb)
                model.backward(grad)
                if weights:
                    # sklearn's L2 term in one kernel pass per layer; np.vdot here woke
                    # NumPy's BLAS threads, whose spinning stalled cyprop's (19x at 2 threads)
                    coef, sq = self.alpha / nb, 0.0
                    for W, dW in weights:
                        sq += F._add_l2(W, dW, coef)
                    loss += 0.5 * self.alpha * sq / nb
                opt.step()
                accumulated += loss * nb
            self.n_iter_ += 1
            self.loss_ = accumulated / n_samples
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(early_stopping, X_val if early_stopping else None,
                                              y_val if early_stopping else None)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                opt.set_lr(self.learning_rate_init / (self.t_ + 1) ** self.power_t,
                           keep_velocity=True)
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self.solver == "sgd" and self.learning_rate == "adaptive" and opt.lr > 1e-6:
                    opt.set_lr(opt.lr / 5.0, keep_velocity=True)
                    if self.verbose:
                        print(msg + f" Setting learning rate to {opt.lr:f}")
                    self._no_improvement_count = 0
                else:
                    if self.verbose:
                        print(msg + " Stopping.")
                    break
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning, stacklevel=3)
        if early_stopping:
            for W, b, bW, bb in zip(self.coefs_, self.intercepts_, *self._best_params):
                W[...], b[...] = bW, bb

    def unit_report(self, X: ArrayLike, y: ArrayLike | None = None) -> UnitReport:
        """Dead/saturated units, zero weight columns (and, with y, gradient norms) on X.

        See :func:`cyprop.diagnostics.unit_report`; the gradient is that of
        the estimator's own loss (without the ``alpha`` term).

        Returns
        -------
        cyprop.diagnostics.UnitReport
        """
        from . import diagnostics
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, accept_sparse=False, dtype=(np.float64, np.float32),
                          reset=False)
        X = X.astype(self.coefs_[0].dtype, copy=False)
        kw = {}
        if y is not None:
            y = self._encode_y(y, incremental=True)
            kw = dict(loss_fn=lambda out, t: self._loss_grad(out, t, len(t)), target=y)
        with self._model_lock:
            return diagnostics.unit_report(self._model, X, **kw)

    def _update_no_improvement_count(self, early_stopping, X_val, y_val):
        if early_stopping:
            score = self._score(X_val, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = ([W.copy() for W in self.coefs_],
                                     [b.copy() for b in self.intercepts_])
            if not hasattr(self, "_best_params"):
                self._best_params = ([W.copy() for W in self.coefs_],
                                     [b.copy() for b in self.intercepts_])
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _forward(self, X):
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, accept_sparse=False, dtype=(np.float64, np.float32),
                          reset=False)
        X = X.astype(self.coefs_[0].dtype, copy=False)
        if X.shape[0] == 0:
            return np.empty((0, self.n_outputs_), X.dtype)
        with self._model_lock, (threads(self.n_threads) if self.n_threads is not None
                                else nullcontext()):
            return self._model(X).copy()

    def fit(self: _E, X: ArrayLike, y: ArrayLike) -> _E:
        """Fit the model to data X (n_samples, n_features) and target(s) y.

        Returns
        -------
        self
        """
        X, y = self._validate_input(X, y, reset=True)
        return self._fit(X, y, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for sklearn's ``MLPClassifier``.

    Parameters are those of ``sklearn.neural_network.MLPClassifier`` (same
    names, defaults and meaning, ``solver='lbfgs'`` included), plus:

    dtype : {None, np.float32, np.float64}, default None
        Compute dtype; None means float32 when X is float32, else float64.
    n_threads : int, optional
        Threads for fit and predict (default: :func:`cyprop.get_num_threads`).

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_,
    validation_scores_, best_validation_score_, n_iter_, n_layers_,
    n_outputs_, out_activation_, t_, n_features_in_ : as in scikit-learn.
    """

    def _set_classes(self, labels):
        self._label_binarizer = LabelBinarizer().fit(labels)
        self.classes_ = self._label_binarizer.classes_

    def _encode_y(self, y, incremental):
        """Targets as class indices (multiclass), 0/1 floats (binary) or an indicator."""
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            y = np.asarray(y)
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(f"y must be a label indicator matrix with {len(self.classes_)} "
                                 f"columns, got shape {y.shape}")
            return y
        if len(self.classes_) < 2:
            raise ValueError("MLPClassifier needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {self.classes_[0]!r}")
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y contains labels {unseen} not in classes_ {self.classes_}")
        idx = np.searchsorted(self.classes_, y)
        return idx if self._label_binarizer.y_type_ == "multiclass" else idx.astype(np.float64)

    def fit(self: _E, X: ArrayLike, y: ArrayLike) -> _E:
        """Fit the model to data X (n_samples, n_features) and labels y.

        Returns
        -------
        self
        """
        X, y = self._validate_input(X, y, reset=True)
        if self.warm_start and hasattr(self, "classes_"):
            if not np.array_equal(unique_labels(y), self.classes_) and \
                    type_of_target(y) != "multilabel-indicator":
                raise ValueError("warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got {self.classes_}, "
                                 f"`y` has {unique_labels(y)}")
        else:
            self._set_classes(y)
        return self._fit(X, y, incremental=False)

    def _n_model_outputs(self):
        lb = self._label_binarizer
        if lb.y_type_ == "multilabel-indicator":
            return len(self.classes_)
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _score(self, X, y):
        """Accuracy on encoded targets (for early stopping)."""
        proba = self._proba_from_out(self._model(X))
        if self.out_activation_ == "softmax":
            return float((proba.argmax(axis=1) == y).mean())
        pred = (proba > 0.5) if self.n_outputs_ > 1 else (proba[:, 1] > 0.5)
        return float(np.all(pred.reshape(y.shape) == y.astype(bool), axis=-1).mean()
                     if y.ndim == 2 else (pred == y.astype(bool)).mean())

    def _proba_from_out(self, out):
        if self.out_activation_ == "softmax":
            return F.softmax(out)
        p = F.sigmoid_forward(out)
        if self.n_outputs_ == 1:
            return np.hstack([1 - p, p])
        return p

    @available_if(_stochastic_solver)
    def partial_fit(self: _E, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None) -> _E:
        """One epoch of updates over (X, y); ``classes`` is required on the first call.

        Returns
        -------
        self
        """
        first = not hasattr(self, "classes_")
        X, y = self._validate_input(X, y, reset=first)
        if first:
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._set_classes(y if classes is None else np.unique(classes))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={np.unique(classes)}` is not the same as on the first "
                             f"call to partial_fit, which was {self.classes_}")
        return self._fit(X, y, incremental=True)

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Class probabilities (n_samples, n_classes); (n_samples, n_labels) for multilabel."""
        return self._proba_from_out(self._forward(X))

    def predict_log_proba(self, X: ArrayLike) -> FloatArray:
        """Log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predicted class labels (or label indicator matrix for multilabel)."""
        proba = self.predict_proba(X)
        if self.out_activation_ == "softmax":
            return self.classes_[proba.argmax(axis=1)]
        if self.n_outputs_ == 1:
            return self.classes_[(proba[:, 1] > 0.5).astype(int)]
        return (proba > 0.5).astype(int)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for sklearn's ``MLPRegressor``.

    Parameters and attributes are those of
    ``sklearn.neural_network.MLPRegressor`` (``solver='lbfgs'`` included),
    plus ``dtype`` and ``n_threads`` as in
    :class:`MLPClassifier`. Multi-output targets (n_samples, n_outputs) work.
    """

    def _encode_y(self, y, incremental):
        self._y_ndim = y.ndim
        return y.reshape(len(y), -1)

    def _n_model_outputs(self):
        return self._y_width

    def _fit(self, X, y, incremental):
        self._y_width = 1 if y.ndim == 1 else y.shape[1]
        if hasattr(self, "n_outputs_") and incremental and self._y_width != self.n_outputs_:
            raise ValueError(f"y has {self._y_width} outputs but the model was fitted with "
                             f"{self.n_outputs_}")
        return super()._fit(X, y, incremental)

    def _score(self, X, y):
        from sklearn.metrics import r2_score
        return float(r2_score(y, self._model(X)))

    @available_if(_stochastic_solver)
    def partial_fit(self: _E, X: ArrayLike, y: ArrayLike) -> _E:
        """One epoch of updates over (X, y).

        Returns
        -------
        self
        """
        first = not hasattr(self, "coefs_")
        X, y = self._validate_input(X, y, reset=first)
        return self._fit(X, y, incremental=True)

    def predict(self, X: ArrayLike) -> FloatArray:
        """Predicted values (n_samples,) or (n_samples, n_outputs)."""
        out = self._forward(X)
        return out.ravel() if self.n_outputs_ == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
