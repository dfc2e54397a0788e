"""Element-wise activation kernels on (batch, 1024)."""
from cyprop import functional as F

from .common import BATCHES, DTYPES, THREADS, rand, use_threads


class Activations:
    params = (DTYPES, BATCHES, ["relu", "sigmoid", "tanh"], THREADS)
    param_names = ["dtype", "batch", "activation", "threads"]

    def setup(self, dtype, batch, activation, threads):
        use_threads(threads)
        self.forward = getattr(F, f"{activation}_forward")
        self.backward = getattr(F, f"{activation}_backward")
        self.x = rand((batch, 1024), dtype, 0, scale=3.0)
        self.dy = rand((batch, 1024), dtype, 1)
        self.y = self.forward(self.x)
        self.out = self.x.copy()

    def time_forward(self, dtype, batch, activation, threads):
        self.forward(self.x, out=self.out)

    def time_backward(self, dtype, batch, activation, threads):
        self.backward(self.dy, self.y, out=self.out)
