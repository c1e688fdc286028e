#!/usr/bin/env python
"""The cs231n two-layer net, end to end, with gradients from tinygrad_lite's engine.

    python examples/two_layer.py                      # spiral data, ~10 s
    python examples/two_layer.py --sweep              # + the learning-rate x reg grid
    python examples/two_layer.py --data cifar10 --cifar-dir ~/data/cifar-10-batches-py

Steps (the posts' path, seeds 000 and 001):
  1. gradient check of cs231n's toy model (5 inputs, D=4, H=10, C=3): the scores
     and loss against the notebook's values, and a table of rel_error per parameter
     (engine gradient vs central differences);
  2. training with cs231n's SGD loop (minibatches sampled with replacement, learning
     rate decayed once per epoch), with a progress bar, then train/val accuracy;
  3. files in --out DIR: loss and accuracy plots (PNG, if matplotlib is installed),
     the first-layer weights as an image grid (image data) or the decision regions
     (spiral), the net's circuit diagram (SVG, if the `viz` package is importable),
     and the trained parameters (.npz);
  4. --sweep: train one net per (learning rate, reg) pair, print the table and
     the best pair (the best net is the one saved and plotted).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

try:
    import tinygrad_lite  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from tinygrad_lite import eval_numerical_gradient, rel_error  # noqa: E402
from tinygrad_lite.data import get_CIFAR10_data, spiral  # noqa: E402
from tinygrad_lite.models import TwoLayerNet  # noqa: E402

# The cs231n notebook's reference values for the toy model (seed 001).
from tinygrad_lite.reference import TOY_CORRECT_LOSS as CORRECT_LOSS  # noqa: E402
from tinygrad_lite.reference import TOY_CORRECT_SCORES as CORRECT_SCORES  # noqa: E402

#: per data set: hidden size, std, lr, lr decay, reg, iterations, batch size,
#: and the sweep grid (cifar10's is seed 001's, with its 0.5 * reg convention).
DEFAULTS = {
    "spiral": dict(hidden_size=100, std=1e-1, lr=1.0, lr_decay=0.999, reg=5e-4, iters=2000,
                   batch_size=200, sweep_lrs=[1e-1, 1.0], sweep_regs=[1e-4, 5e-4, 1e-3]),
    "cifar10": dict(hidden_size=50, std=1e-4, lr=1e-4, lr_decay=0.95, reg=0.25, iters=1000,
                    batch_size=200, sweep_lrs=[1e-2, 1e-3], sweep_regs=[0.4, 0.5, 0.6]),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="two_layer.py",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Hyperparameters left unset take the data set's defaults: spiral: hidden 100, "
               "std 0.1, lr 1.0, decay 0.999, reg 5e-4, 2000 iterations, batch 200, sweep lr "
               "{0.1, 1} x reg {1e-4, 5e-4, 1e-3}; cifar10 (cs231n's notebook): hidden 50, "
               "std 1e-4, lr 1e-4, decay 0.95, reg 0.25, 1000 iterations, batch 200, sweep lr "
               "{1e-2, 1e-3} x reg {0.4, 0.5, 0.6} (seed 001's grid, meant with --l2-half).")
    d = p.add_argument_group("data")
    d.add_argument("--data", choices=["spiral", "cifar10"], default="spiral",
                   help="spiral: cs231n's 3-class spiral, embedded (default); cifar10: needs --cifar-dir")
    d.add_argument("--cifar-dir", metavar="DIR",
                   help="directory with the CIFAR-10 python batches (data_batch_1..5, test_batch) or "
                        "the binary ones (*.bin), or its parent; download from "
                        "https://www.cs.toronto.edu/~kriz/cifar.html")
    d.add_argument("--num-train", type=int, default=49000, help="cifar10: training images (default 49000)")
    d.add_argument("--num-val", type=int, default=1000, help="cifar10: validation images (default 1000)")
    d.add_argument("--num-test", type=int, default=1000, help="cifar10: test images (default 1000)")
    d.add_argument("--points", type=int, default=100, help="spiral: points per class (default 100)")
    d.add_argument("--classes", type=int, default=3, help="spiral: number of classes (default 3)")
    m = p.add_argument_group("model and training")
    m.add_argument("--hidden-size", type=int, help="hidden units H")
    m.add_argument("--std", type=float, help="weights start as std * randn (cs231n's init)")
    m.add_argument("--lr", type=float, help="learning rate")
    m.add_argument("--lr-decay", type=float, help="learning rate factor applied once per epoch")
    m.add_argument("--reg", type=float, help="L2 strength: loss += reg * (|W1|^2 + |W2|^2)")
    m.add_argument("--l2-half", action="store_true",
                   help="use the older notes' 0.5 * reg * (|W1|^2 + |W2|^2) (seed 001) instead")
    m.add_argument("--iters", type=int, help="SGD iterations")
    m.add_argument("--batch-size", type=int, help="minibatch size (sampled with replacement)")
    m.add_argument("--seed", type=int, default=0,
                   help="seed of np.random for init and batches (spiral: training set seed; the "
                        "validation set uses seed+1) (default 0)")
    s = p.add_argument_group("sweep")
    s.add_argument("--sweep", action="store_true", help="train one net per (lr, reg) pair and report the best")
    s.add_argument("--sweep-lrs", type=float, nargs="+", metavar="LR", help="learning rates of the grid")
    s.add_argument("--sweep-regs", type=float, nargs="+", metavar="REG", help="reg strengths of the grid")
    s.add_argument("--sweep-iters", type=int, help="iterations per grid point (default: --iters)")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="DIR", default="out",
                   help="directory for plots, weights, the diagram and the parameters (default: out)")
    o.add_argument("--no-out", action="store_true", help="write no files")
    o.add_argument("--skip-gradcheck", action="store_true", help="skip step 1")
    o.add_argument("--quiet", action="store_true", help="no progress bar or per-100-iteration lines")
    args = p.parse_args(argv)
    for k, v in DEFAULTS[args.data].items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    if args.sweep_iters is None:
        args.sweep_iters = args.iters
    for name in ("hidden_size", "iters", "batch_size", "sweep_iters", "points", "classes"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.data == "cifar10" and not args.cifar_dir:
        p.error("--data cifar10 needs --cifar-dir DIR (see --help for where to get the files)")
    return args


# ----------------------------------------------------------------- step 1

def gradient_check() -> float:
    """cs231n's toy model checks; returns the worst rel_error."""
    print("== 1. gradient check: cs231n's toy model (N=5, D=4, H=10, C=3, reg=0.05)")
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    np.random.seed(1)
    X = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    scores = net.loss(X)
    print(f"difference between the scores and the notebook's correct_scores: "
          f"{np.sum(np.abs(scores - CORRECT_SCORES)):.3e}")
    loss, grads = net.loss(X, y, reg=0.05)
    print(f"difference between the loss and the notebook's correct_loss:     "
          f"{abs(loss - CORRECT_LOSS):.3e}")
    print(f"{'param':<7}{'shape':<10}{'rel_error':>11}")
    worst = 0.0
    for name in grads:
        f = lambda W: net.loss(X, y, reg=0.05)[0]  # noqa: E731
        num = eval_numerical_gradient(f, net.params[name], verbose=False)
        err = rel_error(num, grads[name])
        worst = max(worst, err)
        print(f"{name:<7}{str(grads[name].shape):<10}{err:>11.2e}  {'ok' if err < 1e-8 else 'CHECK'}")
    return worst


# ----------------------------------------------------------------- step 2

def load_data(args):
    if args.data == "spiral":
        X, y = spiral(args.points, args.classes, seed=args.seed)
        X_val, y_val = spiral(args.points, args.classes, seed=args.seed + 1)
        return X, y, X_val, y_val, None, None
    X_tr, y_tr, X_val, y_val, X_te, y_te = get_CIFAR10_data(
        args.cifar_dir, args.num_train, args.num_val, args.num_test)
    return X_tr, y_tr, X_val, y_val, X_te, y_te


def accuracy(net: TwoLayerNet, X, y) -> float:
    return float((net.predict(X) == y).mean())


def train_one(args, X, y, X_val, y_val, lr, reg, iters, verbose):
    np.random.seed(args.seed)
    net = TwoLayerNet(X.shape[1], args.hidden_size, int(max(y.max(), y_val.max())) + 1,
                      std=args.std, l2_half=args.l2_half)
    stats = net.train(X, y, X_val, y_val, learning_rate=lr, learning_rate_decay=args.lr_decay,
                      reg=reg, num_iters=iters, batch_size=args.batch_size, verbose=verbose)
    return net, stats


def sweep(args, X, y, X_val, y_val):
    print(f"== sweep: lr {args.sweep_lrs} x reg {args.sweep_regs}, {args.sweep_iters} iterations each")
    results, best = {}, (-1.0, None, None, None)
    for lr in args.sweep_lrs:
        for reg in args.sweep_regs:
            net, stats = train_one(args, X, y, X_val, y_val, lr, reg, args.sweep_iters, verbose=False)
            acc_train, acc_val = accuracy(net, X, y), accuracy(net, X_val, y_val)
            results[(lr, reg)] = (acc_train, acc_val)
            print(f"lr {lr:e} reg {reg:e} train accuracy: {acc_train:f} val accuracy: {acc_val:f}",
                  flush=True)
            if acc_val > best[0]:
                best = (acc_val, net, stats, (lr, reg))
    acc_val, net, stats, (lr, reg) = best
    print(f"best validation accuracy achieved during cross-validation: {acc_val:f} "
          f"(lr {lr:g}, reg {reg:g})")
    return net, stats, results


# ----------------------------------------------------------------- step 3

def visualize_grid(Xs: np.ndarray, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """cs231n's ``visualize_grid``: (N, H, W, C) images tiled in a square grid, each
    rescaled to [0, ubound]."""
    N, H, W, C = Xs.shape
    grid_size = int(math.ceil(math.sqrt(N)))
    grid = np.zeros((H * grid_size + padding * (grid_size - 1),
                     W * grid_size + padding * (grid_size - 1), C))
    for idx in range(N):
        r, c = divmod(idx, grid_size)
        img = Xs[idx]
        low, high = np.min(img), np.max(img)
        y0, x0 = r * (H + padding), c * (W + padding)
        grid[y0:y0 + H, x0:x0 + W] = ubound * (img - low) / max(high - low, 1e-12)
    return grid


def write_outputs(args, net, stats, X, y) -> list:
    os.makedirs(args.out, exist_ok=True)
    written = []
    path = net.save(os.path.join(args.out, "two_layer_net.npz"))
    written.append(path)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install -e '.[plots]')")
        plt = None
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(stats["loss_history"])
        ax.set(title="Loss history", xlabel="Iteration", ylabel="Loss")
        fig.tight_layout()
        written.append(_save(fig, os.path.join(args.out, "loss.png")))
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(stats["train_acc_history"], label="train (batch)")
        ax.plot(stats["val_acc_history"], label="val")
        ax.set(title="Classification accuracy history", xlabel="Epoch", ylabel="Accuracy")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, os.path.join(args.out, "accuracy.png")))
        W1 = net.params["W1"]
        if W1.shape[0] == 32 * 32 * 3:  # image data: cs231n's show_net_weights
            grid = visualize_grid(W1.reshape(32, 32, 3, -1).transpose(3, 0, 1, 2), padding=3)
            fig, ax = plt.subplots(figsize=(6, 6))
            ax.imshow(grid.astype("uint8"))
            ax.axis("off")
            ax.set_title("First-layer weights")
            written.append(_save(fig, os.path.join(args.out, "weights.png")))
        elif X.shape[1] == 2:  # the spiral: decision regions, as the notes draw them
            h = 0.02
            x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
            y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
            xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
            Z = net.predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
            fig, ax = plt.subplots(figsize=(5, 5))
            ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
            ax.scatter(X[:, 0], X[:, 1], c=y, s=20, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.3)
            ax.set(xlim=(xx.min(), xx.max()), ylim=(yy.min(), yy.max()), title="Decision regions")
            written.append(_save(fig, os.path.join(args.out, "decision_regions.png")))
    try:
        import viz
    except ImportError:
        print("circuit diagram skipped: the `viz` package is not importable")
    else:
        path = os.path.join(args.out, "two_layer_net.svg")
        try:
            viz.render_svg(circuit_diagram(net, X, y, args.reg), path=path)
            written.append(path)
        except Exception as e:  # a missing renderer, an unfinished viz: never fail the run
            print(f"circuit diagram skipped: {type(e).__name__}: {e}")
    return written


def circuit_diagram(net, X, y, reg):
    """The graph of the loss on a few training rows (fc1, relu, fc2, the cross-entropy
    and the L2 term; parameters labelled W1, b1, W2, b2) as a viz diagram. viz
    computes its gradients from this loss with one backward walk: whatever training
    left in the parameters' .grad never shows, and none is written."""
    import viz
    return viz.draw(net.loss_tensor(X[:5], y[:5], reg=reg))


def _save(fig, path: str) -> str:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    if not args.skip_gradcheck:
        worst = gradient_check()
        print(f"worst rel_error {worst:.2e} ({'all < 1e-8: the gradients are right' if worst < 1e-8 else 'too large'})\n")
    try:
        X, y, X_val, y_val, X_test, y_test = load_data(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"== 2. data: {args.data}, train {X.shape}, val {X_val.shape}"
          + (f", test {X_test.shape}" if X_test is not None else ""))
    if args.sweep:
        net, stats, _ = sweep(args, X, y, X_val, y_val)
    else:
        print(f"training: H={args.hidden_size}, std={args.std:g}, lr={args.lr:g}, decay={args.lr_decay:g}, "
              f"reg={args.reg:g}{' (0.5*reg convention)' if args.l2_half else ''}, "
              f"{args.iters} iterations of batch {args.batch_size}")
        t1 = time.perf_counter()
        net, stats = train_one(args, X, y, X_val, y_val, args.lr, args.reg, args.iters,
                               verbose=not args.quiet)
        print(f"trained in {time.perf_counter() - t1:.1f} s; final loss {stats['loss_history'][-1]:.4f}")
    print(f"train accuracy: {accuracy(net, X, y):.4f}")
    print(f"val accuracy:   {accuracy(net, X_val, y_val):.4f}")
    if X_test is not None:
        print(f"test accuracy:  {accuracy(net, X_test, y_test):.4f}")
    if not args.no_out:
        print(f"\n== 3. writing to {args.out}/")
        for path in write_outputs(args, net, stats, X, y):
            print(f"wrote {path}")
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
