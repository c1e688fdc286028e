"""``draw``: a tinygrad_lite graph as a Graphviz diagram of the backward pass;
``render_svg`` and ``render``: a graph (drawn here) or a ready diagram, as SVG text or a file."""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

from tinygrad_lite import Tensor

from ._format import (FORMULA_COLOR, GRAD_COLOR, HIGHLIGHT_COLOR, MISMATCH_COLOR, VALUE_COLOR,
                      array_lines, escape, lines)
from ._grads import WireGrads, root_gradient
from ._graph import Graph
from ._layout import LR_BUDGET_PT, MARGIN, lr_width, text_width
from ._marks import Marks
from .render import Diagram, svg_from_source, write_atomically, write_by_suffix

STYLES = ("circuit", "nodes")
RANKDIRS = ("auto", "LR", "TB", "RL", "BT")
FONT = "Helvetica"
#: font sizes in points at scale 1: every text at least 11 pt, readable without zoom
LABEL_SIZE = 11
GATE_SIZE = 12
NAME_SIZE = 14
#: characters per line of wrapped text (rules, diagnoses)
WRAP = 30
#: the border of a wire's box
BOX_COLOR = "gray65"


class _Options:
    """One drawing's settings, passed down to the pieces."""
    __slots__ = ("show_values", "show_grads", "show_formulas", "max_elems", "marks",
                 "highlight", "missing")

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


def _value_lines(t: Tensor, max_elems: int) -> list:
    return array_lines(t.data, max_elems, narrow=True)


def _grad_lines(g: Optional[np.ndarray], max_elems: int, missing: str,
                short: bool = False) -> list:
    """The gradient's text; ``short`` drops the shape/dtype line of a summary (the
    value printed just above already says it)."""
    if g is None:
        return [missing]
    out = array_lines(g, max_elems, narrow=True)
    return out[1:] if short and np.size(g) > max_elems and len(out) > 1 else out


def _wrapped(text: str, width: int = WRAP) -> list:
    """``text`` as lines of at most about ``width`` characters, broken at spaces."""
    out: list = []
    for para in str(text).splitlines() or [""]:
        line = ""
        for w in para.split(" "):
            if line and len(line) + 1 + len(w) > width:
                out.append(line)
                line = w
            else:
                line = f"{line} {w}" if line else w
        out.append(line)
    return out


def rule_for(unit: Any, uses: list) -> Optional[str]:
    """The local-gradient rule of a primitive gate for the input wire ``uses[0]``:
    the op table's ``rule``, split at ", " when it has one part per input
    (``d(a*b)/da = b, d(a*b)/db = a``), else whole."""
    if unit.is_group:
        return None
    node = unit.members[0]
    rule = (getattr(node.op, "rule", "") or "").strip()
    if not rule:
        return None
    parts = [p.strip() for p in rule.split(", ")]
    if len(parts) == len(node.parents) and len(parts) > 1:
        rule = parts[uses[0].pos]
    return rule


def draw(root: Tensor, *, names: Optional[Mapping[str, Any]] = None, style: str = "circuit",
         show_values: bool = True, show_grads: bool = True, show_formulas: bool = False,
         max_elems: int = 6, rankdir: str = "auto", collapse: Any = "functions",
         compare: Any = None, gradient: Any = None) -> Diagram:
    """The graph that produced ``root`` as a circuit diagram (see docs/viz.md).

    ``style="circuit"``: gates are circles (collapsed composites rounded boxes),
    tensors are the wires between them, each with its forward value (dark green)
    just above it and its gradient (red) just below; at a fan-out each branch
    carries the gradient flowing back along it and the wire before the split their
    sum. ``style="nodes"``: tensors as boxes (name, shape, value, grad), ops as
    small nodes between them.

    The gradients are computed here, by one backward walk of the engine
    (``tl.propagate``) from ``root``, started from ones (a root of one element) or
    from ``gradient=``; a root of several elements without ``gradient=`` is drawn
    without gradients. No ``.grad`` is read or written: the diagram shows the
    gradients of the graph it draws, before or after any ``backward()``.
    """
    return _draw(root, None, names=names, style=style, show_values=show_values,
                 show_grads=show_grads, show_formulas=show_formulas, max_elems=max_elems,
                 rankdir=rankdir, collapse=collapse, compare=compare, gradient=gradient)


#: ``draw``'s options and their defaults, for the drawings that do not start there
#: (``draw_known``: the steps of the backward walk)
DRAW_DEFAULTS = {name: p.default for name, p in inspect.signature(draw).parameters.items()
                 if p.kind is p.KEYWORD_ONLY}


def draw_known(root: Tensor, grads: WireGrads, highlight: Tensor, **options: Any) -> Diagram:
    """``draw(root, **options)`` showing only the gradients in ``grads`` (what a walk
    knows so far; the others print ``?``) and ``highlight`` marked."""
    return _draw(root, (grads, highlight), **{**DRAW_DEFAULTS, **options})


def _draw(root: Tensor, known: Optional[tuple], *, names: Optional[Mapping[str, Any]], style: str,
          show_values: bool, show_grads: bool, show_formulas: bool, max_elems: int, rankdir: str,
          collapse: Any, compare: Any, gradient: Any) -> Diagram:
    """``draw``; ``known`` is ``draw_known``'s (gradients, highlighted tensor), else None."""
    if style not in STYLES:
        raise ValueError(f"style= must be one of {STYLES}, got {style!r}")
    if not isinstance(max_elems, int) or max_elems < 0:
        raise ValueError(f"max_elems= must be an int >= 0, got {max_elems!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir= must be one of {RANKDIRS}, got {rankdir!r}")
    G = Graph(root, names=names, collapse=collapse)
    if known is None:
        start = root_gradient(root, gradient, "draw")  # checked even when not drawn
        grads, highlight, missing = WireGrads.of(root, start) if show_grads else None, None, "None"
    else:
        (grads, highlight), missing = known, "?"
    G.grads = grads if show_grads else None
    opts = _Options(show_values=show_values, show_grads=show_grads and G.grads is not None,
                    show_formulas=show_formulas, max_elems=max_elems,
                    marks=Marks(compare, G), highlight=highlight, missing=missing)
    d = Diagram(name="tinygrad_lite", graph_attr={
        "fontname": FONT, "nodesep": "0.1", "ranksep": "0.05",
        "bgcolor": "white", "pad": "0.15"},
        node_attr={"fontname": FONT, "fontsize": str(GATE_SIZE)},
        edge_attr={"fontname": FONT, "fontsize": str(LABEL_SIZE), "arrowsize": "0.6",
                   "labelfontsize": str(LABEL_SIZE)})
    d._root, d._wire_grads = root, G.grads
    if style == "circuit":
        d.attr(compound="true")
    (_circuit if style == "circuit" else _nodes)(d, G, opts, rankdir)
    return d


# ----------------------------------------------------------------- shared pieces

def _gate(d: Diagram, unit: Any, o: _Options) -> None:
    attrs = {"label": escape(unit.label), "ordering": "in"}
    if unit.is_group:
        attrs.update(shape="box", style="rounded,filled", fillcolor="lightyellow",
                     tooltip=escape(f"{len(unit.members)} ops: "
                                    + " ".join(sorted({m.op.name for m in unit.members}))))
    else:
        attrs.update(shape="circle" if len(unit.label) <= 4 else "ellipse",
                     style="filled", fillcolor="white", margin="0.02",
                     width="0.42", height="0.42", tooltip=escape(unit.members[0].op.name))
    if o.marks.unit(unit):
        attrs.update(color=MISMATCH_COLOR, penwidth="2.5")
    if o.highlight is not None and any(m is o.highlight for m in unit.members):
        attrs.update(color=HIGHLIGHT_COLOR, penwidth="2.5", fillcolor="lightblue")
    d.node(unit.uid, **attrs)


def _pen(wrong: bool, highlighted: bool, first: bool) -> dict:
    if wrong:
        return {"color": MISMATCH_COLOR, "penwidth": "4" if first else "2.5"}
    if highlighted:
        return {"color": HIGHLIGHT_COLOR, "penwidth": "2.5"}
    return {}


def _wrong_lines(first: Optional[str]) -> list:
    if first is None:
        return ["\u2717 hand gradient differs"]
    return ["\u2717 first wrong wire"] + (_wrapped(first) if first else [])


# ----------------------------------------------------------------- circuit style

class _Wire:
    """What one wire shows, worked out before anything is emitted (the layout
    direction is chosen from the sizes): its box (value, name, gradient) and, per
    gate it enters, the texts on that branch."""
    __slots__ = ("t", "i", "name", "value", "grad", "pen", "mark", "branches")


def _wire_parts(G: Graph, t: Tensor, o: _Options) -> _Wire:
    w = _Wire()
    w.t, w.i = t, G.index[id(t)]
    w.name = G.name(t)
    if w.name is None and t.op is None and t is G.root:
        w.name = "output"
    wrong = o.marks.wire(t)
    first = o.marks.first_diagnosis(t)
    w.pen = _pen(wrong, o.highlight is t, first is not None)
    w.mark = " \u2717" if wrong else ""
    w.value = _value_lines(t, o.max_elems) if o.show_values else []
    w.grad = []
    if o.show_grads and t.requires_grad:
        w.grad = _grad_lines(G.grad(t), o.max_elems, o.missing, short=bool(w.value))
        if wrong:
            w.grad = w.grad + _wrong_lines(first)
    dests = G.destinations(t)
    # At a fan-out whose wrong branches are known, only those are drawn wrong (the
    # others carry right gradients), the first wrong wire's the heaviest.
    branch_known = len(dests) > 1 and any(o.marks.branch(t, unit) for unit, _ in dests)
    w.branches = []
    for unit, uses in dests:
        texts, pen = [], w.pen
        if branch_known:
            pen = _pen(o.marks.branch(t, unit), o.highlight is t, first is not None)
        if len(dests) > 1 and o.show_grads and t.requires_grad:
            # which branch: a label may sit nearer another wire than its own
            head = f"{w.name} \u2192 {unit.label}" if w.name else f"\u2192 {unit.label}"
            bl = [head] + _grad_lines(G.branch_grad(t, uses), o.max_elems,
                                                         o.missing, short=o.show_values)
            if o.marks.branch(t, unit):
                bl = bl + ["\u2717 this branch's hand gradient differs"]
            texts.append((bl, GRAD_COLOR))
        rule = rule_for(unit, uses) if o.show_formulas else None
        if rule:
            texts.append((_wrapped(rule), FORMULA_COLOR))
        w.branches.append((unit, texts, pen))
    return w


def _gate_width(unit: Any) -> float:
    if unit.is_group:
        return text_width([unit.label], GATE_SIZE) + 18
    return 30.0 if len(unit.label) <= 4 else text_width([unit.label], GATE_SIZE) + 20


def _direction(G: Graph, wires: list, rankdir: str, boxes: float = 1.0) -> str:
    """``rankdir="auto"``: left to right unless that is wider than about 1,400 px
    (``boxes``: how much wider a style's tensor boxes are than the circuit's)."""
    if rankdir != "auto":
        return rankdir
    nodes: dict = {id(u): _gate_width(u) for u in G.units}
    edges = []
    for w in wires:
        box = ("w", w.i)
        nodes[box] = boxes * max(text_width(w.value + w.grad, LABEL_SIZE),
                                 text_width([w.name or ""], NAME_SIZE, bold=True)) + 12
        if w.t.op is not None:
            edges.append((id(G.unit_of[id(w.t)]), box, 0))
        for unit, texts, _ in w.branches:
            edges.append((box, id(unit), max((text_width(ls, LABEL_SIZE) for ls, _ in texts),
                                            default=0.0)))
    return "LR" if lr_width(nodes, edges) * MARGIN <= LR_BUDGET_PT else "TB"


def _circuit(d: Diagram, G: Graph, o: _Options, rankdir: str) -> None:
    wires = [_wire_parts(G, t, o) for t in G.wires]
    rankdir = d._rankdir = _direction(G, wires, rankdir)
    d.attr(rankdir=rankdir, compound="true")
    by_tensor = {id(w.t): w for w in wires}
    declared = set()
    for t in G.tensors:  # declare in topological order: inputs keep their order
        if t.op is not None:
            u = G.unit_of[id(t)]
            if id(u) not in declared:
                declared.add(id(u))
                _gate(d, u, o)
        w = by_tensor.get(id(t))
        if w is not None:
            _wire(d, G, w, rankdir in ("LR", "RL"))


def _labelled(d: Diagram, tail: str, head: str, texts: list, attrs: dict) -> None:
    """The edge ``tail -> head`` with ``texts`` (``(lines, colour)`` pairs) as its
    label: a plain label has one colour, so a second text is the label of a
    transparent twin edge that dot lays out beside it (the fallback renderer reads
    no HTML-like labels)."""
    attrs = dict(attrs)
    if texts:
        attrs.update(label=lines(*texts[0][0]), fontcolor=texts[0][1])
    d.edge(tail, head, **attrs)
    for ls, colour in texts[1:]:
        d.edge(tail, head, label=lines(*ls), fontcolor=colour, color="transparent",
               arrowhead="none", ltail=attrs.get("ltail", ""))


def _wire(d: Diagram, G: Graph, w: _Wire, stacked: bool) -> None:
    """One tensor's wire: from its gate (none for a leaf) through its box (value in
    green, name, gradient in red) to the gates that use it; at a fan-out each branch
    leaving the box carries the gradient flowing back along it. The box keeps each
    number with its wire: no label floats between two wires."""
    anchor = _box(d, w, stacked)
    # the chain of computed wires is kept straight; inputs join it from the side
    weight = {} if w.t.op is None else {"weight": "4"}
    if w.t.op is not None:
        d.edge(G.unit_of[id(w.t)].uid, anchor, lhead=f"cluster_w{w.i}", arrowhead="none",
               **weight, **w.pen)
    for unit, texts, pen in w.branches:
        _labelled(d, anchor, unit.uid, texts, {"ltail": f"cluster_w{w.i}", **weight, **pen})


def _tip(name: Optional[str], t: Tensor) -> str:
    return f"{name + ' ' if name else ''}{tuple(t.shape)} {t.dtype}"


def _name_attrs(pen: dict, bold: bool) -> dict:
    return dict(shape="plaintext", fontsize=str(NAME_SIZE), fontcolor=pen.get("color", "black"),
                fontname=FONT + "-Bold" if bold else FONT, width="0", height="0", margin="0.03")


def _box(d: Diagram, w: _Wire, stacked: bool) -> str:
    """A wire's box: value (green), name, gradient (red), in one rank: stacked top
    to bottom when the wires run left to right, side by side when they run top to
    bottom. Returns the middle node, where the wire's edges attach (they stop at the
    border)."""
    i, pen = w.i, w.pen
    parts = []
    with d.subgraph(name=f"cluster_w{i}") as c:
        # (the fallback measures text narrower than it draws it: room to spare)
        c.attr(label="", style="rounded", color=pen.get("color", BOX_COLOR),
               penwidth=pen.get("penwidth", "1"), margin="6")
        if w.value:
            c.node(f"v{i}", label=lines(*w.value), shape="plaintext", fontcolor=VALUE_COLOR,
                   fontsize=str(LABEL_SIZE), width="0", height="0", margin="0.03,0.01")
            parts.append(f"v{i}")
        # the name, or an empty middle: the wire enters and leaves the box there
        c.node(f"t{i}", label=escape(w.name + w.mark) if w.name is not None else "",
               **_name_attrs(pen, bold=w.t.op is None), tooltip=escape(_tip(w.name, w.t)))
        parts.append(f"t{i}")
        if w.grad:
            c.node(f"q{i}", label=lines(*w.grad), shape="plaintext", fontcolor=GRAD_COLOR,
                   fontsize=str(LABEL_SIZE), width="0", height="0", margin="0.03,0.01")
            parts.append(f"q{i}")
        if len(parts) > 1:
            with c.subgraph() as s:
                s.attr(rank="same")
                for n in parts:
                    s.node(n)
            # a flat edge's tail is left of its head; left to right, dot puts it below
            for a, b in zip(parts, parts[1:]):
                c.edge(b, a, style="invis") if stacked else c.edge(a, b, style="invis")
    return f"t{i}"


# ----------------------------------------------------------------- nodes style

def _nodes(d: Diagram, G: Graph, o: _Options, rankdir: str) -> None:
    """Tensors as boxes (a cluster: name, shape and dtype on top, value in green,
    gradient in red), ops as small nodes between them, as micrograd's draw_dot."""
    wires = [_wire_parts(G, t, o) for t in G.wires]
    rankdir = d._rankdir = _direction(G, wires, rankdir, boxes=1.25)
    d.attr(compound="true", ranksep="0.3", rankdir=rankdir)
    stacked = rankdir in ("LR", "RL")
    for unit in G.units:
        _gate(d, unit, o)
    for w in wires:
        t, i = w.t, w.i
        head = f"{w.name} " if w.name is not None and w.name != "output" else ""
        head += f"{tuple(t.shape)} {t.dtype}"
        value = w.value[1:] if t.data.size > o.max_elems and len(w.value) > 1 else w.value
        with d.subgraph(name=f"cluster_t{i}") as c:
            c.attr(label=escape(head + w.mark), style="rounded",
                   color=w.pen.get("color", "gray40"), penwidth=w.pen.get("penwidth", "1"),
                   fontsize=str(GATE_SIZE), fontname=FONT, fontcolor="black", margin="6")
            c.node(f"t{i}", label=lines(*value) or " ", shape="plaintext",
                   fontcolor=VALUE_COLOR, fontsize=str(LABEL_SIZE), height="0.2")
            if w.grad:
                c.node(f"tg{i}", label=lines(*w.grad), shape="plaintext",
                       fontsize=str(LABEL_SIZE), fontcolor=GRAD_COLOR, height="0.2")
                with c.subgraph() as s:
                    s.attr(rank="same")
                    s.node(f"t{i}")
                    s.node(f"tg{i}")
                # value above the gradient (left of it when the graph runs downwards)
                c.edge(f"tg{i}", f"t{i}", style="invis") if stacked else \
                    c.edge(f"t{i}", f"tg{i}", style="invis")
        if t.op is not None:
            d.edge(G.unit_of[id(t)].uid, f"t{i}", lhead=f"cluster_t{i}")
    for w in wires:
        for unit, texts, pen in w.branches:
            _labelled(d, f"t{w.i}", unit.uid, texts,
                      {"ltail": f"cluster_t{w.i}", **({} if pen is w.pen else pen)})


# ----------------------------------------------------------------- output

def _diagram(root_or_digraph: Any, draw_kwargs: dict) -> Any:
    if isinstance(root_or_digraph, Tensor):
        return draw(root_or_digraph, **draw_kwargs)
    if hasattr(root_or_digraph, "source"):
        if draw_kwargs:
            raise TypeError("draw options are given with a Tensor, not with a ready diagram: "
                            f"{sorted(draw_kwargs)}")
        return root_or_digraph
    raise TypeError(f"expected a Tensor or a graphviz diagram, got {type(root_or_digraph).__name__}")


def render_svg(root_or_digraph: Any, path: Union[str, os.PathLike, None] = None,
               renderer: str = "auto", **draw_kwargs: Any) -> str:
    """The SVG text of ``draw(root, **draw_kwargs)`` (or of a ready diagram), also
    written to ``path`` when given. Uses ``dot`` when on PATH, else the pip fallback,
    else raises ``RendererNotFound`` naming both ways to install."""
    svg = svg_from_source(_diagram(root_or_digraph, draw_kwargs).source, renderer)
    if path is not None:
        write_atomically(path, svg)
    return svg


def render(root_or_digraph: Any, path: Union[str, os.PathLike], **draw_kwargs: Any) -> Path:
    """Write the diagram by ``path``'s suffix: ``.svg`` (dot or the fallback),
    ``.png`` / ``.pdf`` (system ``dot`` only), ``.dot`` / ``.gv`` (the DOT source)."""
    return write_by_suffix(_diagram(root_or_digraph, draw_kwargs), path)
