"""BatchNorm1d (training mode: statistics, running update, normalize; backward) and
LayerNorm, forward and backward, on (batch, features)."""
import numpy as np

from cyprop import functional as F

from .common import DTYPES, THREADS, rand, use_threads


class BatchNorm:
    params = (DTYPES, [(256, 256), (4096, 1024)], THREADS)
    param_names = ["dtype", "shape", "threads"]

    def setup(self, dtype, shape, threads):
        use_threads(threads)
        c = shape[1]
        self.x, self.dy = rand(shape, dtype, 0, 2.0), rand(shape, dtype, 1)
        self.g, self.b = np.ones(c, dtype), np.zeros(c, dtype)
        self.rm, self.rv = np.zeros(c, dtype), np.ones(c, dtype)
        self.y, self.dx = np.empty_like(self.x), np.empty_like(self.x)
        self.dg, self.db = np.empty(c, dtype), np.empty(c, dtype)
        self.sm, self.si = np.empty(c), np.empty(c)
        self.time_forward(dtype, shape, threads)

    def time_forward(self, dtype, shape, threads):
        F.batch_norm_forward(self.x, self.g, self.b, self.rm, self.rv, training=True,
                             out=self.y, save_mean=self.sm, save_invstd=self.si)

    def time_backward(self, dtype, shape, threads):
        F.batch_norm_backward(self.dy, self.x, self.g, self.sm, self.si, dx=self.dx,
                              dgamma=self.dg, dbeta=self.db)

    def time_eval_forward(self, dtype, shape, threads):
        F.batch_norm_forward(self.x, self.g, self.b, self.rm, self.rv, training=False,
                             out=self.y, save_mean=self.sm, save_invstd=self.si)


class LayerNorm:
    params = (DTYPES, [(256, 256), (4096, 1024)], THREADS)
    param_names = ["dtype", "shape", "threads"]

    def setup(self, dtype, shape, threads):
        use_threads(threads)
        d = shape[1]
        self.x, self.dy = rand(shape, dtype, 0, 2.0), rand(shape, dtype, 1)
        self.g, self.b = np.ones(d, dtype), np.zeros(d, dtype)
        self.y, self.dx = np.empty_like(self.x), np.empty_like(self.x)
        self.sm, self.si = np.empty(shape[0]), np.empty(shape[0])
        self.time_forward(dtype, shape, threads)

    def time_forward(self, dtype, shape, threads):
        F.layer_norm_forward(self.x, self.g, self.b, out=self.y, save_mean=self.sm,
                             save_invstd=self.si)

    def time_backward(self, dtype, shape, threads):
        F.layer_norm_backward(self.dy, self.x, self.g, self.sm, self.si, dx=self.dx)
