"""Gradient clipping and learning-rate schedules, against closed forms and torch."""
import math

import numpy as np
import pytest

import cyprop
from cyprop import nn, optim
from cyprop.optim import lr_scheduler as S


def _model(dtype=np.float64):
    model = nn.Sequential(nn.Linear(7, 5, activation="tanh", dtype=dtype, seed=0),
                          nn.Linear(5, 3, dtype=dtype, seed=1))
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.grad[...] = 3 * rng.standard_normal(p.grad.shape)
    return model


def _all_grads(params):
    return np.concatenate([p.grad.ravel().astype(np.float64) for p in params])


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0, 3.0])
def test_clip_grad_norm_scales_to_max_norm(norm_type, dtype, n_threads):
    model = _model(dtype)
    before = _all_grads(model.parameters())
    want = np.linalg.norm(before, ord=norm_type)
    total = optim.clip_grad_norm_(model.parameters(), 1.5, norm_type=norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, want, rtol=1e-6 if dtype == np.float32 else 1e-13)
    after = _all_grads(model.parameters())
    np.testing.assert_allclose(after, before * (1.5 / (want + 1e-6)),
                               rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(np.linalg.norm(after, ord=norm_type), 1.5, rtol=1e-5)


def test_clip_grad_norm_leaves_small_gradients_alone_and_accepts_a_module():
    model = _model()
    before = _all_grads(model.parameters())
    total = optim.clip_grad_norm_(model, 1e6)
    np.testing.assert_allclose(total, np.linalg.norm(before), rtol=1e-14)
    np.testing.assert_array_equal(_all_grads(model.parameters()), before)


def test_one_flat_buffer_or_separate_parameters_give_the_same_bits():
    flat = _model()  # a Sequential's gradients tile one buffer
    separate = [nn.Parameter(p.value.copy(), p.grad.copy()) for p in flat.parameters()]
    assert optim.clip_grad_norm_(flat, 0.5) == optim.clip_grad_norm_(separate, 0.5)
    np.testing.assert_array_equal(_all_grads(flat.parameters()), _all_grads(separate))


def test_clip_grad_norm_identical_across_thread_counts(dtype):
    rng = np.random.default_rng(1)
    g0 = rng.standard_normal(300_001).astype(dtype)
    out = []
    for n in (1, 2):
        p = nn.Parameter(np.zeros_like(g0), g0.copy())
        with cyprop.threads(n):
            out.append((optim.clip_grad_norm_([p], 1.0), p.grad.copy()))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_clip_grad_norm_non_finite():
    model = _model()
    model.parameters()[0].grad[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="norm"):
        optim.clip_grad_norm_(model, 1.0, error_if_nonfinite=True)
    assert math.isnan(optim.clip_grad_norm_(model, 1.0))
    assert np.isnan(_all_grads(model.parameters())).all()  # as torch: scaled by NaN


def test_clip_grad_value():
    model = _model()
    before = _all_grads(model.parameters())
    optim.clip_grad_value_(model.parameters(), 0.7)
    np.testing.assert_array_equal(_all_grads(model.parameters()), np.clip(before, -0.7, 0.7))


@pytest.mark.parametrize("call, error, match", [
    (lambda m: optim.clip_grad_norm_(m, -1.0), ValueError, "max_norm"),
    (lambda m: optim.clip_grad_norm_(m, 1.0, norm_type=0), ValueError, "norm_type"),
    (lambda m: optim.clip_grad_norm_([np.zeros(3)], 1.0), TypeError, "grad"),
    (lambda m: optim.clip_grad_value_(m, -0.1), ValueError, "clip_value"),
    (lambda m: optim.clip_grad_value_(m, "1"), TypeError, "clip_value"),
])
def test_clip_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(_model())


def test_clip_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    for norm_type in (2.0, math.inf, 1.5):
        model = _model()
        ts = [torch.tensor(p.value.copy(), requires_grad=True) for p in model.parameters()]
        for t, p in zip(ts, model.parameters()):
            t.grad = torch.tensor(p.grad.copy())
        ours = optim.clip_grad_norm_(model, 2.0, norm_type=norm_type)
        theirs = torch.nn.utils.clip_grad_norm_(ts, 2.0, norm_type=norm_type)
        np.testing.assert_allclose(ours, float(theirs), rtol=1e-13)
        for t, p in zip(ts, model.parameters()):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-13)
    model = _model()
    ts = [torch.zeros(p.grad.shape, dtype=torch.float64, requires_grad=True)
          for p in model.parameters()]
    for t, p in zip(ts, model.parameters()):
        t.grad = torch.tensor(p.grad.copy())
    optim.clip_grad_value_(model, 0.5)
    torch.nn.utils.clip_grad_value_(ts, 0.5)
    for t, p in zip(ts, model.parameters()):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


# --- schedules ----------------------------------------------------------------------

def _sgd(lr=0.1, momentum=0.9):
    return optim.SGD(_model().parameters(), lr=lr, momentum=momentum)


def _lrs(sched, steps):
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
        assert sched.optimizer.lr == out[-1]
    return np.array(out)


def test_closed_forms():
    e = np.arange(21)
    np.testing.assert_allclose(_lrs(S.StepLR(_sgd(), 4, gamma=0.5), 20), 0.1 * 0.5 ** (e // 4),
                               rtol=1e-13)
    np.testing.assert_allclose(_lrs(S.ExponentialLR(_sgd(), 0.9), 20), 0.1 * 0.9 ** e,
                               rtol=1e-13)
    np.testing.assert_allclose(_lrs(S.CosineAnnealingLR(_sgd(), 20, eta_min=0.01), 20),
                               0.01 + 0.09 * (1 + np.cos(np.pi * e / 20)) / 2, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(_lrs(S.LinearLR(_sgd(), 0.25, 1.0, total_iters=8), 20),
                               0.1 * np.minimum(0.25 + 0.75 * e / 8, 1.0), rtol=1e-13)
    lrs = _lrs(S.OneCycleLR(_sgd(), max_lr=1.0, total_steps=21, pct_start=0.25), 20)
    assert lrs[0] == pytest.approx(1.0 / 25) and lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert lrs.max() == pytest.approx(1.0, rel=1e-2) and np.argmax(lrs) in (4, 5)


def test_onecycle_cycles_momentum_or_beta1():
    sgd = _sgd()
    sched = S.OneCycleLR(sgd, max_lr=1.0, total_steps=10)
    moms = [sgd.momentum]
    for _ in range(9):
        sched.step()
        moms.append(sgd.momentum)
    assert moms[0] == 0.95 and min(moms) == pytest.approx(0.85) and moms[-1] == 0.95
    adam = optim.AdamW(_model().parameters())
    S.OneCycleLR(adam, max_lr=0.01, total_steps=10)
    assert adam.betas == (0.95, 0.999)
    with pytest.raises(ValueError, match="momentum"):
        S.OneCycleLR(optim.SGD(_model().parameters(), lr=0.1), max_lr=1.0, total_steps=10)
    S.OneCycleLR(optim.SGD(_model().parameters(), lr=0.1), max_lr=1.0, total_steps=10,
                 cycle_momentum=False)


def test_onecycle_refuses_steps_past_its_total():
    sched = S.OneCycleLR(_sgd(), max_lr=1.0, total_steps=3)
    sched.step()
    sched.step()
    sched.step()  # last_epoch 3 == total_steps: torch allows this one
    with pytest.raises(ValueError, match="total steps"):
        sched.step()


@pytest.mark.parametrize("opt", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_every_optimizer_follows_a_schedule(opt):
    o = getattr(optim, opt)(_model().parameters(), lr=0.05,
                            **({"momentum": 0.9} if opt in ("SGD", "RMSprop") else {}))
    sched = S.OneCycleLR(o, max_lr=0.5, total_steps=30)
    before = [p.value.copy() for p in o.params]
    for _ in range(10):
        o.step()
        sched.step()
    assert o.lr == sched.get_last_lr()[0] != 0.05
    assert all(not np.array_equal(a, p.value) for a, p in zip(before, o.params))


def test_state_dict_resumes_the_schedule():
    a = S.CosineAnnealingLR(_sgd(), T_max=10)
    for _ in range(4):
        a.step()
    state = a.state_dict()
    want = _lrs(a, 8)
    opt = _sgd()
    b = S.CosineAnnealingLR(opt, T_max=10)
    b.load_state_dict(state)
    opt.lr = state["_last_lr"][0]
    np.testing.assert_array_equal(_lrs(b, 8), want)


@pytest.mark.parametrize("make, error, match", [
    (lambda o: S.StepLR(o, 0), ValueError, "step_size"),
    (lambda o: S.StepLR(o, 2.5), TypeError, "step_size"),
    (lambda o: S.LinearLR(o, start_factor=0), ValueError, "start_factor"),
    (lambda o: S.LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
    (lambda o: S.CosineAnnealingLR(o, 0), ValueError, "T_max"),
    (lambda o: S.OneCycleLR(o, 1.0), ValueError, "total_steps"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=5, anneal_strategy="exp"), ValueError,
     "anneal"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=5, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: S.ExponentialLR(o, float("nan")), TypeError, "gamma"),
    (lambda o: S.StepLR(object(), 2), TypeError, "optimizer"),
    (lambda o: S.StepLR(optim.SGD(_model().parameters()), 2, last_epoch=3), ValueError,
     "initial_lr"),
])
def test_schedule_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make(_sgd())


def test_schedules_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    cases = [
        ("StepLR", dict(step_size=3, gamma=0.7)), ("ExponentialLR", dict(gamma=0.93)),
        ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
        ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=6)),
        ("OneCycleLR", dict(max_lr=0.8, total_steps=25)),
        ("OneCycleLR", dict(max_lr=0.8, epochs=5, steps_per_epoch=5, three_phase=True,
                            anneal_strategy="linear", pct_start=0.2)),
    ]
    for name, kw in cases:
        for opt_name in ("SGD", "Adam"):
            okw = {"lr": 0.1, **({"momentum": 0.9} if opt_name == "SGD" else {})}
            ours_opt = getattr(optim, opt_name)(_model().parameters(), **okw)
            t = torch.zeros(3, requires_grad=True)
            theirs_opt = getattr(torch.optim, opt_name)([t], **okw)
            ours, theirs = getattr(S, name)(ours_opt, **kw), getattr(
                torch.optim.lr_scheduler, name)(theirs_opt, **kw)
            for step in range(24):
                g = theirs_opt.param_groups[0]
                assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0],
                                                              rel=1e-13, abs=1e-16), (name, step)
                if name == "OneCycleLR":
                    m = g["betas"][0] if opt_name == "Adam" else g["momentum"]
                    ours_m = ours_opt.betas[0] if opt_name == "Adam" else ours_opt.momentum
                    assert ours_m == pytest.approx(m, rel=1e-13), (name, step)
                t.grad = torch.ones(3)
                theirs_opt.step()
                ours_opt.step()
                ours.step()
                theirs.step()
