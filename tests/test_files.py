"""Files, nothing lost: atomic saves (a full disk, an interrupt, an error leave the old
file whole), loads that check everything before they change anything, and one clear
``ValueError`` for every file that is not an ``.npz`` archive."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tinygrad_lite import nn, optim
from tinygrad_lite._files import atomic_write, read_npz
from tinygrad_lite.models import TwoLayerNet


def net(seed=0, sizes=(4, 10, 3)):
    np.random.seed(seed)
    return TwoLayerNet(*sizes, std=1e-1)


def same_params(a, b):
    return all(np.array_equal(a.params[k], b.params[k]) for k in ("W1", "b1", "W2", "b2"))


def listing(directory):
    return sorted(os.listdir(directory))


# ----------------------------------------------------------------- atomic save

SAVE_UNDER_FSIZE_LIMIT = """
import resource, sys
import numpy as np
from tinygrad_lite.models import TwoLayerNet
np.random.seed(1)
net = TwoLayerNet(3072, 50, 10, std=1e-1)         # ~1.2 MB of parameters
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # a disk that fills at 200 KB
try:
    net.save(sys.argv[1])
except OSError as e:
    print(type(e).__name__, e.errno, e)
    sys.exit(3)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_save_on_a_full_disk_keeps_the_old_checkpoint(tmp_path):
    good = net(0, (3072, 50, 10))
    path = good.save(tmp_path / "ckpt.npz")
    before = open(path, "rb").read()
    assert len(before) > 1_000_000
    r = subprocess.run([sys.executable, "-c", SAVE_UNDER_FSIZE_LIMIT, path],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "File too large" in r.stdout and "TwoLayerNet.save" in r.stdout and path in r.stdout
    assert open(path, "rb").read() == before  # byte for byte
    assert listing(tmp_path) == ["ckpt.npz"]  # no temporary file left behind
    assert same_params(TwoLayerNet.from_file(path), good)


def test_an_interrupt_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = net(0).save(tmp_path / "net.npz")
    before = open(path, "rb").read()

    def first_array_then_ctrl_c(f, **arrays):
        f.write(b"PK\x03\x04 the first array ...")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", first_array_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        net(1).save(path)
    assert open(path, "rb").read() == before and listing(tmp_path) == ["net.npz"]


def test_save_replaces_whole_and_keeps_permissions_and_links(tmp_path):
    first = net(0)
    path = first.save(tmp_path / "net.npz")
    os.chmod(path, 0o640)
    link = tmp_path / "latest.npz"
    os.symlink(path, link)
    second = net(1)
    assert second.save(link) == str(link)
    assert os.path.islink(link)  # written through the link, as open(path, "wb") would
    assert same_params(TwoLayerNet.from_file(path), second)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert listing(tmp_path) == ["latest.npz", "net.npz"]


def test_save_into_a_missing_directory_names_the_path(tmp_path):
    target = tmp_path / "no" / "such" / "net.npz"
    with pytest.raises(FileNotFoundError, match="TwoLayerNet.save: cannot create a file in") as e:
        net(0).save(target)
    assert e.value.filename == str(target)


def test_atomic_write_on_error_leaves_nothing(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"new, half")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["f.bin"]
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and listing(tmp_path) == ["f.bin"]


# ----------------------------------------------------------------- files that are not .npz

def _write(path, content):
    path.write_bytes(content)
    return path


def _truncated(tmp_path):
    full = open(net(0).save(tmp_path / "full.npz"), "rb").read()
    return _write(tmp_path / "truncated.npz", full[: len(full) // 2])


def _corrupted_member(tmp_path):
    raw = bytearray(open(net(0).save(tmp_path / "full.npz"), "rb").read())
    start = raw.index(b"\x93NUMPY") + 200  # inside the first array's bytes
    raw[start:start + 16] = b"\xff" * 16
    return _write(tmp_path / "corrupt.npz", bytes(raw))


def _zip_of_text(tmp_path):
    path = tmp_path / "notes.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not an array")
    return path


def _object_array(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, W1=np.array([{"a": 1}, None], dtype=object))
    return path


BAD_FILES = {
    "empty": (lambda d: _write(d / "empty.npz", b""), "the file is empty"),
    "npy": (lambda d: (np.save(d / "W1.npy", np.ones(3)), d / "W1.npy")[1], "single .npy array"),
    "text": (lambda d: _write(d / "notes.npz", b"W1 = [[0.1, 0.2]]\nb1 = [0]\n"), "text file"),
    "pickle": (lambda d: _write(d / "p.npz", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."),
               "pickle"),
    "binary": (lambda d: _write(d / "b.npz", bytes(range(1, 64))), "zip signature"),
    "truncated zip": (_truncated, "truncated or corrupted zip"),
    "corrupted member": (_corrupted_member, "member 'W1' is truncated or corrupted"),
    "zip of text": (_zip_of_text, "'readme.txt' is not a NumPy array"),
    "object array": (_object_array, "member 'W1' holds Python objects"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_file_that_is_not_an_npz_is_one_clear_value_error(tmp_path, kind):
    make, what = BAD_FILES[kind]
    path = make(tmp_path)
    model = net(0)
    snapshot = model.state_dict()
    for load in (model.load, TwoLayerNet.from_file, lambda p: read_npz(p, "read_npz")):
        with pytest.raises(ValueError) as e:
            load(path)
        assert str(path) in str(e.value) and what in str(e.value), str(e.value)
    assert all(np.array_equal(snapshot[k], v) for k, v in model.state_dict().items())


def test_a_directory_or_a_missing_file_are_os_errors_naming_the_path(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        net(0).load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file: .*missing.npz"):
        net(0).load(tmp_path / "missing.npz")


# ----------------------------------------------------------------- loads: check all, then assign

def _bad_states(state):
    yield "wrong shape", dict(state, W2=np.zeros((3, 10))), ValueError, r"W2 has shape \(3, 10\)"
    yield "strings", dict(state, b2=np.array(["a", "b", "c"])), TypeError, "b2 has dtype <U1"
    yield "ragged", dict(state, b2=[[1.0], [2.0, 3.0]]), TypeError, "b2 is not an array of numbers"
    yield "objects", dict(state, W2=np.empty((10, 3), dtype=object)), TypeError, "W2 has dtype object"
    yield "extra key", dict(state, W3=np.ones(2)), ValueError, r"unexpected keys \['W3'\]"


@pytest.mark.parametrize("case", [c[0] for c in _bad_states(net(0).state_dict())])
def test_two_layer_net_load_changes_nothing_when_any_key_is_bad(tmp_path, case):
    model, source = net(0), net(1)
    state = source.state_dict()  # W1 (first) is fine: it must not be copied in
    _, bad, error, match = next(c for c in _bad_states(state) if c[0] == case)
    with pytest.raises(error, match=match):
        model.load_state_dict(bad)
    assert same_params(model, net(0))
    if case in ("wrong shape", "strings"):  # the same through a file
        np.savez(tmp_path / "bad.npz", **bad)
        with pytest.raises(error, match=match):
            model.load(tmp_path / "bad.npz")
        assert same_params(model, net(0))


def test_sequential_load_changes_nothing_when_a_later_key_is_bad():
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    before = model.state_dict()
    state = {k: v + 1 for k, v in before.items()}
    state["2.b"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"2.b has shape \(4,\)"):
        model.load_state_dict(state)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    state["2.b"] = np.zeros(3)
    model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].W.data, before["0.W"] + 1)


def _adam_after_a_step():
    p = nn.Parameter(np.ones((3, 2)), name="p")
    q = nn.Parameter(np.ones(2), name="q")
    opt = optim.Adam([p, q], lr=1e-2)
    p.grad, q.grad = np.ones((3, 2)), np.ones(2)
    opt.step()
    return opt


@pytest.mark.parametrize("change, match", [
    (lambda sd: sd["state"][1].update(v=[[1.0], [2.0, 3.0]]), "v of parameter 1 .* not an array"),
    (lambda sd: sd["state"][1].update(m=np.array([np.nan, 0.0])), "m of parameter 1 .* holds nan"),
    (lambda sd: sd["state"][1].update(m=np.array(["a", "b"])), "m of parameter 1 has dtype <U1"),
    (lambda sd: sd["param_groups"][0].update(params=2), "'params' must be the list"),
    (lambda sd: sd["param_groups"][0].update(t=-1), "step count t"),
])
def test_optimizer_load_changes_nothing_when_anything_is_bad(change, match):
    opt = _adam_after_a_step()
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = 0.5  # a valid change that must not be applied either
    sd["state"][0]["m"] = sd["state"][0]["m"] + 1
    change(sd)
    before = opt.state_dict()
    with pytest.raises((ValueError, TypeError), match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i in before["state"]:
        for k in before["state"][i]:
            np.testing.assert_array_equal(after["state"][i][k], before["state"][i][k])


def test_load_while_a_graph_is_recorded_is_seen_by_its_backward():
    model, source = net(0), net(1)
    X, y = np.random.RandomState(0).randn(5, 4), np.array([0, 1, 2, 2, 1])
    loss = model.loss_tensor(X, y)  # the graph reads W1: its array is guarded read-only
    model.load_state_dict(source.state_dict())  # a library write, as an optimizer step
    assert same_params(model, source)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()  # the old graph would mix old and new weights: refused


def test_a_parameter_the_user_made_read_only_stops_the_load_before_any_copy():
    model = net(0)
    frozen = model.params["W2"].copy()
    frozen.setflags(write=False)
    model.fc2.W.data = frozen
    before = model.state_dict()
    with pytest.raises(ValueError, match="parameter W2 is read-only; nothing was loaded"):
        model.load_state_dict(net(1).state_dict())
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
