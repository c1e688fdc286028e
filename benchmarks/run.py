#!/usr/bin/env python3
"""Time one training step written by hand in NumPy, with tinygrad_lite (eager and
under tl.compile) and with PyTorch.

    python benchmarks/run.py                 # full run, a few minutes on 2 cores
    python benchmarks/run.py --quick         # smoke run, about a minute
    python benchmarks/run.py --json out.json # also write the results as JSON
    python benchmarks/run.py --micrograd     # also time micrograd itself (minutes)
    python benchmarks/run.py --median-of a.json b.json c.json  # the median of runs

Every implementation starts from the same initial parameters, is checked against the
hand-written NumPy step after a few steps, and is then timed in the same process:
warm-up, several repeats (gc.collect() before each, time.perf_counter), median per step.
The ratio is median time / median time of hand-NumPy of the same dtype, so ratios from
one run are comparable even when the machine is noisy (~10-15% on 2 cores).

Workloads (their targets are in benchmarks/README.md and TARGETS below):
  cifar     cs231n two-layer net at CIFAR-10 size, N=200, D=3072, H=100, C=10, one step
  toy       the same net at cs231n's toy size, N=5, D=4, H=10, C=3, one step
  spiral    cs231n's spiral data (3 x 100 points), D=2, H=100, 1000 full-batch iterations
  micrograd micrograd's demo: MLP 2-16-16-1 on 100 moons, SVM max-margin loss + 1e-4 L2
            on every parameter, 100 steps with lr = 1 - 0.9 k / 100
  memory    resident memory over 1000 CIFAR-size engine steps, eager and compiled
            (must stay flat)

The loss everywhere is data loss + reg * sum(W * W) (the cs231n form); the update is
plain SGD, in place.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np

import tinygrad_lite as tl

if "--no-torch" in sys.argv:
    torch = None
else:
    try:
        import torch
    except ImportError:  # PyTorch is optional: its rows are left out
        torch = None


# ----------------------------------------------------------------- problems

class Problem:
    """Data, initial parameters and hyper-parameters shared by every implementation."""

    def __init__(self, name, X, y, params, reg, lr, loss="softmax", steps=1):
        self.name, self.X, self.y, self.params = name, X, y, params
        self.reg, self.lr, self.loss, self.steps = reg, lr, loss, steps

    @property
    def dtype(self):
        return self.X.dtype


def two_layer(name, N, D, H, C, dtype, std, reg, lr, steps=1, seed=0, X=None, y=None):
    rng = np.random.default_rng(seed)
    if X is None:
        X = rng.standard_normal((N, D))
        y = rng.integers(0, C, N)
    params = [std * rng.standard_normal((D, H)), np.zeros(H),
              std * rng.standard_normal((H, C)), np.zeros(C)]
    return Problem(name, X.astype(dtype), y.astype(np.int64),
                   [p.astype(dtype) for p in params], reg, lr, steps=steps)


def spiral_data(points=100, classes=3, seed=0):
    """cs231n's spiral: `classes` arms of `points` points each, in 2-D."""
    rng = np.random.default_rng(seed)
    X = np.zeros((points * classes, 2))
    y = np.zeros(points * classes, dtype=np.int64)
    for j in range(classes):
        ix = range(points * j, points * (j + 1))
        r = np.linspace(0.0, 1, points)
        t = np.linspace(j * 4, (j + 1) * 4, points) + rng.standard_normal(points) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


def moons(n=100, noise=0.1, seed=1):
    """Two interleaving half circles (sklearn's make_moons), labels -1 / +1."""
    rng = np.random.default_rng(seed)
    n_out, n_in = n // 2, n - n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)],
                   np.c_[1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5]])
    X += noise * rng.standard_normal(X.shape)
    y = np.r_[-np.ones(n_out), np.ones(n_in)]
    return X, y


def micrograd_problem(steps=100, seed=2):
    """micrograd's demo net: weights uniform(-1, 1), biases 0, as micrograd.nn.Neuron."""
    X, y = moons()
    rng = np.random.default_rng(seed)
    sizes = [2, 16, 16, 1]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params += [rng.uniform(-1, 1, (fan_in, fan_out)), np.zeros(fan_out)]
    return Problem("micrograd", X, y, params, reg=1e-4, lr=None, loss="svm", steps=steps)


def micrograd_lr(k, steps=100):
    return 1.0 - 0.9 * k / steps


# ----------------------------------------------------------------- hand-written NumPy

class HandNumpy:
    """The step a person would write: vectorised, no gradient for X, in place."""
    label = "hand-NumPy"

    def __init__(self, pb):
        self.pb, self.X, self.y = pb, pb.X, pb.y
        self.params = [p.copy() for p in pb.params]
        self.rows = np.arange(len(pb.y))

    def step(self, lr):
        if self.pb.loss == "svm":
            return self.svm_step(lr)
        X, y, rows, reg = self.X, self.y, self.rows, self.pb.reg
        W1, b1, W2, b2 = self.params
        N = X.shape[0]
        h = X @ W1
        h += b1
        np.maximum(h, 0, out=h)
        probs = h @ W2
        probs += b2
        probs -= probs.max(axis=1, keepdims=True)
        np.exp(probs, out=probs)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.log(probs[rows, y]).mean() + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        dscores = probs
        dscores[rows, y] -= 1
        dscores /= N
        dW2 = h.T @ dscores
        dW2 += 2 * reg * W2
        db2 = dscores.sum(axis=0)
        dh = dscores @ W2.T
        dh[h <= 0] = 0
        dW1 = X.T @ dh
        dW1 += 2 * reg * W1
        db1 = dh.sum(axis=0)
        W1 -= lr * dW1
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
        return loss

    def svm_step(self, lr):
        """micrograd's demo: mean(relu(1 - y * score)) + reg * sum of every p**2."""
        X, reg = self.X, self.pb.reg
        W1, b1, W2, b2, W3, b3 = self.params
        N = X.shape[0]
        h1 = X @ W1
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W2
        h2 += b2
        np.maximum(h2, 0, out=h2)
        scores = (h2 @ W3)[:, 0] + b3[0]
        margins = 1 - self.y * scores
        loss = np.maximum(margins, 0).sum() / N + reg * sum(np.sum(p * p) for p in self.params)
        ds = np.where(margins > 0, -self.y, 0.0)[:, None] / N
        grads = [None] * 6
        grads[4], grads[5] = h2.T @ ds, ds.sum(axis=0)
        dh2 = ds @ W3.T
        dh2[h2 <= 0] = 0
        grads[2], grads[3] = h1.T @ dh2, dh2.sum(axis=0)
        dh1 = dh2 @ W2.T
        dh1[h1 <= 0] = 0
        grads[0], grads[1] = X.T @ dh1, dh1.sum(axis=0)
        for p, g in zip(self.params, grads):
            g += 2 * reg * p
            p -= lr * g
        return loss

    def get(self):
        return self.params


# ----------------------------------------------------------------- tinygrad_lite

class Engine:
    """The same step with tinygrad_lite's public API, as a user writes it."""
    label = "tinygrad_lite"

    def __init__(self, pb):
        self.pb = pb
        self.X = tl.Tensor(pb.X)  # data: no gradient wanted
        self.y = pb.y if pb.loss == "softmax" else tl.Tensor(pb.y[:, None])
        self.params = [tl.Tensor(p.copy(), requires_grad=True) for p in pb.params]

    def step(self, lr):
        if self.pb.loss == "svm":
            loss = self.svm_loss(self.X, self.y)
        else:
            loss = self.softmax_loss(self.X, self.y)
        loss.backward()
        for p in self.params:
            p.data -= lr * p.grad
            p.grad = None
        return loss.item()

    def softmax_loss(self, X, y):
        W1, b1, W2, b2 = self.params
        h = (X @ W1 + b1).relu()
        scores = h @ W2 + b2
        return tl.cross_entropy(scores, y) + self.pb.reg * ((W1 * W1).sum() + (W2 * W2).sum())

    def svm_loss(self, X, y):
        W1, b1, W2, b2, W3, b3 = self.params
        h1 = (X @ W1 + b1).relu()
        h2 = (h1 @ W2 + b2).relu()
        scores = h2 @ W3 + b3
        data = (1 - y * scores).relu().sum() * (1.0 / len(self.pb.y))
        reg = sum((p * p).sum() for p in self.params)
        return data + self.pb.reg * reg

    def get(self):
        return [p.data for p in self.params]


class EngineCompiled(Engine):
    """The same step under ``tl.compile``: traced at the first call, then replayed
    without a graph. The update is the library's (``with tl.no_grad(): p -= lr * p.grad``);
    a learning rate that changes every step (micrograd's schedule) is passed as an
    array, an input of the replay, so that a new value does not trace again."""
    label = "tinygrad_lite compiled"

    def __init__(self, pb):
        super().__init__(pb)
        self.compiled = tl.compile(self.train_step)

    def train_step(self, X, y, lr):
        if self.pb.loss == "svm":
            loss = self.svm_loss(X, y)
        else:
            loss = self.softmax_loss(X, y)
        loss.backward()
        with tl.no_grad():
            for p in self.params:
                p -= lr * p.grad
                p.grad = None
        return loss

    def step(self, lr):
        if self.pb.lr is None:
            lr = np.array(lr, dtype=self.pb.dtype)
        return self.compiled(self.X, self.y, lr).item()


class EngineNet:
    """tinygrad_lite's own TwoLayerNet.loss and optim.SGD, when those modules exist."""
    label = "tinygrad_lite.models"

    def __init__(self, pb):
        from tinygrad_lite import models, optim
        D, H = pb.params[0].shape
        C = pb.params[2].shape[1]
        self.pb, self.X = pb, pb.X
        self.net = models.TwoLayerNet(D, H, C, dtype=pb.dtype)
        named = dict(self.net.named_parameters())
        self.params = [named[k] for k in ("W1", "b1", "W2", "b2")]
        for p, init in zip(self.params, pb.params):
            p.data[...] = init
        self.opt = optim.SGD(self.params, lr=pb.lr)

    def step(self, lr):
        self.opt.lr = lr
        loss, _ = self.net.loss(self.X, self.pb.y, reg=self.pb.reg)  # zeroes, runs backward
        self.opt.step()
        return loss

    def get(self):
        return [p.data for p in self.params]


# ----------------------------------------------------------------- PyTorch

class Torch:
    """PyTorch eager with the same ops (F.cross_entropy for the loss)."""
    label = "PyTorch"

    def __init__(self, pb):
        self.pb = pb
        self.X = torch.from_numpy(pb.X)
        y = pb.y if pb.loss == "softmax" else pb.y[:, None]
        self.y = torch.from_numpy(y)
        self.params = [torch.tensor(p, requires_grad=True) for p in pb.params]

    def step(self, lr):
        F = torch.nn.functional
        if self.pb.loss == "svm":
            W1, b1, W2, b2, W3, b3 = self.params
            h2 = ((self.X @ W1 + b1).relu() @ W2 + b2).relu()
            scores = h2 @ W3 + b3
            data = (1 - self.y * scores).relu().sum() * (1.0 / len(self.pb.y))
            loss = data + self.pb.reg * sum((p * p).sum() for p in self.params)
        else:
            W1, b1, W2, b2 = self.params
            scores = (self.X @ W1 + b1).relu() @ W2 + b2
            loss = F.cross_entropy(scores, self.y) + self.pb.reg * ((W1 * W1).sum() + (W2 * W2).sum())
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= lr * p.grad
                p.grad = None
        return loss.item()

    def get(self):
        return [p.detach().numpy() for p in self.params]


# ----------------------------------------------------------------- micrograd

class Micrograd:
    """micrograd itself (pip install micrograd), on the same network and numbers."""
    label = "micrograd"

    def __init__(self, pb):
        from micrograd.engine import Value
        from micrograd.nn import MLP
        self.pb, self.Value = pb, Value
        self.model = MLP(2, [16, 16, 1])
        for layer, W, b in zip(self.model.layers, pb.params[0::2], pb.params[1::2]):
            for j, neuron in enumerate(layer.neurons):
                for k, w in enumerate(neuron.w):
                    w.data = float(W[k, j])
                neuron.b.data = float(b[j])
        self.inputs = [list(map(Value, row)) for row in pb.X.tolist()]
        self.y = pb.y.tolist()

    def step(self, lr):  # the demo notebook's loss(), then its update
        scores = list(map(self.model, self.inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(self.y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = self.pb.reg * sum(p * p for p in self.model.parameters())
        total = data_loss + reg_loss
        self.model.zero_grad()
        total.backward()
        for p in self.model.parameters():
            p.data -= lr * p.grad
        return total.data

    def get(self):
        out = []
        for layer in self.model.layers:
            out.append(np.array([[w.data for w in n.w] for n in layer.neurons]).T)
            out.append(np.array([n.b.data for n in layer.neurons]))
        return out


# ----------------------------------------------------------------- timing

def run_steps(impl, pb, start=0):
    """One timed unit: `pb.steps` training steps (the whole run for spiral/micrograd)."""
    for k in range(start, start + pb.steps):
        impl.step(micrograd_lr(k, pb.steps) if pb.lr is None else pb.lr)


def agree(impls, pb, check_steps=3):
    """Run `check_steps` steps of each from the same start; max relative error of the
    parameters against hand-NumPy (the first implementation)."""
    ref = None
    errs = {}
    for name, cls in impls.items():
        impl = cls(pb)
        for k in range(check_steps):
            impl.step(micrograd_lr(k) if pb.lr is None else pb.lr)
        got = [np.asarray(p, dtype=np.float64) for p in impl.get()]
        if ref is None:
            ref = got
        errs[name] = max(float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
                         for a, b in zip(got, ref))
    return errs


def time_impls(impls, pb, repeats, min_time):
    """Median seconds per unit for each implementation, repeats interleaved so slow drift
    of the machine hits every implementation alike."""
    runners, number = {}, {}
    for name, cls in impls.items():
        impl = cls(pb)
        run_steps(impl, pb)  # warm-up (caches, BLAS buffers, lazy imports, tl.compile's trace)
        t0 = time.perf_counter()
        run_steps(impl, pb)
        once = max(time.perf_counter() - t0, 1e-7)
        runners[name] = impl
        number[name] = max(1, int(min_time / once))
    times = {name: [] for name in impls}
    faults = {name: 0 for name in impls}
    for _ in range(repeats):
        for name, impl in runners.items():
            gc.collect()
            f0 = minor_faults()
            t0 = time.perf_counter()
            for _ in range(number[name]):
                run_steps(impl, pb)
            times[name].append((time.perf_counter() - t0) / number[name])
            faults[name] += minor_faults() - f0
    per_unit = {name: faults[name] / (repeats * number[name]) for name in impls}
    return {name: statistics.median(ts) for name, ts in times.items()}, number, per_unit


def minor_faults():
    """Page faults so far. Large NumPy temporaries come from malloc, and when glibc hands
    freed memory back to the OS, the next allocation faults every page in again: on a VM
    that can cost more than the arithmetic, so the table shows faults per step."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def keep_freed_memory():
    """Ask glibc to keep freed memory instead of returning it to the OS (and to serve
    arrays up to 32 MB from the heap), so that no step faults its pages in again.
    It applies to every implementation alike; PyTorch's own allocator caches likewise."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    if not ok:
        raise SystemExit("--keep-freed-memory: mallopt failed (not glibc?)")


def blas_starved(pb, seconds):
    """True when hand-NumPy ran slower with all BLAS threads than it does on one: the
    other threads waited for a time slice (another process ran), so every CIFAR-size
    ratio of that run compares waiting, not work."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return None
    if max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1) < 2:
        return False
    with threadpool_limits(1, user_api="blas"):
        one, _, _ = time_impls({"numpy": HandNumpy}, pb, 5, 0.1)
    return seconds > one["numpy"]


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_flat(steps, cls=None):
    """Resident memory of the engine (eager, or `cls`) over `steps` CIFAR-size float64 steps."""
    pb = two_layer("cifar", 200, 3072, 100, 10, np.float64, std=1e-4, reg=0.25, lr=1e-5)
    impl = (cls or Engine)(pb)
    warm = max(steps // 10, 10)
    samples = []
    for k in range(steps):
        impl.step(pb.lr)
        if k + 1 >= warm and (k + 1) % max(steps // 20, 1) == 0:
            samples.append(rss_bytes())
    first = samples[0]
    return {"steps": steps, "rss_first_mb": first / 2**20, "rss_last_mb": samples[-1] / 2**20,
            "rss_max_mb": max(samples) / 2**20, "growth": (max(samples) - first) / first}


# ----------------------------------------------------------------- report

def machine():
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "tinygrad_lite": tl.__version__,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "torch": torch.__version__ if torch is not None else None,
            "malloc": "glibc default"}
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [f"{p['internal_api']} {p['version']} {p.get('architecture')} "
                        f"threads={p['num_threads']}" for p in threadpool_info()]
    except ImportError:
        info["blas"] = ["threadpoolctl not installed"]
    return info


def fmt_time(sec):
    return f"{sec * 1e3:.3f} ms" if sec < 1 else f"{sec:.2f} s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and steps (smoke run)")
    ap.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    ap.add_argument("--median-of", nargs="+", metavar="JSON",
                    help="print the table of the median of runs written by --json, and exit")
    ap.add_argument("--micrograd", action="store_true",
                    help="also time micrograd itself on its demo (pip install micrograd; minutes)")
    ap.add_argument("--only", nargs="*", metavar="WORKLOAD",
                    help="run only these workloads (cifar32 cifar64 toy32 toy64 spiral micrograd memory)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="glibc keeps freed memory (mallopt): no page faults from big temporaries")
    ap.add_argument("--blas-threads", type=int, metavar="N",
                    help="limit BLAS (and PyTorch) to N threads; on a busy 2-core machine a "
                         "second BLAS thread waits for a time slice in every matmul")
    args = ap.parse_args(argv)
    if args.median_of:
        runs = []
        for path in args.median_of:
            with open(path) as f:
                runs.append(json.load(f))
        results = median_of(runs)
        print(f"# median of {len(runs)} runs")
        print()
        print_table(results, *columns_of(results))
        return results
    if args.keep_freed_memory:
        keep_freed_memory()
    if args.blas_threads:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(args.blas_threads)  # noqa: F841  (kept for the whole run)

    repeats, min_time = (3, 0.05) if args.quick else (11, 0.25)
    spiral_iters = 1000
    mem_steps = 200 if args.quick else 1000
    use_torch = torch is not None and not args.no_torch
    if use_torch:  # the same number of threads as NumPy's BLAS, as the peers harness does
        try:
            from threadpoolctl import threadpool_info
            torch.set_num_threads(max(p["num_threads"] for p in threadpool_info()
                                      if p["user_api"] == "blas"))
        except (ImportError, ValueError):
            pass
    has_models = all(importlib.util.find_spec(f"tinygrad_lite.{m}") for m in ("models", "optim"))

    spiral_X, spiral_y = spiral_data()
    workloads = {
        "cifar32": lambda: two_layer("CIFAR-size step, float32", 200, 3072, 100, 10, np.float32,
                                     std=1e-4, reg=0.25, lr=1e-5),
        "cifar64": lambda: two_layer("CIFAR-size step, float64", 200, 3072, 100, 10, np.float64,
                                     std=1e-4, reg=0.25, lr=1e-5),
        "toy32": lambda: two_layer("toy step, float32", 5, 4, 10, 3, np.float32,
                                   std=1e-1, reg=0.05, lr=1e-1),
        "toy64": lambda: two_layer("toy step, float64", 5, 4, 10, 3, np.float64,
                                   std=1e-1, reg=0.05, lr=1e-1),
        "spiral": lambda: two_layer(f"spiral, {spiral_iters} iterations, float64", 300, 2, 100, 3,
                                    np.float64, std=1e-2, reg=1e-3, lr=1.0, steps=spiral_iters,
                                    X=spiral_X, y=spiral_y),
        "micrograd": lambda: micrograd_problem(),
    }
    chosen = args.only or list(workloads) + ["memory"]

    info = machine()
    if args.keep_freed_memory:
        info["malloc"] = "glibc, freed memory kept (mallopt, --keep-freed-memory)"
    print("# tinygrad_lite benchmarks" + (" (--quick)" if args.quick else ""))
    print()
    for k, v in info.items():
        print(f"- {k}: {v}")
    print(f"- repeats: {repeats} (median), at least {min_time}s per repeat, gc.collect() before each")
    print()

    results = {"machine": info, "quick": args.quick, "workloads": {}}
    rows = []
    for key in [k for k in workloads if k in chosen]:
        pb = workloads[key]()
        impls = {"numpy": HandNumpy, "tinygrad_lite": Engine, "compiled": EngineCompiled}
        if use_torch:
            impls["torch"] = Torch
        if has_models and pb.loss == "softmax":
            impls["models"] = EngineNet
        errs = {}
        for name in list(impls):
            try:
                errs.update(agree({"numpy": HandNumpy, name: impls[name]}, pb))
            except Exception as e:  # noqa: BLE001  an optional module with another API
                if name != "models":
                    raise
                print(f"  ({key}: tinygrad_lite.models left out: {type(e).__name__}: {e})")
                del impls[name]
        tol = 1e-4 if pb.dtype == np.float32 else 1e-9
        bad = {n: e for n, e in errs.items() if e > tol}
        if bad:
            raise SystemExit(f"{key}: implementations disagree with hand-NumPy after 3 steps: {bad}")
        med, number, faults = time_impls(impls, pb, repeats if pb.steps == 1 else max(3, repeats // 2),
                                 min_time)
        entry = {"name": pb.name, "seconds": med, "ratio": {n: med[n] / med["numpy"] for n in med},
                 "agreement": errs, "steps_per_repeat": number, "page_faults_per_unit": faults}
        if key.startswith("cifar"):
            entry["blas_starved"] = blas_starved(pb, med["numpy"])
        if key == "micrograd":
            if args.micrograd:
                mg = Micrograd(pb)
                entry["agreement"]["micrograd"] = agree({"numpy": HandNumpy, "micrograd": Micrograd},
                                                        pb)["micrograd"]
                t0 = time.perf_counter()
                run_steps(mg, pb)
                entry["seconds"]["micrograd"] = time.perf_counter() - t0
                entry["ratio"]["micrograd"] = entry["seconds"]["micrograd"] / med["numpy"]
            entry["micrograd_over_engine"] = (entry["seconds"]["micrograd"] / med["tinygrad_lite"]
                                              if args.micrograd else None)
        results["workloads"][key] = entry
        rows.append(entry)
        cells = "  ".join(f"{n} {fmt_time(med[n])} ({entry['ratio'][n]:.2f}x, {faults.get(n, 0):.0f} faults)"
                          for n in med)
        print(f"  {pb.name}: {cells}", flush=True)

    if "memory" in chosen:
        results["memory"] = memory_flat(mem_steps)
        results["memory_compiled"] = memory_flat(mem_steps, EngineCompiled)

    print()
    results["columns"] = [use_torch, has_models, args.micrograd]
    print_table(results, use_torch, has_models, args.micrograd)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return results


def median_of(runs):
    """One result holding, for each workload, the median over `runs` of each ratio, of
    hand-NumPy's seconds and of the page faults (BLAS starvation if any run had it)."""
    results = {"workloads": {}, "columns": [all(r["columns"][k] for r in runs) for k in range(3)]}
    for key, first in runs[0]["workloads"].items():
        entries = [r["workloads"][key] for r in runs if key in r["workloads"]]

        def med(field, name, entries=entries):
            return statistics.median(e[field][name] for e in entries)
        names = [n for n in first["ratio"] if all(n in e["ratio"] for e in entries)]
        entry = {"name": first["name"], "seconds": {n: med("seconds", n) for n in names},
                 "ratio": {n: med("ratio", n) for n in names},
                 "page_faults_per_unit": {n: med("page_faults_per_unit", n) for n in names
                                          if n in first["page_faults_per_unit"]},
                 "blas_starved": any(e.get("blas_starved") for e in entries)}
        if "micrograd_over_engine" in first:
            ratios = [e["micrograd_over_engine"] for e in entries]
            entry["micrograd_over_engine"] = None if None in ratios else statistics.median(ratios)
        results["workloads"][key] = entry
    for key in ("memory", "memory_compiled"):
        if all(key in r for r in runs):
            results[key] = max((r[key] for r in runs), key=lambda m: m["growth"])
    return results


def columns_of(results):
    return results.get("columns", [False, False, False])


#: ratio to hand-NumPy each workload should reach, eagerly and under tl.compile
TARGETS = {"cifar32": 1.05, "cifar64": 1.05, "toy32": 2.5, "toy64": 2.5, "spiral": 1.3}
TARGETS_COMPILED = {"cifar32": 0.90, "cifar64": 0.90, "toy32": 1.5, "toy64": 1.5, "spiral": 1.1}


def met(ratio, target, entry):
    if entry.get("blas_starved"):
        return "(unreliable)"
    return "yes" if ratio <= target else "NO"


def print_table(results, use_torch, has_models, with_micrograd):
    cols = ["numpy", "tinygrad_lite", "compiled"] + (["torch"] if use_torch else []) + \
        (["models"] if has_models else [])
    heads = {"numpy": "hand-NumPy", "tinygrad_lite": "tinygrad_lite", "compiled": "tl.compile",
             "torch": "PyTorch", "models": "tl TwoLayerNet+SGD"}
    print("| workload | " + " | ".join(heads[c] for c in cols) +
          " | target eager | met | target compiled | met | page faults per unit |")
    print("|---|" + "---:|" * len(cols) + "---|---|---|---|---|")
    for key, e in results["workloads"].items():
        cells = []
        for c in cols:
            if c not in e["seconds"]:
                cells.append("n/a")
            elif c == "numpy":
                starved = " (BLAS threads starved: ratios unreliable)" if e.get("blas_starved") else ""
                cells.append(fmt_time(e["seconds"][c]) + starved)
            else:
                cells.append(f"{e['ratio'][c]:.2f}x")
        if key == "micrograd":
            if with_micrograd:
                speedup = e["micrograd_over_engine"]
                target = f"micrograd {fmt_time(e['seconds']['micrograd'])}: engine {speedup:,.0f}x faster, >= 1000x"
                eager_met = "yes" if speedup >= 1000 else "NO"
            else:
                target = ">= 1000x faster than micrograd (run with --micrograd)"
                eager_met = "n/a"
            compiled = "(none)"
            compiled_met = "n/a"
        else:
            target = f"<= {TARGETS[key]}x"
            eager_met = met(e["ratio"]["tinygrad_lite"], TARGETS[key], e)
            compiled = f"<= {TARGETS_COMPILED[key]}x"
            compiled_met = met(e["ratio"]["compiled"], TARGETS_COMPILED[key], e)
        pf = " / ".join(f"{e['page_faults_per_unit'][c]:.0f}" for c in cols if c in e["page_faults_per_unit"])
        pf = pf if key != "micrograd" else pf + " (micrograd not counted)"
        print(f"| {e['name']} | " + " | ".join(cells) +
              f" | {target} | {eager_met} | {compiled} | {compiled_met} | {pf} |")
    for key, what in (("memory", "engine"), ("memory_compiled", "compiled")):
        if key in results:
            m = results[key]
            print(f"| resident memory, {m['steps']} CIFAR-size float64 {what} steps | "
                  f"{m['rss_first_mb']:.1f} MB -> max {m['rss_max_mb']:.1f} MB "
                  f"({m['growth'] * 100:+.1f}%) | " + " | ".join("" for _ in cols[1:]) +
                  f" | flat within 5% | {'yes' if m['growth'] <= 0.05 else 'NO'} | | | |")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
