"""examples/two_layer.py as a user runs it: --help, a short run, a short sweep."""
import importlib.util
import os
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join("examples", "two_layer.py")


def run(*args, timeout=120):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_explains_everything():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--data", "--cifar-dir", "--out", "--sweep", "--iters", "--lr", "--reg", "--l2-half",
                 "--hidden-size", "--batch-size", "gradient check", "cifar-10"):
        assert flag.lower() in r.stdout.lower(), flag


def test_short_run_writes_outputs(tmp_path):
    out = tmp_path / "out"
    r = run("--iters", "300", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout
    assert "gradient check" in text
    for name in ("W1", "b1", "W2", "b2"):
        line = next(l for l in text.splitlines() if l.startswith(name + " "))
        assert float(line.split()[-2]) < 1e-8, line
    assert "train accuracy:" in text and "val accuracy:" in text
    acc = float(next(l for l in text.splitlines() if l.startswith("train accuracy:")).split()[-1])
    assert acc > 0.7
    assert (out / "two_layer_net.npz").exists()
    if importlib.util.find_spec("matplotlib"):
        for f in ("loss.png", "accuracy.png", "decision_regions.png"):
            assert (out / f).stat().st_size > 1000, f
    else:
        assert "plots skipped" in text
    svg = out / "two_layer_net.svg"
    assert svg.exists() or "circuit diagram skipped" in text
    if svg.exists():
        assert "<svg" in svg.read_text()


def test_short_sweep_prints_table_and_best():
    r = run("--sweep", "--sweep-iters", "100", "--sweep-lrs", "1.0", "0.1", "--sweep-regs", "1e-4",
            "--skip-gradcheck", "--no-out")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [l for l in r.stdout.splitlines() if l.startswith("lr ")]
    assert len(rows) == 2 and all("val accuracy:" in l for l in rows)
    assert "best validation accuracy achieved during cross-validation" in r.stdout


def test_cifar_without_files_is_a_clear_error(tmp_path):
    r = run("--data", "cifar10", "--cifar-dir", str(tmp_path), "--skip-gradcheck", "--no-out")
    assert r.returncode == 2
    assert "cifar-10-python.tar.gz" in r.stderr and "Traceback" not in r.stderr
    r = run("--data", "cifar10", "--skip-gradcheck")
    assert r.returncode == 2 and "--cifar-dir" in r.stderr


def test_cifar_run_on_fabricated_files(tmp_path):
    from test_data import fabricate
    fabricate(str(tmp_path / "cifar"), n=30)
    out = tmp_path / "out"
    r = run("--data", "cifar10", "--cifar-dir", str(tmp_path / "cifar"), "--num-train", "100",
            "--num-val", "50", "--num-test", "20", "--iters", "20", "--skip-gradcheck", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test accuracy:" in r.stdout
    if importlib.util.find_spec("matplotlib"):
        assert (out / "weights.png").exists()
