"""Functional API: validate, allocate, dispatch to the Cython kernels.

Every function takes float32 or float64 arrays of one dtype (the rules are in
the README, "Input conversion"), returns arrays of that dtype, and accepts
preallocated outputs (``out=``, ``grad_out=``, ``dx=``...) that are written,
never reallocated. Kernels run without the GIL on
:func:`cyprop.get_num_threads` threads; results do not depend on that number.

The plain NumPy twin of every function, with the same signature, is
:mod:`cyprop.reference`.

The ops live in one module per family (``_linear``, ``_activation``,
``_loss``, ``_optim``), named as the kernels in ``pyx/``, the reference in
:mod:`cyprop.reference` and the layers in :mod:`cyprop.nn`.
"""
from ._activation import (elu_backward, elu_forward, gelu_backward, gelu_forward,
                          leaky_relu_backward, leaky_relu_forward, relu_backward, relu_forward,
                          sigmoid_backward, sigmoid_forward, silu_backward, silu_forward,
                          softplus_backward, softplus_forward, tanh_backward, tanh_forward)
from ._dropout import dropout_backward, dropout_forward
from ._linear import linear_backward, linear_forward
from ._norm import (batch_norm_backward, batch_norm_forward, layer_norm_backward,
                    layer_norm_forward)
from ._loss import (binary_cross_entropy_with_logits, huber_loss, l1_loss, mse_loss, softmax,
                    softmax_cross_entropy)
from ._optim import adam_step, adamw_step, rmsprop_step, sgd_step

# for cyprop.nn, cyprop.optim and cyprop.sklearn, whose arrays are their own
from ._linear import _ChainPlan  # noqa: F401,E402
from ._linear import _Activation2Step, _BatchNormStep, _DropoutStep, _LayerNormStep  # noqa: F401,E402
from ._dropout import _mask_params as _dropout_mask_params  # noqa: F401,E402
from ._activation import _activation2_args  # noqa: F401,E402
from ._loss import _softmax_ce_into  # noqa: F401,E402
from ._norm import (_batch_norm_relu_backward_into, _batch_norm_relu_into,  # noqa: F401,E402
                    _check_batch_norm_rows)
from ._optim import (_adam_update, _add_l2, _rmsprop_update, _scale, _sgd_update,  # noqa: F401,E402
                     _sq_norm)
from ._rop import (_act_forward_into, _act_rbackward, _act_rforward, _gemm,  # noqa: F401,E402
                   _linear_into, _pointwise_loss_rop, _softmax_ce_rop)

__all__ = [
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "leaky_relu_forward", "leaky_relu_backward", "elu_forward", "elu_backward",
    "gelu_forward", "gelu_backward", "silu_forward", "silu_backward",
    "softplus_forward", "softplus_backward",
    "softmax", "softmax_cross_entropy", "mse_loss", "binary_cross_entropy_with_logits",
    "huber_loss", "l1_loss", "dropout_forward", "dropout_backward",
    "batch_norm_forward", "batch_norm_backward", "layer_norm_forward", "layer_norm_backward",
    "sgd_step", "adam_step", "adamw_step", "rmsprop_step",
]
