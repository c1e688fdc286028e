"""The docs' code runs as written: every ```python block of README.md and docs/*.md,
unchanged, in a fresh process in an empty temporary directory (one test per block,
named by file and line); and the docs and --help state one measured run time."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(\S*)")


def code_blocks(path: Path):
    """(first line number, language, code) of each fenced block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        assert j < len(lines), f"{path.name}:{i + 1}: a code block that is never closed"
        yield i + 1, lang.lower(), "\n".join(body) + "\n"
        i = j + 1


PYTHON_BLOCKS = [pytest.param(code, id=f"{path.relative_to(ROOT)}:{line}")
                 for path in DOCS for line, lang, code in code_blocks(path) if lang in ("python", "py")]


def test_the_docs_have_python_blocks():
    assert len(PYTHON_BLOCKS) >= 9


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_python_block_runs_as_written(code, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_blocks_that_are_not_python_are_not_marked_python():
    """A signature or a shell session in a ```python block cannot run: it is ```text."""
    for path in DOCS:
        for line, lang, code in code_blocks(path):
            if lang in ("python", "py"):
                compile(code, f"{path.name}:{line}", "exec")


def test_one_run_time_for_the_default_example_run():
    help_text = subprocess.run([sys.executable, str(ROOT / "examples" / "two_layer.py"), "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    claims = {
        "--help": re.search(r"spiral data, about (\d+) s", help_text),
        "README.md": re.search(r"spiral data \(about (\d+) s on 2 cores\)", (ROOT / "README.md").read_text()),
        "docs/two_layer.md": re.search(r"The default run \(about (\d+) s on 2 cores\)",
                                       (ROOT / "docs" / "two_layer.md").read_text()),
    }
    assert all(claims.values()), {k: bool(v) for k, v in claims.items()}
    assert len({m.group(1) for m in claims.values()}) == 1, {k: m.group(0) for k, m in claims.items()}
