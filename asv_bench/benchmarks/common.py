"""Data and model builders shared by the benchmark modules."""
import numpy as np

import cyprop
from cyprop import nn, optim

DTYPES = ["float32", "float64"]
BATCHES = [1, 32, 256, 4096]
THREADS = [1, 2]


def use_threads(n):
    """Set cyprop's (and BLAS's) thread count for the benchmark that follows."""
    cyprop.set_num_threads(n)


def rand(shape, dtype, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def blobs(n, n_features, n_classes, dtype, seed=0):
    """Gaussian blobs, one per class: separable, so a trained MLP nears 100%."""
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.standard_normal((n_classes, n_features))
    y = rng.integers(0, n_classes, n)
    x = centers[y] + rng.standard_normal((n, n_features))
    return x.astype(dtype), y


def mlp(sizes, dtype, seed=0, lr=0.05, momentum=0.9):
    """(model, loss_fn, optimizer) for an MLP with ReLU hidden layers."""
    last = len(sizes) - 2
    layers = [nn.Linear(a, b, activation=None if i == last else "relu", dtype=dtype, seed=seed + i)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    model = nn.Sequential(*layers)
    return model, nn.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def train_step(model, loss_fn, opt, x, y):
    """One step through the public API, as a user writes it."""
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    opt.step()
    return loss


class BesideABusyProcess:
    """Mixin: each benchmark runs beside one process that keeps a core busy.

    The neighbour a training process shares a machine with (a simulator, a
    data loader); ``cyprop.bench.busy_processes`` starts and stops it.
    """

    def start_load(self):
        from cyprop.bench import busy_processes

        self._load = busy_processes(1)
        self._load.__enter__()

    def teardown(self, *params):
        self._load.__exit__(None, None, None)
