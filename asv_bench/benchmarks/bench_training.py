"""Whole training steps through the public API, their memory, and what they learn."""
import numpy as np

from .common import (BATCHES, DTYPES, THREADS, BesideABusyProcess, blobs, mlp, train_step,
                     use_threads)

SIZES = (64, 128, 128, 10)


class TrainingStep:
    params = (DTYPES, BATCHES, THREADS)
    param_names = ["dtype", "batch", "threads"]

    def setup(self, dtype, batch, threads):
        use_threads(threads)
        self.model, self.loss_fn, self.opt = mlp(SIZES, dtype)
        self.x, self.y = blobs(batch, SIZES[0], SIZES[-1], dtype)
        train_step(self.model, self.loss_fn, self.opt, self.x, self.y)

    def time_step(self, dtype, batch, threads):
        train_step(self.model, self.loss_fn, self.opt, self.x, self.y)


class TrainingStepUnderLoad(BesideABusyProcess):
    """The step beside a busy process: at 2 threads it should take at most ~1.3x its
    1-thread time (regions that wait on a descheduled thread back off, pyx/_team.h)."""

    params = (DTYPES, [128], THREADS)
    param_names = ["dtype", "batch", "threads"]

    def setup(self, dtype, batch, threads):
        self.start_load()
        TrainingStep.setup(self, dtype, batch, threads)

    def time_step(self, dtype, batch, threads):
        train_step(self.model, self.loss_fn, self.opt, self.x, self.y)


class TrainingMemory:
    params = (DTYPES,)
    param_names = ["dtype"]

    def peakmem_train_784_512_512_10(self, dtype):
        model, loss_fn, opt = mlp((784, 512, 512, 10), dtype)
        x, y = blobs(1024, 784, 10, dtype)
        for _ in range(3):
            train_step(model, loss_fn, opt, x, y)


class TrainedAccuracy:
    """Held-out accuracy after a fixed training budget: a speed-up that breaks
    learning shows up here as a drop."""

    params = (DTYPES,)
    param_names = ["dtype"]
    unit = "accuracy"

    def track_blobs_accuracy(self, dtype):
        x, y = blobs(4000, 32, 10, dtype, seed=0)
        model, loss_fn, opt = mlp((32, 64, 10), dtype, lr=0.02)
        xt, yt, xv, yv = x[:3000], y[:3000], x[3000:], y[3000:]
        rng = np.random.default_rng(0)
        for _ in range(5):
            order = rng.permutation(len(xt))
            for i in range(0, len(xt), 64):
                idx = order[i:i + 64]
                train_step(model, loss_fn, opt, xt[idx], yt[idx])
        return float((model(xv).argmax(axis=1) == yv).mean())


class TabularRecipe:
    """The README's tabular recipe step: Linear-BN-ReLU-Dropout twice, BCE on logits,
    AdamW, clip_grad_norm_, a cosine schedule (128-256-256-1, batch 256)."""

    params = (DTYPES, THREADS)
    param_names = ["dtype", "threads"]

    def setup(self, dtype, threads):
        from cyprop import bench

        use_threads(threads)
        sizes, batch, p = bench.TABULAR
        self.step = bench.cyprop_tabular_step(sizes, batch, p, np.dtype(dtype).type)
        self.step()

    def time_step(self, dtype, threads):
        self.step()
