"""Shared test setup: one deterministic hypothesis profile, the op table restored after
every test, and the per-op summaries
(hypothesis cases run, worst error vs central differences and vs PyTorch) that
tests/test_ops.py (first derivatives) and tests/test_higher_order.py (second
derivatives) record, printed at the end of every run."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import tinygrad_lite as tl
from tinygrad_lite.ops import OPS

# Seeded and derandomized: every run draws the same cases, nothing is stored on disk.
settings.register_profile(
    "tinygrad_lite",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("TL_HYPOTHESIS_EXAMPLES", "40")),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tinygrad_lite"))

#: op name -> {"cases", "num_rel", "num_abs", "torch_rel", "torch_abs"} (see test_ops.record)
OP_STATS: dict = {}
#: the same for second derivatives (tests/test_higher_order.py)
SECOND_ORDER_STATS: dict = {}


@pytest.fixture(autouse=True)
def _restore_ops():
    """The ops a test defines (``tl.Function`` subclasses register in ``OPS`` by name)
    are taken out again after it: every test sees the library's op table."""
    saved = dict(OPS)
    yield
    OPS.clear()
    OPS.update(saved)


def cube_op(name: str = "cube", rule: str = "d(x^3)/dx = 3x^2") -> type:
    """A user's primitive x**3 written with the ``xp`` signature, registered in the op
    table under ``name`` (the table is restored after each test)."""
    def forward(xp, x):
        return x * x * x

    def backward(xp, g, out, xs, needs):
        return (g * 3 * xs[0] * xs[0],)
    return type("Cube", (tl.Function,), {"name": name, "rule": rule, "__module__": __name__,
                                         "forward": staticmethod(forward),
                                         "backward": staticmethod(backward)})


@pytest.fixture(autouse=True)
def _seed_numpy():
    """Tests that use np.random (as cs231n code does) see the same numbers every run."""
    np.random.seed(0)
    yield


def pytest_terminal_summary(terminalreporter):
    _table(terminalreporter, OP_STATS, "op table: hypothesis cases and worst gradient errors",
           "pass: rel < 1e-6 or abs < 1e-8 (numeric), rel <= 1e-9 or abs <= 1e-12 (torch)")
    _table(terminalreporter, SECOND_ORDER_STATS,
           "second order: hypothesis cases and worst errors of gradients of gradients",
           "numeric = central differences of the first-order gradient, torch = "
           "torch.autograd.grad(create_graph=True) twice; same pass bounds")


def _table(tr, stats: dict, title: str, bounds: str) -> None:
    if not stats:
        return
    tr.write_sep("-", title)
    tr.write_line("rel = worst cs231n rel_error (any entry), abs = worst |engine - reference|; "
                  + bounds)
    tr.write_line(f"{'op':<16}{'cases':>6}{'numeric rel':>13}{'numeric abs':>13}"
                  f"{'torch cases':>12}{'torch rel':>11}{'torch abs':>11}")
    worst = {"num_rel": 0.0, "num_abs": 0.0, "torch_rel": 0.0, "torch_abs": 0.0}
    total = total_torch = 0
    for name in sorted(stats):
        s = stats[name]
        total += s["cases"]
        total_torch += s["torch_cases"]
        for k in worst:
            worst[k] = max(worst[k], s[k])
        tr.write_line(f"{name:<16}{s['cases']:>6}{s['num_rel']:>13.2e}{s['num_abs']:>13.2e}"
                      f"{s['torch_cases']:>12}{s['torch_rel']:>11.2e}{s['torch_abs']:>11.2e}")
    tr.write_line(f"{'ALL':<16}{total:>6}{worst['num_rel']:>13.2e}{worst['num_abs']:>13.2e}"
                  f"{total_torch:>12}{worst['torch_rel']:>11.2e}{worst['torch_abs']:>11.2e}")
