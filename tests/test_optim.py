import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import nn, optim
from conftest import assert_close


def _hand_sgd(p, grads, lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False):
    """torch.optim.SGD written out by hand, in float64."""
    p = p.astype(np.float64).copy()
    buf = None
    for g in grads:
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def _hand_adam(p, grads, lr, b1, b2, eps, wd=0.0):
    """torch.optim.Adam written out by hand, in float64."""
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        vhat = v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def _params(dtype, shapes=((5, 3), (3,)), seed=0):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s).astype(dtype), np.zeros(s, dtype)) for s in shapes]


SGD_CASES = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.1),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.5, weight_decay=0.01),
    dict(weight_decay=0.1),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_hand_written_update(kw, dtype, n_threads):
    params = _params(dtype)
    start = [p.value.astype(np.float64) for p in params]
    rng = np.random.default_rng(1)
    grads = [[rng.standard_normal(p.value.shape) for p in params] for _ in range(4)]
    opt = optim.SGD(params, lr=0.05, **kw)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad[...] = g
        opt.step()
    hand_kw = dict(momentum=kw.get("momentum", 0.0), dampening=kw.get("dampening", 0.0),
                   wd=kw.get("weight_decay", 0.0), nesterov=kw.get("nesterov", False))
    for i, p in enumerate(params):
        want = _hand_sgd(start[i], [gs[i].astype(dtype).astype(np.float64) for gs in grads],
                         0.05, **hand_kw)
        assert_close(p.value, want, dtype, scale=5)


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_matches_hand_written_update(wd, dtype, n_threads):
    params = _params(dtype)
    start = [p.value.astype(np.float64) for p in params]
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(p.value.shape) for p in params] for _ in range(5)]
    opt = optim.Adam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad[...] = g
        opt.step()
    for i, p in enumerate(params):
        want = _hand_adam(start[i], [gs[i].astype(dtype).astype(np.float64) for gs in grads],
                          0.01, 0.8, 0.99, 1e-6, wd)
        assert_close(p.value, want, dtype, scale=10)


def test_functional_steps_match_reference(dtype):
    from cyprop import reference as R
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(1000).astype(dtype)
    g = rng.standard_normal(1000).astype(dtype)
    a, b = p0.copy(), p0.copy()
    ma, mb = np.zeros_like(p0), np.zeros_like(p0)
    va, vb = np.zeros_like(p0), np.zeros_like(p0)
    for step in (1, 2):
        F.adam_step(a, g, ma, va, step=step, lr=0.1)
        R.adam_step(b, g, mb, vb, step=step, lr=0.1)
    assert_close(a, b, dtype, scale=10)
    a, b = p0.copy(), p0.copy()
    for first in (True, False):
        F.sgd_step(a, g, ma, lr=0.1, momentum=0.9, first_step=first)
        R.sgd_step(b, g, mb, lr=0.1, momentum=0.9, first_step=first)
    assert_close(a, b, dtype, scale=10)


def test_identical_across_thread_counts(dtype):
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal(200_000).astype(dtype)
    g = rng.standard_normal(200_000).astype(dtype)
    out = []
    for n in (1, 2):
        with cyprop.threads(n):
            p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
            F.adam_step(p, g, m, v, step=1, lr=0.1)
            out.append(p)
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("n", [0, 1, 17, 8192 * 16 + 3])
def test_l2_penalty_kernel(dtype, n_threads, n):
    """sum(W**2) in float64 and dW += coef * W, rounded as NumPy's, in one pass."""
    rng = np.random.default_rng(7)
    W = rng.standard_normal(n).astype(dtype)
    dW = rng.standard_normal(n).astype(dtype)
    want = dW + dtype(0.3) * W
    total = F._add_l2(W, dW, 0.3)
    np.testing.assert_array_equal(dW, want)
    np.testing.assert_allclose(total, np.sum(W.astype(np.float64) ** 2), rtol=1e-14)
    assert isinstance(total, float)
    with pytest.raises(ValueError, match="y"):
        F._add_l2(W, dW.astype(np.float64 if dtype == np.float32 else np.float32), 0.3)


def test_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(3)]
    for make_ours, make_theirs in [
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
         lambda ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.01),
         lambda ts: torch.optim.Adam(ts, lr=0.1, weight_decay=0.01)),
    ]:
        p = nn.Parameter(w0.copy(), np.zeros_like(w0))
        ours = make_ours([p])
        t = torch.tensor(w0.copy(), requires_grad=True)
        theirs = make_theirs([t])
        for g in grads:
            p.grad[...] = g
            ours.step()
            t.grad = torch.tensor(g)
            theirs.step()
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_set_lr_keep_velocity_is_the_velocity_formulation():
    """v = m v - lr g; p += v (scikit-learn/Keras), across learning-rate changes."""
    rng = np.random.default_rng(6)
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    lrs = [0.1, 0.1, 0.02, 0.005]
    p = nn.Parameter(p0.copy(), np.zeros(5))
    opt = optim.SGD([p], lr=lrs[0], momentum=0.9)
    v, want = np.zeros(5), p0.copy()
    for lr, g in zip(lrs, grads):
        opt.set_lr(lr, keep_velocity=True)
        p.grad[...] = g
        opt.step()
        v = 0.9 * v - lr * g
        want += v
    np.testing.assert_allclose(p.value, want, rtol=1e-13)
    with pytest.raises(ValueError, match="lr must be"):
        opt.set_lr(0)
