"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s ``step()`` semantics.

A scheduler takes the optimizer's learning rate (``optimizer.lr``) at its
creation as the base rate, sets the rate for step 0 at once, and sets the
next one at each ``scheduler.step()`` (call it after ``optimizer.step()``,
once per epoch or once per batch, as the schedule is meant). The rates are
computed with torch's own recursive ("chainable") formulas, so they agree
with torch's to the last bits, and ``state_dict()`` / ``load_state_dict()``
save and restore a schedule. They work with every cyprop optimizer;
``OneCycleLR`` also cycles SGD's and RMSprop's ``momentum`` or Adam's and
AdamW's ``betas[0]``.

torch keeps one rate per parameter group; a cyprop optimizer has one group,
so ``get_last_lr()`` and ``base_lrs`` are lists of one rate.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Literal

from .._validation import check_positive_int
from ._optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
           "OneCycleLR"]


def _real(name, v, low=None, high=None, low_open=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    v = float(v)
    if low is not None and (v <= low if low_open else v < low) or high is not None and v > high:
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name} must be in {bounds}, got {v}")
    return v


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and sets ``optimizer.lr``.

    Parameters
    ----------
    optimizer : cyprop.optim.Optimizer
    last_epoch : int, default -1
        The index of the last step taken; -1 starts the schedule (the
        optimizer's rate becomes its ``initial_lr``). To resume, pass the
        step reached, or restore a :meth:`state_dict`.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a cyprop.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral) \
                or last_epoch < -1:
            raise ValueError(f"last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            if not hasattr(optimizer, "initial_lr"):  # a scheduler before us may have set it
                optimizer.initial_lr = optimizer.lr
        elif not hasattr(optimizer, "initial_lr"):
            raise ValueError("last_epoch > -1 resumes a schedule, but the optimizer has no "
                             "initial_lr: start from last_epoch=-1 or set it")
        self.base_lrs = [optimizer.initial_lr]
        self.last_epoch = int(last_epoch)
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``, from the current ones (torch's chainable form)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` set (a list of one)."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one step and set the optimizer's learning rate."""
        self._step_count += 1
        self.last_epoch += 1
        self.optimizer.lr = float(self.get_lr()[0])
        self._last_lr = [self.optimizer.lr]

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state (everything but the optimizer)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
                if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v)
                              for k, v in state_dict.items()})

    def _lr(self):
        return self.optimizer.lr


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        >= 1.
    gamma : float, default 0.1
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = check_positive_int("step_size", step_size)
        self.gamma = _real("gamma", gamma, 0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [self._lr()]
        return [self._lr() * self.gamma]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every step.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _real("gamma", gamma, 0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [self._lr()]
        return [self._lr() * self.gamma]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the base rate to ``eta_min`` over ``T_max`` steps.

    ``lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2``,
    computed recursively as torch does (and continuing as a cosine past
    ``T_max``).

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        >= 1.
    eta_min : float, default 0
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max = check_positive_int("T_max", T_max)
        self.eta_min = _real("eta_min", eta_min, 0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, T, lo, base, lr = self.last_epoch, self.T_max, self.eta_min, self.base_lrs[0], self._lr()
        if e == 0:
            return [lr]
        if self._step_count == 1 and e > 0:
            return [lo + (base - lo) * (1 + math.cos(e * math.pi / T)) / 2]
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (base - lo) * (1 - math.cos(math.pi / T)) / 2]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - lo) + lo]


class LinearLR(LRScheduler):
    """Scale the rate linearly from ``start_factor`` to ``end_factor`` over ``total_iters``.

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float, default 1/3
        In (0, 1].
    end_factor : float, default 1.0
        In [0, 1].
    total_iters : int, default 5
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor = _real("start_factor", start_factor, 0.0, 1.0, low_open=True)
        self.end_factor = _real("end_factor", end_factor, 0.0, 1.0)
        self.total_iters = check_positive_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, lr = self.last_epoch, self._lr()
        if e == 0:
            return [lr * self.start_factor]
        if e > self.total_iters:
            return [lr]
        d = self.end_factor - self.start_factor
        return [lr * (1.0 + d / (self.total_iters * self.start_factor + (e - 1) * d))]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2017), as ``torch.optim.lr_scheduler.OneCycleLR``.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps``, then falls to ``initial_lr /
    final_div_factor``; the momentum (SGD's and RMSprop's ``momentum``, Adam's
    and AdamW's ``betas[0]``) moves the other way between ``max_momentum``
    and ``base_momentum``. Step it once per batch.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float
    total_steps : int, optional
        Or ``epochs * steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
    pct_start : float, default 0.3
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    cycle_momentum : bool, default True
        Needs SGD or RMSprop with momentum > 0, or Adam/AdamW.
    base_momentum, max_momentum : float, default 0.85, 0.95
    div_factor : float, default 25
    final_div_factor : float, default 1e4
    three_phase : bool, default False
        Back down to ``initial_lr`` before the final annihilation, as torch's.
    last_epoch : int, default -1

    Raises
    ------
    ValueError
        On bad arguments, and when stepped more than ``total_steps`` times.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: Literal["cos", "linear"] = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        if total_steps is not None:
            self.total_steps = check_positive_int("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (check_positive_int("epochs", epochs)
                                * check_positive_int("steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        pct_start = _real("pct_start", pct_start, 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        n = float(self.total_steps)
        if three_phase:
            self._phases = [(pct_start * n - 1, "initial_lr", "max_lr", "max_m", "base_m"),
                            (2 * pct_start * n - 2, "max_lr", "initial_lr", "base_m", "max_m"),
                            (n - 1, "initial_lr", "min_lr", "max_m", "max_m")]
        else:
            self._phases = [(pct_start * n - 1, "initial_lr", "max_lr", "max_m", "base_m"),
                            (n - 1, "max_lr", "min_lr", "base_m", "max_m")]
        max_lr = _real("max_lr", max_lr, 0.0, low_open=True)
        initial = max_lr / _real("div_factor", div_factor, 0.0, low_open=True)
        self._values = {"initial_lr": initial, "max_lr": max_lr,
                        "min_lr": initial / _real("final_div_factor", final_div_factor, 0.0,
                                                  low_open=True)}
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            self._use_beta1 = hasattr(optimizer, "betas")
            if not self._use_beta1 and not getattr(optimizer, "momentum", 0):
                raise ValueError("cycle_momentum needs an optimizer with momentum > 0 (SGD, "
                                 "RMSprop) or betas (Adam, AdamW); pass cycle_momentum=False")
            self._values["base_m"] = _real("base_momentum", base_momentum, 0.0, 1.0)
            self._values["max_m"] = _real("max_momentum", max_momentum, 0.0, 1.0)
            if last_epoch == -1:
                self._set_momentum(optimizer, self._values["max_m"])
        if last_epoch == -1 and isinstance(optimizer, Optimizer):
            optimizer.initial_lr = initial
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, optimizer, m):
        if self._use_beta1:
            optimizer.betas = (m, optimizer.betas[1])
        else:
            optimizer.momentum = m

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps "
                             f"is {self.total_steps}")
        v, start_step = self._values, 0.0
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
            if step <= end_step or i == len(self._phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                lr = self._anneal(v[lr0], v[lr1], pct)
                if self.cycle_momentum:
                    self._set_momentum(self.optimizer, self._anneal(v[m0], v[m1], pct))
                return [lr]
            start_step = end_step
