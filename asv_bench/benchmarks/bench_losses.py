"""Fused softmax + cross-entropy (forward and gradient together; class-index and
probability targets; torch's weight / label_smoothing / ignore_index), MSE,
BCE on logits, Huber and L1."""
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


class SoftmaxCrossEntropyOptions:
    params = (DTYPES, [256, 4096], THREADS)
    param_names = ["dtype", "batch", "threads"]

    def setup(self, dtype, batch, threads):
        use_threads(threads)
        self.z = rand((batch, 100), dtype, 0, scale=3.0)
        self.t = np.random.default_rng(1).integers(0, 100, batch)
        self.t[::7] = -100
        self.w = np.linspace(0.5, 2, 100).astype(dtype)
        self.g = np.empty_like(self.z)

    def time_weight_smoothing_ignore(self, dtype, batch, threads):
        F.softmax_cross_entropy(self.z, self.t, weight=self.w, label_smoothing=0.1,
                                ignore_index=-100, grad_out=self.g)


class ElementwiseLosses:
    params = (DTYPES, [256, 4096], ["bce", "bce-pos-weight", "huber", "l1"], THREADS)
    param_names = ["dtype", "batch", "loss", "threads"]

    def setup(self, dtype, batch, loss, threads):
        use_threads(threads)
        x = rand((batch, 1024), dtype, 0, scale=3.0)
        t = (np.random.default_rng(1).random((batch, 1024)) > 0.5).astype(dtype)
        g = np.empty_like(x)
        pw = np.linspace(0.5, 2, 1024).astype(dtype)
        self.call = {
            "bce": lambda: F.binary_cross_entropy_with_logits(x, t, grad_out=g),
            "bce-pos-weight": lambda: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw,
                                                                         grad_out=g),
            "huber": lambda: F.huber_loss(x, t, grad_out=g),
            "l1": lambda: F.l1_loss(x, t, grad_out=g),
        }[loss]

    def time_forward_backward(self, dtype, batch, loss, threads):
        self.call()
