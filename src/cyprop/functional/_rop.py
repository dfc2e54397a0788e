"""R-operator pieces for cyprop.hessian, whose arrays are its own (the kernels check
dtype, order and size in C): GEMMs with accumulation, activation and loss R-ops."""
from .. import _activations, _linear, _rop
from ._common import _n_threads


def _gemm(a, b, out, trans_a=False, trans_b=False, beta=0.0):
    """out = op(a) @ op(b) + beta * out in the kernels' fixed blocks (pyx/_linear.pyx)."""
    _linear.gemm(a, b, out, trans_a, trans_b, beta, _n_threads())


def _linear_into(x, W, b, z):
    """z = x @ W + b (b may be None)."""
    _linear.linear_forward(x, W, b, b is not None, z, 0, _n_threads())


def _act_rforward(z, Rz, Ry, d1, d2, act, a, b):
    """Ry = act'(z) Rz; d1, d2 = act'(z), act''(z) (Rz, Ry None: derivatives only)."""
    _rop.act_rforward(z, Rz, Ry, d1, d2, act, a, b, _n_threads())


def _act_rbackward(gy, Rgy, d1, d2, Rz, delta, Rdelta):
    """delta = gy d1, Rdelta = Rgy d1 + gy d2 Rz (gy None: Rdelta = Rgy d1)."""
    _rop.act_rbackward(gy, Rgy, d1, d2, Rz, delta, Rdelta, _n_threads())


def _softmax_ce_rop(logits, Rlogits, Rg, row_scale):
    _rop.softmax_ce_rop(logits, Rlogits, Rg, row_scale, _n_threads())


def _pointwise_loss_rop(code, pred, target, R, Rg, scale, param=0.0):
    _rop.pointwise_loss_rop(code, pred, target, R, Rg, scale, param, _n_threads())


def _act_forward_into(z, y, act, a, b):
    """y = act(z) for any activation code, by the activation kernels the layers use."""
    if act < 4:
        _activations.activation_forward(z, y, act, _n_threads())
    else:
        _activations.activation2_forward(z, y, act, a, b, _n_threads())
