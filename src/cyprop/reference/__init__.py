"""Plain-NumPy reference implementation of :mod:`cyprop.functional`.

Same signatures, same return values, written the way a NumPy user would
(``x @ W + b``, ``np.maximum``, softmax with max-subtraction), with no
attempt at speed. The tests check the Cython kernels against it, and the
benchmarks use it as the NumPy peer. It does no input validation beyond what
NumPy itself does. (SciPy's ``special`` gives the normal CDF and expit.)

One module per family, as :mod:`cyprop.functional`: ``_linear``,
``_activation``, ``_loss``, ``_norm``, ``_dropout``, ``_optim``.
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
