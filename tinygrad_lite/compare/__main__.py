"""``python -m tinygrad_lite.compare --model cs231n|ng|column|scratch``: print the
gradient comparison report for that seed's network (with the first wrong wire and
its diagnosis) and, with ``--svg PATH``, write its diagram; exit status 1 if it fails."""
from __future__ import annotations

import argparse
import sys

from .._cli import integer, number, run_main
from ..problems import BUGS, MODELS, run

PROG = "python -m tinygrad_lite.compare"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Compare the engine's gradients of a seed's two-layer net with the seed's "
                    "hand derivation, central differences and PyTorch.")
    ap.add_argument("--model", required=True, choices=MODELS,
                    help="cs231n (seeds 000/001), ng (002), column (003), scratch (004)")
    ap.add_argument("--data", choices=("fixture", "scaled", "random"), default=None,
                    help="the seed's fixture (cs231n, column: the default), scaled (column), "
                         "or seeded random data (the default for ng and scratch)")
    ap.add_argument("--seed", type=integer(0, 2 ** 32 - 1), default=0,
                    help="seed of the random data (default 0)")
    ap.add_argument("--l2-half", action="store_true",
                    help="cs231n: seed 001's 0.5 * reg * |W|^2 instead of seed 000's reg * |W|^2")
    ap.add_argument("--bug", choices=BUGS, default=None,
                    help="cs231n/ng: use a hand derivation with this mistake (to see a failing report)")
    ap.add_argument("--no-numeric", action="store_true", help="skip central differences")
    ap.add_argument("--torch", choices=("auto", "on", "off"), default="auto",
                    help="the PyTorch column: auto (when installed), on (required), off")
    ap.add_argument("--h", type=number(0.0, low_open=True), default=1e-5,
                    help="central-difference step, a finite number > 0 (default 1e-5)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--svg", metavar="PATH", default=None,
                    help="write the compare diagram (wrong wires marked) as SVG to PATH")
    args = ap.parse_args(argv)
    try:
        report = run(args.model, args.data, args.seed, l2_half=args.l2_half, bug=args.bug,
                     numeric=not args.no_numeric,
                     torch={"auto": "auto", "on": True, "off": False}[args.torch], h=args.h)
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.to_markdown() if args.markdown else report)
    if args.svg:
        try:
            write_diagram(report, args.svg)
        except (ImportError, OSError, RuntimeError) as e:
            print(f"error: --svg {args.svg}: {e}", file=sys.stderr)
            return 2
        print(f"diagram: {args.svg}")
    return 0 if report.ok() else 1


def write_diagram(report, path: str) -> None:
    """The report's graph as a circuit diagram, wrong wires marked, written to ``path``
    (viz is imported here: the library side of compare does not depend on it)."""
    import viz
    svg = viz.render_svg(report.graph, None, compare=report)
    with open(path, "w", encoding="utf-8") as f:  # rendered first: a failure writes nothing
        f.write(svg)


if __name__ == "__main__":
    sys.exit(run_main(main, PROG))
