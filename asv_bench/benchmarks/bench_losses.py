"""Fused softmax + cross-entropy (forward and gradient together; class-index and
probability targets), and MSE."""
import numpy as np

from cyprop import functional as F

from .common import BATCHES, DTYPES, THREADS, rand, use_threads


class SoftmaxCrossEntropy:
    params = (DTYPES, BATCHES, [10, 1000], THREADS)
    param_names = ["dtype", "batch", "classes", "threads"]

    def setup(self, dtype, batch, classes, threads):
        use_threads(threads)
        self.z = rand((batch, classes), dtype, 0, scale=3.0)
        self.t = np.random.default_rng(1).integers(0, classes, batch)
        p = np.random.default_rng(2).random((batch, classes))
        self.p = (p / p.sum(axis=1, keepdims=True)).astype(dtype)  # soft targets
        self.g = np.empty_like(self.z)

    def time_forward_backward(self, dtype, batch, classes, threads):
        F.softmax_cross_entropy(self.z, self.t, grad_out=self.g)

    def time_forward_backward_proba(self, dtype, batch, classes, threads):
        F.softmax_cross_entropy(self.z, self.p, grad_out=self.g)

    def time_softmax(self, dtype, batch, classes, threads):
        F.softmax(self.z, out=self.g)


class MSE:
    params = (DTYPES, BATCHES, THREADS)
    param_names = ["dtype", "batch", "threads"]

    def setup(self, dtype, batch, threads):
        use_threads(threads)
        self.p = rand((batch, 256), dtype, 0)
        self.t = rand((batch, 256), dtype, 1)
        self.g = np.empty_like(self.p)

    def time_forward_backward(self, dtype, batch, threads):
        F.mse_loss(self.p, self.t, grad_out=self.g)
