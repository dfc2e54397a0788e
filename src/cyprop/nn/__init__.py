"""Layers with state: Linear, activations, Sequential, and losses.

Every layer computes on workspaces it keeps per batch size, so a training
step in steady state allocates no arrays. The array a layer's ``forward``
(or ``backward``) returns is that workspace: it stays valid until the next
``forward`` (``backward``) call of the same layer with the same batch size.
Copy it (``y.copy()``) to keep it longer. ``backward`` overwrites the
parameter gradients (``Linear.dW``, ``Linear.db``); it does not accumulate.

Threads: the kernels release the GIL, so different models train in parallel
from different Python threads (with the same results as one after the
other). One model (or layer, or loss) is not thread-safe - its workspaces
are shared - and this is enforced: a call while another thread is inside one
raises RuntimeError, as does a ``backward`` on another thread than the
matching ``forward``. Use one model per thread, or a lock.

Parameters live in fixed buffers: assigning ``layer.W = values`` copies the
values in. A ``Sequential`` gathers its layers' parameters (and gradients)
into one contiguous buffer each, so an optimizer updates them all in one
kernel call; and a ``Sequential`` of ``Linear``/activation layers runs its
whole forward (and backward) pass in one kernel call per batch size. A layer
belongs to one ``Sequential``; create optimizers after the model.

Each family of layers has a module of its own, as in ``torch.nn.modules``:
``_module`` (Parameter, Module), ``_linear``, ``_activation``, ``_norm``,
``_dropout``, ``_sequential``, ``_loss`` and ``_io`` (saving and loading);
every public name is here.

Modes: ``model.train()`` / ``model.eval()`` set ``.training`` as in torch
(a Sequential on all its layers); BatchNorm1d normalizes with batch
statistics (and updates its running statistics) in training mode and with
the running statistics in eval mode; Dropout is the identity in eval mode.
"""
from ._activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh
from ._dropout import Dropout
from ._io import load
from ._linear import Linear
from ._loss import BCEWithLogitsLoss, HuberLoss, L1Loss, MSELoss, SoftmaxCrossEntropy
from ._module import Module, Parameter
from ._norm import BatchNorm1d, LayerNorm
from ._sequential import Sequential

__all__ = ["Parameter", "Module", "Linear", "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU",
           "GELU", "SiLU", "Softplus", "BatchNorm1d", "LayerNorm", "Dropout", "Sequential",
           "SoftmaxCrossEntropy", "MSELoss",
           "BCEWithLogitsLoss", "HuberLoss", "L1Loss", "load"]
