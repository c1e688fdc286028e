"""The seeds' problems: each seed's network on the engine side (Tensor ops, in its
seed's layout), its data, and its hand derivation from ``tinygrad_lite.reference``,
ready for ``compare_gradients``; :func:`run` is what ``python -m
tinygrad_lite.compare`` prints.

This module sits above both ``reference`` (the hand side) and ``compare`` (the
comparison), so neither needs the other.

    from tinygrad_lite.problems import problem, run
    p = problem("cs231n", bug="l2")   # loss_fn, params, hand, X, y, reg, title
    print(run("column", "scaled"))    # the report
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from . import reference as ref
from .compare import GradientReport, compare_gradients
from .reference import BUGS
from .tensor import Tensor

__all__ = ["MODELS", "BUGS", "Problem", "problem", "run", "cs231n_loss_fn", "ng_loss_fn",
           "column_loss_fn", "scratch_loss_fn"]

MODELS = ("cs231n", "ng", "column", "scratch")


def _const(x: Any, name: str) -> Tensor:
    return Tensor(np.asarray(x, dtype=np.float64), name=name)


def _row_softmax_ce(scores: Tensor, y: np.ndarray) -> Tensor:
    """Rows are examples: exp of max-shifted scores, normalised per row, the true
    class picked, mean of -log (the seeds' softmax loss, as Tensor ops)."""
    n = scores.shape[0]
    e = (scores - scores.data.max(axis=1, keepdims=True)).exp()
    probs = e / e.sum(axis=1, keepdims=True)
    probs.name = "probs"
    return -(probs[np.arange(n), y].log()).sum() / n


def cs231n_loss_fn(X: Any, y: Any, reg: float = 0.0, *, l2_half: bool = False) -> Callable:
    """Seeds 000/001 as Tensor ops: rows, ReLU, softmax cross-entropy, ``reg * |W|^2``
    (``0.5 * reg`` with ``l2_half``)."""
    X, y = _const(X, "X"), np.asarray(y)
    c = 0.5 * reg if l2_half else reg

    def loss_fn(p: dict) -> Tensor:
        a = (X @ p["W1"] + p["b1"]).relu()
        a.name = "a"
        scores = a @ p["W2"] + p["b2"]
        scores.name = "scores"
        loss = _row_softmax_ce(scores, y)
        return loss + c * ((p["W1"] * p["W1"]).sum() + (p["W2"] * p["W2"]).sum())
    return loss_fn


def ng_loss_fn(X: Any, y: Any, lambd: float = 1e-3) -> Callable:
    """Seed 002 as Tensor ops: its code's rows, ReLU, ``0.5 * lambd * |W|^2``."""
    X, y = _const(X, "a0"), np.asarray(y)

    def loss_fn(p: dict) -> Tensor:
        a1 = (X @ p["W1"] + p["b1"]).relu()
        a1.name = "a1"
        z2 = a1 @ p["W2"] + p["b2"]
        z2.name = "z2"
        data_loss = _row_softmax_ce(z2, y)
        return data_loss + (0.5 * lambd * (p["W1"] * p["W1"]).sum()
                            + 0.5 * lambd * (p["W2"] * p["W2"]).sum())
    return loss_fn


def column_loss_fn(X: Any, y: Any, reg: float = 0.0) -> Callable:
    """Seed 003 as Tensor ops: columns (``W X + b`` with b a column), sigmoid, the
    labels index rows of the (D_out, N) scores, ``0.5 * reg`` on the weights only."""
    X, y = _const(X, "X"), np.asarray(y)
    N = X.shape[1]

    def loss_fn(p: dict) -> Tensor:
        a1 = (p["W1"] @ X + p["b1"].reshape(-1, 1)).sigmoid()
        a1.name = "a1"
        z2 = p["W2"] @ a1 + p["b2"].reshape(-1, 1)
        z2.name = "z2"
        e = (z2 - z2.data.max(axis=0, keepdims=True)).exp()
        logits = e / e.sum(axis=0, keepdims=True)
        logits.name = "logits"
        data_loss = -(logits[y, np.arange(N)].log()).sum() / N
        return data_loss + 0.5 * reg * ((p["W1"] * p["W1"]).sum() + (p["W2"] * p["W2"]).sum())
    return loss_fn


def scratch_loss_fn(X: Any, y: Any) -> Callable:
    """Seed 004 as Tensor ops: rows, ReLU, softmax cross-entropy, no L2."""
    X, y = _const(X, "x"), np.asarray(y)

    def loss_fn(p: dict) -> Tensor:
        h = (X @ p["W1"] + p["b1"]).relu()
        h.name = "h"
        score = h @ p["W2"] + p["b2"]
        score.name = "score"
        return _row_softmax_ce(score, y)
    return loss_fn


# ------------------------------------------------------------------ problems

@dataclass
class Problem:
    """One seed's network on one data set: everything ``compare_gradients`` needs."""
    model: str
    title: str
    loss_fn: Callable
    params: dict
    hand: Callable
    X: np.ndarray
    y: np.ndarray
    reg: float


def _random_rows(rs: np.random.RandomState, N: int, D: int, H: int, C: int,
                 bias_shape: str) -> tuple[dict, np.ndarray, np.ndarray]:
    shape = (lambda n: (1, n)) if bias_shape == "row" else (lambda n: (n,))
    params = {"W1": rs.randn(D, H) * 0.5, "b1": rs.randn(*shape(H)) * 0.1,
              "W2": rs.randn(H, C) * 0.5, "b2": rs.randn(*shape(C)) * 0.1}
    X = rs.randn(N, D)
    y = rs.randint(C, size=N)
    return params, X, y


def problem(model: str, data: Optional[str] = None, seed: int = 0, *, l2_half: bool = False,
            bug: Optional[str] = None) -> Problem:
    """The ``model``'s network (one of :data:`MODELS`) on ``data``:

    - cs231n: ``"fixture"`` (default) is seed 001's toy problem (``init_toy_model``,
      ``init_toy_data``) at seed 000's ``reg=0.05`` (seed 001's ``0.5 * reg`` at
      ``reg=0.1`` with ``l2_half``: the same loss, 1.30378789133); ``"random"``;
    - ng: ``"random"`` (default): He-initialised (h1=25, the seed's size), lambd=1e-3;
    - column: ``"fixture"`` (default) is seed 003's own example (the 1e-24 trap),
      ``"scaled"`` the same with 0.1 X and perturbed W2, b2, ``"random"``;
    - scratch: ``"random"`` (default).

    ``seed`` seeds the random data; ``bug`` (cs231n and ng only) swaps the hand
    derivation for :func:`tinygrad_lite.reference.broken_two_layer` with that mistake.
    """
    if model not in MODELS:
        raise ValueError(f"problem: model must be one of {', '.join(MODELS)}, got {model!r}")
    defaults = {"cs231n": "fixture", "ng": "random", "column": "fixture", "scratch": "random"}
    allowed = {"cs231n": ("fixture", "random"), "ng": ("random",),
               "column": ("fixture", "scaled", "random"), "scratch": ("random",)}
    data = data or defaults[model]
    if data not in allowed[model]:
        raise ValueError(f"problem: {model} has data {', '.join(allowed[model])}, not {data!r}")
    if bug is not None and model not in ("cs231n", "ng"):
        raise ValueError(f"problem: bug= applies to the cs231n and ng (ReLU, L2) networks, not {model}")
    rs = np.random.RandomState(seed)

    if model == "cs231n":
        if data == "fixture":
            params, (X, y) = ref.init_toy_model(), ref.init_toy_data()
            reg = 0.1 if l2_half else 0.05
            desc = "seed 001's toy model and data (cs231n)"
        else:
            params, X, y = _random_rows(rs, N=7, D=5, H=6, C=4, bias_shape="flat")
            reg = 0.1
            desc = f"random data (seed {seed})"
        loss_fn = cs231n_loss_fn(X, y, reg, l2_half=l2_half)
        hand = functools.partial(ref.cs231n_two_layer, X=X, y=y, reg=reg, l2_half=l2_half)
        conv = "0.5 * reg * |W|^2 (seed 001)" if l2_half else "reg * |W|^2 (seed 000)"
        title = f"cs231n two-layer net, {conv}, reg={reg:g}, on {desc}"
    elif model == "ng":
        n, h1, K, m = 4, 25, 3, 8
        params = ref.init_ng_params(n, h1, K, rng=rs)
        X = rs.randn(m, n)
        y = rs.randint(K, size=m)
        reg = 1e-3
        loss_fn = ng_loss_fn(X, y, reg)
        hand = functools.partial(ref.ng_two_layer, X=X, y=y, lambd=reg)
        title = (f"seed 002 (ng) two-layer net, He init, 0.5 * lambd * |W|^2, lambd={reg:g}, "
                 f"on random data (seed {seed})")
    elif model == "column":
        if data == "fixture":
            params, X, y, reg = ref.seed003_fixture()
            desc = "seed 003's own fixture (uniform softmax: hidden gradients ~1e-24)"
        elif data == "scaled":
            params, X, y, reg = ref.seed003_scaled(seed)
            desc = f"seed 003's fixture, X * 0.1, W2 and b2 perturbed (seed {seed})"
        else:
            D, N, H, C = 3, 6, 4, 5
            params = {"W1": rs.randn(H, D), "b1": rs.randn(H) * 0.1,
                      "W2": rs.randn(C, H), "b2": rs.randn(C) * 0.1}
            X = rs.randn(D, N)
            y = rs.randint(C, size=N)
            reg = 0.5
            desc = f"random data (seed {seed})"
        loss_fn = column_loss_fn(X, y, reg)
        hand = functools.partial(ref.column_sigmoid_two_layer, X=X, y=y, reg=reg)
        title = f"seed 003 column-layout sigmoid net, 0.5 * reg * |W|^2, reg={reg:g}, on {desc}"
    else:
        params, X, y = _random_rows(rs, N=6, D=4, H=5, C=3, bias_shape="row")
        reg = 0.0
        loss_fn = scratch_loss_fn(X, y)
        hand = functools.partial(ref.scratch_two_layer, X=X, y=y)
        title = f"seed 004 (scratch) two-layer net, no L2, on random data (seed {seed})"

    if bug is not None:
        half = l2_half or model == "ng"
        hand = functools.partial(ref.broken_two_layer, X=X, y=y, reg=reg, l2_half=half, bug=bug)
        title += f", hand derivation broken: {bug}"
    return Problem(model, title, loss_fn, params, hand, np.asarray(X), np.asarray(y), reg)


def run(model: str, data: Optional[str] = None, seed: int = 0, *, l2_half: bool = False,
        bug: Optional[str] = None, numeric: bool = True, torch: Any = "auto",
        h: float = 1e-5) -> GradientReport:
    """The report for one seed's network: ``compare_gradients`` on :func:`problem`."""
    p = problem(model, data, seed, l2_half=l2_half, bug=bug)
    return compare_gradients(p.loss_fn, p.params, p.hand, numeric=numeric, torch=torch, h=h,
                             title=p.title)
