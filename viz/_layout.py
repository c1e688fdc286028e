"""How wide a diagram would be, laid out left to right, before any renderer runs.

``draw(rankdir="auto")`` draws left to right, as the notes draw circuits, when the
diagram fits in about 1,400 px that way, and top to bottom otherwise (a long net).
The estimate follows dot's layout: every node on a rank (the longest path to it,
a labelled edge counting two), each rank as wide as its widest node, text measured
with Helvetica's widths.
"""
from __future__ import annotations

from typing import Iterable

#: Helvetica advance widths, in thousandths of the font size (other characters: 600)
_WIDTHS = {**dict.fromkeys("0123456789", 556), ".": 278, ",": 278, " ": 278, "-": 333,
           "(": 333, ")": 333, "[": 278, "]": 278, "e": 556, "a": 556, "n": 556, "m": 833,
           "s": 500, "t": 278, "d": 556, "i": 222, "x": 500, "l": 222, "f": 278, "r": 333,
           "o": 556, "h": 556, "p": 556, "c": 500, "u": 556, "_": 556, "y": 500, "+": 584,
           "*": 389, "@": 1015, "/": 278, "=": 584}
#: the widest diagram drawn left to right by default, in points (1,400 px at 96 dpi)
LR_BUDGET_PT = 1050.0
#: dot's layouts come out up to about a tenth wider than this estimate
MARGIN = 1.1
#: space dot leaves between two ranks, and around the drawing, in points
RANK_GAP_PT = 12.0
PAD_PT = 10.8


def text_width(lines: Iterable[str], size: float, bold: bool = False) -> float:
    """The width in points of the widest of ``lines`` at ``size`` points."""
    scale = size / 1000.0 * (1.08 if bold else 1.0)
    return max((sum(_WIDTHS.get(c, 600) for c in line) * scale for line in lines), default=0.0)


def lr_width(nodes: dict, edges: list) -> float:
    """The estimated width in points of a left-to-right layout of ``nodes``
    (key -> width in points) joined by ``edges`` (``(tail, head, label_width)``;
    label_width 0 for an unlabelled edge, whose label then needs no rank)."""
    succ: dict = {k: [] for k in nodes}
    indeg = dict.fromkeys(nodes, 0)
    for a, b, w in edges:
        succ[a].append((b, w))
        indeg[b] += 1
    # with any edge label, dot gives every edge two ranks (labels sit in between)
    labelled = any(w for _, _, w in edges)
    rank = dict.fromkeys(nodes, 0)
    order = []
    ready = [k for k, n in indeg.items() if n == 0]
    sources = set(ready)
    while ready:
        k = ready.pop()
        order.append(k)
        for b, _w in succ[k]:
            rank[b] = max(rank[b], rank[k] + (2 if labelled else 1))
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    for k in sources:  # as dot does, an input sits just before the node it enters
        if succ[k]:
            rank[k] = min(rank[b] - (2 if labelled else 1) for b, _ in succ[k])
    widest: dict = {}
    for k in order:
        r = rank[k]
        widest[r] = max(widest.get(r, 0.0), nodes[k])
        for b, w in succ[k]:
            if w:  # dot puts a long edge's label half way along it
                m = ((r + rank[b]) // 2) | 1 if labelled else r
                widest[m] = max(widest.get(m, 0.0), w)
    if not widest:
        return 2 * PAD_PT
    ranks = max(widest) - min(widest) + 1
    return sum(widest.values()) + (ranks - 1) * RANK_GAP_PT + 2 * PAD_PT
