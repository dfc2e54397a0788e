"""Optimizer updates over a flat parameter vector (as a Sequential lays them out),
gradient clipping and a schedule step."""

from cyprop import nn, optim
from cyprop.optim import lr_scheduler

from .common import DTYPES, THREADS, rand, use_threads

_MAKERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=1e-3),
    "sgd-momentum": lambda ps: optim.SGD(ps, lr=1e-3, momentum=0.9),
    "adam": lambda ps: optim.Adam(ps, lr=1e-3),
    "adamw-amsgrad": lambda ps: optim.AdamW(ps, lr=1e-3, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-3),
    "rmsprop-centered-momentum": lambda ps: optim.RMSprop(ps, momentum=0.9, centered=True),
}


class Optimizers:
    params = (DTYPES, [10_000, 1_000_000], list(_MAKERS), THREADS)
    param_names = ["dtype", "size", "optimizer", "threads"]

    def setup(self, dtype, size, optimizer, threads):
        use_threads(threads)
        self.param = nn.Parameter(rand((size,), dtype, 0), rand((size,), dtype, 1))
        self.opt = _MAKERS[optimizer]([self.param])
        self.opt.step()

    def time_step(self, dtype, size, optimizer, threads):
        self.opt.step()


class Clipping:
    params = (DTYPES, [1_000_000], THREADS)
    param_names = ["dtype", "size", "threads"]

    def setup(self, dtype, size, threads):
        use_threads(threads)
        self.params = [nn.Parameter(rand((size,), dtype, 0), rand((size,), dtype, 1, 10.0))]
        self.opt = optim.AdamW(self.params)
        self.sched = lr_scheduler.OneCycleLR(self.opt, max_lr=1e-2, total_steps=10**9)

    def time_clip_grad_norm(self, dtype, size, threads):
        optim.clip_grad_norm_(self.params, 1e9)  # measures the norm, scales nothing

    def time_schedule_step(self, dtype, size, threads):
        self.sched.step()
