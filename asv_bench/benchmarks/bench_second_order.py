"""Second order and memory: hvp/ggnvp against a forward+backward, full-batch L-BFGS, checkpointing."""
import numpy as np

from cyprop import hessian, optim

from .common import DTYPES, THREADS, blobs, mlp, use_threads

SIZES = (64, 128, 128, 10)


class HessianVector:
    """One hvp / ggnvp on the training-step MLP; time_fwd_bwd is the unit the README divides by."""

    params = (DTYPES, [128, 1024], THREADS)
    param_names = ["dtype", "batch", "threads"]

    def setup(self, dtype, batch, threads):
        use_threads(threads)
        self.model, self.loss_fn, _ = mlp(SIZES, dtype)
        self.x, self.y = blobs(batch, SIZES[0], SIZES[-1], dtype)
        self.v = np.random.default_rng(1).standard_normal(self.model._values.size).astype(dtype)
        hessian.hvp(self.model, self.loss_fn, self.x, self.y, self.v)   # workspaces

    def time_fwd_bwd(self, dtype, batch, threads):
        self.loss_fn(self.model(self.x), self.y)
        self.model.backward(self.loss_fn.backward())

    def time_hvp(self, dtype, batch, threads):
        hessian.hvp(self.model, self.loss_fn, self.x, self.y, self.v)

    def time_ggnvp(self, dtype, batch, threads):
        hessian.ggnvp(self.model, self.loss_fn, self.x, self.y, self.v)


class FullBatchLBFGS:
    """20 L-BFGS-B iterations over 4096 rows in chunks of 1024 (float64 accumulation)."""

    params = (DTYPES,)
    param_names = ["dtype"]

    def setup(self, dtype):
        use_threads(1)
        self.x, self.y = blobs(4096, SIZES[0], SIZES[-1], dtype)
        self.start = mlp(SIZES, dtype)[0]._values.copy()

    def time_minimize(self, dtype):
        model, loss_fn, _ = mlp(SIZES, dtype)
        model._values[...] = self.start
        optim.minimize(model, loss_fn, self.x, self.y, max_iter=20, chunk_rows=1024)


class Checkpointing:
    """A training step of an 8-layer 512-wide MLP at batch 1024, plain and in 4 segments."""

    params = ([None, 4],)
    param_names = ["segments"]

    def setup(self, segments):
        use_threads(2)
        sizes = (512,) * 8 + (10,)
        self.model, self.loss_fn, self.opt = mlp(sizes, "float32")
        self.model.checkpoint_segments = segments
        self.x, self.y = blobs(1024, 512, 10, "float32")
        self.time_step(segments)

    def time_step(self, segments):
        self.loss_fn(self.model(self.x), self.y)
        self.model.backward(self.loss_fn.backward())
        self.opt.step()

    def peakmem_step(self, segments):
        self.time_step(segments)
