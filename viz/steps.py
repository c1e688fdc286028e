"""The backward pass one node at a time: ``backprop_steps`` and ``write_steps_html``."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

import tinygrad_lite as tl
from tinygrad_lite import Tensor

from .draw import draw


def _seed(root: Tensor, gradient: Any) -> np.ndarray:
    if gradient is not None:
        g = np.asarray(gradient, dtype=root.data.dtype)
        if g.shape != root.shape:
            raise ValueError(f"gradient of shape {g.shape} for a root of shape {root.shape}")
        return g
    if root.data.size != 1:
        raise ValueError(f"backprop_steps: the root has shape {root.shape}; pass gradient= "
                         f"(as for backward on a non-scalar)")
    return np.ones_like(root.data)


def backprop_steps(root: Tensor, gradient: Any = None, **draw_kwargs: Any) -> list:
    """One ``Diagram`` per node of ``tl.backward_order(root)``: step k highlights the
    k-th node the engine visits, with the gradients known after it (computed here with
    the pure ``tl.input_grads``; no ``.grad`` is touched). Unknown gradients show ``?``.
    ``collapse`` defaults to False here so each step's node is visible."""
    if not isinstance(root, Tensor):
        raise TypeError(f"backprop_steps: root must be a Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise ValueError("backprop_steps: the root does not require grad: no backward pass")
    draw_kwargs.setdefault("collapse", False)
    order = tl.backward_order(root)
    pending = {id(root): _seed(root, gradient)}
    known: dict = {}
    steps = []
    for node in order:
        g = pending.pop(id(node), None)
        if g is None:
            continue
        known[id(node)] = g
        snapshot = dict(known)
        steps.append(draw(root, _grads=lambda t, s=snapshot: s.get(id(t)), _highlight=node,
                          _missing="?", **draw_kwargs))
        if node.op is not None:
            for p, pg in zip(node.parents, tl.input_grads(node, g)):
                if pg is not None:
                    prev = pending.get(id(p))
                    pending[id(p)] = pg if prev is None else prev + pg
    return steps


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1em; }}
.step {{ display: none; }} .step.on {{ display: block; }}
.step svg {{ max-width: 100%; height: auto; }}
button {{ font-size: 1em; margin-right: .5em; }}
#where {{ margin-left: 1em; }}
</style></head><body>
<h1>{title}</h1>
<p><button id="prev" type="button">&larr; previous</button><button id="next" type="button">next &rarr;</button>
<span id="where"></span> <span style="color:#666">(arrow keys work too)</span></p>
{steps}
<script>
(function () {{
  var steps = document.querySelectorAll('.step'), captions = {captions}, k = 0;
  function show(i) {{
    k = Math.max(0, Math.min(steps.length - 1, i));
    for (var j = 0; j < steps.length; j++) steps[j].className = 'step' + (j === k ? ' on' : '');
    document.getElementById('where').textContent = 'step ' + (k + 1) + ' of ' + steps.length + ': ' + captions[k];
  }}
  document.getElementById('prev').onclick = function () {{ show(k - 1); }};
  document.getElementById('next').onclick = function () {{ show(k + 1); }};
  document.addEventListener('keydown', function (e) {{
    if (e.key === 'ArrowLeft') show(k - 1);
    if (e.key === 'ArrowRight') show(k + 1);
  }});
  show(0);
}})();
</script></body></html>
"""


def _strip_prolog(svg: str) -> str:
    i = svg.find("<svg")
    return svg[i:] if i >= 0 else svg


def write_steps_html(root: Tensor, path: Union[str, os.PathLike], title: Optional[str] = None,
                     gradient: Any = None, **draw_kwargs: Any) -> Path:
    """A self-contained HTML page (SVGs inline, no network) stepping through
    ``backprop_steps(root)`` with previous/next buttons and the arrow keys."""
    from .render import svg_from_source
    steps = backprop_steps(root, gradient=gradient, **draw_kwargs)
    order = [n for n in tl.backward_order(root)]
    names = draw_kwargs.get("names")
    from ._graph import name_map
    nm = name_map(names)
    captions = []
    for n in order[:len(steps)]:
        nm_ = nm.get(id(n)) or n.name
        what = n.op.name if n.op is not None else "leaf"
        captions.append(f"gradient of {nm_ + ' ' if nm_ else ''}({what}, shape {tuple(n.shape)})")
    blocks = "\n".join(f'<div class="step">{_strip_prolog(svg_from_source(d.source))}</div>'
                       for d in steps)
    title = title or "Backpropagation, one node at a time"
    page = _PAGE.format(title=html.escape(title), steps=blocks,
                        captions=json.dumps(captions).replace("</", "<\\/"))
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
