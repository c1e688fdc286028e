"""What the command-line tools share: argparse types that check a number's range
(so a bad value is a usage error naming its flag, exit status 2), and a way to run
``main`` so that a reader closing the pipe (``| head``), Ctrl-C or SIGTERM ends the
process with one line instead of a traceback."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Optional, Sequence

__all__ = ["number", "integer", "run_main", "Terminated", "signals_deferred"]


def _interval(low: Optional[float], high: Optional[float], low_open: bool, high_open: bool) -> str:
    show = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{show(low)}, {show(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {show(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {show(high)}"
    return ""


def _checked(convert: Callable[[str], Any], wanted: str, accepts: Callable[[Any], bool]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    parse.__name__ = convert.__name__
    return parse


def number(low: Optional[float] = None, high: Optional[float] = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite float in the given range (open or closed ends)."""
    def accepts(v: float) -> bool:
        return (math.isfinite(v) and (low is None or (v > low if low_open else v >= low))
                and (high is None or (v < high if high_open else v <= high)))

    return _checked(float, f"a finite number {_interval(low, high, low_open, high_open)}".rstrip(), accepts)


def integer(low: Optional[int] = None, high: Optional[int] = None) -> Callable[[str], int]:
    """An argparse ``type``: an int in ``[low, high]``."""
    def accepts(v: int) -> bool:
        return (low is None or v >= low) and (high is None or v <= high)

    return _checked(int, f"an integer {_interval(low, high, False, False)}".rstrip(), accepts)


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived: raised in the main thread, like KeyboardInterrupt for
    SIGINT, so ``finally`` blocks clean up before the process ends."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def run_main(main: Callable[[Optional[Sequence[str]]], int], prog: str,
             argv: Optional[Sequence[str]] = None) -> int:
    """``main(argv)``'s exit status. A closed stdout (``| head``) ends it quietly
    (status 1, as Python's own documentation recommends); Ctrl-C (130) and SIGTERM or
    SIGHUP (128 + the signal) print one line after ``main``'s ``finally`` blocks ran."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_terminated)
    try:
        status = main(argv)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at devnull so that flush
        # does not raise (and print a traceback) a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as e:
        print(f"{prog}: terminated by {e}", file=sys.stderr)
        return 128 + e.signum


_DEFERRED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP that arrive inside the block (or arrived just before
    and are still pending) take effect when it ends, through the handler that was in
    place: a few steps that must happen together are never cut in the middle."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    caught: list = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])
