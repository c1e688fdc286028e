"""A learning-rate x regularisation sweep of ``TwoLayerNet`` (seed 001's cross-validation),
run one configuration after another, on local processes (joblib) or on a Dask cluster::

    from tinygrad_lite.data import spiral
    from tinygrad_lite.sweep import sweep

    X, y = spiral(seed=0)
    X_val, y_val = spiral(seed=1)
    result = sweep(X, y, X_val, y_val, learning_rates=[1e-1, 1.0], regularization_strengths=[1e-4, 1e-3],
                   hidden_size=100, std=1e-1, num_iters=200, workers=2, verbose=True)
    result.best_net, result.best.val_accuracy, result.results[(1.0, 1e-4)]

Every configuration seeds ``np.random`` with ``seed`` before it draws its initial
weights and minibatches, exactly as the sequential cs231n loop does, so the numbers
are the same bit for bit whatever runs them, in whatever order they finish.
"""
from __future__ import annotations

import os
import threading
import warnings
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .models import TrainingDivergedError, TwoLayerNet, _check_y
from .tensor import Tensor

__all__ = ["sweep", "SweepPoint", "SweepResult", "SweepError"]

#: What to install for ``scheduler=``.
CLUSTER_EXTRA = "pip install 'tinygrad_lite[cluster]'"

# Training draws from NumPy's global generator, which every thread of a process
# shares: configurations that run as threads of one process (a Dask worker with
# several threads) take turns, so each sees only its own seed's numbers.
_GLOBAL_RNG_LOCK = threading.Lock()


class SweepError(RuntimeError):
    """A configuration (or the workers running it) failed; ``configurations`` lists the
    ``(learning_rate, reg)`` pairs concerned."""

    def __init__(self, message: str, configurations: Sequence[Tuple[float, float]] = ()) -> None:
        super().__init__(message)
        self.configurations = [tuple(c) for c in configurations]

    def __reduce__(self) -> Any:  # crosses process boundaries with its configurations
        return type(self), (self.args[0], self.configurations)


@dataclass(frozen=True)
class SweepPoint:
    """One trained configuration: accuracies on the whole training and validation sets
    and ``TwoLayerNet.train``'s ``stats`` (loss and accuracy histories).

    A configuration whose loss stopped being finite has ``diverged`` saying where
    (``"the loss is nan at iteration 40"``), nan accuracies and empty ``stats``; it is never
    the best one."""
    learning_rate: float
    reg: float
    train_accuracy: float
    val_accuracy: float
    stats: Dict[str, List[float]] = field(repr=False)
    diverged: Optional[str] = None

    def __str__(self) -> str:
        """seed 001's line: ``lr 1.000000e-03 reg 5.000000e-01 train accuracy: ... val accuracy: ...``."""
        head = f"lr {self.learning_rate:e} reg {self.reg:e}"
        if self.diverged is not None:
            return f"{head} diverged: {self.diverged}"
        return f"{head} train accuracy: {self.train_accuracy:f} val accuracy: {self.val_accuracy:f}"


@dataclass(frozen=True)
class SweepResult:
    """``points`` in grid order (learning rate major), the ``best`` one (highest
    validation accuracy; a tie goes to the earlier in the grid, as the sequential loop's
    ``if best_val < acc_val``) and ``best_net``, that configuration's trained net."""
    points: Tuple[SweepPoint, ...]
    best: SweepPoint
    best_net: TwoLayerNet = field(repr=False)

    @property
    def results(self) -> Dict[Tuple[float, float], Tuple[float, float]]:
        """seed 001's ``results``: ``(lr, reg) -> (train accuracy, val accuracy)``."""
        return {(p.learning_rate, p.reg): (p.train_accuracy, p.val_accuracy) for p in self.points}


def sweep(X: Any, y: Any, X_val: Any, y_val: Any, learning_rates: Sequence[float],
          regularization_strengths: Sequence[float], *, hidden_size: int = 50, std: float = 1e-4,
          l2_half: bool = False, dtype: Any = np.float64, num_classes: Optional[int] = None,
          learning_rate_decay: float = 0.95, num_iters: int = 100, batch_size: int = 200,
          seed: int = 0, workers: int = 1, scheduler: Any = None, verbose: bool = False,
          on_result: Optional[Callable[[SweepPoint], None]] = None,
          compile: bool = False) -> SweepResult:  # noqa: A002  (train's keyword)
    """Train one ``TwoLayerNet(D, hidden_size, num_classes, std, l2_half, dtype)`` per
    ``(learning rate, reg)`` pair with ``net.train(X, y, X_val, y_val, ...)`` and
    return every pair's accuracies and the best net.

    Each configuration runs ``np.random.seed(seed)``, builds its net and trains it, as
    seed 001's loop does; the caller's ``np.random`` state is left as it was.
    ``num_classes`` defaults to ``max(y.max(), y_val.max()) + 1``.

    Where the configurations run:

    * ``workers=1`` (default): one after another in this process.
    * ``workers=N``: ``N`` local processes (joblib's loky backend). Each process's BLAS
      uses ``cores // N`` threads (at least one), so the processes do not fight over
      cores. Arrays over 1 MB are written once to a memory-mapped file that every
      process reads, not copied per configuration.
    * ``scheduler``: a Dask distributed scheduler address (``"tcp://host:8786"``) or a
      ``distributed.Client``. The data is scattered to the cluster once. The workers need
      tinygrad_lite installed; Dask's nanny limits their BLAS to one thread, so start
      one single-threaded worker per core (``dask worker ADDRESS --nworkers N
      --nthreads 1``): configurations sharing a worker process take turns. Needs the
      ``cluster`` extra (``pip install 'tinygrad_lite[cluster]'``).

    ``verbose`` prints each configuration's line (``str(point)``, seed 001's format)
    as it finishes; ``on_result(point)`` is called likewise, in this process.
    ``compile=True`` trains each net with ``train(..., compile=True)`` (``tl.compile``:
    the same numbers).

    A configuration whose training diverges (``TrainingDivergedError``: a learning rate
    too high) is recorded as diverged, as seed 001's loop records its nan loss, and the
    sweep goes on; if every configuration diverges, ``SweepError``. Any other exception
    in a configuration stops the sweep: the rest are cancelled and a ``SweepError``
    names the configuration and the cause. ``KeyboardInterrupt``
    cancels the rest too. Invalid arguments raise ``ValueError`` / ``TypeError``
    before anything runs.
    """
    lrs = _check_grid(learning_rates, "learning_rates", lambda v: v > 0, "> 0")
    regs = _check_grid(regularization_strengths, "regularization_strengths", lambda v: v >= 0, ">= 0")
    X, y, X_val, y_val, num_classes = _check_data(X, y, X_val, y_val, num_classes)
    for name, value, low in (("hidden_size", hidden_size, 1), ("num_iters", num_iters, 0),
                             ("batch_size", batch_size, 1), ("seed", seed, 0), ("workers", workers, 1)):
        _check_int(name, value, low)
    if seed >= 2 ** 32:
        raise ValueError(f"sweep: seed must be < 2**32 (np.random.seed's range), got {seed}")
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"sweep: dtype must be a floating type, got {np.dtype(dtype)}")
    for name, value in (("std", std), ("learning_rate_decay", learning_rate_decay)):
        _check_real(name, value)
    if scheduler is not None and workers != 1:
        raise ValueError(f"sweep: pass workers (local processes) or scheduler (a Dask cluster), "
                         f"not both (got workers={workers}, scheduler={scheduler!r})")
    if on_result is not None and not callable(on_result):
        raise TypeError(f"sweep: on_result must be callable, got {type(on_result).__name__}")

    grid = [(lr, reg) for lr in lrs for reg in regs]
    spec = dict(hidden_size=hidden_size, num_classes=num_classes, std=float(std), l2_half=bool(l2_half),
                dtype=np.dtype(dtype), learning_rate_decay=float(learning_rate_decay),
                num_iters=num_iters, batch_size=batch_size, seed=seed, compile=bool(compile))
    if scheduler is not None:
        finished = _run_on_dask(scheduler, (X, y, X_val, y_val), spec, grid)
    elif workers > 1 and len(grid) > 1:
        finished = _run_on_joblib(min(workers, len(grid)), (X, y, X_val, y_val), spec, grid)
    else:
        finished = (_train_point(X, y, X_val, y_val, spec, i, lr, reg) for i, (lr, reg) in enumerate(grid))

    points: List[Optional[SweepPoint]] = [None] * len(grid)
    best_index, best_state = -1, None
    with closing(finished):  # an exception here (on_result, Ctrl-C) cancels the rest
        for index, point, state in finished:
            points[index] = point
            if verbose:
                print(point, flush=True)
            if on_result is not None:
                on_result(point)
            better = best_index < 0 or (point.val_accuracy, -index) > (points[best_index].val_accuracy, -best_index)
            if point.diverged is None and better:
                best_index, best_state = index, state
    if best_index < 0:
        raise SweepError(f"sweep: every configuration diverged ({_names(grid)}); lower the learning rates",
                         grid)
    with _GLOBAL_RNG_LOCK:
        best_net = TwoLayerNet.from_state_dict(best_state, l2_half=l2_half)
    return SweepResult(points=tuple(points), best=points[best_index], best_net=best_net)


# ------------------------------------------------------------------ one configuration

def _train_point(X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, spec: Dict[str, Any],
                 index: int, lr: float, reg: float) -> Tuple[int, SweepPoint, Dict[str, np.ndarray]]:
    """Train configuration ``index`` of the grid; runs wherever the engine sends it."""
    try:
        with _GLOBAL_RNG_LOCK:
            caller_state = np.random.get_state()
            try:
                np.random.seed(spec["seed"])
                net = TwoLayerNet(X.shape[1], spec["hidden_size"], spec["num_classes"], std=spec["std"],
                                  l2_half=spec["l2_half"], dtype=spec["dtype"])
                stats = net.train(X, y, X_val, y_val, learning_rate=lr,
                                  learning_rate_decay=spec["learning_rate_decay"], reg=reg,
                                  num_iters=spec["num_iters"], batch_size=spec["batch_size"],
                                  compile=spec["compile"])
            finally:
                np.random.set_state(caller_state)
        point = SweepPoint(lr, reg, float((net.predict(X) == y).mean()),
                           float((net.predict(X_val) == y_val).mean()), stats)
    except TrainingDivergedError as e:  # recorded, as seed 001's loop records a nan loss
        return index, SweepPoint(lr, reg, float("nan"), float("nan"), {},
                                 diverged=f"the loss is {e.loss} at iteration {e.iteration}"), {}
    except Exception as e:
        raise SweepError(f"sweep: configuration lr {lr:g} reg {reg:g} failed: {type(e).__name__}: {e}",
                         [(lr, reg)]) from e
    return index, point, dict(net.state_dict())


# ------------------------------------------------------------------ engines

def _run_on_joblib(workers: int, data: Tuple[np.ndarray, ...], spec: Dict[str, Any],
                   grid: List[Tuple[float, float]]) -> Iterable[Tuple[int, SweepPoint, Dict[str, np.ndarray]]]:
    from joblib import Parallel, delayed, parallel_config
    with parallel_config(backend="loky", inner_max_num_threads=max(1, _cores() // workers)):
        parallel = Parallel(n_jobs=workers, return_as="generator_unordered", max_nbytes="1M")
    results = parallel(delayed(_train_point)(*data, spec, i, lr, reg) for i, (lr, reg) in enumerate(grid))
    done = set()
    try:
        for index, point, state in results:
            done.add(index)
            yield index, point, state
    except SweepError:
        raise
    except Exception as e:  # the pool itself failed, e.g. a worker process was killed
        pending = [c for i, c in enumerate(grid) if i not in done]
        raise SweepError(f"sweep: the worker processes failed with configurations "
                         f"{_names(pending)} unfinished: {type(e).__name__}: {e}", pending) from e
    finally:
        with warnings.catch_warnings():  # joblib's advice on cancelled tasks is about its own API
            warnings.filterwarnings("ignore", message=r".*tasks .*(cancelled|not used)", category=UserWarning)
            results.close()  # stops the workers' remaining configurations when the caller stops early


def _run_on_dask(scheduler: Any, data: Tuple[np.ndarray, ...], spec: Dict[str, Any],
                 grid: List[Tuple[float, float]]) -> Iterable[Tuple[int, SweepPoint, Dict[str, np.ndarray]]]:
    try:
        import distributed
    except ImportError as e:
        raise ImportError(f"sweep: scheduler= runs on Dask distributed, which is not installed: "
                          f"{CLUSTER_EXTRA}") from e
    if isinstance(scheduler, distributed.Client):
        client, own_client = scheduler, False
    elif isinstance(scheduler, str):
        _check_address(distributed, scheduler)
        try:
            client, own_client = distributed.Client(scheduler), True
        except OSError as e:
            raise SweepError(f"sweep: cannot reach the Dask scheduler at {scheduler}: {e}") from e
    else:
        raise TypeError(f"sweep: scheduler must be an address such as 'tcp://host:8786' or a "
                        f"distributed.Client, got {type(scheduler).__name__}")
    futures = []
    try:
        scattered = client.scatter(list(data), hash=False)  # hashing CIFAR-size arrays costs seconds
        futures = [client.submit(_train_point, *scattered, spec, i, lr, reg, pure=False)
                   for i, (lr, reg) in enumerate(grid)]
        where = {f.key: i for i, f in enumerate(futures)}
        for future in distributed.as_completed(futures):
            try:
                yield future.result()
            except SweepError:
                raise
            except Exception as e:  # the worker running it died, or the cluster went away
                lr, reg = grid[where[future.key]]
                raise SweepError(f"sweep: configuration lr {lr:g} reg {reg:g} failed on the cluster: "
                                 f"{type(e).__name__}: {e}", [(lr, reg)]) from e
    finally:
        if futures:
            client.cancel(futures)
        if own_client:
            client.close()


# ------------------------------------------------------------------ checks

def _check_address(distributed: Any, address: str) -> None:
    try:
        if distributed.comm.parse_address(address)[0] != "inproc":  # in-process: no host and port
            distributed.comm.get_address_host_port(address)
    except ValueError as e:
        raise ValueError(f"sweep: scheduler {address!r} is not a Dask scheduler address such as "
                         f"'tcp://host:8786': {e}") from None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _names(configs: Sequence[Tuple[float, float]]) -> str:
    return ", ".join(f"(lr {lr:g}, reg {reg:g})" for lr, reg in configs)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_real(name: str, v: Any) -> float:
    if not _is_real(v):
        raise TypeError(f"sweep: {name} must be a number, got {type(v).__name__}")
    if not np.isfinite(v):
        raise ValueError(f"sweep: {name} must be finite, got {v!r}")
    return float(v)


def _check_int(name: str, v: Any, low: int) -> None:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"sweep: {name} must be an int >= {low}, got {type(v).__name__} {v!r}")
    if v < low:
        raise ValueError(f"sweep: {name} must be an int >= {low}, got {v!r}")


def _check_grid(values: Any, name: str, ok: Callable[[float], bool], rule: str) -> List[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"sweep: {name} must be a sequence of numbers, got {type(values).__name__}")
    grid = [_check_real(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if not grid:
        raise ValueError(f"sweep: {name} is empty")
    bad = [v for v in grid if not ok(v)]
    if bad:
        raise ValueError(f"sweep: {name} must be {rule}, got {bad[0]!r}")
    repeated = sorted({v for v in grid if grid.count(v) > 1})
    if repeated:
        raise ValueError(f"sweep: {name} repeats {repeated[0]!r} (each pair must be trained once)")
    return grid


def _check_data(X: Any, y: Any, X_val: Any, y_val: Any,
                num_classes: Optional[int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    X, X_val = (np.asarray(a.data if isinstance(a, Tensor) else a) for a in (X, X_val))
    for name, a in (("X", X), ("X_val", X_val)):
        if a.dtype.kind not in "fiub":
            raise TypeError(f"sweep: {name} must be a numeric array, got dtype {a.dtype}")
        if a.ndim != 2 or len(a) == 0:
            raise ValueError(f"sweep: {name} must be a 2-D array (N, D) with N >= 1, got shape {a.shape}")
    if X_val.shape[1] != X.shape[1]:
        raise ValueError(f"sweep: X_val has {X_val.shape[1]} columns, X has {X.shape[1]}")
    if num_classes is not None:
        _check_int("num_classes", num_classes, 1)
    classes = np.iinfo(np.int64).max if num_classes is None else num_classes
    y = _check_y(y, len(X), classes, "y", "sweep")
    y_val = _check_y(y_val, len(X_val), classes, "y_val", "sweep")
    if num_classes is None:
        num_classes = int(max(y.max(), y_val.max())) + 1
    return X, y, X_val, y_val, num_classes
