"""Element-wise activation kernels on (batch, 1024), and dropout."""
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


_PARAMS = {"leaky_relu": {}, "elu": {}, "gelu": {}, "gelu_tanh": {"approximate": "tanh"},
           "silu": {}, "softplus": {}}


class ParamActivations:
    """The activations whose backward takes the pre-activation x."""
    params = (DTYPES, [32, 4096], list(_PARAMS), THREADS)
    param_names = ["dtype", "batch", "activation", "threads"]

    def setup(self, dtype, batch, activation, threads):
        use_threads(threads)
        name = "gelu" if activation.startswith("gelu") else activation
        self.forward = getattr(F, f"{name}_forward")
        self.backward = getattr(F, f"{name}_backward")
        self.kw = _PARAMS[activation]
        self.x = rand((batch, 1024), dtype, 0, scale=3.0)
        self.dy = rand((batch, 1024), dtype, 1)
        self.out = self.x.copy()

    def time_forward(self, dtype, batch, activation, threads):
        self.forward(self.x, out=self.out, **self.kw)

    def time_backward(self, dtype, batch, activation, threads):
        self.backward(self.dy, self.x, out=self.out, **self.kw)


class Dropout:
    params = (DTYPES, [32, 4096], THREADS)
    param_names = ["dtype", "batch", "threads"]

    def setup(self, dtype, batch, threads):
        use_threads(threads)
        self.x = rand((batch, 1024), dtype, 0)
        self.out = self.x.copy()

    def time_forward(self, dtype, batch, threads):
        F.dropout_forward(self.x, 0.5, seed=1, step=2, out=self.out)

    def time_forward_backward(self, dtype, batch, threads):
        F.dropout_forward(self.x, 0.5, seed=1, step=2, out=self.out)
        F.dropout_backward(self.x, 0.5, seed=1, step=2, out=self.out)
