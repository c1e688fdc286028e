#!/usr/bin/env python
"""The cs231n two-layer net, end to end, with gradients from tinygrad_lite's engine.

  python examples/two_layer.py                 # spiral data, about 2 s
  python examples/two_layer.py --sweep         # + the learning rate x reg grid
  python examples/two_layer.py --cifar-dir ~/data/cifar-10-batches-py

Steps (the posts' path, seeds 000 and 001):
  1. gradient check of cs231n's toy model (5 inputs, D=4, H=10, C=3): the
     scores and loss against the notebook's values, and a table of rel_error
     per parameter (engine gradient vs central differences);
  2. training with cs231n's SGD loop (minibatches sampled with replacement,
     learning rate decayed once per epoch), with a progress bar, then
     train/val accuracy;
  3. files in --out DIR: loss and accuracy plots (PNG, with matplotlib), the
     first-layer weights as an image grid (image data) or the decision
     regions (spiral), the net's circuit diagram (SVG, with `viz`), the
     trained parameters (.npz), and run.json naming the run's settings,
     results and files (size, SHA-256). They replace the previous run's files
     together at the end: an interrupted run leaves DIR as it was;
  4. --sweep: train one net per (learning rate, reg) pair, print the table
     and the best pair (the best net is the one saved and plotted).

Every flag is checked before anything runs: a bad value, an --out that cannot
be written or a split larger than the data is a usage error (exit status 2).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import pickle
import secrets
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Dict, List, Optional

import numpy as np

try:
    import tinygrad_lite  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from tinygrad_lite import eval_numerical_gradient, rel_error  # noqa: E402
from tinygrad_lite._cli import integer, number, run_main, signals_deferred  # noqa: E402
from tinygrad_lite._files import atomic_write, fsync_directory  # noqa: E402
from tinygrad_lite.data import load_cifar10, preprocess_cifar10, spiral  # noqa: E402
from tinygrad_lite.models import TrainingDivergedError, TwoLayerNet  # noqa: E402
from tinygrad_lite.sweep import CLUSTER_EXTRA, SweepError  # noqa: E402
from tinygrad_lite.sweep import sweep as run_sweep  # noqa: E402

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


#: Flags that belong to one data set, with their defaults there.
DATA_FLAGS = {
    "spiral": dict(points=100, classes=3),
    "cifar10": dict(num_train=49000, num_val=1000, num_test=1000),
}

PROG = "two_layer.py"

EPILOG = """\
defaults (flags left unset take the data set's):
  spiral   hidden 100, std 0.1, lr 1.0, decay 0.999, reg 5e-4,
           2000 iterations, batch 200;
           sweep lr {0.1, 1} x reg {1e-4, 5e-4, 1e-3}
  cifar10  cs231n's notebook: hidden 50, std 1e-4, lr 1e-4, decay 0.95,
           reg 0.25, 1000 iterations, batch 200;
           sweep lr {1e-2, 1e-3} x reg {0.4, 0.5, 0.6}
           (seed 001's grid, meant with --l2-half)

--cifar-dir implies --data cifar10, and --sweep-lrs, --sweep-regs,
--sweep-iters, --workers or --scheduler imply --sweep; flags of the other
data set are refused.

exit status: 0 done; 1 training diverged (the loss became nan or inf: lower
--lr) or a sweep's configuration failed (the message names it); 2 a bad
flag, an --out that cannot be written, or data that cannot be read or is too
small; 130 / 143 interrupted (Ctrl-C / SIGTERM). Only a run that finishes
changes --out.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG)
    positive, at_least_0 = number(0.0, low_open=True), number(0.0)
    count = integer(1)
    d = p.add_argument_group("data")
    d.add_argument("--data", choices=["spiral", "cifar10"],
                   help="spiral: cs231n's 3-class spiral, embedded (default); cifar10: needs "
                        "--cifar-dir")
    d.add_argument("--cifar-dir", metavar="DIR",
                   help="directory with the CIFAR-10 python batches (data_batch_1..5, test_batch) or "
                        "the binary ones (*.bin), or its parent; implies --data cifar10; download "
                        "from https://www.cs.toronto.edu/~kriz/cifar.html")
    d.add_argument("--num-train", type=count, help="cifar10: training images (default 49000)")
    d.add_argument("--num-val", type=count, help="cifar10: validation images (default 1000)")
    d.add_argument("--num-test", type=integer(0), help="cifar10: test images (default 1000)")
    d.add_argument("--points", type=count, help="spiral: points per class (default 100)")
    d.add_argument("--classes", type=integer(2), help="spiral: number of classes (default 3)")
    m = p.add_argument_group("model and training")
    m.add_argument("--hidden-size", type=count, help="hidden units H")
    m.add_argument("--std", type=positive, help="weights start as std * randn (cs231n's init)")
    m.add_argument("--lr", type=positive, help="learning rate")
    m.add_argument("--lr-decay", type=number(0.0, 1.0, low_open=True),
                   help="learning rate factor applied once per epoch, in (0, 1]")
    m.add_argument("--reg", type=at_least_0, help="L2 strength: loss += reg * (|W1|^2 + |W2|^2)")
    m.add_argument("--l2-half", action="store_true",
                   help="use the older notes' 0.5 * reg * (|W1|^2 + |W2|^2) (seed 001) instead")
    m.add_argument("--iters", type=count, help="SGD iterations")
    m.add_argument("--batch-size", type=count, help="minibatch size (sampled with replacement)")
    m.add_argument("--compile", action="store_true",
                   help="trace one training step (forward, backward, update) and replay it "
                        "without building a graph (tl.compile): the same numbers, faster")
    m.add_argument("--seed", type=integer(0, 2 ** 32 - 2), default=0,
                   help="seed of np.random for init and batches (spiral: training set seed; the "
                        "validation set uses seed+1) (default 0)")
    s = p.add_argument_group("sweep")
    s.add_argument("--sweep", action="store_true", help="train one net per (lr, reg) pair and report the best")
    s.add_argument("--sweep-lrs", type=positive, nargs="+", metavar="LR", help="learning rates of the grid")
    s.add_argument("--sweep-regs", type=at_least_0, nargs="+", metavar="REG", help="reg strengths of the grid")
    s.add_argument("--sweep-iters", type=count, help="iterations per grid point (default: --iters)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=count, metavar="N",
                       help=f"local processes training grid points in parallel (default: the cores "
                            f"available, {_default_workers()} here); 1 trains them one after another "
                            f"in this process")
    where.add_argument("--scheduler", type=_scheduler, metavar="ADDRESS",
                       help="train the grid points on a Dask cluster, e.g. tcp://HOST:8786 (needs "
                            "tinygrad_lite installed on its workers and, here, " + CLUSTER_EXTRA + ")")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="DIR", default="out",
                   help="directory for plots, weights, the diagram, the parameters and run.json "
                        "(default: out)")
    o.add_argument("--no-out", action="store_true", help="write no files")
    o.add_argument("--skip-gradcheck", action="store_true", help="skip step 1")
    o.add_argument("--quiet", action="store_true", help="no progress bar or per-100-iteration lines")
    return p


def usage_error(message: str) -> None:
    """Print the usage and ``two_layer.py: error: message``; exit with status 2."""
    build_parser().error(message)


def parse_args(argv=None) -> argparse.Namespace:
    """The flags, each already checked (argparse types), with the data set's defaults
    filled in; the combinations and --out are checked here, before anything runs."""
    args = build_parser().parse_args(argv)
    if args.data is None:
        args.data = "cifar10" if args.cifar_dir else "spiral"
    elif args.data == "spiral" and args.cifar_dir:
        usage_error("argument --cifar-dir: only for --data cifar10 (which --cifar-dir implies)")
    if args.data == "cifar10" and not args.cifar_dir:
        usage_error("--data cifar10 needs --cifar-dir DIR (see --help for where to get the files)")
    for data, flags in DATA_FLAGS.items():
        for name, default in flags.items():
            if data == args.data and getattr(args, name) is None:
                setattr(args, name, default)
            elif data != args.data and getattr(args, name) is not None:
                usage_error(f"argument --{name.replace('_', '-')}: only for --data {data}")
    if any(getattr(args, k) is not None for k in ("sweep_lrs", "sweep_regs", "sweep_iters", "workers",
                                                   "scheduler")):
        args.sweep = True  # a grid or its length asks for the sweep
    for k, v in DEFAULTS[args.data].items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    if args.sweep_iters is None:
        args.sweep_iters = args.iters
    if not args.no_out:
        problem = out_dir_problem(args.out)
        if problem:
            usage_error(f"argument --out: {problem}")
    return args


def out_dir_problem(out: str) -> Optional[str]:
    """Why this run could not write its files to ``out`` (None if it can), found before
    training by creating and removing a file where they would go."""
    if not out:
        return "an empty path (use --out . for the current directory)"
    if os.path.lexists(out) and not os.path.isdir(out):
        return f"{out} exists and is not a directory"
    probe = os.path.abspath(out)
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"cannot create {out}: {probe} is not a directory"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".two_layer-probe-", dir=probe)
    except OSError as e:
        where = "" if probe == os.path.abspath(out) else f" (to create {out} there)"
        return f"cannot write in {probe}{where}: {e.strerror}"
    os.close(fd)
    os.unlink(tmp)
    return None


def _default_workers() -> int:
    import joblib
    return joblib.cpu_count()


def _scheduler(address: str) -> str:
    if importlib.util.find_spec("distributed") is None:
        raise argparse.ArgumentTypeError(f"Dask distributed is not installed: {CLUSTER_EXTRA}")
    return address


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
    """The data set's splits, checked against --num-train/--num-val/--num-test before
    anything trains (a usage error naming the flags)."""
    if args.data == "spiral":
        X, y = spiral(args.points, args.classes, seed=args.seed)
        X_val, y_val = spiral(args.points, args.classes, seed=args.seed + 1)
        return X, y, X_val, y_val, None, None
    try:
        X_train, y_train, X_test, y_test = load_cifar10(args.cifar_dir)
    except (OSError, ValueError, pickle.UnpicklingError) as e:
        usage_error(f"argument --cifar-dir: {e}")
    wanted = args.num_train + args.num_val
    if wanted > len(X_train):
        usage_error(f"argument --num-train/--num-val: --num-train {args.num_train} + --num-val "
                    f"{args.num_val} = {wanted} images, but {args.cifar_dir} has {len(X_train)} "
                    f"training images")
    if args.num_test > len(X_test):
        usage_error(f"argument --num-test: {args.num_test} images, but {args.cifar_dir} has "
                    f"{len(X_test)} test images")
    return preprocess_cifar10(X_train, y_train, X_test, y_test, args.num_train, args.num_val,
                              args.num_test)


def accuracy(net: TwoLayerNet, X, y) -> float:
    return float((net.predict(X) == y).mean())


def train_one(args, X, y, X_val, y_val, lr, reg, iters, verbose):
    np.random.seed(args.seed)
    net = TwoLayerNet(X.shape[1], args.hidden_size, int(max(y.max(), y_val.max())) + 1,
                      std=args.std, l2_half=args.l2_half)
    stats = net.train(X, y, X_val, y_val, learning_rate=lr, learning_rate_decay=args.lr_decay,
                      reg=reg, num_iters=iters, batch_size=args.batch_size, verbose=verbose,
                      compile=args.compile)
    return net, stats


def sweep(args, X, y, X_val, y_val):
    """Seed 001's grid through ``tinygrad_lite.sweep``: one line per configuration as it
    finishes, then the best pair; returns the best net, its stats and every pair's accuracies."""
    configs = len(args.sweep_lrs) * len(args.sweep_regs)
    workers = 1 if args.scheduler else args.workers or _default_workers()
    if args.scheduler:
        where = f"on the Dask cluster at {args.scheduler}"
    else:
        n = min(workers, configs)
        where = f"on {n} local process{'es' if n > 1 else ''}"
    print(f"== sweep: lr {args.sweep_lrs} x reg {args.sweep_regs}, {args.sweep_iters} iterations each, {where}",
          flush=True)
    result = run_sweep(X, y, X_val, y_val, args.sweep_lrs, args.sweep_regs, hidden_size=args.hidden_size,
                       std=args.std, l2_half=args.l2_half, learning_rate_decay=args.lr_decay,
                       num_iters=args.sweep_iters, batch_size=args.batch_size, seed=args.seed,
                       workers=workers, scheduler=args.scheduler, verbose=True, compile=args.compile)
    best = result.best
    print(f"best validation accuracy achieved during cross-validation: {best.val_accuracy:f} "
          f"(lr {best.learning_rate:g}, reg {best.reg:g})")
    return result.best_net, best.stats, result.results


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


def write_outputs(args, net, stats, X, y, directory: str) -> List[str]:
    """Write the run's files into ``directory``; returns their names."""
    written = [os.path.basename(net.save(os.path.join(directory, "two_layer_net.npz")))]
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
        written.append(_save(fig, os.path.join(directory, "loss.png")))
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(stats["train_acc_history"], label="train (batch)")
        ax.plot(stats["val_acc_history"], label="val")
        ax.set(title="Classification accuracy history", xlabel="Epoch", ylabel="Accuracy")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, os.path.join(directory, "accuracy.png")))
        W1 = net.params["W1"]
        if W1.shape[0] == 32 * 32 * 3:  # image data: cs231n's show_net_weights
            grid = visualize_grid(W1.reshape(32, 32, 3, -1).transpose(3, 0, 1, 2), padding=3)
            fig, ax = plt.subplots(figsize=(6, 6))
            ax.imshow(grid.astype("uint8"))
            ax.axis("off")
            ax.set_title("First-layer weights")
            written.append(_save(fig, os.path.join(directory, "weights.png")))
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
            written.append(_save(fig, os.path.join(directory, "decision_regions.png")))
    try:
        import viz
    except ImportError:
        print("circuit diagram skipped: the `viz` package is not importable")
    else:
        try:
            viz.render_svg(circuit_diagram(net, X, y, args.reg),
                           path=os.path.join(directory, "two_layer_net.svg"))
            written.append("two_layer_net.svg")
        except Exception as e:  # a missing renderer, an unfinished viz: never fail the run
            print(f"circuit diagram skipped: {type(e).__name__}: {e}")
    return [os.path.basename(w) for w in written]


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


#: The names this program writes into --out (a previous run's that this run does not
#: write are removed when it commits, so --out holds one run's files).
OUTPUTS = ("two_layer_net.npz", "loss.png", "accuracy.png", "weights.png",
           "decision_regions.png", "two_layer_net.svg")
MANIFEST = "run.json"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class RunOutput:
    """One run's files: written into a hidden staging directory inside ``out`` (same
    file system), then moved into place together and ``run.json`` written last, with
    Ctrl-C and SIGTERM deferred for those few renames. Until then ``out`` keeps the
    previous run's files and manifest untouched; a run that fails or is interrupted
    removes its staging directory (and ``out`` itself if it made it)."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.stage = ""
        self.made_out = False

    def __enter__(self) -> "RunOutput":
        try:  # the staging directory is named before it exists, so __exit__ always finds it
            self.made_out = not os.path.isdir(self.out)
            os.makedirs(self.out, exist_ok=True)
            self.stage = os.path.join(self.out, f".two_layer-run-{os.getpid()}-{secrets.token_hex(4)}")
            os.mkdir(self.stage)
        except BaseException:  # an interrupt here too: __exit__ would not run
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc) -> None:
        with signals_deferred():
            if self.stage:
                shutil.rmtree(self.stage, ignore_errors=True)
            if self.made_out and exc[0] is not None:
                with contextlib.suppress(OSError):
                    os.rmdir(self.out)

    def _previous_files(self) -> List[str]:
        try:
            with open(os.path.join(self.out, MANIFEST), encoding="utf-8") as f:
                files = json.load(f).get("files", {})
        except (OSError, ValueError, AttributeError):
            return []
        return [name for name in files if name in OUTPUTS]  # never a path from the file itself

    def commit(self, names: List[str], manifest: Dict) -> None:
        """Move the staged ``names`` into ``out`` and write ``run.json`` naming them."""
        files = {name: {"bytes": os.path.getsize(os.path.join(self.stage, name)),
                        "sha256": _sha256(os.path.join(self.stage, name))} for name in names}
        text = json.dumps({**manifest, "files": files}, indent=2) + "\n"
        manifest_path = os.path.join(self.out, MANIFEST)
        stale = [name for name in self._previous_files() if name not in files]
        with signals_deferred():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(manifest_path)  # no manifest describes a half-moved directory
            for name in stale:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.out, name))
            for name in names:
                os.replace(os.path.join(self.stage, name), os.path.join(self.out, name))
            with atomic_write(manifest_path, PROG) as f:
                f.write(text.encode("utf-8"))
            fsync_directory(self.out)


def manifest(args: argparse.Namespace, argv: List[str], results: Dict) -> Dict:
    """run.json without its files: what produced them and what it measured."""
    settings = {k: v for k, v in vars(args).items() if v is not None and k not in ("out", "no_out")}
    return {"program": "examples/two_layer.py", "argv": argv, "settings": settings,
            "results": results,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}


# ----------------------------------------------------------------- main

def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        return run(args, argv)
    except TrainingDivergedError as e:
        sys.stdout.flush()
        iters = args.sweep_iters if args.sweep else args.iters
        what = (f"the loss is {e.loss} at iteration {e.iteration} of {iters}" if e.iteration < iters
                else "the weights became nan or inf in the last step")
        print(f"{PROG}: error: training diverged: {what} (learning rate {e.learning_rate:g}); lower --lr"
              f"{' / --sweep-lrs' if args.sweep else ''}. Nothing was written.", file=sys.stderr)
    except SweepError as e:  # a configuration failed: the others were cancelled
        sys.stdout.flush()
        print(f"{PROG}: error: {e}. Nothing was written.", file=sys.stderr)
    except MemoryError as e:
        print(f"{PROG}: error: out of memory ({e}): lower --hidden-size, --batch-size, --points "
              f"or --num-train. Nothing was written.", file=sys.stderr)
    except OSError as e:  # a disk that fills while the files are written, ...
        if isinstance(e, BrokenPipeError):
            raise
        print(f"{PROG}: error: writing to {args.out} failed ({e}); it is left as it was",
              file=sys.stderr)
    return 1


def run(args: argparse.Namespace, argv: List[str]) -> int:
    """Steps 1 to 3 with checked arguments."""
    t0 = time.perf_counter()
    X, y, X_val, y_val, X_test, y_test = load_data(args)  # a bad split fails here, not later
    if not args.skip_gradcheck:
        worst = gradient_check()
        verdict = "all < 1e-8: the gradients are right" if worst < 1e-8 else "too large"
        print(f"worst rel_error {worst:.2e} ({verdict})\n")
    print(f"== 2. data: {args.data}, train {X.shape}, val {X_val.shape}"
          + (f", test {X_test.shape}" if X_test is not None else ""))
    if args.sweep:
        try:
            net, stats, _ = sweep(args, X, y, X_val, y_val)
        except (ValueError, TypeError) as e:  # checked before anything trains: a repeated grid value, ...
            usage_error(str(e))
    else:
        print(f"training: H={args.hidden_size}, std={args.std:g}, lr={args.lr:g}, decay={args.lr_decay:g}, "
              f"reg={args.reg:g}{' (0.5*reg convention)' if args.l2_half else ''}, "
              f"{args.iters} iterations of batch {args.batch_size}"
              f"{', compiled (tl.compile)' if args.compile else ''}", flush=True)
        t1 = time.perf_counter()
        net, stats = train_one(args, X, y, X_val, y_val, args.lr, args.reg, args.iters,
                               verbose=not args.quiet)
        print(f"trained in {time.perf_counter() - t1:.1f} s; final loss {stats['loss_history'][-1]:.4f}")
    results = {"final_loss": stats["loss_history"][-1], "train_accuracy": accuracy(net, X, y),
               "val_accuracy": accuracy(net, X_val, y_val)}
    print(f"train accuracy: {results['train_accuracy']:.4f}")
    print(f"val accuracy:   {results['val_accuracy']:.4f}")
    if X_test is not None and len(X_test):
        results["test_accuracy"] = accuracy(net, X_test, y_test)
        print(f"test accuracy:  {results['test_accuracy']:.4f}")
    if not args.no_out:
        print(f"\n== 3. writing to {args.out}/", flush=True)
        with RunOutput(args.out) as out:
            names = write_outputs(args, net, stats, X, y, out.stage)
            out.commit(names, manifest(args, argv, results))
        for name in names + [MANIFEST]:
            print(f"wrote {os.path.join(args.out, name)}")
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, PROG))
