"""``explain(root, wrt)``: the chain of local gradient rules from ``root`` back to
``wrt``, written as the lines of a hand derivation in the seeds' notation::

    dscores (5, 3) = (softmax(scores) - onehot(y)) / N      # cross_entropy
    dh1 (5, 10) = dscores (5, 3) @ W2.T (3, 10)              # matmul: d(a@b)/da = g @ b.T
    dz1 (5, 10) = dh1 * (z1 > 0)                             # relu: d relu(x)/dx = 1[x > 0]
    dW1 (4, 10) = X.T (4, 5) @ dz1 (5, 10) + 2 * reg * W1   # matmul ...; mul ...

Every line is filled in from the op table: each op's ``template`` (its rule as the
line a derivation writes) and ``rule`` (the comment), a composite's template from
``functional.TEMPLATES``. No op's math is written here.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

import numpy as np

from ._checks import is_number
from .autograd import backward_order, leading_to
from .functional import TEMPLATES
from .ops import sum_axes
from .tensor import Tensor, tensor_names

#: an unnamed tensor's gradient longer than this gets a line of its own
_INLINE = 48
#: a number literal: a gradient that is one number everywhere (``1`` at the root)
_NUMBER = re.compile(r"-?\d+(\.\d*)?(e-?\d+)?")
#: a template using ``{g}`` as an array (a method, an index, a shape, a first argument)
_AS_ARRAY = re.compile(r"\{g\}[.\[]|\{g:s\}|\(\{g\}, ")


class _Sym:
    """A value or gradient in a template: its text and shape. ``.T`` transposes it,
    format spec ``s`` appends the shape (``X.T (4, 5)``)."""

    def __init__(self, text: str, shape: tuple) -> None:
        self.text, self.shape = text, tuple(shape)

    @property
    def T(self) -> "_Sym":
        return _Sym(_atom(self.text) + ".T", self.shape[::-1])

    def __format__(self, spec: str) -> str:
        text = _atom(self.text)
        return f"{text} {self.shape}" if spec == "s" else text

    __str__ = lambda self: self.text  # noqa: E731


class _Grad(_Sym):
    """The output's gradient as one input sees it: ``{g:spread}`` broadcasts it back
    over the axes a reduction took away."""

    def __init__(self, g: _Sym, target: tuple, axis: Any) -> None:
        super().__init__(g.text, g.shape)
        self.target, self.axis = tuple(target), axis

    def __format__(self, spec: str) -> str:
        if spec != "spread":
            return super().__format__(spec)
        try:
            if np.broadcast_shapes(self.shape, self.target) == self.target:
                return _atom(self.text)  # broadcasts as it is
        except ValueError:
            pass
        return f"np.expand_dims({self.text}, {self.axis})"


def _atom(text: str) -> str:
    """``text`` in parentheses unless it is one operand already."""
    depth = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch == " ":
            return f"({text})"
    return text


def _strip(text: str) -> str:
    """Drop parentheses around the whole of ``text``."""
    while text.startswith("(") and text.endswith(")") and _atom(text[1:-1]) != text[1:-1]:
        inner, depth = text[1:-1], 0
        for ch in inner:
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth < 0:
                return text
        text = inner
    return text


def _tidy(text: str) -> str:
    """Multiplications by the root's gradient 1 removed."""
    text = re.sub(r"(?<![\w.)\]])1 \* ", "", text)
    text = re.sub(r" \* 1(?![\w.(\[])", "", text)
    return text


class _Names:
    """Names for tensors (``names=`` first, like ``viz.draw``: e.g. ``locals()``,
    names starting with ``_`` only if nothing else), then ``Tensor.name``; a scalar
    constant whose value is one named number (``reg``) prints as that name."""

    def __init__(self, names: Optional[Mapping[str, Any]]) -> None:
        self.of = tensor_names(names, "explain")
        self.calls: dict = {}  # id(output of a composite printed as one line) -> "softmax(x)"
        self.numbers: dict = {}
        self.arrays: dict = {}
        for private in (False, True):  # the constants' names, in tensor_names' order
            for k, v in (names or {}).items():
                if str(k).startswith("_") != private:
                    continue
                if isinstance(v, np.ndarray):
                    self.arrays.setdefault(id(v), str(k))
                elif is_number(v):
                    self.numbers.setdefault(float(v), []).append(str(k))

    def is_number(self, text: str) -> bool:
        """``text`` is one number (a literal, or a named number such as ``reg``)."""
        body = text[1:] if text.startswith("-") else text
        return bool(_NUMBER.fullmatch(text)) or any(body in ns for ns in self.numbers.values())

    def name(self, t: Tensor) -> Optional[str]:
        return self.of.get(id(t)) or t.name

    def value(self, t: Tensor, depth: int = 2) -> str:
        """How a derivation writes ``t``'s value: its name, a number, or its expression."""
        n = self.name(t) or self.calls.get(id(t))
        if n is not None:
            return n
        if t.op is None:
            if t.data.size == 1:
                v = float(t.data.reshape(-1)[0])
                named = self.numbers.get(v, [])
                return named[0] if len(named) == 1 else f"{v:g}"
            return self.arrays.get(id(t.data), f"array{t.shape}")
        if depth == 0:
            return f"{t.op.name}(...)"
        parts = [self.value(p, depth - 1) for p in t.parents]
        if len(parts) == 2 and t.op.symbol in ("+", "-", "*", "/", "@"):
            return f"({parts[0]} {t.op.symbol} {parts[1]})"
        return f"{t.op.name}({', '.join(parts)})"

    def arg(self, v: Any) -> str:
        if isinstance(v, tuple):
            return ", ".join(self.arg(x) for x in v)
        if isinstance(v, np.ndarray):
            if id(v) in self.arrays:
                return self.arrays[id(v)]
            if v.ndim == 1 and v.dtype.kind in "iu" and np.array_equal(v, np.arange(len(v))):
                return f"arange({len(v)})"
            return f"array{v.shape}"
        return str(v)


def explain(root: Tensor, wrt: Tensor, names: Optional[Mapping[str, Any]] = None) -> str:
    """The local rules from ``root`` back to ``wrt``, one line per wire with its
    shape, as a hand derivation writes them: ``dW1 (4, 10) = X.T (4, 5) @ dz1 (5, 10)
    + 2 * reg * W1``. Tensors are printed by their names (``names=``, a mapping name ->
    Tensor such as ``locals()``, else ``Tensor.name``); a named tensor gets a line of
    its own, an unnamed one is written into the line that uses it (or gets a line
    ``d(X @ W1) = ...`` when it is long). A composite with a template in
    ``functional.TEMPLATES`` (``cross_entropy``) is one line. Each line ends with the
    rules it applies, as a comment. Reads the graph only; touches no ``.grad``."""
    if not isinstance(root, Tensor) or not isinstance(wrt, Tensor):
        raise TypeError(f"explain: root and wrt must be Tensors, got {type(root).__name__} and "
                        f"{type(wrt).__name__}")
    if not root.requires_grad:
        raise ValueError(f"explain: root (shape {root.shape}) does not require grad: it has no graph")
    nm = _Names(names)
    order = backward_order(root)
    if not any(t is wrt for t in order):
        who = nm.name(wrt) or f"shape {wrt.shape}"
        raise ValueError(f"explain: wrt ({who}) is not in root's graph, or does not require grad: "
                         f"root does not depend on it through a differentiable path")
    keep = leading_to(order, [wrt])
    units = _collapsed(order, keep, root)
    for key, grp in units["output"].items():
        nm.calls[key] = f"{grp.name}({nm.value(units['input'][key])})"
    pending: dict = {}  # id(tensor) -> [(term, rule)]
    lines: list = []
    auto = 0
    for node in order:
        if id(node) not in keep or id(node) in units["inner"]:
            continue
        if node is root:
            label = nm.name(root)
            g = _Sym("1" if root.size == 1 else f"d{label or 'out'}", root.shape)
        else:
            terms = sorted(pending.pop(id(node), []))  # in the order the forward pass used it
            expr = _sum(t for _, t, _ in terms)
            label = nm.name(node)
            if label is None and node is not wrt and len(expr) <= _INLINE:
                g = _Sym(expr, () if nm.is_number(expr) else node.shape)
            else:
                if label is None:
                    value = nm.value(node, 1)
                    auto += 1
                    label = "wrt" if node is wrt else f"({value})" if len(value) <= 20 else f"_{auto}"
                lhs = f"d{label}"
                rules = "; ".join(dict.fromkeys(r for _, _, r in terms if r))
                lines.append((f"{lhs} {node.shape} = {expr}", rules))
                g = _Sym(lhs, node.shape)
        if node.op is None:
            continue
        group = units["output"].get(id(node))
        if group is not None:
            x = units["input"][id(node)]
            text = TEMPLATES[group.name].format(g=g, x=_Sym(nm.value(x), x.shape),
                                                out=_Sym(nm.value(node), node.shape))
            pending.setdefault(id(x), []).append((node.stamp, _strip(_tidy(text)), group.name))
            continue
        for pos, p in enumerate(node.parents):
            if id(p) in keep and p.requires_grad:
                pending.setdefault(id(p), []).append((node.stamp, *_term(node, pos, g, nm)))
    width = max(len(text) for text, _ in lines) if lines else 0
    return "\n".join(f"{text.ljust(width)}  # {rules}" if rules else text for text, rules in lines)


def _term(node: Tensor, pos: int, g: _Sym, nm: _Names) -> tuple[str, str]:
    """What flows from ``node`` back to its input ``pos``, and the rule it applies."""
    op, x = node.op, node.parents[pos]
    rule = op.rule.strip()
    parts = [r.strip() for r in rule.split(", ")]
    if len(parts) == len(node.parents) > 1:
        rule = parts[pos]
    rule = f"{op.name}: {rule}" if rule else op.name
    templates = op.templates(**node.args)
    if not templates:  # a user-defined op without a template: say what is applied
        return f"{op.name}_backward({g}, input {pos})", rule
    template = templates[pos] if len(templates) > 1 else templates[0]
    if not g.shape and node.shape and (_AS_ARRAY.search(template) or
                                       template.startswith("sum_to(") and node.shape != x.shape):
        # a number standing for a whole array, used as an array: write the array
        g = _Sym(f"np.ones({node.shape})" if g.text == "1" else f"np.full({node.shape}, {g.text})",
                 node.shape)
    fields = {k: (nm.arg(v) if not isinstance(v, str) else v) for k, v in node.args.items()}
    values = [_Sym(nm.value(p), p.shape) for p in node.parents]
    fields.update(g=_Grad(g, x.shape, node.args.get("axis")), out=_Sym(nm.value(node), node.shape),
                  x=values[0], a=values[0], b=values[-1], i=pos,
                  n=x.size // max(node.size, 1))
    text = template.format(**fields)
    if text.startswith("sum_to(") and text.endswith(")"):
        text = _summed_back(text[len("sum_to("):-1], node.shape, x.shape)
    return _strip(_tidy(text)), rule


def _summed_back(text: str, shape: tuple, target: tuple) -> str:
    """``text`` (of the broadcast ``shape``) summed back to an input of ``target``'s shape."""
    axes = sum_axes(tuple(shape), tuple(target))
    if not axes:
        return text
    extra = len(shape) - len(target)
    ax = axes[0] if len(axes) == 1 else axes
    if all(a < extra for a in axes):
        return f"{_atom(text)}.sum(axis={ax})"
    out = f"{_atom(text)}.sum(axis={ax}, keepdims=True)"
    return out if not extra else f"{out}.reshape({target})"


def _sum(terms: Any) -> str:
    """Terms added up, equal ones counted: ``reg * W1 + reg * W1`` is ``2 * reg * W1``."""
    counts: dict = {}
    for t in terms:
        counts[t] = counts.get(t, 0) + 1
    parts = [t if k == 1 else f"{k} * {t if _is_product(t) else _atom(t)}" for t, k in counts.items()]
    text = " + ".join(parts) or "0"
    return text.replace("+ -", "- ")


def _is_product(text: str) -> bool:
    """Only ``*`` and ``/`` at the top level: ``2 * reg * W1`` needs no parentheses."""
    depth, words, word = 0, [], ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch == " ":
            words.append(word)
            word = ""
        else:
            word += ch
    return all(w in ("*", "/") for w in words[1::2])


def _collapsed(order: list, keep: set, root: Tensor) -> dict:
    """The composite calls printed as one line: those with a template, one output and
    one input on the path. ``inner``: ids of their other nodes; ``output``: id of the
    output node -> its Group; ``input``: id of the output node -> the input tensor."""
    members: dict = {}
    for node in order:
        for grp in node.groups:
            if getattr(grp, "kind", "function") != "module":
                members.setdefault(id(grp), (grp, []))[1].append(node)
                break  # the outermost function call
    consumers: dict = {}
    for node in order:
        for p in node.parents:
            consumers.setdefault(id(p), []).append(node)
    out = {"inner": set(), "output": {}, "input": {}}
    for grp, nodes in members.values():
        if grp.name not in TEMPLATES or not grp.exact:
            continue
        ids = {id(n) for n in nodes}
        outputs = [n for n in nodes if n is root or any(id(c) not in ids for c in consumers.get(id(n), ()))]
        inputs = {id(p): p for n in nodes for p in n.parents
                  if id(p) not in ids and p.requires_grad and id(p) in keep}
        if len(outputs) != 1 or len(inputs) != 1:
            continue
        (x,) = inputs.values()
        out["inner"].update(i for i in ids if i != id(outputs[0]))
        out["output"][id(outputs[0])] = grp
        out["input"][id(outputs[0])] = x
    return out
