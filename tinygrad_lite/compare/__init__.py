"""Compare gradients: the engine's against a hand derivation, central differences
and PyTorch, parameter by parameter and for the intermediates the hand side names,
with the first wrong wire and a diagnosis (docs/compare.md).

    from tinygrad_lite.compare import compare_gradients
    report = compare_gradients(loss_fn, params, hand=my_derivation)
    print(report); report.ok(); report.first_divergence; report.wrong_wires()

``python -m tinygrad_lite.compare --model cs231n|ng|column|scratch`` prints the
report for that seed's network.
"""
from .graph import named
from .report import (DEFAULT_TOLERANCES, KINDS, Comparison, Divergence, GradientReport, Row,
                     Worst, compare_gradients)
from .seeds import (BUGS, MODELS, Problem, broken_two_layer, column_loss_fn, cs231n_loss_fn,
                    ng_loss_fn, problem, scratch_loss_fn)

__all__ = ["compare_gradients", "GradientReport", "Row", "Comparison", "Worst", "Divergence", "named",
           "DEFAULT_TOLERANCES", "KINDS", "problem", "Problem", "MODELS", "BUGS",
           "broken_two_layer", "cs231n_loss_fn", "ng_loss_fn", "column_loss_fn",
           "scratch_loss_fn", "run"]


def run(model: str, data=None, seed: int = 0, *, l2_half: bool = False, bug=None,
        numeric: bool = True, torch="auto", h: float = 1e-5) -> GradientReport:
    """The report for one seed's network: ``compare_gradients`` on :func:`problem`."""
    p = problem(model, data, seed, l2_half=l2_half, bug=bug)
    return compare_gradients(p.loss_fn, p.params, p.hand, numeric=numeric, torch=torch, h=h,
                             title=p.title)
