"""``backward_source``: a recorded graph's backward pass as plain NumPy source.

The graph's forward pass and its backward walk (``autograd.propagate``) are run
once more on traced values (``trace.TraceNamespace``): each op's own ``forward``
and ``backward`` write the program, which is then printed in the user's names, one
commented block per local rule. No op's math is written here.
"""
from __future__ import annotations

import keyword
import math
import operator
import re
from typing import Any, Mapping, Optional

import numpy as np

from .autograd import propagate
from .ops import _erf
from .tensor import Tensor, tensor_names
from .trace import Ref, Trace, TraceNamespace, Traced, refs_in

__all__ = ["backward_source", "BackwardSource"]

#: constants with at most this many elements are written into the source
EMBED_LIMIT = 1024


class BackwardSource(str):
    """The source text of ``def backward(**arrays) -> dict``. Constants too big to
    write out (more than ``EMBED_LIMIT`` elements) are keyword defaults read from
    ``CONSTANTS``: ``constants`` holds them, and ``function()`` execs the source
    with them (``exec(src, {"np": np, "CONSTANTS": src.constants})`` does the same)."""

    constants: dict
    parameters: tuple

    def function(self) -> Any:
        env = {"np": np, "math": math, "CONSTANTS": self.constants}
        exec(compile(str(self), "<backward_source>", "exec"), env)
        return env["backward"]


def _graph(root: Tensor) -> list:
    """Every tensor the root depends on, oldest first (inputs before their users)."""
    seen = {id(root)}
    nodes = [root]
    for node in nodes:
        for p in node.parents:
            if id(p) not in seen:
                seen.add(id(p))
                nodes.append(p)
    return sorted(nodes, key=lambda t: t.stamp)


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return ident + "_" if keyword.iskeyword(ident) or ident in ("np", "CONSTANTS") else ident


def backward_source(root: Tensor, names: Optional[Mapping[str, Any]] = None,
                    gradient: Any = None) -> BackwardSource:
    """The source of a plain-NumPy ``backward(**arrays) -> dict`` that recomputes
    ``root``'s forward pass and returns the gradient of every leaf that requires
    grad, keyed by its name: the answer key to compare a hand-written backward with.

    Its parameters are the graph's named leaves (``tensor.name``, or ``names=`` as
    in ``viz.draw``, e.g. ``names=locals()``); a leaf that requires grad must have a
    name. Unnamed constants (Python numbers, label arrays, arrays a composite makes)
    are written into the source. Each backward step is commented with its op and
    its rule text. ``gradient`` is the root's gradient (default: ones, for a scalar
    loss). Raises ``ValueError`` for an unnamed leaf that requires grad or two leaves
    of one name, ``TypeError`` for a user-defined op written without ``xp``."""
    if not isinstance(root, Tensor):
        raise TypeError(f"backward_source: root must be a Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise RuntimeError("backward_source: the root does not require grad (no graph to "
                           "differentiate)")
    labels = tensor_names(names, "backward_source")
    nodes = _graph(root)
    trace = Trace()
    values: dict = {}
    emitter = _Emitter(trace)
    params: list[Tensor] = []
    grads_of: list[Tensor] = []
    taken: dict = {}
    xp = TraceNamespace(lambda t: values[id(t)])
    for t in nodes:
        label = labels.get(id(t), t.name)
        if t.op is None:
            if label is None:
                if t.requires_grad:
                    raise ValueError(
                        f"backward_source: a leaf of shape {t.shape} requires grad but has no "
                        f"name; set t.name = '...' or pass names= (e.g. names=locals())")
                values[id(t)] = t.data
                continue
            if label in taken:
                raise ValueError(f"backward_source: two leaves are named {label!r}; give them "
                                 f"distinct names")
            taken[label] = t
            v = trace.external(t.data, "input", source=label)
            values[id(t)] = v
            emitter.name(v.index, _identifier(label))
            emitter.node_names[id(t)] = emitter.names[v.index]
            (grads_of if t.requires_grad else params).append(t)
            continue
        trace.tag = (t, "forward")
        out = t.op.forward(xp, *[values[id(p)] for p in t.parents], **t.args)
        values[id(t)] = out
        emitter.node_value(out.index, t, label)
    params = grads_of + params

    # the backward walk, on the traced values
    trace.tag = (root, "seed")
    rv = values[id(root)]
    if gradient is None:
        if root.size != 1:
            raise RuntimeError(f"backward_source: the root has shape {root.shape}; pass "
                               f"gradient= (an array of that shape)")
        seed = np.ones_like(rv)
    else:
        seed = np.array(gradient.data if isinstance(gradient, Tensor) else gradient,
                        dtype=root.dtype)
        if seed.shape != root.shape:
            raise ValueError(f"backward_source: gradient has shape {seed.shape}, the root "
                             f"has shape {root.shape}")
        seed = np.zeros_like(rv) + seed  # a traced value, so it gets a name
    emitter.grad_total(seed.index, root)
    mark = len(trace.instrs)
    totals: dict = {}
    contributions: set = set()
    for node, g, grads in propagate(root, seed, xp):
        emitter.tag_fan_in(mark, contributions, node)
        totals[id(node)] = g
        if type(g) is Traced:
            emitter.grad_total(g.index, node)
            if id(node) in labels or node.name is not None:
                emitter.user_gradient(g.index, node, len(trace.instrs))
        mark = len(trace.instrs)
        trace.tag = emitter.tag_of(node)
        for p, pg in zip(node.parents, grads):
            if type(pg) is Traced:
                contributions.add(pg.index)
                emitter.contribution(pg.index, p, node)
    emitter.tag_fan_in(mark, contributions, None)
    results = []
    for t in grads_of:
        g = totals.get(id(t))
        if g is None:
            g = np.zeros_like(values[id(t)])
        results.append((labels.get(id(t), t.name), g))
    return emitter.render(root, params, results, labels)


# ----------------------------------------------------------------- printing

_BINARY = {np.add: ("+", 11), np.subtract: ("-", 11), np.multiply: ("*", 12),
           np.true_divide: ("/", 12), np.floor_divide: ("//", 12), np.remainder: ("%", 12),
           np.matmul: ("@", 12), np.power: ("**", 14), np.less: ("<", 6),
           np.less_equal: ("<=", 6), np.greater: (">", 6), np.greater_equal: (">=", 6),
           np.equal: ("==", 6), np.not_equal: ("!=", 6), np.bitwise_and: ("&", 9),
           np.bitwise_or: ("|", 7), np.bitwise_xor: ("^", 8)}
_UNARY = {np.negative: "-", np.positive: "+", np.invert: "~"}
_REDUCE_NAMES = {"add": "sum", "maximum": "max", "minimum": "min", "multiply": "prod",
                 "logical_or": "any", "logical_and": "all"}
_ATOM = 16
_DEFAULTS = {"axis": None, "keepdims": False}


class _Emitter:
    """Names the values of a trace and prints its instructions as statements."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.names: dict = {}        # value index -> identifier
        self.fixed: set = set()      # values that always get a statement of their own
        self.taken: set = set()
        self.counts: dict = {}
        self.fan_in: dict = {}       # instruction index -> the node whose gradient it sums
        self.node_names: dict = {}   # id(node) -> identifier
        self.large: dict = {}        # name -> array, constants too big to write out
        self.tags: dict = {}         # id(node) -> its backward tag (one tuple per node)
        self.aliases: list = []      # (instruction position, name, value index)
        self.user_values: set = set()  # values printed under a name the user chose
        self.helpers: set = set()    # functions NumPy lacks, defined before backward

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def name(self, index: int, ident: str) -> None:
        self.names[index] = self._unique(ident)
        self.fixed.add(index)
        self.user_values.add(index)

    def node_value(self, index: int, node: Tensor, label: Optional[str]) -> None:
        if label is not None:
            ident = _identifier(label)
            self.name(index, ident)
        else:
            assert node.op is not None  # a leaf's value is an input, named by its label
            k = self.counts[node.op.name] = self.counts.get(node.op.name, 0) + 1
            ident = _identifier(f"{node.op.name}{k}")
            self.taken.add(ident)
            self.names.setdefault(index, ident)
        self.node_names[id(node)] = self.names.get(index, ident)

    def _node_ident(self, node: Tensor) -> str:
        return self.node_names.get(id(node), "x")

    def grad_total(self, index: int, node: Tensor) -> None:
        if index in self.fixed:
            return
        self.names[index] = self._unique("d" + self._node_ident(node))
        self.fixed.add(index)

    def contribution(self, index: int, parent: Tensor, consumer: Tensor) -> None:
        if index not in self.names:
            self.names[index] = self._unique(f"d{self._node_ident(parent)}_from_"
                                             f"{self._node_ident(consumer)}")

    def tag_of(self, node: Optional[Tensor]) -> tuple:
        tag = self.tags.get(id(node))
        if tag is None:
            tag = self.tags[id(node)] = (node, "backward")
        return tag

    def user_gradient(self, index: int, node: Tensor, position: int) -> None:
        """The gradient of a tensor the user named is printed as ``d<name>``. When the
        value already has a name (an add or a subtraction of a constant passes its
        gradient on), the user's name replaces a generated one; two user names get
        a line ``d<name> = d<other>``."""
        want = "d" + self._node_ident(node)
        name = self.names.get(index)
        if name == want:
            return
        if index in self.user_values:
            self.aliases.append((position, self._unique(want), index))
            return
        self.taken.discard(name)
        self.names[index] = self._unique(want)
        self.fixed.add(index)
        self.user_values.add(index)

    def tag_fan_in(self, start: int, contributions: set, node: Optional[Tensor]) -> None:
        """Tag the instructions recorded since ``start``: those adding two gradient
        contributions are the engine's fan-in sums, the others ``node``'s backward."""
        tag = self.tag_of(node)
        for i in range(start, len(self.trace.instrs)):
            ins = self.trace.instrs[i]
            if ins.fn is np.add and ins.kind == "compute" and all(
                    type(a) is Ref and a.index in contributions for a in ins.args):
                contributions.add(ins.out)
                self.fan_in[i] = ins  # keeps the tag of the op whose gradient arrived
            elif node is not None:
                ins.tag = tag

    # ------------------------------------------------------------ rendering
    def render(self, root: Tensor, params: list, results: list, labels: dict) -> BackwardSource:
        trace = self.trace
        live = self._live(results)
        uses: dict = {}
        for i in live:
            for r in trace.instrs[i].reads():
                uses[r] = uses.get(r, 0) + 1
        for _, g in results:
            if type(g) is Traced:
                uses[g.index] = uses.get(g.index, 0) + 2  # returned: never inlined
        written = {w for i in live for w in trace.instrs[i].writes}
        consumer: dict = {}
        for i in live:
            for r in trace.instrs[i].reads():
                consumer.setdefault(r, i)
        roots: dict = {}            # inlined value -> the roots its expression reads
        exprs: dict = {}            # value index -> (text, precedence), for inlined values
        lines: list = []
        block = pending_header = None

        def emit(line: str) -> None:
            nonlocal pending_header
            if pending_header:
                lines.append(pending_header)
                pending_header = None
            lines.append(line)

        aliases = sorted(self.aliases, key=lambda a: a[0])
        for i in live:
            while aliases and aliases[0][0] <= i:
                _, alias, index = aliases.pop(0)
                lines.append(f"    {alias} = {exprs.get(index, (self.names.get(index), 0))[0]}")
            ins = trace.instrs[i]
            tag = ins.tag
            if tag is not block and tag is not None:
                block = tag
                pending_header = self._header(tag, labels)
            if ins.kind == "write":
                emit("    " + self._statement(ins, exprs))
                continue
            text, prec = self._expr(ins, exprs)
            out = ins.out
            reads = set()
            for r in ins.reads():
                reads |= roots.get(r, {trace.values[r].root})
            user = trace.instrs[consumer[out]] if out in consumer else None
            if (out not in self.fixed and uses.get(out, 0) <= 1 and out not in written
                    and user is not None and len(text) <= 48 and i not in self.fan_in
                    and (user.tag is ins.tag or ins.tag[1] == user.tag[1] == "forward")
                    and not self._written_before_use(i, consumer[out], reads, live)):
                exprs[out] = (text, prec)
                roots[out] = reads
                continue
            name = self._value_name(out, ins)
            if i in self.fan_in:
                emit(f"    {name} = {text}  # used more than once: its gradients add up")
            else:
                emit(f"    {name} = {text}")
            exprs[out] = (name, _ATOM)
        for _, alias, index in aliases:
            lines.append(f"    {alias} = {exprs.get(index, (self.names.get(index), 0))[0]}")
        out_lines = []
        for label, g in results:
            ident = _identifier(label)
            if type(g) is Traced:
                text = exprs.get(g.index, (self.names.get(g.index, "?"), _ATOM))[0]
                if text != "d" + ident:
                    lines.append(f"    d{ident} = {text}")
            else:
                lines.append(f"    d{ident} = {self._literal(g, None)}")
            out_lines.append(f"        {label!r}: d{ident},")
        # the signature: the named leaves, then big constants as keyword defaults
        signature = [_identifier(labels.get(id(t), t.name)) for t in params]
        signature += [f"{k}=CONSTANTS[{k!r}]" for k in self.large]
        wrt = ", ".join(labels.get(id(t), t.name) for t in params if t.requires_grad)
        root_name = self.node_names.get(id(root), "the root")
        head = (["import math"] if self.helpers else []) + ["import numpy as np", "", ""]
        for helper in sorted(self.helpers):
            head += helper.splitlines() + ["", ""]
        head += [f"def backward({', '.join(signature)}):",
                 f'    """Recompute the forward pass, then d{root_name}/d({wrt}): one block per '
                 f'local rule,',
                 '    each commented with its op and rule (written by tinygrad_lite.backward_source)."""',
                 "    # ---- forward"]
        body = "\n".join(head + lines + ["    return {"] + out_lines + ["    }"]) + "\n"
        src = BackwardSource(body)
        src.constants = dict(self.large)
        src.parameters = tuple(signature)
        return src

    def _live(self, results: list) -> list:
        """Instruction indices to print: every forward step (the pass is recomputed),
        and the backward steps the returned gradients need."""
        trace = self.trace
        needed = {g.index for _, g in results if type(g) is Traced}
        keep = set()
        for i in range(len(trace.instrs) - 1, -1, -1):
            ins = trace.instrs[i]
            forward = ins.tag is not None and ins.tag[1] == "forward"
            if forward or ins.out in needed or any(w in needed for w in ins.writes):
                keep.add(i)
                needed.update(ins.reads())
                needed.update(ins.writes)
        return sorted(keep)

    def _written_before_use(self, i: int, j: int, reads: set, live: list) -> bool:
        """True when a write between instruction ``i`` and its consumer ``j`` changes
        memory ``i``'s expression reads: it cannot be moved into ``j`` then."""
        values = self.trace.values
        return any(values[w].root in reads for k in live if i < k < j
                   for w in self.trace.instrs[k].writes)

    def _value_name(self, index: int, ins: Any) -> str:
        name = self.names.get(index)
        if name is None:
            node = ins.tag[0] if ins.tag else None
            base = self._node_ident(node) if isinstance(node, Tensor) else "t"
            name = self.names[index] = self._unique(f"{base}_t")
        return name

    def _header(self, tag: Any, labels: dict) -> Optional[str]:
        node, phase = tag
        if phase == "forward":
            return None
        if phase == "seed":
            return f"    # ---- backward, from d{self._node_ident(node)} = 1"
        op = node.op
        inputs = ", ".join(self._node_ident(p) if p.op is not None or id(p) in labels or p.name
                           else "const" for p in node.parents)
        return f"    # {op.name}: {self._node_ident(node)} = {op.name}({inputs}); {op.rule}"

    # ------------------------------------------------------------ expressions
    def _operand(self, a: Any, exprs: dict, floats: set) -> tuple:
        if type(a) is Ref:
            return exprs.get(a.index, (self.names.get(a.index, f"v{a.index}"), _ATOM))
        return self._literal_prec(a, floats)

    def _expr(self, ins: Any, exprs: dict) -> tuple:
        fn, args, kwargs = ins.fn, ins.args, ins.kwargs
        floats = {self.trace.values[r].array.dtype for r in refs_in(args)}
        operand = lambda a: self._operand(a, exprs, floats)  # noqa: E731
        if fn in _BINARY and len(args) == 2 and not kwargs:
            sym, prec = _BINARY[fn]
            (lt, lp), (rt, rp) = operand(args[0]), operand(args[1])
            right_assoc = sym == "**"
            lt = f"({lt})" if (lp <= prec if right_assoc else lp < prec) else lt
            rt = f"({rt})" if (rp < prec if right_assoc else rp <= prec) else rt
            return f"{lt} {sym} {rt}", prec
        if fn in _UNARY and len(args) == 1 and not kwargs:
            t, p = operand(args[0])
            return f"{_UNARY[fn]}{t if p >= 13 else f'({t})'}", 13
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, np.ufunc) and fn.__name__ == "reduce" and owner.__name__ in _REDUCE_NAMES:
            return self._method(_REDUCE_NAMES[owner.__name__], args, kwargs, operand)
        if fn is operator.getitem:
            t, p = operand(args[0])
            return f"{t if p >= _ATOM else f'({t})'}[{self._index(args[1], operand)}]", _ATOM
        if fn is np.transpose and len(args) == 1 and not kwargs and ins.out is not None \
                and self.trace.values[ins.out].array.ndim == 2:
            t, p = operand(args[0])
            return f"{t if p >= _ATOM else f'({t})'}.T", _ATOM
        if fn is np.zeros_like and "shape" in kwargs and len(args) == 1:
            dtype = self.trace.values[ins.out].array.dtype
            extra = "" if dtype == np.float64 else f", dtype=np.{dtype.name}"
            return f"np.zeros({tuple(kwargs['shape'])!r}{extra})", _ATOM
        if isinstance(fn, type(np.ndarray.sum)) and getattr(fn, "__objclass__", None) is np.ndarray:
            return self._method(fn.__name__, args, kwargs, operand)
        return self._call(fn, args, kwargs, operand), _ATOM

    def _method(self, name: str, args: tuple, kwargs: dict, operand: Any) -> tuple:
        t, p = operand(args[0])
        parts = [operand(a)[0] for a in args[1:]]
        parts += [f"{k}={self._plain(v, operand)}" for k, v in kwargs.items()
                  if not (k in _DEFAULTS and v is _DEFAULTS[k]) and v is not _NO_VALUE]
        return f"{t if p >= _ATOM else f'({t})'}.{name}({', '.join(parts)})", _ATOM

    def _call(self, fn: Any, args: tuple, kwargs: dict, operand: Any) -> str:
        name = getattr(fn, "__name__", "f")
        owner = getattr(fn, "__self__", None)
        if fn is _erf:
            self.helpers.add(_ERF_HELPER)
            qual = "erf"
        elif isinstance(owner, np.ufunc):
            qual = f"np.{owner.__name__}.{name}"
        elif isinstance(fn, np.ufunc) or getattr(np, name, None) is fn:
            qual = f"np.{name}"
        else:
            qual = f"{getattr(fn, '__module__', '')}.{name}".lstrip(".")
        parts = [self._plain(a, operand) for a in args]
        parts += [f"{k}={self._plain(v, operand)}" for k, v in kwargs.items()]
        return f"{qual}({', '.join(parts)})"

    def _plain(self, v: Any, operand: Any) -> str:
        if type(v) in (list, tuple) and any(type(x) is Ref for x in v):
            inner = ", ".join(self._plain(x, operand) for x in v)
            return f"[{inner}]" if type(v) is list else f"({inner}{',' if len(v) == 1 else ''})"
        return operand(v)[0]

    def _index(self, index: Any, operand: Any) -> str:
        parts = index if type(index) is tuple else (index,)
        out = []
        for p in parts:
            if type(p) is slice:
                out.append(":".join("" if x is None else operand(x)[0]
                                    for x in (p.start, p.stop, p.step)).rstrip(":") or ":")
                if p.step is None and out[-1] != ":" and ":" not in out[-1]:
                    out[-1] += ":"
            elif p is Ellipsis:
                out.append("...")
            elif p is None:
                out.append("None")
            else:
                out.append(operand(p)[0])
        text = ", ".join(out)
        return text + "," if type(index) is tuple and len(index) == 1 else (text or "()")

    def _statement(self, ins: Any, exprs: dict) -> str:
        floats = {self.trace.values[r].array.dtype for r in refs_in(ins.args)}
        operand = lambda a: self._operand(a, exprs, floats)  # noqa: E731
        if ins.fn is operator.setitem:
            target, index, value = ins.args
            return f"{operand(target)[0]}[{self._index(index, operand)}] = {operand(value)[0]}"
        return self._call(ins.fn, ins.args, ins.kwargs, operand)

    # ------------------------------------------------------------ constants
    def _literal_prec(self, v: Any, floats: set) -> tuple:
        text = self._literal(v, floats)
        if text.startswith("-"):
            return text, 13
        return text, _ATOM

    def _literal(self, v: Any, floats: Optional[set]) -> str:
        if isinstance(v, np.ndarray):
            if v.ndim == 0:
                return self._scalar(v[()], floats)
            if v.size > EMBED_LIMIT:
                for k, arr in self.large.items():
                    if arr is v:
                        return k
                k = self._unique(f"c{len(self.large)}")
                self.large[k] = v
                return k
            default = {"f": np.float64, "i": np.arange(1).dtype.type, "b": np.bool_}.get(v.dtype.kind)
            extra = "" if default is not None and v.dtype == default else f", dtype=np.{v.dtype.name}"
            if v.size == 0:  # a nested list cannot carry the shape of an empty array
                return f"np.empty({v.shape}{extra})"
            if v.ndim == 1 and v.dtype.kind in "iu" and np.array_equal(v, np.arange(len(v))) \
                    and v.dtype == np.arange(1).dtype:
                return f"np.arange({len(v)})"
            body = repr(_pylist(v))
            return f"np.array({body}{extra})"
        if isinstance(v, np.generic):
            return self._scalar(v, floats)
        if isinstance(v, np.dtype):
            return f"np.{v.name}"
        if isinstance(v, type) and issubclass(v, np.generic):
            return f"np.{np.dtype(v).name}"
        if isinstance(v, float):
            return _float(v)
        if type(v) in (tuple, list):  # an index of arrays (np.add.at's)
            inner = ", ".join(self._literal(x, floats) for x in v)
            if type(v) is list:
                return f"[{inner}]"
            return f"({inner}{',' if len(v) == 1 else ''})"
        return repr(v)

    def _scalar(self, s: Any, floats: Optional[set]) -> str:
        dtype = np.asarray(s).dtype
        value = s.item()
        plain = _float(value) if dtype.kind == "f" else repr(value)
        if floats is not None and floats <= {dtype}:
            return plain  # a Python number of this dtype gives the same result
        if dtype == np.float64 and not floats:
            return plain
        return f"np.{dtype.name}({plain})"


_NO_VALUE = getattr(np, "_NoValue", object())

#: NumPy has no erf: the engine's, the C library's erf element by element
_ERF_HELPER = '''def erf(x):
    """The error function, element by element (math.erf), in x's float dtype."""
    x = np.asarray(x)
    out = np.vectorize(math.erf, otypes=[np.float64])(x)
    return out.astype(x.dtype) if x.dtype.kind == "f" else out'''


def _float(x: float) -> str:
    if x != x or x in (float("inf"), float("-inf")):
        return {"nan": "np.nan", "inf": "np.inf", "-inf": "-np.inf"}[repr(x)]
    return repr(x)


def _pylist(v: np.ndarray) -> Any:
    if v.dtype.kind == "f":
        return [_pylist(r) for r in v] if v.ndim > 1 else [_Exact(float(x)) for x in v]
    return v.tolist()


class _Exact(float):
    """A float whose repr is exact for any dtype (float32 values as float64 repr)."""

    def __repr__(self) -> str:
        return _float(float(self))
