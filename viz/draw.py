"""``draw``: a tinygrad_lite graph as a Graphviz diagram of the backward pass."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import graphviz
import numpy as np

from tinygrad_lite import Tensor

from ._format import (FORMULA_COLOR, GRAD_COLOR, HIGHLIGHT_COLOR, MISMATCH_COLOR, VALUE_COLOR,
                      array_lines, escape, lines)
from ._grads import WireGrads, root_gradient
from ._graph import Graph
from ._layout import LR_BUDGET_PT, MARGIN, lr_width, text_width
from ._marks import Marks

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


class Diagram(graphviz.Digraph):
    """A ``graphviz.Digraph`` (``.source``, ``.render``, ``.pipe`` ... work as usual)
    whose SVG and notebook display go through viz's renderer choice: system ``dot``
    when it is on PATH, else the pip-installable fallback (``pip install
    'tinygrad_lite[viz]'``), else a clear error naming both."""

    #: set by ``draw``: the graph's root and the gradients the diagram prints
    _root: Optional[Tensor] = None
    _wire_grads: Optional[WireGrads] = None
    _rankdir: str = "LR"

    def gradient_of(self, t: Tensor, consumer: Optional[Tensor] = None) -> Optional[np.ndarray]:
        """The gradient this diagram prints for ``t`` (a copy), exactly as computed:
        ``t``'s whole gradient, or with ``consumer`` the one flowing back along the
        wire ``t -> consumer`` (summed when ``consumer`` uses ``t`` more than once).
        None where the diagram shows no gradient."""
        grads = self._wire_grads
        if grads is None:
            return None
        if consumer is None:
            g = grads.whole.get(id(t))
            return None if g is None else g.copy()
        parts = [grads.branch.get((id(consumer), pos))
                 for pos, p in enumerate(consumer.parents) if p is t]
        if not parts or any(p is None for p in parts):
            return None
        return np.sum(parts, axis=0) if len(parts) > 1 else parts[0].copy()

    def svg(self) -> str:
        """The SVG text (``dot`` or the fallback)."""
        from .render import svg_from_source
        return svg_from_source(self.source)

    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict:
        return {"image/svg+xml": self.svg(), "text/plain": repr(self)}

    def pipe(self, format: Optional[str] = None, *args: Any, **kwargs: Any) -> Any:
        """``graphviz.Digraph.pipe``; SVG without system ``dot`` goes through the
        fallback, other formats raise ``RendererNotFound`` (never graphviz's bare
        ``ExecutableNotFound``)."""
        from .render import dot_path, needs_dot
        fmt = format or self.format
        if dot_path() is None:
            if fmt == "svg" and not args and self._plain_dot(kwargs):
                svg = self.svg()
                encoding = kwargs.get("encoding")
                return svg if encoding is not None else svg.encode("utf-8")
            raise needs_dot(self._call("pipe", fmt, kwargs))
        with _no_bare_executable_not_found("Diagram.pipe"):
            return super().pipe(format, *args, **kwargs)

    def render(self, filename: Any = None, directory: Any = None, view: bool = False,
               cleanup: bool = False, format: Optional[str] = None, *args: Any,
               **kwargs: Any) -> str:
        """``graphviz.Digraph.render``: saves the DOT source and renders it to
        ``filename + '.' + format`` (or ``outfile=``), returning that path. Without
        system ``dot``, SVG goes through the pip fallback (same paths, ``cleanup``
        and ``view`` as graphviz); other formats raise ``RendererNotFound`` naming
        both ways to install, never graphviz's bare ``ExecutableNotFound``.
        ``Diagram.view()`` calls this too."""
        from .render import dot_path, needs_dot
        # graphviz's positional order after format: renderer, formatter, neato_no_op,
        # quiet, quiet_view
        pos = dict(zip(("renderer", "formatter", "neato_no_op", "quiet", "quiet_view"), args))
        if len(args) > len(pos) or set(pos) & set(kwargs):
            raise TypeError("Diagram.render: too many or repeated arguments")
        kwargs = {**pos, **kwargs}
        if dot_path() is not None:
            with _no_bare_executable_not_found("Diagram.render"):
                return super().render(filename, directory=directory, view=view,
                                      cleanup=cleanup, format=format, **kwargs)
        unknown = set(kwargs) - {"renderer", "formatter", "neato_no_op", "quiet", "quiet_view",
                                 "outfile", "engine", "raise_if_result_exists",
                                 "overwrite_source"}
        if unknown:
            raise TypeError(f"Diagram.render: unexpected arguments {sorted(unknown)}")
        outfile = kwargs.get("outfile")
        if outfile is not None:
            outfile = Path(os.fspath(outfile))
            if format is None:
                suffix = outfile.suffix[1:].lower()
                format = suffix if suffix in graphviz.FORMATS else None
        fmt = format or self.format
        if fmt != "svg" or not self._plain_dot(kwargs):
            raise needs_dot(self._call("render", fmt, kwargs))
        svg = self.svg()  # first: no file is written when no renderer is there either
        if outfile is not None:
            if directory is None:
                outfile = Path(self.directory, outfile)
            if filename is None:
                filename = outfile.with_suffix(".gv")
        filepath = self.save(filename, directory=directory, skip_existing=None)
        rendered = outfile if outfile is not None else Path(f"{filepath}.{fmt}")
        if Path(rendered).resolve() == Path(filepath).resolve() and \
                not kwargs.get("overwrite_source"):
            raise ValueError(f"outfile {os.fspath(rendered)!r} must be different from the "
                             f"DOT source file {filepath!r}")
        if kwargs.get("raise_if_result_exists") and Path(rendered).exists():
            raise graphviz.FileExistsError(f"output file exists: {os.fspath(rendered)!r}")
        Path(rendered).write_text(svg, encoding="utf-8")
        if cleanup:
            os.remove(filepath)
        if view or kwargs.get("quiet_view"):
            self._view(rendered, format=fmt, quiet=bool(kwargs.get("quiet_view")))
        return os.fspath(rendered)

    def unflatten(self, *args: Any, **kwargs: Any) -> Any:
        """``graphviz.Digraph.unflatten`` (runs Graphviz's ``unflatten``): without
        it, ``RendererNotFound`` instead of graphviz's bare ``ExecutableNotFound``."""
        with _no_bare_executable_not_found("Diagram.unflatten"):
            return super().unflatten(*args, **kwargs)

    def _call(self, method: str, fmt: str, kwargs: dict) -> str:
        """``Diagram.render(format='png', engine='neato')``: the call, for an error."""
        opts = {"format": fmt, "engine": kwargs.get("engine") or self.engine,
                **{k: kwargs.get(k) for k in ("renderer", "formatter", "neato_no_op")}}
        shown = ", ".join(f"{k}={v!r}" for k, v in opts.items()
                          if v is not None and (k, v) != ("engine", "dot"))
        return f"Diagram.{method}({shown})"

    def _plain_dot(self, kwargs: dict) -> bool:
        """True when the call asks for nothing the fallback (the dot engine, plain
        SVG) cannot do: no other engine, renderer, formatter or neato flag."""
        return (kwargs.get("engine") in (None, "dot") and self.engine == "dot" and
                all(kwargs.get(k) is None for k in ("renderer", "formatter", "neato_no_op")))


@contextlib.contextmanager
def _no_bare_executable_not_found(what: str) -> Iterator[None]:
    try:
        yield
    except graphviz.ExecutableNotFound as e:
        from .render import needs_dot
        raise needs_dot(what, detail=str(e)) from e


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


def _rule_for(unit: Any, uses: list) -> Optional[str]:
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
         compare: Any = None, gradient: Any = None, _grads: Optional[WireGrads] = None,
         _highlight: Optional[Tensor] = None, _missing: str = "None") -> Diagram:
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
    if style not in STYLES:
        raise ValueError(f"style= must be one of {STYLES}, got {style!r}")
    if not isinstance(max_elems, int) or max_elems < 0:
        raise ValueError(f"max_elems= must be an int >= 0, got {max_elems!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir= must be one of {RANKDIRS}, got {rankdir!r}")
    G = Graph(root, names=names, collapse=collapse)
    if _grads is None:
        seed = root_gradient(root, gradient, "draw")  # checked even when not drawn
        _grads = WireGrads.of(root, seed) if show_grads else None
    G.grads = _grads if show_grads else None
    opts = _Options(show_values=show_values, show_grads=show_grads and G.grads is not None,
                    show_formulas=show_formulas, max_elems=max_elems,
                    marks=Marks(compare, G), highlight=_highlight, missing=_missing)
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
    w.branches = []
    for unit, uses in dests:
        texts, pen = [], w.pen
        if len(dests) > 1 and o.show_grads and t.requires_grad:
            # which branch: a label may sit nearer another wire than its own
            head = f"{w.name} \u2192 {unit.label}" if w.name else f"\u2192 {unit.label}"
            bl = [head] + _grad_lines(G.branch_grad(t, uses), o.max_elems,
                                                         o.missing, short=o.show_values)
            if o.marks.branch(t, unit):
                bl = bl + ["\u2717 this branch's hand gradient differs"]
                pen = _pen(True, False, False)
            texts.append((bl, GRAD_COLOR))
        rule = _rule_for(unit, uses) if o.show_formulas else None
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
