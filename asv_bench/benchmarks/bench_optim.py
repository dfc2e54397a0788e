"""Optimizer updates over a flat parameter vector (as a Sequential lays them out)."""

from cyprop import nn, optim

from .common import DTYPES, THREADS, rand, use_threads


class Optimizers:
    params = (DTYPES, [10_000, 1_000_000], ["sgd", "sgd-momentum", "adam"], THREADS)
    param_names = ["dtype", "size", "optimizer", "threads"]

    def setup(self, dtype, size, optimizer, threads):
        use_threads(threads)
        param = nn.Parameter(rand((size,), dtype, 0), rand((size,), dtype, 1))
        if optimizer == "adam":
            self.opt = optim.Adam([param], lr=1e-3)
        else:
            self.opt = optim.SGD([param], lr=1e-3,
                                 momentum=0.9 if optimizer == "sgd-momentum" else 0.0)
        self.opt.step()

    def time_step(self, dtype, size, optimizer, threads):
        self.opt.step()
