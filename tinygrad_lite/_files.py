"""Files written whole or not at all, and ``.npz`` archives read with clear errors.

``atomic_write(path)`` gives a temporary file in ``path``'s directory; only when the
``with`` block succeeds is it flushed to disk and renamed over ``path`` (``os.replace``
is atomic), so a full disk, an exception or an interrupt leaves the old file as it
was. ``read_npz(path)`` reads every array of an archive ``np.savez`` wrote, without
pickle, and turns anything else into one ``ValueError`` naming the file and what it
holds instead.
"""
from __future__ import annotations

import os
import secrets
import stat
import zipfile
import zlib
from contextlib import contextmanager
from typing import BinaryIO, Dict, Iterator, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["atomic_write", "read_npz", "fsync_directory"]


def fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (best effort: not every system can)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary(directory: str, base: str, who: str, path: str) -> tuple[int, str]:
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:  # mode 0o666 as open() uses, so the umask applies as usual
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:
            continue
        except OSError as e:
            raise OSError(e.errno, f"{who}: cannot create a file in {directory!r} to write "
                                   f"{path} ({e.strerror})", path) from None


@contextmanager
def atomic_write(path: PathLike, who: str = "write") -> Iterator[BinaryIO]:
    """``with atomic_write(path) as f: f.write(...)``: ``path`` ends up holding
    everything written, or (on any exception, a full disk, Ctrl-C) stays as it was.
    A symlink is written through, as ``open(path, "wb")`` would; an existing file's
    permission bits are kept."""
    path = os.fspath(path)
    target = os.path.realpath(path)
    directory, base = os.path.split(target)
    fd, tmp = _temporary(directory, base, who, path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, f"{who}: writing {path} failed ({e.strerror}); "
                                   f"the file there, if any, is unchanged", path) from e
        raise
    fsync_directory(directory)


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive


def _what_instead(head: bytes) -> Optional[str]:
    """Why a file starting with ``head`` is not an .npz archive (None: it may be one)."""
    if not head:
        return "the file is empty (0 bytes)"
    if head.startswith(_ZIP_MAGICS):
        return None
    if head.startswith(_NPY_MAGIC):
        return "it holds a single .npy array (np.save), not an .npz archive (np.savez, Module.save)"
    if head[:1] == b"\x80":
        return "it looks like a pickle (pickle.dump), which is never loaded here"
    text = head.decode("utf-8", "replace")
    if all(c.isprintable() or c in "\t\n\r" for c in text) and text.count("\ufffd") <= 3:
        return f"it is a text file (it starts with {text[:24]!r})"
    return f"it does not start with the zip signature PK\\x03\\x04 (its first bytes are {head[:8]!r})"


def read_npz(path: PathLike, who: str) -> Dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path`` (the suffix may be left off),
    read without pickle. A file that is not such an archive (empty, a ``.npy``, text,
    a pickle, a truncated or corrupted zip, a member holding Python objects) raises
    one ``ValueError`` naming the path and what is wrong with it."""
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{who}: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{who}: {path} is a directory, not an .npz file")
    with open(path, "rb") as f:
        head = f.read(64)
    reason = _what_instead(head)
    if reason is not None:
        raise ValueError(f"{who}: {path} is not an .npz archive: {reason}")
    arrays: Dict[str, np.ndarray] = {}
    member = None
    try:
        with np.load(path, allow_pickle=False) as archive:
            for member in archive.files:
                value = archive[member]
                if not isinstance(value, np.ndarray):
                    raise ValueError(f"{who}: {path}: member {member!r} is not a NumPy array "
                                     f"(an .npz holds only .npy members)")
                arrays[member] = value
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError) as e:
        if str(e).startswith(who):
            raise
        if isinstance(e, ValueError) and "allow_pickle" in str(e):
            what = f"member {member!r} holds Python objects (pickled data), which are never loaded"
        elif member is None:
            what = f"it is a truncated or corrupted zip archive ({type(e).__name__}: {e})"
        else:
            what = f"member {member!r} is truncated or corrupted ({type(e).__name__}: {e})"
        raise ValueError(f"{who}: {path} is not a readable .npz archive: {what}") from None
    return arrays
