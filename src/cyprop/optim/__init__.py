"""Optimizers with PyTorch's update rules, running the in-place Cython kernels.

``opt = SGD(model.parameters(), lr=0.1, momentum=0.9)``; after each
``model.backward(...)``, ``opt.step()`` updates every parameter's ``value``
in place from its ``grad``. When the parameters tile one contiguous buffer
(as a ``cyprop.nn.Sequential`` lays them out) and their gradients another,
the whole update is one kernel call over that buffer.

* ``SGD``, ``Adam`` (``amsgrad=``), ``AdamW``, ``RMSprop`` (``_optimizer``);
* :func:`minimize`: full-batch L-BFGS-B, Newton-CG and trust-NCG through
  ``scipy.optimize`` (``_minimize``);
* ``clip_grad_norm_``, ``clip_grad_value_`` (``_clip``), as torch.nn.utils';
* :mod:`cyprop.optim.lr_scheduler`: ``StepLR``, ``ExponentialLR``,
  ``CosineAnnealingLR``, ``LinearLR``, ``OneCycleLR``.
"""
from . import lr_scheduler
from ._clip import clip_grad_norm_, clip_grad_value_
from ._minimize import minimize
from ._optimizer import SGD, Adam, AdamW, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "clip_grad_norm_",
           "clip_grad_value_", "lr_scheduler", "minimize"]
