"""Command line: ``python -m cyprop demo`` (also the ``cyprop`` script) and ``bench``.

``demo`` trains an MLP on the handwritten digits that scikit-learn ships,
with a progress bar per epoch, then trains the same model with
scikit-learn's MLPClassifier and, where installed, PyTorch, and prints time
and test accuracy side by side. Needs the ``demo`` extra:
``pip install ".[demo]"``.
"""
import argparse
import sys
import time

import numpy as np

import cyprop
from cyprop import nn, optim


def _parse_hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"hidden sizes must be >= 1, got {text!r}")
    return sizes


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _load_digits(dtype):
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        sys.exit("the demo needs scikit-learn for its dataset: pip install 'cyprop[demo]'")
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _batches(n, batch_size, rng):
    order = rng.permutation(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def train_cyprop(Xtr, ytr, Xte, yte, args, progress=True):
    """Train with cyprop's layer API; returns (seconds, accuracy, loss per epoch)."""
    from tqdm import tqdm

    dtype = Xtr.dtype
    sizes = (Xtr.shape[1],) + args.hidden + (10,)
    layers = [nn.Linear(a, b, activation="relu" if i < len(sizes) - 2 else None, dtype=dtype,
                        seed=i) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    model = nn.Sequential(*layers)
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(0)
    curve = []
    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="cyprop", unit="epoch", disable=not progress,
               file=sys.stdout, ncols=90)
    for _ in bar:
        t0, total, correct = time.perf_counter(), 0.0, 0
        for idx in _batches(len(Xtr), args.batch_size, rng):
            out = model(Xtr[idx])
            correct += int((out.argmax(axis=1) == ytr[idx]).sum())
            total += loss_fn(out, ytr[idx]) * len(idx)
            model.backward(loss_fn.backward())
            opt.step()
        curve.append(total / len(Xtr))
        bar.set_postfix(loss=f"{curve[-1]:.4f}", acc=f"{correct / len(Xtr):.3f}",
                        samples_s=f"{len(Xtr) / (time.perf_counter() - t0):,.0f}")
    seconds = time.perf_counter() - start
    acc = float((model(Xte).argmax(axis=1) == yte).mean())
    if getattr(args, "diagnose", False):
        from cyprop import diagnostics
        print(diagnostics.unit_report(model, Xtr, loss_fn=loss_fn, target=ytr))
    return seconds, acc, curve


def train_sklearn(Xtr, ytr, Xte, yte, args):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=args.hidden, solver="adam", alpha=0.0,
                        batch_size=args.batch_size, learning_rate_init=args.lr,
                        max_iter=args.epochs, n_iter_no_change=args.epochs + 1, tol=0.0,
                        random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xtr, ytr)
    return time.perf_counter() - start, clf.score(Xte, yte), list(clf.loss_curve_)


def train_torch(Xtr, ytr, Xte, yte, args):
    import torch

    torch.manual_seed(0)
    tdtype = torch.float32 if Xtr.dtype == np.float32 else torch.float64
    sizes = (Xtr.shape[1],) + args.hidden + (10,)
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b, dtype=tdtype))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    crit = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(Xtr), torch.from_numpy(ytr)
    rng = np.random.default_rng(0)
    curve = []
    start = time.perf_counter()
    for _ in range(args.epochs):
        total = 0.0
        for idx in _batches(len(Xtr), args.batch_size, rng):
            ti = torch.from_numpy(idx)
            opt.zero_grad(set_to_none=True)
            loss = crit(model(tx[ti]), ty[ti])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        curve.append(total / len(Xtr))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = float((model(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean())
    return seconds, acc, curve


def plot_curves(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=name, marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_yscale("log")
    ax.set_title("MLP on scikit-learn's digits")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def demo(argv=None):
    ap = argparse.ArgumentParser(prog="python -m cyprop demo",
                                 description="Train an MLP on the handwritten digits and compare "
                                             "with scikit-learn and PyTorch.")
    ap.add_argument("--epochs", type=_positive, default=30)
    ap.add_argument("--hidden", type=_parse_hidden, default=(128, 64),
                    help="hidden layer sizes, comma-separated (default 128,64)")
    ap.add_argument("--batch-size", type=_positive, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--threads", type=_positive, default=None,
                    help="threads for every library (default: all cores)")
    ap.add_argument("--plot", metavar="FILE.png", help="write the loss curves")
    ap.add_argument("--no-compare", action="store_true", help="train cyprop only")
    ap.add_argument("--diagnose", action="store_true",
                    help="print cyprop's unit report (dead/saturated units) after training")
    args = ap.parse_args(argv)
    if args.threads is not None:
        cyprop.set_num_threads(args.threads)
    threads = cyprop.get_num_threads()
    Xtr, Xte, ytr, yte = _load_digits(np.dtype(args.dtype))
    print(f"digits: {len(Xtr)} training and {len(Xte)} test images of 8x8 pixels, 10 classes; "
          f"MLP {Xtr.shape[1]}-{'-'.join(map(str, args.hidden))}-10, Adam lr={args.lr}, "
          f"batch {args.batch_size}, {args.epochs} epochs, {args.dtype}, {threads} thread(s)")
    results = {"cyprop": train_cyprop(Xtr, ytr, Xte, yte, args)}
    print(f"cyprop test accuracy: {results['cyprop'][1]:.4f}")
    if not args.no_compare:
        print("training the same model with scikit-learn ...", flush=True)
        results["scikit-learn"] = train_sklearn(Xtr, ytr, Xte, yte, args)
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: skipped")
        else:
            torch.set_num_threads(threads)
            print("training the same model with PyTorch ...", flush=True)
            results["PyTorch"] = train_torch(Xtr, ytr, Xte, yte, args)
    base = results["cyprop"][0]
    print(f"\n{'library':<14} {'fit time':>10} {'vs cyprop':>10} {'test accuracy':>14}")
    for name, (seconds, acc, _) in results.items():
        print(f"{name:<14} {seconds:>9.2f}s {seconds / base:>9.1f}x {acc:>14.4f}")
    if args.plot:
        try:
            plot_curves({k: v[2] for k, v in results.items()}, args.plot)
        except ImportError:
            print("--plot needs matplotlib: pip install 'cyprop[demo]'", file=sys.stderr)
            return 1
        print(f"loss curves written to {args.plot}")
    return 0


def main(argv=None):
    """Entry point of ``python -m cyprop`` and the ``cyprop`` script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"demo": demo, "bench": lambda a: __import__("cyprop.bench").bench.main(a)}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: python -m cyprop {demo,bench} [options]\n\n"
              "  demo   train an MLP on the digits and compare with scikit-learn and PyTorch\n"
              "  bench  time cyprop against NumPy, PyTorch and JAX (see --help)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
