"""examples/two_layer.py as a user runs it: --help, a short run, a short sweep; every
flag checked before anything runs; --out written whole at the end (run.json), never
half; a diverging run, an interrupt and a closed pipe each end in one line."""
import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join("examples", "two_layer.py")
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


def run(*args, timeout=120, **kw):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.fixture(scope="module")
def example():
    """The script as a module, to call main() in this process (argument errors exit
    before anything runs, so most checks need no subprocess)."""
    spec = importlib.util.spec_from_file_location("two_layer_example", os.path.join(ROOT, SCRIPT))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def usage_error(example, capsys, *argv):
    with pytest.raises(SystemExit) as e:
        example.main(list(argv))
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == "", out  # nothing ran: not even the gradient check
    assert err.startswith("usage: two_layer.py") and "Traceback" not in err
    return err.splitlines()[-1]


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def check_run_dir(out):
    """run.json names exactly the run's files, each as it was written; nothing else of
    the program's is there (a staging directory, a file of another run)."""
    manifest = json.loads((out / "run.json").read_text())
    for name, info in manifest["files"].items():
        assert (out / name).stat().st_size == info["bytes"] and sha256(out / name) == info["sha256"], name
    ours = {p.name for p in out.iterdir()} - {"notes.txt"}
    assert ours == set(manifest["files"]) | {"run.json"}, ours
    return manifest


def snapshot(out):
    return {p.name: p.read_bytes() for p in out.iterdir()}


# ----------------------------------------------------------------- runs

def test_help_explains_everything():
    r = run("--help", env={**os.environ, "COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    for flag in ("--data", "--cifar-dir", "--out", "--sweep", "--iters", "--lr", "--reg", "--l2-half",
                 "--hidden-size", "--batch-size", "gradient check", "cifar-10", "run.json",
                 "implies --data cifar10", "exit status"):
        assert flag.lower() in r.stdout.lower(), flag
    too_long = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert not too_long, too_long  # the description and the epilog are wrapped too


def test_short_run_writes_outputs(tmp_path):
    out = tmp_path / "out"
    r = run("--iters", "300", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout
    assert "gradient check" in text
    for name in ("W1", "b1", "W2", "b2"):
        line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
        assert float(line.split()[-2]) < 1e-8, line
    assert "train accuracy:" in text and "val accuracy:" in text
    acc = float(next(ln for ln in text.splitlines() if ln.startswith("train accuracy:")).split()[-1])
    assert acc > 0.7
    assert (out / "two_layer_net.npz").exists()
    if HAVE_MPL:
        for f in ("loss.png", "accuracy.png", "decision_regions.png"):
            assert (out / f).stat().st_size > 1000, f
    else:
        assert "plots skipped" in text
    svg = out / "two_layer_net.svg"
    assert svg.exists() or "circuit diagram skipped" in text
    if svg.exists():
        assert "<svg" in svg.read_text()
    manifest = check_run_dir(out)
    assert manifest["settings"]["iters"] == 300 and manifest["argv"] == ["--iters", "300", "--out", str(out)]
    assert manifest["results"]["train_accuracy"] == pytest.approx(acc, abs=1e-4)
    assert "two_layer_net.npz" in manifest["files"] and f"wrote {out / 'run.json'}" in text


def test_short_sweep_prints_table_and_best():
    r = run("--sweep", "--sweep-iters", "100", "--sweep-lrs", "1.0", "0.1", "--sweep-regs", "1e-4",
            "--skip-gradcheck", "--no-out")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("lr ")]
    assert len(rows) == 2 and all("val accuracy:" in row for row in rows)
    assert "best validation accuracy achieved during cross-validation" in r.stdout


def test_compile_prints_and_saves_the_numbers_of_a_run_without_it(tmp_path):
    """--compile replays one traced step: every printed number and the saved net are
    those of the eager run (only the timing and the training line's mark differ)."""
    runs = {}
    for name, extra in (("eager", ()), ("compiled", ("--compile",))):
        r = run("--iters", "300", "--skip-gradcheck", "--quiet", "--out", str(tmp_path / name),
                *extra)
        assert r.returncode == 0, r.stdout + r.stderr
        runs[name] = r.stdout
    assert ", compiled (tl.compile)" in runs["compiled"] and "compiled" not in runs["eager"]

    def numbers(text):  # the final loss and the accuracies, as printed
        return [ln.split("final loss")[-1] if "final loss" in ln else ln
                for ln in text.splitlines() if "final loss" in ln or "accuracy:" in ln]
    assert numbers(runs["compiled"]) == numbers(runs["eager"])
    assert len(numbers(runs["eager"])) == 3
    with np.load(tmp_path / "eager" / "two_layer_net.npz") as a, \
            np.load(tmp_path / "compiled" / "two_layer_net.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    eager, compiled = (json.loads((tmp_path / n / "run.json").read_text()) for n in runs)
    assert compiled["results"] == eager["results"] and compiled["settings"]["compile"] is True


def test_compile_with_a_sweep_gives_the_same_table():
    args = ("--sweep", "--sweep-iters", "100", "--sweep-lrs", "1.0", "0.1", "--sweep-regs",
            "1e-4", "--skip-gradcheck", "--no-out", "--workers", "1")
    eager, compiled = run(*args), run(*args, "--compile")
    assert eager.returncode == compiled.returncode == 0, eager.stderr + compiled.stderr
    rows = [[ln for ln in r.stdout.splitlines() if ln.startswith(("lr ", "best"))]
            for r in (eager, compiled)]
    assert rows[0] == rows[1] and len(rows[0]) == 3


# ----------------------------------------------------------------- every flag checked first

@pytest.mark.parametrize("argv, flag", [
    (["--lr", "-1"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "0"], "--lr"), (["--lr", "x"], "--lr"),
    (["--lr-decay", "-5"], "--lr-decay"), (["--lr-decay", "1.5"], "--lr-decay"),
    (["--lr-decay", "nan"], "--lr-decay"), (["--std", "-1"], "--std"), (["--std", "nan"], "--std"),
    (["--reg", "-1"], "--reg"), (["--reg", "nan"], "--reg"), (["--reg=-inf"], "--reg"),
    (["--sweep-lrs", "nan"], "--sweep-lrs"), (["--sweep-lrs", "1", "-2"], "--sweep-lrs"),
    (["--sweep-regs", "0.1", "inf"], "--sweep-regs"), (["--iters", "0"], "--iters"),
    (["--iters", "2.5"], "--iters"), (["--batch-size", "0"], "--batch-size"),
    (["--hidden-size", "-3"], "--hidden-size"), (["--sweep-iters", "0"], "--sweep-iters"),
    (["--seed", "-1"], "--seed"), (["--seed", str(2 ** 32)], "--seed"), (["--points", "0"], "--points"),
    (["--classes", "1"], "--classes"),
])
def test_a_bad_number_is_a_usage_error_naming_its_flag(example, capsys, argv, flag):
    last = usage_error(example, capsys, *argv, "--out", os.devnull + "/never")
    assert last.startswith(f"two_layer.py: error: argument {flag}: "), last
    assert argv[-1].split("=")[-1] in last


@pytest.mark.parametrize("argv, message", [
    (["--num-train", "100"], "argument --num-train: only for --data cifar10"),
    (["--data", "spiral", "--cifar-dir", "somewhere"], "argument --cifar-dir: only for --data cifar10"),
    (["--data", "cifar10"], "--data cifar10 needs --cifar-dir"),
    (["--cifar-dir", "somewhere", "--points", "50"], "argument --points: only for --data spiral"),
])
def test_flags_of_the_other_data_set_are_refused(example, capsys, argv, message):
    assert message in usage_error(example, capsys, *argv, "--no-out")


def test_a_sweep_flag_implies_the_sweep(example):
    assert example.parse_args(["--sweep-iters", "10", "--no-out"]).sweep
    assert example.parse_args(["--sweep-lrs", "0.5", "--no-out"]).sweep
    assert not example.parse_args(["--no-out"]).sweep


def test_an_out_that_cannot_be_written_is_found_before_training(example, capsys, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    last = usage_error(example, capsys, "--out", str(a_file))
    assert f"argument --out: {a_file} exists and is not a directory" in last
    assert "argument --out: an empty path" in usage_error(example, capsys, "--out", "")
    last = usage_error(example, capsys, "--out", str(a_file / "sub" / "out"))
    assert f"cannot create {a_file / 'sub' / 'out'}: {a_file} is not a directory" in last
    assert a_file.read_text() == "mine"
    if os.geteuid() != 0:  # root writes into read-only directories
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            last = usage_error(example, capsys, "--out", str(locked / "out"))
            assert f"cannot write in {locked}" in last and "Permission denied" in last
        finally:
            locked.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] + (["locked"] if os.geteuid() else [])


# ----------------------------------------------------------------- CIFAR-10 on fabricated files

def test_cifar_without_files_is_a_clear_error(tmp_path):
    r = run("--data", "cifar10", "--cifar-dir", str(tmp_path), "--skip-gradcheck", "--no-out")
    assert r.returncode == 2
    assert "cifar-10-python.tar.gz" in r.stderr and "Traceback" not in r.stderr
    r = run("--data", "cifar10", "--skip-gradcheck")
    assert r.returncode == 2 and "--cifar-dir" in r.stderr


def test_cifar_dir_implies_cifar10_and_runs_on_fabricated_files(tmp_path):
    from test_data import fabricate
    fabricate(str(tmp_path / "cifar"), n=30)
    out = tmp_path / "out"
    r = run("--cifar-dir", str(tmp_path / "cifar"), "--num-train", "100", "--num-val", "50",
            "--num-test", "20", "--iters", "20", "--skip-gradcheck", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "data: cifar10" in r.stdout and "test accuracy:" in r.stdout
    if HAVE_MPL:
        assert (out / "weights.png").exists()
    manifest = check_run_dir(out)
    assert manifest["settings"]["data"] == "cifar10" and "points" not in manifest["settings"]
    # the next run (spiral) removes the CIFAR run's weights.png: out/ holds one run
    (out / "notes.txt").write_text("the user's own file")
    r = run("--iters", "20", "--skip-gradcheck", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert check_run_dir(out)["settings"]["data"] == "spiral"
    assert not (out / "weights.png").exists() and (out / "notes.txt").read_text() == "the user's own file"


def test_splits_larger_than_the_data_are_refused_before_anything_runs(example, capsys, tmp_path):
    from test_data import fabricate
    fabricate(str(tmp_path), n=30)  # 150 training and 30 test images
    last = usage_error(example, capsys, "--cifar-dir", str(tmp_path), "--num-train", "149",
                       "--num-val", "2", "--no-out")
    assert ("argument --num-train/--num-val: --num-train 149 + --num-val 2 = 151 images, but "
            f"{tmp_path} has 150 training images") in last
    last = usage_error(example, capsys, "--cifar-dir", str(tmp_path), "--num-train", "100",
                       "--num-val", "10", "--num-test", "31", "--no-out")
    assert f"argument --num-test: 31 images, but {tmp_path} has 30 test images" in last
    last = usage_error(example, capsys, "--cifar-dir", str(tmp_path), "--no-out")  # the defaults
    assert "--num-train 49000 + --num-val 1000 = 50000 images" in last


def test_a_bad_batch_file_is_named(example, capsys, tmp_path):
    from test_data import _write_py_batches
    path = _write_py_batches(tmp_path, labels=[0, 10, 1])
    last = usage_error(example, capsys, "--cifar-dir", str(tmp_path), "--no-out")
    assert f"argument --cifar-dir: load_cifar10: {path}: label 1 is 10" in last


# ----------------------------------------------------------------- failures write nothing

def test_a_diverging_run_stops_with_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = run("--lr", "1e6", "--skip-gradcheck", "--quiet", "--out", str(out))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr  # no wall of NumPy warnings
    assert lines[0].startswith("two_layer.py: error: training diverged: the loss is ")
    assert "at iteration" in lines[0] and "of 2000" in lines[0] and "lower --lr" in lines[0]
    assert not out.exists()


def _interrupted(out, trigger, sig):
    """Start a run into ``out`` and send ``sig`` as soon as it prints ``trigger``."""
    p = subprocess.Popen([sys.executable, SCRIPT, "--seed", "3", "--skip-gradcheck", "--out", str(out)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = ""
    for line in p.stdout:
        seen += line
        if line.startswith(trigger):
            p.send_signal(sig)
            break
    rest, err = p.communicate(timeout=120)
    return p.returncode, seen + rest, err


@pytest.mark.parametrize("trigger, sig", [("training:", signal.SIGTERM), ("training:", signal.SIGINT),
                                          ("== 3. writing", signal.SIGTERM),
                                          ("== 3. writing", signal.SIGINT)])
def test_an_interrupted_run_leaves_out_as_it_was(tmp_path, trigger, sig):
    out = tmp_path / "out"
    first = run("--iters", "50", "--skip-gradcheck", "--out", str(out))
    assert first.returncode == 0, first.stderr
    (out / "notes.txt").write_text("the user's own file")
    before = snapshot(out)
    code, stdout, stderr = _interrupted(out, trigger, sig)
    assert "Traceback" not in stderr
    if code == 0:  # finished before the signal landed (writing takes ~0.5 s): whole and new
        assert trigger.startswith("== 3") and check_run_dir(out)["settings"]["seed"] == 3
        return
    assert code == 128 + sig, stderr
    assert stderr.strip().endswith("interrupted" if sig == signal.SIGINT else "terminated by SIGTERM")
    assert snapshot(out) == before  # byte for byte, no staging directory left behind
    assert check_run_dir(out)["settings"]["seed"] == 0


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_disk_that_fills_while_writing_leaves_out_as_it_was(tmp_path):
    import resource
    out = tmp_path / "out"
    assert run("--iters", "50", "--skip-gradcheck", "--out", str(out)).returncode == 0
    before = snapshot(out)
    full_at_20_kb = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # noqa: E731
    r = run("--iters", "60", "--seed", "2", "--skip-gradcheck", "--out", str(out), preexec_fn=full_at_20_kb)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr == f"two_layer.py: error: writing to {out} failed ([Errno 27] File too large); " \
                       f"it is left as it was\n"
    assert snapshot(out) == before


def test_a_closed_pipe_ends_the_run_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` after head exited
    try:
        r = subprocess.run([sys.executable, SCRIPT, "--iters", "20", "--out", str(tmp_path / "out")],
                           cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode == 1 and r.stderr == ""
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------- the sweep's engines

SWEEP = ("--sweep", "--sweep-iters", "100", "--sweep-lrs", "1.0", "0.1", "--sweep-regs", "1e-4", "1e-3",
         "--points", "30", "--hidden-size", "20", "--skip-gradcheck")
LINE = re.compile(r"^lr \d\.\d{6}e[+-]\d\d reg \d\.\d{6}e[+-]\d\d train accuracy: \d\.\d{6} "
                  r"val accuracy: \d\.\d{6}$")


def sweep_lines(r):
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("lr ")]
    assert len(rows) == 4 and all(LINE.match(line) for line in rows), rows
    best = next(line for line in r.stdout.splitlines() if line.startswith("best validation accuracy"))
    return sorted(rows), best


def test_two_workers_print_and_save_what_one_does(tmp_path):
    one = run(*SWEEP, "--workers", "1", "--out", str(tmp_path / "one"))
    two = run(*SWEEP, "--workers", "2", "--out", str(tmp_path / "two"))
    assert "on 1 local process\n" in one.stdout and "on 2 local processes\n" in two.stdout
    assert sweep_lines(one) == sweep_lines(two)
    with np.load(tmp_path / "one" / "two_layer_net.npz") as a, np.load(tmp_path / "two" / "two_layer_net.npz") as b:
        assert sorted(a.files) == sorted(b.files) == ["W1", "W2", "b1", "b2"]
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_scheduler_runs_the_grid_on_a_dask_cluster():
    distributed = pytest.importorskip("distributed")
    # The cluster's workers are threads of this test process; the example connects over TCP.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        on_dask = run(*SWEEP, "--no-out", "--scheduler", cluster.scheduler_address)
    assert f"on the Dask cluster at {cluster.scheduler_address}" in on_dask.stdout
    assert sweep_lines(on_dask) == sweep_lines(run(*SWEEP, "--no-out", "--workers", "1"))


@pytest.mark.parametrize("value, message", [("0", "must be an integer >= 1, got 0"),
                                            ("-3", "must be an integer >= 1, got -3"),
                                            ("two", "expected an integer >= 1, got 'two'"),
                                            ("1.5", "expected an integer >= 1, got '1.5'")])
def test_workers_must_be_a_positive_int(value, message):
    r = run(*SWEEP, "--no-out", "--workers", value)
    assert r.returncode == 2 and f"argument --workers: {message}" in r.stderr and "Traceback" not in r.stderr


def test_workers_and_scheduler_exclude_each_other():
    r = run(*SWEEP, "--no-out", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786")
    assert r.returncode == 2 and "argument --scheduler: not allowed with argument --workers" in r.stderr


def test_scheduler_without_dask_names_the_extra():
    code = ("import runpy, sys; sys.modules['distributed'] = None; sys.argv[0] = 'two_layer.py'; "
            f"runpy.run_path({SCRIPT!r}, run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code, "--sweep", "--scheduler", "tcp://127.0.0.1:8786"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "argument --scheduler: Dask distributed is not installed: pip install 'tinygrad_lite[cluster]'" \
        in r.stderr


def test_a_failing_configuration_is_named_and_nothing_is_written(tmp_path):
    out = tmp_path / "out"
    # 2**40 hidden units: every worker's W1 allocation fails
    r = run(*SWEEP[:-3], "--hidden-size", str(2 ** 40), "--skip-gradcheck", "--out", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.fullmatch(r"two_layer.py: error: sweep: configuration lr \S+ reg \S+ failed: MemoryError: .*\. "
                        r"Nothing was written.\n", r.stderr), r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_ctrl_c_stops_the_workers_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    # its own process group, as a terminal's Ctrl-C reaches the example and its workers
    p = subprocess.Popen([sys.executable, SCRIPT, *SWEEP[:2], "100000", *SWEEP[3:], "--workers", "2",
                          "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        for line in p.stdout:
            if line.startswith("== sweep"):
                break
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    assert err == "two_layer.py: interrupted\n"
    assert not out.exists()
    for _ in range(100):  # the worker processes exit too
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("worker processes still running after Ctrl-C")


def test_workers_alone_asks_for_the_sweep():
    r = run("--workers", "1", "--iters", "30", "--points", "20", "--hidden-size", "10", "--skip-gradcheck",
            "--no-out")
    assert r.returncode == 0, r.stderr
    assert "== sweep: lr [0.1, 1.0] x reg [0.0001, 0.0005, 0.001], 30 iterations each, on 1 local process" \
        in r.stdout
