"""Linear layer kernels: fused forward (GEMM + bias + ReLU) and backward."""
from cyprop import functional as F

from .common import BATCHES, DTYPES, THREADS, rand, use_threads


class Linear:
    params = (DTYPES, BATCHES, [64, 512], THREADS)
    param_names = ["dtype", "batch", "width", "threads"]

    def setup(self, dtype, batch, width, threads):
        use_threads(threads)
        self.x = rand((batch, width), dtype, 0)
        self.W = rand((width, width), dtype, 1, scale=width ** -0.5)
        self.b = rand((width,), dtype, 2)
        self.dy = rand((batch, width), dtype, 3)
        self.y = F.linear_forward(self.x, self.W, self.b, activation="relu")
        self.dx, self.dW, self.db = F.linear_backward(self.dy, self.x, self.W, y=self.y,
                                                      activation="relu")

    def time_forward(self, dtype, batch, width, threads):
        F.linear_forward(self.x, self.W, self.b, activation="relu", out=self.y)

    def time_backward(self, dtype, batch, width, threads):
        F.linear_backward(self.dy, self.x, self.W, y=self.y, activation="relu",
                          dx=self.dx, dW=self.dW, db=self.db)
