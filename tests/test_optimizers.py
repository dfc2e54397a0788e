"""AdamW, Adam's amsgrad and RMSprop: against hand-written float64 updates, the
NumPy reference, torch (when installed), across thread counts and on bad input."""
import numpy as np
import pytest

import cyprop
from cyprop import functional as F
from cyprop import nn, optim
from cyprop import reference as R
from conftest import assert_close


def _hand_adam(p, grads, lr, b1, b2, eps, wd=0.0, decoupled=False, amsgrad=False):
    """torch.optim.Adam / AdamW written out by hand, in float64."""
    p = p.astype(np.float64).copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(vhat) + eps)
    return p


def _hand_rmsprop(p, grads, lr, alpha, eps, wd=0.0, momentum=0.0, centered=False):
    """torch.optim.RMSprop written out by hand, in float64."""
    p = p.astype(np.float64).copy()
    sq, ga, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + wd * p
        sq = alpha * sq + (1 - alpha) * g * g
        if centered:
            ga = alpha * ga + (1 - alpha) * g
            avg = np.sqrt(sq - ga * ga) + eps
        else:
            avg = np.sqrt(sq) + eps
        if momentum:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s).astype(dtype), np.zeros(s, dtype))
            for s in ((5, 3), (3,), (1,))]


def _run(opt_factory, dtype, steps, seed=1):
    params = _params(dtype)
    start = [p.value.astype(np.float64) for p in params]
    rng = np.random.default_rng(seed)
    grads = [[rng.standard_normal(p.value.shape) for p in params] for _ in range(steps)]
    opt = opt_factory(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad[...] = g
        opt.step()
    return params, start, [[gs[i].astype(dtype).astype(np.float64) for gs in grads]
                           for i in range(len(params))]


ADAM_CASES = [dict(), dict(amsgrad=True), dict(weight_decay=0.05), dict(weight_decay=0.05,
                                                                          amsgrad=True)]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_adam_family_matches_hand_written_update(cls, kw, dtype, n_threads):
    kw = dict(kw) if cls == "Adam" or "weight_decay" in kw else dict(kw, weight_decay=0.01)
    params, start, grads = _run(lambda ps: getattr(optim, cls)(ps, lr=0.01, betas=(0.8, 0.99),
                                                               eps=1e-6, **kw), dtype, 6)
    for p, p0, gs in zip(params, start, grads):
        want = _hand_adam(p0, gs, 0.01, 0.8, 0.99, 1e-6, kw.get("weight_decay", 0.0),
                          decoupled=cls == "AdamW", amsgrad=kw.get("amsgrad", False))
        assert_close(p.value, want, dtype, scale=10)


def test_adamw_defaults_are_torchs():
    opt = optim.AdamW(_params(np.float64))
    assert (opt.lr, opt.betas, opt.eps, opt.weight_decay, opt.amsgrad) == (
        1e-3, (0.9, 0.999), 1e-8, 1e-2, False)
    opt = optim.RMSprop(_params(np.float64))
    assert (opt.lr, opt.alpha, opt.eps, opt.weight_decay, opt.momentum, opt.centered) == (
        1e-2, 0.99, 1e-8, 0.0, 0.0, False)


RMSPROP_CASES = [dict(), dict(momentum=0.9), dict(centered=True),
                 dict(centered=True, momentum=0.5, weight_decay=0.1)]


@pytest.mark.parametrize("kw", RMSPROP_CASES, ids=str)
def test_rmsprop_matches_hand_written_update(kw, dtype, n_threads):
    params, start, grads = _run(lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, **kw), dtype, 6)
    for p, p0, gs in zip(params, start, grads):
        want = _hand_rmsprop(p0, gs, 0.01, 0.9, 1e-8, kw.get("weight_decay", 0.0),
                             kw.get("momentum", 0.0), kw.get("centered", False))
        assert_close(p.value, want, dtype, scale=10)


def _states(n, dtype, k):
    return [np.zeros(n, dtype) for _ in range(k)]


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("name", ["adam_step", "adamw_step"])
def test_functional_adam_family_matches_reference(name, amsgrad, dtype):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(1000).astype(dtype)
    a, b = p0.copy(), p0.copy()
    sa, sb = _states(1000, dtype, 3), _states(1000, dtype, 3)
    for step in (1, 2, 3):
        g = rng.standard_normal(1000).astype(dtype)
        getattr(F, name)(a, g, *sa, step=step, lr=0.1, weight_decay=0.1, amsgrad=amsgrad)
        getattr(R, name)(b, g, *sb, step=step, lr=0.1, weight_decay=0.1, amsgrad=amsgrad)
    assert_close(a, b, dtype, scale=10)
    if amsgrad:
        np.testing.assert_array_equal(sa[2], np.maximum(sa[2], sa[1]))


@pytest.mark.parametrize("kw", RMSPROP_CASES, ids=str)
def test_functional_rmsprop_matches_reference(kw, dtype):
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal(1000).astype(dtype)
    a, b = p0.copy(), p0.copy()
    sa, sb = _states(1000, dtype, 3), _states(1000, dtype, 3)
    for _ in range(3):
        g = rng.standard_normal(1000).astype(dtype)
        F.rmsprop_step(a, g, *sa, lr=0.01, **kw)
        R.rmsprop_step(b, g, *sb, lr=0.01, **kw)
    assert_close(a, b, dtype, scale=10)


@pytest.mark.parametrize("make", [
    lambda ps: optim.AdamW(ps, lr=0.1, amsgrad=True),
    lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True, weight_decay=0.01),
], ids=["adamw-amsgrad", "rmsprop-centered-momentum"])
def test_identical_across_thread_counts(make, dtype):
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(200_003).astype(dtype)
    grads = [rng.standard_normal(200_003).astype(dtype) for _ in range(3)]
    out = []
    for n in (1, 2):
        p = nn.Parameter(p0.copy(), np.zeros_like(p0))
        opt = make([p])
        with cyprop.threads(n):
            for g in grads:
                p.grad[...] = g
                opt.step()
        out.append(p.value)
    np.testing.assert_array_equal(out[0], out[1])


def test_state_dict_round_trip_with_buffers_made_on_first_use():
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                 lambda ps: optim.RMSprop(ps, momentum=0.9, centered=True),
                 lambda ps: optim.AdamW(ps, amsgrad=True)):
        a, b = _params(np.float64), _params(np.float64)
        oa, ob = make(a), make(b)
        rng = np.random.default_rng(6)
        for p in a:
            p.grad[...] = rng.standard_normal(p.grad.shape)
        oa.step()
        ob.load_state_dict(oa.state_dict())
        for pa, pb in zip(a, b):
            pb.value[...] = pa.value
            pa.grad[...] = pb.grad[...] = rng.standard_normal(pa.grad.shape)
        oa.step()
        ob.step()
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa.value, pb.value)


def test_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    w0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(20)]
    cases = [
        ("AdamW", dict(lr=0.1)), ("AdamW", dict(lr=0.1, weight_decay=0.2, amsgrad=True)),
        ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.01)),
        ("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, momentum=0.9)),
        ("RMSprop", dict(lr=0.01, centered=True)),
        ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, alpha=0.9)),
    ]
    for name, kw in cases:
        p = nn.Parameter(w0.copy(), np.zeros_like(w0))
        ours = getattr(optim, name)([p], **kw)
        t = torch.tensor(w0.copy(), requires_grad=True)
        theirs = getattr(torch.optim, name)([t], **kw)
        for g in grads:
            p.grad[...] = g
            ours.step()
            t.grad = torch.tensor(g)
            theirs.step()
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=1e-11, atol=1e-13,
                                   err_msg=f"{name} {kw}")


@pytest.mark.parametrize("call, match", [
    (lambda p, g, s: F.adamw_step(p, g, s[0], s[1], step=1, betas=(1.0, 0.9)), "betas"),
    (lambda p, g, s: F.adamw_step(p, g, s[0], s[1], step=0), "step"),
    (lambda p, g, s: F.adamw_step(p, g, s[0], s[1], step=1, eps=-1), "eps"),
    (lambda p, g, s: F.adamw_step(p, g, s[0], s[1], step=1, amsgrad=True), "max_exp_avg_sq"),
    (lambda p, g, s: F.adam_step(p, g, s[0], s[0], step=1), "overlaps"),
    (lambda p, g, s: F.adam_step(p, g, s[0], s[1], s[2][:3], step=1, amsgrad=True), "shape"),
    (lambda p, g, s: F.rmsprop_step(p, g, s[0], centered=True), "grad_avg"),
    (lambda p, g, s: F.rmsprop_step(p, g, s[0], momentum=0.9), "momentum_buffer"),
    (lambda p, g, s: F.rmsprop_step(p, g, s[0], alpha=-0.5), "alpha"),
    (lambda p, g, s: F.rmsprop_step(p, g, g), "overlaps"),
    (lambda p, g, s: F.rmsprop_step(p, g, s[0].astype(np.float32)), "dtype"),
])
def test_bad_input_raises(call, match):
    p, g = np.zeros(6), np.ones(6)
    with pytest.raises((ValueError, TypeError), match=match):
        call(p, g, _states(6, np.float64, 3))


def test_bad_optimizer_arguments_raise():
    ps = _params(np.float64)
    with pytest.raises(ValueError, match="betas"):
        optim.AdamW(ps, betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="weight_decay"):
        optim.AdamW(ps, weight_decay=-1)
    with pytest.raises(ValueError, match="momentum"):
        optim.RMSprop(ps, momentum=-0.1)
    with pytest.raises(TypeError, match="alpha"):
        optim.RMSprop(ps, alpha="0.9")
