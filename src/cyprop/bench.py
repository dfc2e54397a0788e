"""Side-by-side benchmark: cyprop vs the NumPy reference, PyTorch eager and JAX jit.

Run ``python -m cyprop.bench`` (``--help`` for options). Every peer runs on the
same data in the same process; the peers' runs are interleaved and each time
is the median of repeats, so the ratios are comparable even on a noisy
machine. PyTorch and JAX are used when installed. For the training steps big
enough to be bound by their matrix products the table also gives the time the
same GEMMs take alone in ``numpy.matmul`` in the same run (the machine's limit
for that step) and through the BLAS and GEMM blocking cyprop's kernels use
(the limit for cyprop: ``cyprop.blas_info()`` names that BLAS, which is not
NumPy's). ``--compare-blas`` times cyprop's steps and their products with
each BLAS cyprop can call (scipy-openblas32's, SciPy's), interleaved. For
each kernel it gives the time a NumPy loop that computes next to nothing takes
on the same bytes (``stream``: ``out = -x``, or ``out = dy * y`` for the
backward passes, which read two arrays): a kernel near it is bound by memory.
The compute-bound kernels' thread scaling is timed apart, cyprop at 1 thread
and at n interleaved in one measurement: the two kernel tables are minutes
apart, and the machine can be busier in one than in the other.
``--under-load N`` runs everything beside N processes that keep a core busy
each (started and stopped by the bench), and adds a table of cyprop's training
steps and digits fit at 1 thread and at n, interleaved, on that loaded machine.

The training step is what a user writes with each library's public API:
cyprop ``loss = loss_fn(model(x), y); model.backward(loss_fn.backward());
opt.step()``; PyTorch ``zero_grad; loss = crit(model(x), y); loss.backward();
opt.step()``; JAX a ``jax.jit``-compiled ``value_and_grad`` + SGD update; NumPy
the same math through :mod:`cyprop.reference`.
"""
import argparse
import contextlib
import json
import statistics
import sys
import time

import numpy as np

import cyprop
from cyprop import _openmp
from cyprop import functional as F
from cyprop import nn, optim
from cyprop import reference as R

MLPS = [  # (name, layer sizes, batch)
    ("mlp 20-64-64-2", (20, 64, 64, 2), 32),
    ("mlp 64-128-128-10", (64, 128, 128, 10), 128),
    ("mlp 784-512-512-10", (784, 512, 512, 10), 1024),
    ("linear 512->10000", (512, 10000), 256),
    # mid-size MLPs whose widths and batches are not powers of two
    ("mlp 48-96-96-3", (48, 96, 96, 3), 64),
    ("mlp 100-150-150-10", (100, 150, 150, 10), 100),
    ("mlp 200-256-200-10", (200, 256, 200, 10), 200),
]
KERNEL_SHAPE = (4096, 1024)
CE_SHAPE = (4096, 1000)
LR = 0.01


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


# --------------------------------------------------------------------------
# Training-step builders: each returns a zero-argument callable doing one step;
# its ``weights()`` attribute returns the current weight matrices (in, out), so
# the tests can check that every peer computes the same update.
# --------------------------------------------------------------------------

def _init(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    Ws = [(rng.uniform(-1, 1, (a, b)) * np.sqrt(6 / (a + b))).astype(dtype)
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(b, dtype) for b in sizes[1:]]
    return Ws, bs


def _data(sizes, batch, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, sizes[0])).astype(dtype), rng.integers(0, sizes[-1], batch)


def _cyprop_mlp(sizes, dtype):
    """The bench's MLP as a cyprop Sequential (ReLU hidden layers, _init's weights)."""
    Ws, bs = _init(sizes, dtype)
    layers = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        layer = nn.Linear(W.shape[0], W.shape[1], dtype=dtype,
                          activation="relu" if i < len(Ws) - 1 else None)
        layer.W[...], layer.b[...] = W, b
        layers.append(layer)
    return nn.Sequential(*layers)


def cyprop_step(sizes, batch, dtype):
    model = _cyprop_mlp(sizes, dtype)
    layers = model.layers
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=LR)
    x, y = _data(sizes, batch, dtype)

    def step():
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    step.weights = lambda: [layer.W.copy() for layer in layers]
    return step


def numpy_step(sizes, batch, dtype):
    Ws, bs = _init(sizes, dtype)
    x, y = _data(sizes, batch, dtype)
    last = len(Ws) - 1

    def step():
        hs = [x]
        for i, (W, b) in enumerate(zip(Ws, bs)):
            hs.append(R.linear_forward(hs[-1], W, b, activation="relu" if i < last else None))
        _, g = R.softmax_cross_entropy(hs[-1], y)
        for i in range(last, -1, -1):
            g, dW, db = R.linear_backward(g, hs[i], Ws[i], y=hs[i + 1],
                                          activation="relu" if i < last else None,
                                          need_dx=i > 0)
            R.sgd_step(Ws[i], dW, lr=LR)
            R.sgd_step(bs[i], db, lr=LR)
    step.weights = lambda: [W.copy() for W in Ws]
    return step


def torch_step(sizes, batch, dtype):
    torch = _optional("torch")
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    Ws, bs = _init(sizes, dtype)
    mods = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(Ws) - 1:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    crit = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = _data(sizes, batch, dtype)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = crit(model(tx), ty)
        loss.backward()
        opt.step()
    step.weights = lambda: [m.weight.detach().numpy().T.copy() for m in mods
                            if isinstance(m, torch.nn.Linear)]
    return step


def jax_step(sizes, batch, dtype):
    jax = _optional("jax")
    if dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    Ws, bs = _init(sizes, dtype)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(Ws, bs)]
    x, y = _data(sizes, batch, dtype)
    jx, jy = jnp.asarray(x), jnp.asarray(y)

    def loss_fn(ps, xb, yb):
        h = xb
        for i, (W, b) in enumerate(ps):
            h = h @ W + b
            if i < len(ps) - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    @jax.jit
    def update(ps, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(ps, xb, yb)
        return [(W - LR * gW, b - LR * gb) for (W, b), (gW, gb) in zip(ps, grads)], loss

    state = {"p": params}

    def step():
        state["p"], loss = update(state["p"], jx, jy)
        loss.block_until_ready()
    step.weights = lambda: [np.asarray(W) for W, _ in state["p"]]
    return step


def _gemm_products(sizes, batch, dtype):
    """(a, b, out) for each of a step's products out = a @ b: forward, dW, dx but the input's.

    The backward products take the forward outputs as stand-ins for the
    gradients (same shapes, so the same work).
    """
    Ws, _ = _init(sizes, dtype)
    x, _ = _data(sizes, batch, dtype)
    hs = [x] + [np.empty((batch, W.shape[1]), dtype) for W in Ws]
    products = [(hs[i], W, hs[i + 1]) for i, W in enumerate(Ws)]
    for i in range(len(Ws) - 1, -1, -1):
        products.append((hs[i].T, hs[i + 1], np.empty_like(Ws[i])))         # dW
        if i > 0:
            products.append((hs[i + 1], Ws[i].T, np.empty_like(hs[i])))     # dx
    return products


def gemms_step(sizes, batch, dtype):
    """The step's GEMMs alone in numpy.matmul (the machine's limit for the step)."""
    products = _gemm_products(sizes, batch, dtype)

    def step():
        for a, b, out in products:
            np.matmul(a, b, out=out)
    step.outputs = [out for _, _, out in products]
    return step


def blas_gemms_step(sizes, batch, dtype):
    """The step's GEMMs alone through the BLAS and the GEMM blocking cyprop's kernels use.

    ``cyprop.blas_info()`` names that BLAS (scipy-openblas32's OpenBLAS, or
    SciPy's with ``CYPROP_BLAS=scipy``); the products run at cyprop's thread
    count, in the kernels' fixed blocks. This is the limit for cyprop's step,
    ``gemms_step`` the machine's.
    """
    from cyprop import _linear
    products = []
    for a, b, out in _gemm_products(sizes, batch, dtype):
        # an operand that is not C-ordered is the transpose of one that is
        (A, trans_a), (B, trans_b) = [(m, False) if m.flags.c_contiguous else (m.T, True)
                                      for m in (a, b)]
        products.append((A, B, out, trans_a, trans_b))

    def step():
        _linear._products(products, cyprop.get_num_threads())
    step.outputs = [out for _, _, out, _, _ in products]
    return step


# --------------------------------------------------------------------------
# Kernel builders
# --------------------------------------------------------------------------

def _kernel_data(dtype, shape=KERNEL_SHAPE, seed=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def kernel_cases(name, direction, dtype):
    """{peer: step} for one activation kernel."""
    x, dy = _kernel_data(dtype)
    fwd, bwd = getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")
    rfwd, rbwd = getattr(R, f"{name}_forward"), getattr(R, f"{name}_backward")
    y = fwd(x)
    out = np.empty_like(x)
    if direction == "forward":
        steps = {"cyprop": lambda: fwd(x, out=out), "numpy": lambda: rfwd(x)}
    else:
        steps = {"cyprop": lambda: bwd(dy, y, out=out), "numpy": lambda: rbwd(dy, y)}
    torch = _optional("torch")
    if torch is not None:
        tx, tdy, ty = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(y)
        if direction == "forward":
            tf = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[name]
            steps["torch"] = lambda: tf(tx)
        else:  # the kernels autograd calls for these ops
            aten = torch.ops.aten
            tb = {"relu": lambda: aten.threshold_backward(tdy, ty, 0),
                  "sigmoid": lambda: aten.sigmoid_backward(tdy, ty),
                  "tanh": lambda: aten.tanh_backward(tdy, ty)}[name]
            steps["torch"] = tb
    steps["stream"] = stream_step((x,) if direction == "forward" else (dy, y), out)
    return steps


def ce_cases(dtype):
    rng = np.random.default_rng(3)
    z = (3 * rng.standard_normal(CE_SHAPE)).astype(dtype)
    t = rng.integers(0, CE_SHAPE[1], CE_SHAPE[0])
    g = np.empty_like(z)
    steps = {"cyprop": lambda: F.softmax_cross_entropy(z, t, grad_out=g),
             "numpy": lambda: R.softmax_cross_entropy(z, t)}
    torch = _optional("torch")
    if torch is not None:
        tz, tt = torch.from_numpy(z), torch.from_numpy(t)

        def torch_ce():
            zz = tz.detach().requires_grad_(True)
            torch.nn.functional.cross_entropy(zz, tt).backward()
            return zz.grad
        steps["torch"] = torch_ce
    steps["stream"] = stream_step((z,), g)
    return steps


ADAMW_SIZE = 1_000_000


def adamw_cases(dtype, n=ADAMW_SIZE):
    """{peer: step} for one AdamW step over n parameters (torch: its ``foreach`` AdamW)."""
    rng = np.random.default_rng(4)
    p0, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    param = nn.Parameter(p0.copy(), g.copy())
    opt = optim.AdamW([param], lr=1e-3)
    ref = [p0.copy(), np.zeros_like(p0), np.zeros_like(p0)]
    count = {"t": 0}

    def numpy_step():
        count["t"] += 1
        R.adamw_step(ref[0], g, ref[1], ref[2], step=count["t"], lr=1e-3)
    steps = {"cyprop": opt.step, "numpy": numpy_step}
    torch = _optional("torch")
    if torch is not None:
        t = torch.tensor(p0.copy(), requires_grad=True)
        t.grad = torch.tensor(g)
        topt = torch.optim.AdamW([t], lr=1e-3, foreach=True)
        steps["torch"] = topt.step
    m0, v0 = np.full_like(p0, 0.5), np.full_like(p0, 0.25)
    a, b, c = np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)

    def stream():  # reads four arrays (p, g, m, v) and writes three, as the update does
        np.multiply(p0, g, out=a)
        np.multiply(m0, g, out=b)
        np.negative(v0, out=c)
    steps["stream"] = stream
    return steps


# --------------------------------------------------------------------------
# Round 2: normalization, dropout, the new activations and losses, and the
# tabular recipe (Linear-BN-ReLU-Dropout twice, BCE on logits, AdamW,
# clip_grad_norm_, a cosine schedule).
# --------------------------------------------------------------------------

def batchnorm_cases(dtype, shape=KERNEL_SHAPE):
    """{peer: step} for BatchNorm1d forward + backward in training mode (torch: autograd)."""
    x, dy = _kernel_data(dtype, shape, seed=5)
    c = shape[1]
    g, b = np.ones(c, dtype), np.zeros(c, dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    y, dx, dg, db = np.empty_like(x), np.empty_like(x), np.empty_like(g), np.empty_like(g)
    sm, si = np.empty(c), np.empty(c)

    def cy():
        F.batch_norm_forward(x, g, b, rm, rv, training=True, out=y, save_mean=sm, save_invstd=si)
        F.batch_norm_backward(dy, x, g, sm, si, dx=dx, dgamma=dg, dbeta=db)

    def numpy_bn():
        _, m, i = R.batch_norm_forward(x, g, b, rm.copy(), rv.copy(), training=True)
        R.batch_norm_backward(dy, x, g, m, i)
    steps = {"cyprop": cy, "numpy": numpy_bn}
    torch = _optional("torch")
    if torch is not None:
        bn = torch.nn.BatchNorm1d(c, dtype=torch.float32 if dtype == np.float32 else torch.float64)
        tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def torch_bn():
            tx.grad = None
            bn(tx).backward(tdy)
        steps["torch"] = torch_bn
    a = np.empty_like(x)

    def stream():  # the bytes a BN forward and backward must move: x -> y; dy, x -> dx
        np.negative(x, out=y)
        np.multiply(dy, x, out=a)
    steps["stream"] = stream
    return steps


def dropout_cases(dtype, p=0.5, shape=KERNEL_SHAPE):
    """{peer: step} for dropout forward + backward (torch: autograd, its own generator)."""
    x, dy = _kernel_data(dtype, shape, seed=6)
    y, dx = np.empty_like(x), np.empty_like(x)

    def cy():
        F.dropout_forward(x, p, seed=1, step=2, out=y)
        F.dropout_backward(dy, p, seed=1, step=2, out=dx)

    def numpy_dropout():  # as a NumPy user would write it: a stored boolean mask
        mask = np.random.default_rng(0).random(x.shape, dtype=x.dtype) >= p
        scale = x.dtype.type(1 / (1 - p))
        return x * mask * scale, dy * mask * scale
    steps = {"cyprop": cy, "numpy": numpy_dropout}
    torch = _optional("torch")
    if torch is not None:
        tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def torch_dropout():
            tx.grad = None
            torch.nn.functional.dropout(tx, p, training=True).backward(tdy)
        steps["torch"] = torch_dropout

    def stream():
        np.negative(x, out=y)
        np.negative(dy, out=dx)
    steps["stream"] = stream
    return steps


def act2_forward_cases(name, dtype, shape=KERNEL_SHAPE):
    """{peer: step} for the forward pass of gelu or silu."""
    x, _ = _kernel_data(dtype, shape, seed=7)
    out = np.empty_like(x)
    fwd, rfwd = getattr(F, f"{name}_forward"), getattr(R, f"{name}_forward")
    steps = {"cyprop": lambda: fwd(x, out=out), "numpy": lambda: rfwd(x)}
    torch = _optional("torch")
    if torch is not None:
        tx = torch.from_numpy(x)
        tf = getattr(torch.nn.functional, name)
        steps["torch"] = lambda: tf(tx)
    steps["stream"] = stream_step((x,), out)
    return steps


def bce_cases(dtype, shape=KERNEL_SHAPE):
    """{peer: step} for BCE-with-logits loss and gradient (torch: autograd)."""
    x, _ = _kernel_data(dtype, shape, seed=8)
    t = (np.random.default_rng(9).random(shape) > 0.5).astype(dtype)
    g = np.empty_like(x)
    steps = {"cyprop": lambda: F.binary_cross_entropy_with_logits(x, t, grad_out=g),
             "numpy": lambda: R.binary_cross_entropy_with_logits(x, t)}
    torch = _optional("torch")
    if torch is not None:
        tx, tt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(t)

        def torch_bce():
            tx.grad = None
            torch.nn.functional.binary_cross_entropy_with_logits(tx, tt).backward()
        steps["torch"] = torch_bce
    steps["stream"] = stream_step((x, t), g)
    return steps


TABULAR = ((128, 256, 256, 1), 256, 0.1)   # sizes, batch, dropout p


def _tabular_data(sizes, batch, dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    return x, (rng.random((batch, 1)) > 0.5).astype(dtype)


def cyprop_tabular_step(sizes, batch, p, dtype):
    Ws, _ = _init(sizes, dtype)
    layers = []
    for i, W in enumerate(Ws):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        lin.W = W
        layers.append(lin)
        if i < len(Ws) - 1:
            layers += [nn.BatchNorm1d(W.shape[1], dtype=dtype), nn.ReLU(),
                       nn.Dropout(p, seed=i)]
    model = nn.Sequential(*layers)
    loss_fn = nn.BCEWithLogitsLoss()
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)
    x, t = _tabular_data(sizes, batch, dtype)

    def step():
        loss_fn(model(x), t)
        model.backward(loss_fn.backward())
        optim.clip_grad_norm_(model, 1.0)
        opt.step()
        sched.step()
    step.weights = lambda: [layer.W.copy() for layer in layers if isinstance(layer, nn.Linear)]
    return step


def numpy_tabular_step(sizes, batch, p, dtype):
    """The same recipe through cyprop.reference (NumPy), AdamW's state kept by hand."""
    Ws, bs = _init(sizes, dtype)
    params = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        params += [W, b]
        if i < len(Ws) - 1:
            params += [np.ones(W.shape[1], dtype), np.zeros(W.shape[1], dtype)]
    state = [(np.zeros_like(q), np.zeros_like(q)) for q in params]
    running = [(np.zeros(W.shape[1], dtype), np.ones(W.shape[1], dtype)) for W in Ws[:-1]]
    x, t = _tabular_data(sizes, batch, dtype)
    count = {"t": 0}
    last = len(Ws) - 1

    def step():
        count["t"] += 1
        saved, h, k = [], x, 0
        for i in range(len(Ws)):
            W, b = params[k], params[k + 1]
            z = R.linear_forward(h, W, b)
            if i < last:
                g, be = params[k + 2], params[k + 3]
                zn, m, inv = R.batch_norm_forward(z, g, be, *running[i], training=True)
                a = R.relu_forward(zn)
                y = R.dropout_forward(a, p, seed=i, step=count["t"] - 1)
                saved.append((h, z, m, inv, a))
                h, k = y, k + 4
            else:
                saved.append((h,))
                h = z
        _, d = R.binary_cross_entropy_with_logits(h, t)
        grads = [None] * len(params)
        k = len(params) - 2
        for i in range(last, -1, -1):
            W = params[k]
            hin = saved[i][0]
            d, grads[k], grads[k + 1] = R.linear_backward(d, hin, W, need_dx=i > 0)
            if i > 0:
                hprev, z, m, inv, a = saved[i - 1]
                k -= 4
                d = R.dropout_backward(d, p, seed=i - 1, step=count["t"] - 1)
                d = R.relu_backward(d, a)
                d, grads[k + 2], grads[k + 3] = R.batch_norm_backward(d, z, params[k + 2], m, inv)
        total = np.sqrt(sum(float(np.sum(q.astype(np.float64) ** 2)) for q in grads))
        coef = min(1.0, 1.0 / (total + 1e-6))
        lr = 0.5e-3 * (1 + np.cos(np.pi * (count["t"] - 1) / 1000))   # the schedule's rate
        for q, gq, (m1, v1) in zip(params, grads, state):
            R.adamw_step(q, gq * dtype(coef), m1, v1, step=count["t"], lr=lr)
    step.weights = lambda: [q.copy() for q in params if q.ndim == 2]
    return step


def torch_tabular_step(sizes, batch, p, dtype):
    torch = _optional("torch")
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    Ws, _ = _init(sizes, dtype)
    mods = []
    for i, W in enumerate(Ws):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.zero_()
        mods.append(lin)
        if i < len(Ws) - 1:
            mods += [torch.nn.BatchNorm1d(W.shape[1], dtype=tdtype), torch.nn.ReLU(),
                     torch.nn.Dropout(p)]
    model = torch.nn.Sequential(*mods)
    crit = torch.nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)
    x, t = _tabular_data(sizes, batch, dtype)
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)

    def step():
        opt.zero_grad(set_to_none=True)
        crit(model(tx), tt).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return step


def stream_step(inputs, out):
    """A kernel at memory speed, as NumPy runs it: a loop that computes next to nothing.

    ``out = -a`` for one input, ``out = a * b`` for two: vectorized loops that
    read the kernel's inputs and write its output once, into the same
    preallocated array. (``np.copyto``, which calls glibc's ``memmove``, is
    no floor: it ran 8-18% slower than these loops on (4096, 1024) on the
    machine the README's numbers come from.)
    """
    if len(inputs) == 1:
        return lambda: np.negative(inputs[0], out=out)
    a, b = inputs
    return lambda: np.multiply(a, b, out=out)


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def _calibrate(fn, target):
    """Calls per sample so that one sample takes about ``target`` seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(target / once))


def measure(steps, repeats, target, settle=0.0, contexts=None):
    """Median seconds per call of each step, peers interleaved.

    ``settle`` seconds of sleep follow each sample, so that thread pools left
    spinning by one peer do not slow the next; each sample then starts with
    untimed warm-up calls (a tenth of its calls), so that no peer is timed
    cold (threads asleep, cores idle) after the pause. ``contexts`` maps a
    step's key to a context manager factory entered around each of its
    samples, outside the timed calls (``cyprop.threads(n)``, which costs far
    more than a call, for the scaling table).
    """
    contexts = contexts or {}
    numbers = {}
    for k, f in steps.items():
        with contexts.get(k, contextlib.nullcontext)():
            numbers[k] = _calibrate(f, target)
        time.sleep(settle)
    samples = {k: [] for k in steps}
    for _ in range(repeats):
        for k, f in steps.items():
            n = numbers[k]
            with contexts.get(k, contextlib.nullcontext)():
                for _ in range(max(1, n // 10) if settle else 0):
                    f()
                t0 = time.perf_counter()
                for _ in range(n):
                    f()
                samples[k].append((time.perf_counter() - t0) / n)
            time.sleep(settle)
    return {k: statistics.median(v) for k, v in samples.items()}


@contextlib.contextmanager
def busy_processes(n):
    """Run the block beside ``n`` processes that each keep a core busy.

    Each is a fresh interpreter spinning in a pure-Python loop, the kind of
    neighbour (a simulator, a data loader, another worker) a training process
    shares a machine with. They are killed when the block ends, however it ends.
    """
    import subprocess

    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        if procs:
            time.sleep(0.3)  # until they run
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def digits_fit_step(n_threads, max_iter=10):
    """One fit of cyprop.sklearn.MLPClassifier on digits (scikit-learn's defaults)."""
    import warnings

    from sklearn.datasets import load_digits

    from cyprop.sklearn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0

    def step():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MLPClassifier(max_iter=max_iter, random_state=0, n_threads=n_threads).fit(X, y)
    return step


def under_load(dtypes, most, repeats, target, settle):
    """cyprop's training steps and digits fit at 1 thread and at ``most``, interleaved.

    Meant to run under :func:`busy_processes`: the ratio is what the default
    thread count costs, or saves, on a machine another process keeps busy.
    """
    results = []
    cases = [(f"step {name} b{batch}", dtype, lambda s=sizes, b=batch, d=dtype: cyprop_step(s, b, d))
             for dtype in dtypes for name, sizes, batch in MLPS]
    if _optional("sklearn") is not None:
        cases.append(("digits MLPClassifier fit (10 epochs)", np.float64, None))
    for name, dtype, make in cases:
        if make is None:  # the estimator sets its own thread count
            steps = {n: digits_fit_step(n) for n in (1, most)}
            contexts = {}
        else:
            step = make()
            steps = {1: step, most: step}
            contexts = {n: (lambda n=n: cyprop.threads(n)) for n in (1, most)}
        times = measure(steps, repeats, target, settle, contexts=contexts)
        results.append({"case": name, "dtype": np.dtype(dtype).name, "threads": most,
                        "under_load": {str(n): t for n, t in times.items()}})
    return results


def compare_blas(dtypes, threads, repeats, target, settle):
    """cyprop's training steps and their products with each BLAS cyprop can call, interleaved.

    One row per MLP, dtype and thread count: the step and its products
    (``blas_gemms_step``) with scipy-openblas32's OpenBLAS and with SciPy's
    (``scipy.linalg.cython_blas``), switched around each sample. The kernels'
    back-off to one thread (``pyx/_team.h``) is held off, so that a busy
    moment of the machine does not pass for a slower BLAS.
    """
    from cyprop import _blas
    backends = ("scipy-openblas32", "scipy")
    try:
        with _blas._using("scipy-openblas32"):
            pass
    except ImportError:
        return []
    results = []
    for dtype in dtypes:
        for name, sizes, batch in MLPS:
            step, products = cyprop_step(sizes, batch, dtype), blas_gemms_step(sizes, batch, dtype)
            for n in threads:
                steps, contexts = {}, {}
                for b in backends:
                    for kind, f in (("step", step), ("products", products)):
                        steps[kind, b] = f
                        contexts[kind, b] = (lambda b=b, n=n: _stacked(_blas._using(b),
                                                                       cyprop.threads(n)))
                fixed = _openmp._team_fix(True)
                try:
                    times = measure(steps, repeats, target, settle if n > 1 else 0.0, contexts)
                finally:
                    _openmp._team_fix(fixed)
                results.append({"case": f"step {name} b{batch}", "dtype": np.dtype(dtype).name,
                                "threads": n, "blas": {f"{k} {b}": t for (k, b), t in times.items()}})
    return results


@contextlib.contextmanager
def _stacked(*managers):
    with contextlib.ExitStack() as stack:
        for m in managers:
            stack.enter_context(m)
        yield


def format_compare_blas(results):
    """The --compare-blas table: step and products per BLAS, and the ratios."""
    head = (f"{'case':<30} {'dtype':<8} {'thr':>3} {'step o32':>11} {'step scipy':>11} {'ratio':>6}"
            f" {'prod o32':>11} {'prod scipy':>11} {'ratio':>6} {'step/prod':>9}")
    lines = [head, "-" * len(head)]
    for r in results:
        t = r["blas"]
        so, ss = t["step scipy-openblas32"], t["step scipy"]
        po, ps = t["products scipy-openblas32"], t["products scipy"]
        lines.append(f"{r['case']:<30} {r['dtype']:<8} {r['threads']:>3} {_fmt_time(so):>11}"
                     f" {_fmt_time(ss):>11} {so / ss:6.3f} {_fmt_time(po):>11} {_fmt_time(ps):>11}"
                     f" {po / ps:6.3f} {so / po:9.3f}")
    lines.append("o32 = scipy-openblas32's OpenBLAS (the default), scipy = SciPy's bundled one"
                 " (CYPROP_BLAS=scipy); ratio = o32 / scipy; step/prod with o32")
    return "\n".join(lines)


def hessian_products(dtypes, threads, repeats, target, settle):
    """cyprop.hessian's hvp and ggnvp against one forward + backward of the same model and batch.

    The training-step MLPs (ReLU hidden layers, softmax-CE), interleaved at
    each thread count; the ratios are what an exact Hessian-vector product
    costs in backward passes.
    """
    from cyprop import hessian
    results = []
    for dtype in dtypes:
        for name, sizes, batch in MLPS:
            if len(sizes) < 3:
                continue
            model, loss_fn = _cyprop_mlp(sizes, dtype), nn.SoftmaxCrossEntropy()
            x, y = _data(sizes, batch, dtype)
            v = np.random.default_rng(3).standard_normal(model._values.size).astype(dtype)

            def fwd_bwd(model=model, loss_fn=loss_fn, x=x, y=y):
                loss_fn(model(x), y)
                model.backward(loss_fn.backward())
            steps = {"fwd+bwd": fwd_bwd,
                     "hvp": lambda m=model, f=loss_fn, x=x, y=y, v=v: hessian.hvp(m, f, x, y, v),
                     "ggnvp": lambda m=model, f=loss_fn, x=x, y=y, v=v: hessian.ggnvp(m, f, x, y, v)}
            for n in threads:
                with cyprop.threads(n):
                    times = measure(steps, repeats, target, settle if n > 1 else 0.0)
                results.append({"case": f"{name} b{batch}", "dtype": np.dtype(dtype).name,
                                "threads": n, "hessian": times})
    return results


def format_hessian(results):
    """The --hessian table: forward + backward, hvp, ggnvp and the ratios."""
    head = (f"{'case':<30} {'dtype':<8} {'thr':>3} {'fwd+bwd':>11} {'hvp':>11} {'ratio':>6}"
            f" {'ggnvp':>11} {'ratio':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        t = r["hessian"]
        fb = t["fwd+bwd"]
        lines.append(f"{r['case']:<30} {r['dtype']:<8} {r['threads']:>3} {_fmt_time(fb):>11}"
                     f" {_fmt_time(t['hvp']):>11} {t['hvp'] / fb:6.2f}"
                     f" {_fmt_time(t['ggnvp']):>11} {t['ggnvp'] / fb:6.2f}")
    lines.append("ratio = product time / one forward + backward of the same model and batch")
    return "\n".join(lines)


def _set_threads(n):
    torch = _optional("torch")
    if torch is not None:
        torch.set_num_threads(n)


def build_cases(dtypes, which):
    """(case name, dtype, {peer: builder()}, gemm-bound) for every selected case."""
    peers = {"cyprop": cyprop_step, "numpy": numpy_step}
    if _optional("torch") is not None:
        peers["torch"] = torch_step
    if _optional("jax") is not None:
        peers["jax"] = jax_step
    for dtype in dtypes:
        if "train" in which:
            for name, sizes, batch in MLPS:
                steps = {k: b(sizes, batch, dtype) for k, b in peers.items()}
                # the GEMMs alone where numpy.matmul's call overhead (~1 us a
                # product) is small beside them: all but the smallest MLP
                if sizes[0] * batch >= 8192:
                    steps["gemms"] = gemms_step(sizes, batch, dtype)
                    steps["blas"] = blas_gemms_step(sizes, batch, dtype)
                yield f"step {name} b{batch}", dtype, steps
            sizes, batch, p = TABULAR
            steps = {"cyprop": cyprop_tabular_step(sizes, batch, p, dtype),
                     "numpy": numpy_tabular_step(sizes, batch, p, dtype)}
            if "torch" in peers:
                steps["torch"] = torch_tabular_step(sizes, batch, p, dtype)
            # its Linear layers' products are an MLP's of the same sizes: the GEMM floor
            steps["gemms"] = gemms_step(sizes, batch, dtype)
            steps["blas"] = blas_gemms_step(sizes, batch, dtype)
            yield f"tabular {'-'.join(map(str, sizes))} b{batch}", dtype, steps
        if "kernels" in which:
            for name in ("relu", "sigmoid", "tanh"):
                for direction in ("forward", "backward"):
                    yield f"{name} {direction} {KERNEL_SHAPE}", dtype, kernel_cases(name, direction, dtype)
            yield f"softmax-CE fwd+bwd {CE_SHAPE}", dtype, ce_cases(dtype)
            yield f"adamw step ({ADAMW_SIZE // 10**6}M params)", dtype, adamw_cases(dtype)
            yield f"batchnorm fwd+bwd {KERNEL_SHAPE}", dtype, batchnorm_cases(dtype)
            yield f"dropout fwd+bwd {KERNEL_SHAPE}", dtype, dropout_cases(dtype)
            yield f"gelu forward {KERNEL_SHAPE}", dtype, act2_forward_cases("gelu", dtype)
            yield f"silu forward {KERNEL_SHAPE}", dtype, act2_forward_cases("silu", dtype)
            yield f"bce-logits fwd+bwd {KERNEL_SHAPE}", dtype, bce_cases(dtype)


# the compute-bound kernels, whose thread scaling counts (the activation
# backward passes and ReLU are bound by memory, which a second core does not double)
SCALING_KERNELS = ("sigmoid forward", "tanh forward", "softmax-CE", "gelu forward",
                   "silu forward")


def scaling_cases(cases):
    """(case name, dtype, cyprop step) of the compute-bound kernels among ``cases``."""
    return [(name, dtype, steps["cyprop"]) for name, dtype, steps in cases
            if name.startswith(SCALING_KERNELS)]


# scikit-learn's defaults (100 units, batch 200), then two hidden layers at batch
# 32: the small-batch fit, where the per-batch cost of the estimator loop shows
DIGITS_FITS = ((dict(), 50), (dict(hidden_layer_sizes=(128, 128), batch_size=32), 20))


def sklearn_digits(threads, repeats=3, settle=0.15, fits=DIGITS_FITS):
    """Fit time and test accuracy of cyprop.sklearn vs scikit-learn's MLPClassifier on digits.

    Identical hyperparameters (scikit-learn's defaults updated with each of
    ``fits``' keywords, its number of epochs, ``random_state=0``); each fit is
    timed ``repeats`` times, interleaved.
    """
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP

    from cyprop.sklearn import MLPClassifier as CpMLP

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, random_state=0, stratify=y)
    results = []
    for kw, max_iter in fits:
        shape = "x".join(str(h) for h in kw.get("hidden_layer_sizes", (100,)))
        case = f"digits MLPClassifier fit {shape} b{kw.get('batch_size', 200)} ({max_iter} ep)"
        for n in threads:
            times = {"cyprop": [], "sklearn": []}
            acc = {}
            with cyprop.threads(n), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                for _ in range(repeats):
                    for name, cls in (("cyprop", CpMLP), ("sklearn", SkMLP)):
                        est = cls(max_iter=max_iter, random_state=0, **kw)
                        if n > 1:  # let the other library's spinning BLAS threads go idle
                            time.sleep(settle)
                        t0 = time.perf_counter()
                        est.fit(Xtr, ytr)
                        times[name].append(time.perf_counter() - t0)
                        acc[name] = est.score(Xte, yte)
            results.append({"case": case, "dtype": "float64", "threads": n,
                            "times": {k: statistics.median(v) for k, v in times.items()},
                            "accuracy": acc})
    return results


def format_sklearn(results):
    lines = [f"{'case':<46} {'thr':>3} {'cyprop':>9} {'sklearn':>9} {'ratio':>6} "
             f"{'acc cyprop':>10} {'acc sklearn':>11}"]
    for r in results:
        t, a = r["times"], r["accuracy"]
        lines.append(f"{r['case']:<46} {r['threads']:>3} {t['cyprop']:>8.3f}s {t['sklearn']:>8.3f}s "
                     f"{t['cyprop'] / t['sklearn']:6.2f} {a['cyprop']:>10.4f} {a['sklearn']:>11.4f}")
    return "\n".join(lines)


_MEMORY_SCRIPT = """
import resource, sys
import numpy as np
from cyprop import bench
step = getattr(bench, sys.argv[1] + "_step")((784, 512, 512, 10), 1024, np.float32)
for _ in range(10):
    step()
try:  # VmHWM belongs to this process image; ru_maxrss survives execve (the parent's peak)
    with open("/proc/self/status") as f:
        print([int(line.split()[1]) for line in f if line.startswith("VmHWM")][0])
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(peers=("cyprop", "numpy", "torch")):
    """Peak RSS (MiB) of a 10-step training run of the 784-512-512-10 MLP (batch 1024, fp32).

    Each peer runs in a fresh interpreter, so its imports and allocator are
    measured alone (Linux/macOS ``ru_maxrss``).
    """
    import subprocess

    results = {}
    for peer in peers:
        if peer in ("torch", "jax") and _optional(peer) is None:
            continue
        out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, peer], capture_output=True,
                             text=True, check=True).stdout.split()[-1]
        kib = int(out) / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes
        results[peer] = kib / 1024
    return results


_CHECKPOINT_SCRIPT = """
import json, resource, sys, time, tracemalloc
import numpy as np
from cyprop import nn, optim
k = None if sys.argv[1] == "none" else int(sys.argv[1])
depth, width, batch, steps = (int(a) for a in sys.argv[2:6])
rng = np.random.default_rng(0)
x = rng.standard_normal((batch, width)).astype(np.float32)
y = rng.integers(0, 10, batch)
layers = [nn.Linear(width, width, activation="relu", seed=i) for i in range(depth - 1)]
model = nn.Sequential(*layers, nn.Linear(width, 10, seed=depth), checkpoint_segments=k)
loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=1e-3)
def step():
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    opt.step()
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
step()   # the first step allocates the workspaces
peak = tracemalloc.get_traced_memory()[1] - base
tracemalloc.stop()
times = []
for _ in range(steps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)
print(json.dumps({"peak_mib": peak / 2**20, "rss_mib": rss, "step_s": min(times)}))
"""


def checkpoint_memory(segments=(None, 4), depth=16, width=1024, batch=4096, steps=3):
    """Activation checkpointing: memory and step time of a deep ReLU MLP, plain and in k segments.

    Each configuration runs in a fresh interpreter: the tracemalloc peak of
    the first training step (the arrays it allocates: the stored activations
    and workspaces), the process's peak RSS, and the best step time of
    ``steps`` more.
    """
    import subprocess
    results = []
    for k in segments:
        out = subprocess.run([sys.executable, "-c", _CHECKPOINT_SCRIPT, str(k).lower(),
                              str(depth), str(width), str(batch), str(steps)],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        results.append({"checkpoint_segments": k, **json.loads([o for o in out if o][-1])})
    return results


def format_checkpoint(results, depth=16, width=1024, batch=4096):
    base = results[0]
    lines = [f"activation checkpointing, {depth}-layer {width}-wide ReLU MLP, batch {batch}, "
             "float32, SGD step:",
             f"{'segments':>8} {'tracemalloc peak':>17} {'ratio':>6} {'peak RSS':>9} {'step':>9} "
             f"{'ratio':>6}"]
    for r in results:
        lines.append(f"{str(r['checkpoint_segments']):>8} {r['peak_mib']:>13.0f} MiB "
                     f"{r['peak_mib'] / base['peak_mib']:6.2f} {r['rss_mib']:>5.0f} MiB "
                     f"{r['step_s']:>8.3f}s {r['step_s'] / base['step_s']:6.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# cyprop.distributed: a LocalCluster's step against one process, and its costs
DISTRIBUTED_CASES = (((784, 512, 512, 10), 4096), ((20, 64, 64, 2), 256))


def _noop(*args):
    return None


def cluster_costs(client, repeats=20, nbytes=64 << 20):
    """The cluster's costs: one task's round trip from the driver, the scheduler's time per
    task in a burst, and the seconds per byte of a transfer between two workers."""
    rt = []
    for _ in range(repeats):
        t = time.perf_counter()
        client.submit(_noop, pure=False).result()
        rt.append(time.perf_counter() - t)
    burst = 400
    t = time.perf_counter()
    client.gather(client.map(_noop, range(burst), pure=False))
    per_task = (time.perf_counter() - t) / burst
    workers = sorted(client.scheduler_info()["workers"])
    per_byte = float("nan")
    if len(workers) > 1:
        from . import distributed as D
        times = []
        for _ in range(3):
            held = client.submit(D._held, np.ones(nbytes // 8), workers=workers[:1], pure=False)
            held.result()
            t = time.perf_counter()
            client.submit(_noop, held, workers=workers[1:2], pure=False).result()
            times.append(time.perf_counter() - t)
            client.cancel([held])
        per_byte = max(min(times) - statistics.median(rt), 0.0) / nbytes
    return {"round_trip_s": statistics.median(rt), "per_task_s": per_task,
            "per_byte_s": per_byte}


def distributed_steps(n_workers=2, steps=8, repeats=3):
    """Time per step and bytes per step of DataParallel on a LocalCluster of ``n_workers``
    processes against the same training in this process (at its default threads)."""
    from . import distributed as D
    results = []
    with D.local_cluster(n_workers) as client:
        client.wait_for_workers(n_workers)
        costs = cluster_costs(client)
        for sizes, batch in DISTRIBUTED_CASES:
            rng = np.random.default_rng(0)
            X = rng.standard_normal((batch * steps, sizes[0])).astype(np.float32)
            y = rng.integers(0, sizes[-1], batch * steps)
            model = _cyprop_mlp(sizes, np.float32)
            ce = nn.SoftmaxCrossEntropy()
            opt = optim.Adam(model.parameters(), lr=1e-3)
            single = []
            for _ in range(repeats):
                t = time.perf_counter()
                for b in range(steps):
                    ce(model(X[b * batch:(b + 1) * batch]), y[b * batch:(b + 1) * batch])
                    model.backward(ce.backward())
                    opt.step()
                single.append((time.perf_counter() - t) / steps)
            dp = D.DataParallel(model, ce, opt, client=client)
            dp.fit(X[:2 * batch], y[:2 * batch], batch_size=batch, progress=False)   # warm-up
            dist = []
            for _ in range(repeats):   # the steps alone (a fit sends the data's parts first)
                dist.append(dp.fit(X, y, batch_size=batch, progress=False).seconds_per_step_)
            results.append({"case": "-".join(map(str, sizes)), "batch": batch,
                            "parameters": int(model._values.size), "workers": n_workers,
                            "single_step_s": min(single), "distributed_step_s": min(dist),
                            "bytes_per_step": dp.bytes_per_step_,
                            "single_threads": cyprop.get_num_threads(), **costs})
    return results


def projected_step(row, workers, per_byte=None):
    """A step's time on ``workers`` workers from the measured costs (see the README):
    compute split W ways, 2W tasks through the scheduler, the broadcast of theta
    (4P bytes to each worker) and a tree of log2(W) gradient sums (8P bytes a level)."""
    import math
    p = row["parameters"]
    b = row["per_byte_s"] if per_byte is None else per_byte
    compute = row["single_step_s"] * row["single_threads"]    # one core's step
    return (compute / workers + 2 * workers * row["per_task_s"]
            + math.ceil(math.log2(max(workers, 1)) + 1) * (row["round_trip_s"] + 8 * p * b)
            + workers * 4 * p * b)


def format_distributed(results):
    c = results[0]
    lines = [f"DataParallel on a LocalCluster of {c['workers']} worker processes (1 thread each) "
             f"against one process at {c['single_threads']} threads, float32, Adam:",
             f"{'model':>16} {'batch':>6} {'one process':>12} {'cluster':>9} {'ratio':>6} "
             f"{'bytes/step':>11}"]
    for r in results:
        lines.append(f"{r['case']:>16} {r['batch']:>6} {1e3 * r['single_step_s']:>9.2f} ms "
                     f"{1e3 * r['distributed_step_s']:>6.2f} ms "
                     f"{r['distributed_step_s'] / r['single_step_s']:6.2f} "
                     f"{r['bytes_per_step'] / 1e6:>8.2f} MB")
    lines.append(f"costs: task round trip {1e3 * c['round_trip_s']:.2f} ms, scheduler "
                 f"{1e6 * c['per_task_s']:.0f} us/task, transfer {1e9 * c['per_byte_s']:.2f} "
                 "ns/byte (localhost)")
    lines.append("projected step (compute of one core split W ways, plus the costs above; "
                 "in brackets with 0.8 ns/byte, a 10 Gb/s network):")
    lines.append(f"{'model':>16} " + " ".join(f"{'W=' + str(w):>17}" for w in (2, 16, 64)))
    for r in results:
        lines.append(f"{r['case']:>16} " + " ".join(
            f"{1e3 * projected_step(r, w):>6.1f} ({1e3 * projected_step(r, w, 0.8e-9):>6.1f}) ms"
            for w in (2, 16, 64)))
    return "\n".join(lines)


def run(threads=(1, 2), dtypes=(np.float32, np.float64), which=("train", "kernels"),
        repeats=5, target=0.02, settle=0.15, progress=True):
    """Run the benchmark; return a list of result dicts (times in seconds)."""
    results = []
    cases = list(build_cases(dtypes, which))
    # thread scaling: 1 and the most threads asked for, interleaved in one measurement
    most = max(threads)
    scaling = scaling_cases(cases) if 1 in threads and most > 1 else []
    total = len(cases) * len(threads) + len(scaling)
    done = 0

    def report(name, dtype, what):
        if progress:
            print(f"\r[{done}/{total}] {name} {np.dtype(dtype).name} {what}" + " " * 20,
                  end="", file=sys.stderr, flush=True)
    for n in threads:
        with cyprop.threads(n):
            _set_threads(n)
            for name, dtype, steps in cases:
                done += 1
                report(name, dtype, f"threads={n}")
                times = measure(steps, repeats, target, settle if n > 1 else 0.0)
                results.append({"case": name, "dtype": np.dtype(dtype).name, "threads": n,
                                "times": times})
    for name, dtype, step in scaling:
        done += 1
        report(name, dtype, f"threads 1 vs {most}")
        times = measure({1: step, most: step}, repeats, target, settle,
                        contexts={n: (lambda n=n: cyprop.threads(n)) for n in (1, most)})
        results.append({"case": name, "dtype": np.dtype(dtype).name, "threads": most,
                        "scaling": {str(n): t for n, t in times.items()}})
    if progress and total:
        print("\r" + " " * 79 + "\r", end="", file=sys.stderr, flush=True)
    return results


def _fmt_time(s):
    if s < 1e-3:
        return f"{s * 1e6:8.1f} us"
    return f"{s * 1e3:8.2f} ms"


_FLOOR_NAMES = {"gemms": "GEMMs", "blas": "BLAS", "stream": "stream"}


def format_table(results):
    peers = [p for p in ("numpy", "torch", "jax") if any(p in r["times"] for r in results)]
    floors = [p for p in _FLOOR_NAMES if any(p in r["times"] for r in results)]
    head = (f"{'case':<38} {'dtype':<8} {'thr':>3} {'cyprop':>11} "
            + " ".join(f"{p:>11} {'ratio':>6}" for p in peers)
            + "".join(f" {_FLOOR_NAMES[p]:>11} {'ratio':>6}" for p in floors))
    lines = [head, "-" * len(head)]
    for r in results:
        t = r["times"]
        row = f"{r['case']:<38} {r['dtype']:<8} {r['threads']:>3} {_fmt_time(t['cyprop']):>11} "
        for p in peers:
            row += (f"{_fmt_time(t[p]):>11} {t['cyprop'] / t[p]:6.2f} " if p in t
                    else f"{'-':>11} {'-':>6} ")
        for i, p in enumerate(floors):  # a row ends after the last floor it has
            if p in t:
                row += f"{_fmt_time(t[p]):>11} {t['cyprop'] / t[p]:6.2f} "
            elif any(q in t for q in floors[i + 1:]):
                row += f"{'-':>11} {'-':>6} "
        lines.append(row.rstrip())
    lines.append("ratio = cyprop time / peer time (lower is better; < 1 means cyprop is faster)")
    if "gemms" in floors:
        lines.append("GEMMs = the step's matrix products alone in numpy.matmul; BLAS = the same"
                     f" through the BLAS cyprop calls ({cyprop.blas_info()['name']}) in its"
                     " GEMM blocks")
    if "stream" in floors:
        lines.append("stream = a one-thread NumPy loop on the kernel's bytes that computes next to"
                     " nothing (out = -x; out = dy * y backward): near 1 at 1 thread, memory-bound")
    if "jax" in peers:
        lines.append("jax: XLA sizes its own thread pool (all cores) whatever 'thr' says")
    return "\n".join(lines)


def _format_1_vs_n(results, key, last, ratio, note):
    """A table of cyprop's time at 1 and n threads (``r[key]``) and ``ratio(t1, tn)``."""
    n = results[0]["threads"]
    head = f"{'case':<38} {'dtype':<8} {'1 thread':>11} {f'{n} threads':>11} {last:>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        t1, tn = r[key]["1"], r[key][str(r["threads"])]
        lines.append(f"{r['case']:<38} {r['dtype']:<8} {_fmt_time(t1):>11} {_fmt_time(tn):>11} "
                     f"{ratio(t1, tn):7.2f}x")
    lines.append(note.format(n=n))
    return "\n".join(lines)


def format_scaling(results):
    """The thread-scaling table: cyprop's time at 1 and n threads, and the speed-up."""
    return _format_1_vs_n(results, "scaling", "speed-up", lambda t1, tn: t1 / tn,
                          "speed-up = time at 1 thread / time at {n}; the two are measured "
                          "interleaved, in one run")


def format_under_load(results):
    """The under-load table: cyprop's time at 1 and n threads, and n's time over 1's."""
    return _format_1_vs_n(results, "under_load", "n / 1", lambda t1, tn: tn / t1,
                          "n / 1 = time at {n} threads / time at 1 on the same loaded machine, "
                          "measured interleaved (above 1: the threads cost time)")


def plot(results, path):
    """Bar chart of cyprop's speed-up over each peer (peer time / cyprop time)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in results if "cyprop" in r.get("times", {})]
    peers = [p for p in ("numpy", "torch", "jax", "sklearn")
             if any(p in r["times"] for r in results)]
    labels = [f"{r['case']} {r['dtype']} t{r['threads']}" for r in results]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(results) + 1.5))
    height = 0.8 / max(len(peers), 1)
    ys = np.arange(len(results))
    for k, p in enumerate(peers):
        speed = [r["times"][p] / r["times"]["cyprop"] if p in r["times"] else 0 for r in results]
        ax.barh(ys + k * height, speed, height=height, label=f"vs {p}")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(ys + height * (len(peers) - 1) / 2)
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("speed-up of cyprop (peer time / cyprop time, log scale; > 1 is faster)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m cyprop.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    ap.add_argument("--only", choices=["train", "kernels", "sklearn", "all"], default="all")
    ap.add_argument("--repeats", type=int, default=5, help="samples per peer (median taken)")
    ap.add_argument("--target", type=float, default=0.02, help="seconds per sample")
    ap.add_argument("--settle", type=float, default=0.15,
                    help="pause after each sample when threads > 1 (seconds)")
    ap.add_argument("--memory", action="store_true",
                    help="also measure the peak RSS of a training run for each peer")
    ap.add_argument("--under-load", type=int, default=0, metavar="N",
                    help="run beside N busy processes, and time cyprop at 1 and n threads there")
    ap.add_argument("--compare-blas", action="store_true",
                    help="time the training steps with each BLAS cyprop can call, and stop")
    ap.add_argument("--hessian", action="store_true",
                    help="time cyprop.hessian's hvp and ggnvp against a forward + backward, and stop")
    ap.add_argument("--checkpoint", action="store_true",
                    help="measure activation checkpointing (memory, step time), and stop")
    ap.add_argument("--distributed", action="store_true",
                    help="time cyprop.distributed.DataParallel on a 2-process LocalCluster "
                         "against one process (needs dask[distributed]), and stop")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--plot", metavar="FILE.png", help="draw speed-ups (needs matplotlib)")
    args = ap.parse_args(argv)
    try:
        threads = tuple(int(t) for t in args.threads.split(","))
    except ValueError:
        ap.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    if any(t < 1 for t in threads):
        ap.error("--threads must be >= 1")
    if args.under_load < 0:
        ap.error("--under-load must be >= 0")
    dtypes = {"float32": (np.float32,), "float64": (np.float64,),
              "both": (np.float32, np.float64)}[args.dtype]
    which = ("train", "kernels", "sklearn") if args.only == "all" else (args.only,)
    print(f"cyprop {cyprop.__version__}, OpenMP {cyprop.openmp_enabled()}, "
          f"peers: numpy {np.__version__}"
          + "".join(f", {m} {_optional(m).__version__}" for m in ("torch", "jax")
                    if _optional(m) is not None)
          + (f"; under load: {args.under_load} busy processes" if args.under_load else ""))
    # the modes that print one table of their own and stop
    standalone = [(args.checkpoint, lambda: checkpoint_memory(), format_checkpoint),
                  (args.distributed, lambda: distributed_steps(), format_distributed),
                  (args.hessian, lambda: hessian_products(dtypes, threads, args.repeats,
                                                          args.target, args.settle),
                   format_hessian),
                  (args.compare_blas, lambda: compare_blas(dtypes, threads, args.repeats,
                                                           args.target, args.settle),
                   lambda rows: format_compare_blas(rows) if rows
                   else "scipy-openblas32 is not installed")]
    for wanted, measure_rows, fmt in standalone:
        if wanted:
            rows = measure_rows()
            print(fmt(rows))
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=1)
            return 0
    with busy_processes(args.under_load):
        return _report(args, threads, dtypes, which)


def _report(args, threads, dtypes, which):
    """Measure and print what ``main`` was asked for."""
    results = run(threads, dtypes, which, args.repeats, args.target, args.settle)
    # training steps and kernels in tables of their own: each gets only its columns
    timed = [r for r in results if "times" in r]
    tables = [[r for r in timed if r["case"].startswith("step")],
              [r for r in timed if not r["case"].startswith("step")]]
    if timed:
        print("\n\n".join(format_table(t) for t in tables if t))
    scaling = [r for r in results if "scaling" in r]
    if scaling:
        print("\nthread scaling of the compute-bound kernels, cyprop alone:")
        print(format_scaling(scaling))
    if "sklearn" in which:
        if _optional("sklearn") is None:
            print("scikit-learn is not installed: digits comparison skipped")
        else:
            print("\nscikit-learn's digits, MLPClassifier with identical hyperparameters:")
            sk = sklearn_digits(threads)
            print(format_sklearn(sk))
            results = results + sk
    if args.under_load and max(threads) > 1:
        loaded = under_load(dtypes, max(threads), args.repeats, args.target, args.settle)
        print(f"\ncyprop at 1 and {max(threads)} threads beside {args.under_load} busy processes:")
        print(format_under_load(loaded))
        losses, _, _ = _openmp.team_stats()
        print(f"parallel regions that lost to one thread (pyx/_team.h): {losses}")
        results = results + loaded
    if args.memory:
        mem = peak_memory()
        print("\npeak RSS of 10 training steps, MLP 784-512-512-10, batch 1024, float32 "
              "(fresh process each, imports included):")
        print("  " + ", ".join(f"{k} {v:.0f} MiB" for k, v in mem.items()))
        results = results + [{"case": "peak RSS MiB", "memory": mem}]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        try:
            plot(results, args.plot)
        except ImportError:
            print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
            return 1
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
