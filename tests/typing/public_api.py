"""Every public name of cyprop, used as a typed program would use it.

Checked by ``mypy --strict`` (tests/test_typing.py); ``assert_type`` pins
the types the annotations promise, so an annotation that turns into ``Any``
or changes fails the check. The file also runs (the same test executes it),
so each call here is one the API really accepts.
"""
from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import numpy as np
from numpy.typing import NDArray

import cyprop
from cyprop import functional as F
from cyprop import hessian, nn, optim
from cyprop import reference as R
from cyprop.diagnostics import LayerReport, UnitReport, unit_report
from cyprop.optim import lr_scheduler

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover
    from typing_extensions import assert_type

FloatArray = NDArray[np.float32] | NDArray[np.float64]

rng = np.random.default_rng(0)
x32: NDArray[np.float32] = rng.standard_normal((6, 5)).astype(np.float32)
x64: NDArray[np.float64] = rng.standard_normal((6, 5))
labels = np.array([0, 1, 2, 1, 0, 2])

# --- the package: threads, BLAS, version -------------------------------------------------------
assert_type(cyprop.__version__, str)
assert_type(cyprop.get_num_threads(), int)
assert_type(cyprop.openmp_enabled(), bool)
info = cyprop.blas_info()
assert_type(info, dict[str, Any])
cyprop.set_num_threads(cyprop.get_num_threads())
with cyprop.threads(1) as n_threads:
    assert_type(n_threads, int)

# --- functional and its NumPy twin, reference (the same signatures: test_typing checks) -----
y = F.relu_forward(x64)
assert_type(y, FloatArray)
assert_type(F.relu_backward(x64, y), FloatArray)
assert_type(F.sigmoid_backward(x64, F.sigmoid_forward(x64)), FloatArray)
assert_type(F.tanh_backward(x64, F.tanh_forward(x64)), FloatArray)
assert_type(F.leaky_relu_backward(x64, F.leaky_relu_forward(x64, negative_slope=0.1),
                                    negative_slope=0.1), FloatArray)
assert_type(F.elu_backward(x64, x64, alpha=F.elu_forward(x64, alpha=0.5).size / 60),
            FloatArray)
assert_type(F.gelu_backward(x64, F.gelu_forward(x64, approximate="tanh")), FloatArray)
assert_type(F.silu_backward(x64, F.silu_forward(x64)), FloatArray)
assert_type(F.softplus_backward(x64, F.softplus_forward(x64, beta=2.0)), FloatArray)
assert_type(F.softmax(x64), FloatArray)

W, b = rng.standard_normal((5, 3)), np.zeros(3)
out = F.linear_forward(x64, W, b, activation="relu")
assert_type(out, FloatArray)
dx, dW, db = F.linear_backward(np.ones_like(out), x64, W, y=out, activation="relu")
assert_type(dx, FloatArray | None)
assert_type(dW, FloatArray)
assert_type(db, FloatArray | None)

loss, dlogits = F.softmax_cross_entropy(out, labels[:6] % 3, label_smoothing=0.1)
assert_type(loss, float)
assert_type(dlogits, FloatArray)
assert_type(F.mse_loss(out, np.zeros_like(out)), tuple[float, FloatArray])
assert_type(F.binary_cross_entropy_with_logits(out, np.ones_like(out)),
            tuple[float, FloatArray])
assert_type(F.huber_loss(out, np.zeros_like(out), delta=0.5), tuple[float, FloatArray])
assert_type(F.l1_loss(out, np.zeros_like(out), reduction="sum"), tuple[float, FloatArray])

dropped = F.dropout_forward(x64, 0.5, seed=1, step=2)
assert_type(dropped, FloatArray)
assert_type(F.dropout_backward(x64, 0.5, seed=1, step=2), FloatArray)

gamma, beta = np.ones(5), np.zeros(5)
mean, var = np.zeros(5), np.ones(5)
yb, save_mean, save_invstd = F.batch_norm_forward(x64, gamma, beta, mean, var,
                                                    training=True)
assert_type(save_mean, NDArray[np.float64])
dxb, dgamma, dbeta = F.batch_norm_backward(np.ones_like(yb), x64, gamma, save_mean,
                                             save_invstd)
assert_type(dxb, FloatArray | None)
assert_type(dgamma, FloatArray)
yl, lmean, linvstd = F.layer_norm_forward(x64, gamma, beta)
assert_type(yl, FloatArray)
assert_type(F.layer_norm_backward(np.ones_like(yl), x64, gamma, lmean, linvstd),
            tuple[FloatArray | None, FloatArray, FloatArray])

p, g = np.ones(4), np.full(4, 0.5)
m, v = np.zeros(4), np.zeros(4)
assert_type(F.sgd_step(p, g, np.zeros(4), lr=0.1, momentum=0.9), FloatArray)
assert_type(F.adam_step(p, g, m, v, step=1), FloatArray)
assert_type(F.adamw_step(p, g, m, v, step=2, lr=1e-2), FloatArray)
assert_type(F.rmsprop_step(p, g, np.zeros(4), lr=1e-2), FloatArray)

# reference
y = R.relu_forward(x64)
assert_type(y, FloatArray)
assert_type(R.relu_backward(x64, y), FloatArray)
assert_type(R.sigmoid_backward(x64, R.sigmoid_forward(x64)), FloatArray)
assert_type(R.tanh_backward(x64, R.tanh_forward(x64)), FloatArray)
assert_type(R.leaky_relu_backward(x64, R.leaky_relu_forward(x64, negative_slope=0.1),
                                    negative_slope=0.1), FloatArray)
assert_type(R.elu_backward(x64, x64, alpha=R.elu_forward(x64, alpha=0.5).size / 60),
            FloatArray)
assert_type(R.gelu_backward(x64, R.gelu_forward(x64, approximate="tanh")), FloatArray)
assert_type(R.silu_backward(x64, R.silu_forward(x64)), FloatArray)
assert_type(R.softplus_backward(x64, R.softplus_forward(x64, beta=2.0)), FloatArray)
assert_type(R.softmax(x64), FloatArray)

W, b = rng.standard_normal((5, 3)), np.zeros(3)
out = R.linear_forward(x64, W, b, activation="relu")
assert_type(out, FloatArray)
dx, dW, db = R.linear_backward(np.ones_like(out), x64, W, y=out, activation="relu")
assert_type(dx, FloatArray | None)
assert_type(dW, FloatArray)
assert_type(db, FloatArray | None)

loss, dlogits = R.softmax_cross_entropy(out, labels[:6] % 3, label_smoothing=0.1)
assert_type(loss, float)
assert_type(dlogits, FloatArray)
assert_type(R.mse_loss(out, np.zeros_like(out)), tuple[float, FloatArray])
assert_type(R.binary_cross_entropy_with_logits(out, np.ones_like(out)),
            tuple[float, FloatArray])
assert_type(R.huber_loss(out, np.zeros_like(out), delta=0.5), tuple[float, FloatArray])
assert_type(R.l1_loss(out, np.zeros_like(out), reduction="sum"), tuple[float, FloatArray])

dropped = R.dropout_forward(x64, 0.5, seed=1, step=2)
assert_type(dropped, FloatArray)
assert_type(R.dropout_backward(x64, 0.5, seed=1, step=2), FloatArray)

gamma, beta = np.ones(5), np.zeros(5)
mean, var = np.zeros(5), np.ones(5)
yb, save_mean, save_invstd = R.batch_norm_forward(x64, gamma, beta, mean, var,
                                                    training=True)
assert_type(save_mean, NDArray[np.float64])
dxb, dgamma, dbeta = R.batch_norm_backward(np.ones_like(yb), x64, gamma, save_mean,
                                             save_invstd)
assert_type(dxb, FloatArray | None)
assert_type(dgamma, FloatArray)
yl, lmean, linvstd = R.layer_norm_forward(x64, gamma, beta)
assert_type(yl, FloatArray)
assert_type(R.layer_norm_backward(np.ones_like(yl), x64, gamma, lmean, linvstd),
            tuple[FloatArray | None, FloatArray, FloatArray])

p, g = np.ones(4), np.full(4, 0.5)
m, v = np.zeros(4), np.zeros(4)
assert_type(R.sgd_step(p, g, np.zeros(4), lr=0.1, momentum=0.9), FloatArray)
assert_type(R.adam_step(p, g, m, v, step=1), FloatArray)
assert_type(R.adamw_step(p, g, m, v, step=2, lr=1e-2), FloatArray)
assert_type(R.rmsprop_step(p, g, np.zeros(4), lr=1e-2), FloatArray)

# --- nn: layers, Sequential, losses, Parameter, save/load ---------------------------------------
layers: list[nn.Module] = [
    nn.Linear(5, 8, activation="tanh", dtype=np.float64, seed=0),
    nn.BatchNorm1d(8, dtype=np.float64), nn.ReLU(dtype=np.float64),
    nn.Linear(8, 8, dtype=np.float64, seed=1), nn.LayerNorm(8, dtype=np.float64),
    nn.Sigmoid(dtype=np.float64), nn.Tanh(dtype=np.float64),
    nn.LeakyReLU(0.2, dtype=np.float64), nn.ELU(dtype=np.float64),
    nn.GELU(dtype=np.float64), nn.SiLU(dtype=np.float64), nn.Softplus(dtype=np.float64),
    nn.Dropout(0.1, seed=3, dtype=np.float64), nn.Linear(8, 3, dtype=np.float64, seed=2),
]
model = nn.Sequential(*layers, checkpoint_segments=None)
assert_type(model.train(), nn.Sequential)
assert_type(model.checkpoint_segments, int | None)
logits = model(x64)
assert_type(logits, FloatArray)
ce = nn.SoftmaxCrossEntropy(label_smoothing=0.05)
assert_type(ce(logits, labels), float)
assert_type(ce.backward(), FloatArray)
assert_type(model.backward(ce.backward(), need_dx=True), FloatArray | None)
params = model.parameters()
assert_type(params, list[nn.Parameter])
first: nn.Parameter = params[0]
assert_type(first.value, FloatArray)
assert_type(first.grad, FloatArray)
linear = layers[0]
assert isinstance(linear, nn.Linear)
assert_type(linear.W, FloatArray)
assert_type(linear.b, FloatArray | None)
linear.W = linear.W * 1.0
model.zero_grad()
for loss_fn in (nn.MSELoss(), nn.BCEWithLogitsLoss(), nn.HuberLoss(delta=2.0), nn.L1Loss()):
    assert_type(loss_fn(logits, np.zeros_like(logits)), float)
assert_type(layers[2].eval(), nn.Module)
model.eval()
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.npz")
    model.save(path)
    assert_type(nn.load(path), nn.Sequential)
    assert_type(cyprop.load(path), nn.Sequential)

# --- optim: optimizers, clipping, schedules, minimize -------------------------------------------
model.train()
small = nn.Sequential(nn.Linear(5, 3, dtype=np.float64, seed=4))
optimizers: list[optim.Optimizer] = [
    optim.SGD(small.parameters(), lr=0.1, momentum=0.9), optim.Adam(small.parameters()),
    optim.AdamW(small.parameters()), optim.RMSprop(small.parameters())]
for opt in optimizers:
    ce(small(x64), labels)
    small.backward(ce.backward())
    assert_type(optim.clip_grad_norm_(small, 1.0), float)
    optim.clip_grad_value_(small.parameters(), 0.5)
    opt.step()
    opt.zero_grad()
    opt.load_state_dict(opt.state_dict())
sgd = optim.SGD(small.parameters(), lr=0.1)
schedules: list[lr_scheduler.LRScheduler] = [
    lr_scheduler.StepLR(sgd, 2), lr_scheduler.ExponentialLR(sgd, 0.9),
    lr_scheduler.CosineAnnealingLR(sgd, 10), lr_scheduler.LinearLR(sgd),
    lr_scheduler.OneCycleLR(sgd, 0.5, total_steps=10, cycle_momentum=False)]
for schedule in schedules:
    schedule.step()
    assert_type(schedule.get_last_lr(), list[float])
fitted = optim.minimize(small, ce, x64, labels, max_iter=5)

# --- second order, gradcheck, diagnostics -------------------------------------------------------
n_params = sum(q.value.size for q in small.parameters())
assert_type(hessian.hvp(small, ce, x64, labels, np.ones(n_params)), FloatArray)
assert_type(hessian.ggnvp(small, ce, x64, labels, [q.value for q in small.parameters()]),
            list[FloatArray])


def square(a: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    return float(np.sum(a * a)), 2 * a


report = cyprop.gradcheck(square, rng.standard_normal(4))
assert_type(report, cyprop.GradcheckReport)
assert_type(report.passed, bool)
assert_type(cyprop.gradcheck_model(small, ce, x64, labels), cyprop.GradcheckReport)
units = unit_report(model, x64, loss_fn=ce, target=labels)
assert_type(units, UnitReport)
line: LayerReport = units.layers[0]
assert_type(line.dead, float | None)
assert_type(str(cyprop.diagnostics.unit_report(model, x64)), str)
assert cyprop.functional is F and cyprop.reference is R and cyprop.hessian is hessian
assert cyprop.nn is nn and cyprop.optim is optim

# --- the scikit-learn estimators ---------------------------------------------------------------
from cyprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(x64, labels)
assert_type(clf, MLPClassifier)
assert_type(clf.predict_proba(x64), FloatArray)
assert_type(clf.partial_fit(x64, labels), MLPClassifier)
assert_type(clf.unit_report(x64, labels), UnitReport)
reg = MLPRegressor((8,), solver="lbfgs", max_iter=5).fit(x64, x64[:, 0])
assert_type(reg.predict(x64), FloatArray)


# --- cyprop.distributed (worker processes start by spawning: the guard keeps them from
# running this file again)
def train_on_a_cluster() -> None:
    from cyprop import distributed as D

    with D.local_cluster(1) as client:
        net = nn.Sequential(nn.Linear(5, 3, dtype=np.float64, seed=5))
        dp = D.DataParallel(net, ce, optim.SGD(net.parameters(), lr=0.1), client=client)
        assert_type(dp.fit(x64, labels, epochs=1, batch_size=4, progress=False), D.DataParallel)
        assert_type(dp.loss_curve_, list[float])
        loss, grad = D.full_batch_loss_and_grad(net, ce, x64, labels, client=client)
        assert_type(grad, NDArray[np.float64])
        D.minimize(net, ce, x64, labels, client=client, max_iter=2)


if __name__ == "__main__":
    try:
        import distributed  # noqa: F401
    except ImportError:   # cyprop[distributed] not installed: mypy has checked the function
        pass
    else:
        train_on_a_cluster()
