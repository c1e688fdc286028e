#!/usr/bin/env python3
"""Time a learning-rate x reg sweep of TwoLayerNet one configuration after another and
on local worker processes (``tinygrad_lite.sweep.sweep``), and check both give the same
numbers bit for bit.

    python benchmarks/sweep.py              # CIFAR-10 size, 4 configurations, ~6 minutes on 2 cores
    python benchmarks/sweep.py --quick      # smaller data and fewer iterations, ~2 minutes

The data is random with CIFAR-10's shapes (49000 training and 1000 validation rows of
3072 float64 numbers, 10 classes), the net cs231n's (H=50, std 1e-4, batch 200). The
sequential run uses this process with NumPy's BLAS on every core, as the loop a person
writes does (and, for reference, on one thread); the parallel run uses ``--workers``
processes, each with BLAS on ``cores // workers`` threads. Runs alternate (sequential, parallel, ...) so that drift
of a shared machine hits both alike; the table shows the median of ``--repeats`` and
the first parallel run, which also starts the worker processes.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

try:
    import tinygrad_lite  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from tinygrad_lite.sweep import sweep  # noqa: E402

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:
    sys.exit("benchmarks/sweep.py needs threadpoolctl (pip install threadpoolctl) to set and report BLAS threads")


def cifar_sized(num_train: int, num_val: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_train, 3072))
    X_val = rng.standard_normal((num_val, 3072))
    return X, rng.integers(0, 10, num_train), X_val, rng.integers(0, 10, num_val)


def identical(a, b) -> bool:
    return a.points == b.points and all(np.array_equal(a.best_net.params[k], b.best_net.params[k])
                                        for k in ("W1", "b1", "W2", "b2"))


def machine() -> str:
    import joblib
    blas = ", ".join(f"{i['internal_api']} {i['version']} ({i.get('architecture')}, {i['num_threads']} threads)"
                     for i in threadpool_info() if i["user_api"] == "blas")
    return (f"{joblib.cpu_count()} cores ({platform.processor() or platform.machine()}), Python "
            f"{platform.python_version()}, numpy {np.__version__}, {blas}, joblib {joblib.__version__}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10000 training rows, 300 iterations")
    p.add_argument("--num-train", type=int, default=49000)
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.quick:
        args.num_train, args.iters = 10000, 300
    X, y, X_val, y_val = cifar_sized(args.num_train, 1000)
    grid = dict(learning_rates=[1e-3, 1e-4], regularization_strengths=[0.25, 0.5])
    config = dict(hidden_size=50, std=1e-4, num_iters=args.iters, batch_size=200)
    print(machine())
    load_before = os.getloadavg()[0]
    configurations = len(grid['learning_rates']) * len(grid['regularization_strengths'])
    print(f"data {X.shape} + {X_val.shape} float64, {configurations}"
          f" configurations of {args.iters} iterations, batch 200, H=50")
    modes = {"sequential": (1, None), "sequential, 1 BLAS thread": (1, 1), "parallel": (args.workers, None)}
    times = {mode: [] for mode in modes}
    reference = None
    for r in range(args.repeats):
        for mode, (workers, blas_threads) in modes.items():
            with threadpool_limits(blas_threads):
                t0 = time.perf_counter()
                result = sweep(X, y, X_val, y_val, **grid, **config, workers=workers)
                times[mode].append(time.perf_counter() - t0)
            print(f"  run {r + 1} {mode}: {times[mode][-1]:.2f} s", flush=True)
            reference = result if reference is None else reference
            if not identical(result, reference):
                print(f"  {mode} run {r + 1} differs from the first run", file=sys.stderr)
                return 1
    print("all runs gave identical accuracies, histories and best parameters")
    print(f"1-minute load average before the runs: {load_before:.2f} (above 0: other programs "
          f"were competing for the cores)")
    print(f"| run | sequential | sequential, 1 BLAS thread | {args.workers} workers | speed-up | "
          f"speed-up over 1 thread |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, pick in ((f"median of {args.repeats}", statistics.median), ("first (starts the workers)",
                                                                           lambda ts: ts[0])):
        seq, one, par = (pick(times[m]) for m in modes)
        print(f"| {label} | {seq:.2f} s | {one:.2f} s | {par:.2f} s | {seq / par:.2f}x | {one / par:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
