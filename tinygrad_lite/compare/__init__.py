"""Compare gradients: the engine's against a hand derivation, central differences
and PyTorch, parameter by parameter and for the intermediates the hand side names,
with the first wrong wire and a diagnosis (docs/compare.md).

    from tinygrad_lite.compare import compare_gradients
    report = compare_gradients(loss_fn, params, hand=my_derivation)
    print(report); report.ok(); report.first_divergence; report.wrong_wires()

``python -m tinygrad_lite.compare --model cs231n|ng|column|scratch`` prints the
report for that seed's network (the seeds' problems are ``tinygrad_lite.problems``).
"""
from .gradients import compare_gradients
from .graph import named
from .report import DEFAULT_TOLERANCES, KINDS, Comparison, Divergence, GradientReport, Row, Worst

__all__ = ["compare_gradients", "GradientReport", "Row", "Comparison", "Worst", "Divergence", "named",
           "DEFAULT_TOLERANCES", "KINDS"]
