"""``GradientReport``: per parameter (and per named intermediate or branch the hand
side gives), does a gradient agree with the engine's? Against a hand derivation,
central differences and PyTorch; the first wrong wire in backward order, with a
diagnosis; as text or a Markdown table. ``compare_gradients`` (gradients.py) makes it.

See docs/compare.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..gradcheck import elementwise_errors
from ..tensor import Tensor
from .diagnose import Case, diagnose
from .graph import EngineGradients, describe

#: The comparisons, in table order.
KINDS = ("hand", "numeric", "torch")

#: ``kind -> (rtol, atol)``. An element passes when its cs231n relative error
#: ``|e - o| / max(1e-8, |e| + |o|)`` is <= rtol *or* its absolute difference is
#: <= atol; a comparison passes when every element does. Hand and torch are exact
#: computations of the same float64 numbers; central differences carry ~1e-10 noise.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "hand": (1e-9, 1e-12),
    "numeric": (1e-6, 1e-8),
    "torch": (1e-9, 1e-12),
}

#: What a row is: a parameter, a named intermediate tensor, or one branch of a fan-out.
ROLES = ("param", "intermediate", "branch")


@dataclass(frozen=True)
class Comparison:
    """Engine vs one other gradient (or loss) of one parameter.

    ``rel_error`` is cs231n's ``rel_error`` (the max over elements) and ``max_abs``
    the largest absolute difference. ``index`` is the element shown: the failing
    element with the largest relative error when any fails, else the element with
    the largest relative error; ``engine`` and ``other`` are the two numbers there.
    ``missing`` marks a hand derivation that gives no gradient for the parameter.
    """
    kind: str
    rel_error: float
    max_abs: float
    index: Optional[tuple]
    engine: Optional[float]
    other: Optional[float]
    ok: bool
    n_failing: int
    size: int
    rtol: float
    atol: float
    missing: bool = False

    @classmethod
    def of(cls, kind: str, engine: np.ndarray, other: np.ndarray, rtol: float,
           atol: float) -> "Comparison":
        engine = np.asarray(engine, dtype=np.float64)
        other = np.asarray(other, dtype=np.float64)
        if engine.size == 0:
            return cls(kind, 0.0, 0.0, None, None, None, True, 0, 0, rtol, atol)
        rel, diff = elementwise_errors(engine, other)
        good = (diff <= atol) | (rel <= rtol)  # nan compares False: a nan fails
        bad = ~good
        # nan-aware "largest": a nan counts as the largest of all
        rel_key = np.where(np.isnan(rel), np.inf, rel)
        pool = np.where(bad, rel_key, -1.0) if bad.any() else rel_key
        flat = int(np.argmax(pool))
        index = tuple(int(i) for i in np.unravel_index(flat, engine.shape))
        rel_max = float(np.nan if np.isnan(rel).any() else rel.max())
        abs_max = float(np.nan if np.isnan(diff).any() else diff.max())
        return cls(kind, rel_max, abs_max, index, float(engine[index]), float(other[index]),
                   bool(good.all()), int(bad.sum()), int(engine.size), rtol, atol)

    @classmethod
    def absent(cls, kind: str, size: int, rtol: float, atol: float) -> "Comparison":
        return cls(kind, math.inf, math.inf, None, None, None, False, size, size, rtol, atol,
                   missing=True)


@dataclass
class Row:
    """One parameter, intermediate or branch: its engine gradient, the other
    gradients, their comparisons. ``tensor`` is the Tensor of ``report.graph`` and,
    for a branch (``role == "branch"``), ``consumer`` the op node it flows back from."""
    name: str
    shape: tuple
    engine: np.ndarray
    others: dict = field(default_factory=dict)        # kind -> array (absent if missing)
    comparisons: dict = field(default_factory=dict)   # kind -> Comparison
    role: str = "param"
    tensor: Optional[Tensor] = field(default=None, repr=False, compare=False)
    consumer: Optional[Tensor] = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """The name as the tables print it: intermediates and branches marked."""
        return self.name if self.role == "param" else f"{self.name} ({self.role})"

    def ok(self, *kinds: str) -> bool:
        return all(c.ok for k, c in self.comparisons.items() if not kinds or k in kinds)

    def __getitem__(self, kind: str) -> Comparison:
        """``row["hand"]`` is the engine-vs-hand :class:`Comparison`."""
        return self.comparisons[kind]

    def __getattr__(self, attr: str) -> Any:
        # flat names: row.hand_rel_error, row.numeric_max_abs, row.torch_ok, ...
        kind, _, fieldname = attr.partition("_")
        if kind in KINDS and fieldname and not attr.startswith("__"):
            comparisons = self.__dict__.get("comparisons", {})
            if kind in comparisons and hasattr(comparisons[kind], fieldname):
                return getattr(comparisons[kind], fieldname)
            if kind not in comparisons:
                return None
        raise AttributeError(f"Row has no attribute {attr!r}")

    def as_dict(self) -> dict:
        """A flat dict: name, shape, ok and ``{kind}_{rel_error, max_abs, index, engine, other, ok}``."""
        out: dict = {"name": self.name, "shape": tuple(self.shape), "role": self.role,
                     "ok": self.ok()}
        for k, c in self.comparisons.items():
            for f in ("rel_error", "max_abs", "index", "engine", "other", "ok"):
                out[f"{k}_{f}"] = getattr(c, f)
        return out


@dataclass(frozen=True)
class Worst:
    """The parameter, comparison and element with the largest relative error
    (failing elements first), with both numbers."""
    param: str
    comparison: str
    index: Optional[tuple]
    engine: Optional[float]
    other: Optional[float]
    rel_error: float
    abs_diff: float
    ok: bool

    # aliases
    name = property(lambda self: self.param)
    parameter = property(lambda self: self.param)
    kind = property(lambda self: self.comparison)
    numbers = property(lambda self: (self.engine, self.other))

    def __str__(self) -> str:
        where = self.param if self.index in (None, ()) else f"{self.param}{list(self.index)}"
        if self.engine is None:
            return f"{where}: the {self.comparison} side gives no gradient"
        return (f"{where}, engine vs {self.comparison}: engine {self.engine:.10g} vs "
                f"{self.comparison} {self.other:.10g} (rel_error {self.rel_error:.2e}, "
                f"|diff| {self.abs_diff:.2e}){'' if self.ok else '  FAIL'}")


@dataclass(frozen=True)
class Divergence:
    """The first tensor in backward order (from the loss towards the leaves) whose
    hand gradient disagrees with the engine's: ``name``, ``kind`` ("hand"), the
    ``comparison`` of its row, a ``diagnosis`` (empty when no known mistake matches
    the numbers exactly), the ``tensor`` of ``report.graph`` and, when the wrong part
    is one branch of a fan-out, the op node ``consumer`` of that branch."""
    name: str
    kind: str
    comparison: Comparison
    diagnosis: str
    tensor: Tensor = field(repr=False)
    consumer: Optional[Tensor] = field(default=None, repr=False)
    role: str = "param"

    def __str__(self) -> str:
        c = self.comparison
        what = "no hand gradient" if c.missing else f"{c.n_failing} of {c.size} elements differ"
        head = self.name if self.role == "param" else f"{self.name} ({self.role})"
        if self.consumer is not None and self.role != "branch":
            head += f", its branch into {describe(self.consumer, self.tensor)}"
        return f"first wrong wire (backward order): {head}, {what}"


class GradientReport:
    """The result of :func:`compare_gradients`.

    - ``rows``: one :class:`Row` per parameter (``report["W1"]`` is that row), then
      the intermediates and branches the hand side gives, in backward order;
    - ``kinds``: the comparisons made, among ``"hand", "numeric", "torch"``;
    - ``losses``: ``{"engine": float, "hand": float | None, "torch": float | None}``
      and ``loss_checks``: kind -> :class:`Comparison` of those losses;
    - ``ok(*kinds)``, ``failing(kind="hand")``, ``failures()``, ``worst``;
    - ``str(report)`` a text table, ``to_markdown()`` a Markdown one;
    - ``graph``: the engine's loss Tensor (``backward`` has run, so every node's
      ``.grad`` is set) and ``leaves``: name -> the leaf Tensor of that parameter
      in ``graph`` (``leaf.name == name``). For diagrams: ``viz`` marks the wires
      into ``leaves[n]`` for ``n in report.failing()``.
    - ``notes``: what was skipped or worth knowing (torch absent, tiny gradients, ...);
    - ``first_divergence``: a :class:`Divergence` (None when every hand gradient
      agrees) and ``wrong_wires()``: ``(tensor, consumer)`` for each wrong wire.
    """

    def __init__(self, rows: list, kinds: tuple, losses: dict, loss_checks: dict,
                 tolerances: dict, notes: list, graph: Tensor, leaves: dict, h: float,
                 title: str = "", walk: Optional[EngineGradients] = None) -> None:
        self.rows = rows
        self.kinds = kinds
        self.losses = losses
        self.loss_checks = loss_checks
        self.tolerances = tolerances
        self.notes = notes
        self.graph = graph
        self.leaves = leaves
        self.h = h
        self.title = title
        self.walk = walk if walk is not None else EngineGradients(graph)
        self._divergence: Any = self  # not computed yet
        self._diagnoses: dict = {}      # id(row) -> (diagnosis, wrong consumer)

    # -------------------------------------------------------------- queries
    def __getitem__(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no parameter {name!r} in this report (have {', '.join(self.names)})")

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def names(self) -> list:
        return [r.name for r in self.rows]

    def ok(self, *kinds: str) -> bool:
        """True when every comparison made (or only those of ``kinds``) passes its
        tolerance for every parameter, and the losses agree."""
        for k in kinds:
            if k not in KINDS:
                raise ValueError(f"ok: unknown comparison {k!r} (one of {', '.join(KINDS)})")
        rows_ok = all(r.ok(*kinds) for r in self.rows)
        loss_ok = all(c.ok for k, c in self.loss_checks.items() if not kinds or k in kinds)
        return rows_ok and loss_ok

    def failing(self, kind: str = "hand") -> set:
        """Names of the parameters and intermediates whose engine-vs-``kind``
        comparison fails (``kind="any"``: any comparison). Empty when that comparison
        was not made. This is the hook ``viz.draw(root, compare=report)`` reads."""
        if kind != "any" and kind not in KINDS:
            raise ValueError(f"failing: unknown comparison {kind!r} (one of {', '.join(KINDS)}, any)")
        return {r.name for r in self.rows for k, c in r.comparisons.items()
                if (kind == "any" or k == kind) and not c.ok and r.role != "branch"}

    def as_dicts(self) -> list:
        """One flat dict per parameter (see :meth:`Row.as_dict`)."""
        return [r.as_dict() for r in self.rows]

    def failing_leaves(self, kind: str = "hand") -> list:
        """The leaf Tensors of ``graph`` for :meth:`failing` (``leaf.name`` is the
        parameter's name), in parameter order."""
        bad = self.failing(kind)
        return [self.leaves[r.name] for r in self.rows if r.role == "param" and r.name in bad]

    def failures(self) -> list:
        """``[(param, Comparison), ...]`` for every failing comparison, in table order."""
        return [(r.name, r.comparisons[k]) for r in self.rows for k in self.kinds
                if k in r.comparisons and not r.comparisons[k].ok]

    @property
    def worst(self) -> Optional[Worst]:
        """The (parameter, comparison, index) with the largest rel_error, failing
        ones first, with the engine's and the other number; None if nothing was compared."""
        best, key = None, None
        for r in self.rows:
            for k in self.kinds:
                c = r.comparisons.get(k)
                if c is None:
                    continue
                rel = math.inf if (c.missing or math.isnan(c.rel_error)) else c.rel_error
                kk = (not c.ok, rel)
                if key is None or kk > key:
                    best, key = (r.name, c), kk
        if best is None:
            return None
        name, c = best
        return Worst(name, c.kind, c.index, c.engine, c.other, c.rel_error, c.max_abs, c.ok)

    # -------------------------------------------------------------- the first wrong wire
    def _wrong_rows(self) -> list:
        """Rows whose hand gradient is given and disagrees, in backward order
        (a tensor's whole row before its branches)."""
        bad = [r for r in self.rows if "hand" in r.comparisons and not r["hand"].ok
               and not r["hand"].missing]
        return sorted(bad, key=self._backward_key)

    def _backward_key(self, row: Row) -> tuple:
        far = len(self.walk.order)  # a parameter that does not reach the loss: last
        own = self.walk.position.get(id(row.tensor), far)
        pos = own
        consumers = self.walk.consumers(row.tensor)
        if row.tensor.op is None and consumers:
            # A leaf's gradient is whole right after its last consumer: that is its place
            # from the loss towards the leaves (its own position is its creation order,
            # the order of the params dict, which says nothing about the graph).
            pos = self.walk.position[id(consumers[-1])] + 0.5
        sub = -1 if row.consumer is None else self.walk.position.get(id(row.consumer), far)
        return pos, sub, own

    def _case(self, row: Row) -> Case:
        rtol, atol = self.tolerances["hand"]
        others = [r for r in self.rows if r is not row and r.tensor is not row.tensor
                  and "hand" in r.comparisons]
        return Case(row.name if row.role != "branch" else (row.tensor.name or row.name),
                    row.tensor, row.others["hand"], row.engine, self.walk, rtol, atol,
                    others_agree=all(r["hand"].ok for r in others), consumer=row.consumer)

    def _diagnosis(self, row: Row) -> tuple:
        if id(row) not in self._diagnoses:
            self._diagnoses[id(row)] = diagnose(self._case(row))
        return self._diagnoses[id(row)]

    def _branch_rows(self, t: Tensor) -> list:
        return [r for r in self.rows if r.role == "branch" and r.tensor is t]

    @property
    def first_divergence(self) -> Optional[Divergence]:
        """The first tensor in backward order (from the loss towards the leaves) whose
        hand gradient disagrees, with a diagnosis; when every hand gradient given
        agrees, the first one the hand side leaves out; None when all agree."""
        if self._divergence is self:
            self._divergence = self._find_divergence()
        return self._divergence

    def _find_divergence(self) -> Optional[Divergence]:
        wrong = self._wrong_rows()
        if not wrong:
            missing = [r for r in self.rows if "hand" in r.comparisons and r["hand"].missing]
            if not missing:
                return None
            r = min(missing, key=self._backward_key)
            return Divergence(r.name, "hand", r["hand"], "the hand side gives no gradient for it",
                              r.tensor, r.consumer, r.role)
        row = wrong[0]
        text, consumer = self._diagnosis(row)
        if row.role == "branch":
            consumer = row.consumer
        else:
            bad_branches = [b for b in self._branch_rows(row.tensor) if not b["hand"].ok]
            if bad_branches:
                consumer = bad_branches[0].consumer
        return Divergence(row.name, "hand", row["hand"], text, row.tensor, consumer, row.role)

    def wrong_wires(self) -> list:
        """``(tensor, consumer)`` for each wire whose hand gradient disagrees, in
        backward order: ``tensor`` is a Tensor of ``graph``; ``consumer`` is None (its
        whole gradient is wrong) or the op node whose branch is wrong, when the hand
        side gives that branch or when one branch alone explains the difference."""
        out: list = []
        for row in self._wrong_rows():
            if row.role == "branch":
                pair = (row.tensor, row.consumer)
            elif self._branch_rows(row.tensor):
                if any(not b["hand"].ok for b in self._branch_rows(row.tensor)):
                    continue  # the wrong branch rows name the wires
                pair = (row.tensor, None)
            else:
                pair = (row.tensor, self._diagnosis(row)[1])
            if not any(pair[0] is t and pair[1] is c for t, c in out):
                out.append(pair)
        return out

    # -------------------------------------------------------------- rendering
    def _table(self) -> tuple[list, list]:
        head = ["param" if all(r.role == "param" for r in self.rows) else "tensor", "shape"]
        for k in self.kinds:
            head += [f"{k} rel_error", f"{k} max|diff|"]
        head.append("ok")
        body = []
        for r in self.rows:
            line = [r.label, str(tuple(r.shape))]
            for k in self.kinds:
                c = r.comparisons.get(k)
                if c is None:
                    line += ["-", "-"]
                elif c.missing:
                    line += ["missing", "missing"]
                else:
                    line += [f"{c.rel_error:.2e}", f"{c.max_abs:.2e}"]
            line.append("yes" if r.ok() else "NO: " + ", ".join(
                k for k in self.kinds if k in r.comparisons and not r.comparisons[k].ok))
            body.append(line)
        return head, body

    def _loss_line(self) -> str:
        parts = [f"engine {self.losses['engine']:.12g}"]
        for k in ("hand", "torch"):
            v = self.losses.get(k)
            if v is not None:
                c = self.loss_checks.get(k)
                flag = "" if c is None or c.ok else f" (FAIL, |diff| {c.max_abs:.2e})"
                parts.append(f"{k} {v:.12g}{flag}")
        return "loss: " + ", ".join(parts)

    def _failure_lines(self) -> list:
        out = []
        for name, c in self.failures():
            if c.missing:
                out.append(f"FAIL {name}: the hand derivation gives no gradient for {name!r}")
                continue
            where = name if c.index in (None, ()) else f"{name}{list(c.index)}"
            out.append(f"FAIL {where}, engine vs {c.kind}: engine {c.engine:.10g} vs {c.kind} "
                       f"{c.other:.10g} (rel_error {c.rel_error:.2e}, max|diff| {c.max_abs:.2e}; "
                       f"{c.n_failing} of {c.size} elements outside rel<={c.rtol:g} or "
                       f"|diff|<={c.atol:g})")
        for k, c in self.loss_checks.items():
            if not c.ok:
                out.append(f"FAIL loss, engine vs {k}: engine {c.engine:.12g} vs {k} {c.other:.12g} "
                           f"(rel_error {c.rel_error:.2e})")
        return out

    def _tol_line(self) -> str:
        return "tolerances: " + "; ".join(
            f"{k} rel<={self.tolerances[k][0]:g} or |diff|<={self.tolerances[k][1]:g}"
            for k in self.kinds)

    def _header(self) -> str:
        what = " / ".join(f"numeric (h={self.h:g})" if k == "numeric" else k for k in self.kinds)
        status = "PASS" if self.ok() else "FAIL"
        title = f"{self.title}: " if self.title else ""
        return f"{title}engine vs {what or 'nothing'}  [{status}]"

    def __str__(self) -> str:
        head, body = self._table()
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        lines = [self._header(), self._loss_line(), fmt(head), fmt(["-" * w for w in widths])]
        lines += [fmt(b) for b in body]
        lines.append(self._tol_line())
        w = self.worst
        if w is not None:
            lines.append(f"worst: {w}")
        lines += self._failure_lines()
        lines += self._divergence_lines()
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _divergence_lines(self) -> list:
        d = self.first_divergence
        if d is None:
            return []
        return [str(d), f"diagnosis: {d.diagnosis or 'none (the difference matches no known mistake exactly)'}"]

    def to_markdown(self) -> str:
        head, body = self._table()
        esc = lambda s: s.replace("|", "\\|")  # noqa: E731
        lines = [f"**{esc(self._header())}**", "", esc(self._loss_line()), "",
                 "| " + " | ".join(esc(h) for h in head) + " |",
                 "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(esc(c) for c in b) + " |" for b in body]
        lines += ["", esc(self._tol_line())]
        w = self.worst
        extra = ([f"worst: {w}"] if w is not None else []) + self._failure_lines() + \
            self._divergence_lines() + [f"note: {n}" for n in self.notes]
        lines += [f"- {esc(x)}" for x in extra]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (f"<GradientReport {'ok' if self.ok() else 'FAILING'}: {len(self.rows)} params, "
                f"comparisons {', '.join(self.kinds) or 'none'}>")
