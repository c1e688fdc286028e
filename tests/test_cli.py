"""tinygrad_lite/_cli.py, what the command-line tools share: range-checked argparse
types, signals deferred over steps that belong together, a quiet end on a closed pipe."""
import argparse
import os
import re
import signal
import sys

import pytest

from tinygrad_lite._cli import Terminated, integer, number, run_main, signals_deferred


def parse(type_, text):
    p = argparse.ArgumentParser(prog="tool")
    p.add_argument("--x", type=type_)
    return p.parse_args(["--x", text]).x


@pytest.mark.parametrize("type_, text, message", [
    (number(0.0, low_open=True), "0", "must be a finite number > 0, got 0"),
    (number(0.0, low_open=True), "nan", "must be a finite number > 0, got nan"),
    (number(0.0), "inf", "must be a finite number >= 0, got inf"),
    (number(0.0, 1.0, low_open=True), "1.5", r"must be a finite number in \(0, 1\], got 1.5"),
    (number(), "ten", "expected a finite number, got 'ten'"),
    (integer(1), "0", "must be an integer >= 1, got 0"),
    (integer(0, 9), "10", r"must be an integer in \[0, 9\], got 10"),
    (integer(1), "1e3", "expected an integer >= 1, got '1e3'"),
])
def test_out_of_range_is_a_usage_error_naming_the_flag(capsys, type_, text, message):
    with pytest.raises(SystemExit) as e:
        parse(type_, text)
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("tool: error: argument --x: ")
    assert re.search(message, err), err


def test_in_range_values_pass():
    assert parse(number(0.0, 1.0, low_open=True), "1") == 1.0
    assert parse(number(0.0), "0") == 0.0 and parse(integer(0, 9), "9") == 9


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_signals_in_a_deferred_block_take_effect_after_it():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the signal, still inside")
    assert done == ["after the signal, still inside"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_run_main_ends_quietly(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    def terminated(argv):
        raise Terminated(signal.SIGTERM)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig}
    try:
        assert run_main(lambda argv: 0, "tool") == 0
        assert run_main(interrupted, "tool") == 130
        assert capsys.readouterr().err == "tool: interrupted\n"
        assert run_main(terminated, "tool") == 143
        assert capsys.readouterr().err == "tool: terminated by SIGTERM\n"
    finally:  # run_main installed its handlers in this process
        for sig, handler in previous.items():
            signal.signal(sig, handler)
