"""What kind of mistake a wrong hand gradient is, stated only when the evidence is
exact: each diagnosis names a hypothesis (a clean factor, a transposed array, one
wrong branch of a fan-out, a missing ReLU mask, ...) and is given only when the
hand gradient equals the engine's gradient under that hypothesis element by
element, within the report's tolerances. Anything else gets no diagnosis (an empty
string): a guess is never presented as a finding."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..tensor import Tensor, grad
from .agreement import agree, agreeing, fitted_factor, informative, proportional
from .graph import EngineGradients, describe


def _near(k: float, value: float) -> bool:
    return abs(k - value) <= 1e-6 * abs(value)


# ----------------------------------------------------------------- clean factors

def batch_sizes(walk: EngineGradients) -> list:
    """The N a loss divides by, read from the graph: the count of each ``mean`` and
    each whole-number scalar constant a node is divided by."""
    found = set()
    for node in walk.order:
        op = node.op
        if op is None:
            continue
        if op.name == "mean" and node.size:
            n = node.parents[0].size // node.size
            if n > 1:
                found.add(n)
        elif op.name == "softmax_cross_entropy" and node.args["reduction"] == "mean":
            n = len(node.args["labels"])  # the mean over the N rows
            if n > 1:
                found.add(n)
        elif op.name == "div":
            c = node.parents[1]
            if c.requires_grad or c.op is not None or c.data.size != 1:
                continue
            v = float(c.data.reshape(-1)[0])
            if v >= 2 and abs(v - round(v)) <= 1e-9 * v:
                found.add(int(round(v)))
    return sorted(found)


def _factors(ns: list) -> list:
    """Every clean factor a classic mistake gives: 2 and 1/2 (the L2 conventions),
    N and 1/N (mean vs sum), and the same with the sign flipped."""
    base = [2.0, 0.5] + [v for n in ns for v in (float(n), 1.0 / n)]
    return [-1.0] + base + [-v for v in base]


def _factor_text(value: float, ns: list, l2: bool) -> str:
    """The diagnosis of "hand = value x engine"."""
    size = abs(value)
    if value == -1.0:
        return "sign flipped"
    why = []
    if size in (2.0, 0.5):
        name = "a factor of 2" if size == 2.0 else "a factor of 1/2"
        why.append(f"off by {name}" + (": the L2 convention (reg*sum(W**2) gives 2*reg*W)"
                                       if l2 else ""))
    for n in ns:
        if _near(size, n):
            why.append(f"off by N = {n}: a missing or extra 1/N (mean vs sum)")
        elif _near(size, 1.0 / n):
            why.append(f"off by 1/N = 1/{n}: a missing or extra 1/N (mean vs sum)")
    out = " or ".join(dict.fromkeys(why))
    return ("sign flipped and " + out) if value < 0 else out


def clean_factor(hand: np.ndarray, engine: np.ndarray, ns: list, rtol: float,
                 atol: float) -> Optional[float]:
    """The clean factor ``c`` with ``hand == c * engine`` element by element, or None."""
    if informative(engine, atol) == 0:
        return None
    k = fitted_factor(hand, engine)
    if k is None:
        return None
    for value in _factors(ns):
        if _near(k, value) and agree(hand, value * engine, rtol, atol):
            return value
    return None


# ----------------------------------------------------------------- the evidence

@dataclass
class Case:
    """One wrong hand gradient and what the diagnosis may look at."""
    name: str
    tensor: Tensor
    hand: np.ndarray
    engine: np.ndarray
    walk: EngineGradients
    rtol: float
    atol: float
    others_agree: bool = False          # every other hand gradient given agrees
    consumer: Optional[Tensor] = None   # a per-branch row: the branch into this op node

    @property
    def ns(self) -> list:
        return batch_sizes(self.walk)

    def has_l2(self) -> bool:
        """The tensor has a branch that is an L2 term (``m * t``)."""
        t = self.tensor
        branches = [self.consumer] if self.consumer is not None else self.walk.consumers(t)
        return any(self.walk.is_l2(t, c, self.rtol, self.atol) is not None for c in branches)


#: float32's round-off over a few operations (its epsilon is 1.2e-7)
_SINGLE_RTOL = 1e-5


def diagnose(case: Case) -> tuple[str, Optional[Tensor]]:
    """``(diagnosis, wrong consumer)``: the first hypothesis the hand gradient meets
    exactly, and the op node whose branch is wrong when one branch explains it all."""
    h, e = case.hand, case.engine
    finite = np.isfinite(h)
    if not finite.all():
        return f"the hand gradient has {int((~finite).sum())} nan/inf element(s)", None
    if informative(h, case.atol) == 0:
        return "the hand gradient is zero everywhere (the engine's is not)", None
    scale = float(np.abs(e).max())  # > 0 whenever h agrees: h has informative elements
    if agree(h, e, _SINGLE_RTOL, _SINGLE_RTOL * scale):
        worst = float(np.max(np.abs(h - e))) / scale
        return (f"agrees to within single-precision round-off (largest difference {worst:.1e} "
                f"of the largest element): float32 arithmetic on the hand side, or a term that "
                f"small left out; compute it in float64 to tell"), None
    c = clean_factor(h, e, case.ns, case.rtol, case.atol)
    if c is not None:
        # the L2 convention explains a factor on the L2 branch alone: scaling a whole
        # gradient also scales its data part, which no L2 slip touches
        return _factor_text(c, case.ns, case.consumer is not None and case.has_l2()), None
    if h.ndim == 2 and h.shape[0] == h.shape[1] and agree(h, e.T, case.rtol, case.atol):
        return "transposed", None
    if case.consumer is None:
        found = explaining_branch(case)
        if found is not None:
            return found
    else:
        m = case.walk.is_l2(case.tensor, case.consumer, case.rtol, case.atol)
        if m is not None:
            k = proportional(h - e, case.tensor.data.astype(np.float64), case.rtol, case.atol)
            if k is not None:
                return _l2_text(case.name, m, k), case.consumer
    for check in (_own_value_term, _relu_mask_here):
        text = check(case)
        if text:
            return text, None
    found = _relu_mask_upstream(case)
    if found is not None:
        return found
    return _where(case), None


# ----------------------------------------------------------------- fan-out branches

def explaining_branch(case: Case) -> Optional[tuple[str, Tensor]]:
    """At a fan-out: when ``hand - engine`` is a multiple of exactly one branch's
    gradient, that branch is the wrong one. Returns (diagnosis, its consumer)."""
    t, walk = case.tensor, case.walk
    consumers = walk.consumers(t)
    if len(consumers) < 2:
        return None
    d = case.hand - case.engine
    hits = []
    for cons in consumers:
        b = walk.branch(t, cons)
        if informative(b, case.atol) < 2:
            continue
        alpha = fitted_factor(d, b)
        if alpha is not None and agree(case.hand, case.engine + alpha * b, case.rtol, case.atol):
            hits.append((cons, alpha))
    if len(hits) != 1:
        return None  # none, or branches proportional to each other: no one branch to name
    cons, alpha = hits[0]
    ratio = 1.0 + alpha  # the hand's branch is ratio x the engine's
    m = walk.is_l2(t, cons, case.rtol, case.atol)
    if m is not None:
        return _l2_text(case.name, m, alpha * m), cons
    where = f"the gradient through {describe(cons, t)}"
    if abs(ratio) <= 1e-9:
        return f"{where} is missing (at a fan-out the branches add up)", cons
    for value in _factors(case.ns):
        if _near(ratio, value):
            return f"{where} is {_factor_text(value, case.ns, False)}", cons
    return (f"only {where} differs: hand - engine = {alpha:.6g} x that branch's gradient",
            cons)


def _l2_text(name: str, m: float, k: float) -> str:
    """``hand - engine = k * W`` where the loss's L2 term gives ``m * W``."""
    ratio = (m + k) / m  # the hand's L2 part over the engine's
    convention = "the 0.5*reg*sum(W**2) vs reg*sum(W**2) convention"
    if _near(ratio, 0.5):
        return (f"the L2 term's gradient is off: k = -reg, {convention} (hand - engine = "
                f"{k:.6g} * {name}: the loss has reg*sum({name}**2) with reg = {m / 2:.6g}, whose "
                f"gradient is 2*reg*{name}; the hand side has reg*{name})")
    if _near(ratio, 2.0):
        return (f"the L2 term's gradient is off: k = +reg, {convention} (hand - engine = "
                f"{k:.6g} * {name}: the loss has 0.5*reg*sum({name}**2) with reg = {m:.6g}, "
                f"whose gradient is reg*{name}; the hand side has 2*reg*{name})")
    if abs(ratio) <= 1e-9:
        return (f"the L2 term's gradient is missing: the loss's L2 term gives {m:.6g} * {name}, "
                f"the hand side nothing")
    if _near(ratio, -1.0):
        return f"the L2 term's gradient has its sign flipped ({m:.6g} * {name} in the loss)"
    return (f"the L2 term's gradient is off: hand - engine = k * {name} with k = {k:.6g}; "
            f"the loss's L2 term gives {m:.6g} * {name}, the hand side {m + k:.6g} * {name}")


def _own_value_term(case: Case) -> str:
    """``hand - engine = k * t`` for a tensor with no L2 term in the loss."""
    if case.consumer is not None or case.has_l2():
        return ""  # an L2 slip there is found as a wrong branch
    k = proportional(case.hand - case.engine, case.tensor.data.astype(np.float64),
                     case.rtol, case.atol)
    if k is None:
        return ""
    return (f"hand - engine = k * {case.name} with k = {k:.6g}: the hand side has an L2-style "
            f"term the loss does not have")


# ----------------------------------------------------------------- the ReLU mask

def _relus(walk: EngineGradients) -> list:
    """``(relu node, its input)`` for each ReLU of the graph: ``relu(z)`` or
    ``maximum(z, 0)`` against a constant zero."""
    out = []
    for node in walk.order:
        op = node.op
        if op is None:
            continue
        if op.name == "relu":
            out.append((node, node.parents[0]))
        elif op.name == "maximum" and len(node.parents) == 2:
            for z, other in (node.parents, node.parents[::-1]):
                if other.op is None and not other.requires_grad and not other.data.any():
                    out.append((node, z))
                    break
    return out


def _relu_mask_here(case: Case) -> str:
    """The tensor is a ReLU's input: every wrong element is the one the mask would
    give if it were missing (or taken from the wrong array)."""
    t, walk, h, e = case.tensor, case.walk, case.hand, case.engine
    for relu, z in _relus(walk):
        if z is not t or relu.shape != t.shape or case.consumer not in (None, relu):
            continue
        upstream = walk.whole(relu)
        own = walk.branch(t, relu) if case.consumer is None else e
        passed, stopped = e - own + upstream, e - own
        right = agreeing(h, e, case.rtol, case.atol)
        as_passed = agreeing(h, passed, case.rtol, case.atol) & ~right
        as_stopped = agreeing(h, stopped, case.rtol, case.atol) & ~right
        if not np.all(right | as_passed | as_stopped) or right.all():
            continue
        closed = t.data <= 0
        name = t.name or "its input"
        if np.all(right | (closed & as_passed)):
            return "the ReLU mask is missing (or applied to the wrong array)"
        return (f"the ReLU mask is applied to the wrong array: the gradient passes at "
                f"{int((as_passed & closed).sum())} place(s) where {name} <= 0 and is stopped "
                f"at {int((as_stopped & ~closed).sum())} where {name} > 0")
    return ""


def _relu_mask_upstream(case: Case) -> Optional[tuple[str, Optional[Tensor]]]:
    """The tensor is further from the loss than a ReLU: the hand gradient is the
    engine's with that ReLU's mask left out, carried back to the tensor. Returns
    the diagnosis and, at a fan-out, the one consumer the ReLU's gradient comes through."""
    t, walk = case.tensor, case.walk
    if case.consumer is not None:
        return None
    for relu, z in _relus(walk):
        if z is t or not z.requires_grad or z.op is None:
            continue
        stopped = walk.whole(relu) - walk.branch(z, relu)  # what the mask keeps from z
        if informative(stopped, case.atol) == 0:
            continue
        extra = grad(z, t, grad_outputs=stopped.astype(z.dtype), allow_unused=True)
        if extra is None or informative(extra, case.atol) == 0:
            continue
        if agree(case.hand, case.engine + extra, case.rtol, case.atol):
            what = (f"relu({z.name})" if z.name else
                    f"the ReLU that gives {relu.name}" if relu.name else "the ReLU")
            above = _computed_from(z)
            through = [c for c in walk.consumers(t) if id(c) in above]
            return (f"the ReLU mask is missing upstream: {case.name}'s hand gradient is the "
                    f"engine's with the mask of {what} left out",
                    through[0] if len(through) == 1 and len(walk.consumers(t)) > 1 else None)
    return None


def _computed_from(z: Tensor) -> set:
    """ids of ``z`` and every node it was computed from."""
    seen, stack = {id(z)}, [z]
    while stack:
        for p in stack.pop().parents:
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return seen


# ----------------------------------------------------------------- where it differs

def _where(case: Case) -> str:
    """Only a bias differs, or only one row, column or element."""
    t = case.tensor
    bad = ~agreeing(case.hand, case.engine, case.rtol, case.atol)
    if case.consumer is None and case.others_agree and _is_bias(t, case.walk):
        return (f"only the bias {case.name} differs (every other hand gradient agrees): the "
                f"mistake is in its own line (its gradient is the upstream one summed over the "
                f"broadcast (batch) axis)")
    if bad.ndim == 2 and bad.size > 1:
        rows, cols = np.nonzero(bad.any(axis=1))[0], np.nonzero(bad.any(axis=0))[0]
        if len(rows) == 1 and len(cols) == 1:
            return f"differs only at [{rows[0]}, {cols[0]}]"
        if len(rows) == 1 and bad.shape[0] > 1:
            return f"differs only in row {rows[0]} (of {bad.shape[0]})"
        if len(cols) == 1 and bad.shape[1] > 1:
            return f"differs only in column {cols[0]} (of {bad.shape[1]})"
    elif bad.ndim == 1 and bad.size > 1 and bad.sum() == 1:
        return f"differs only at [{int(np.argmax(bad))}]"
    return ""


def _is_bias(t: Tensor, walk: EngineGradients) -> bool:
    """A parameter added to a bigger array (broadcast over the batch)."""
    return t.op is None and any(c.op.name in ("add", "sub") and c.size > t.size
                                for c in walk.consumers(t))
