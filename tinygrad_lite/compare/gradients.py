"""``compare_gradients``: the gradients a report compares, each from its source (the
engine's backward walk, the hand derivation, central differences, PyTorch's replay of
the graph), checked and gathered into a :class:`GradientReport`.

See docs/compare.md.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from .._checks import is_number
from ..autograd import backward_order, no_grad
from ..gradcheck import eval_numerical_gradient
from ..tensor import Tensor
from ..torch_replay import replay_in_torch, torch_gradients
from .agreement import agree
from .graph import EngineGradients, Names
from .report import DEFAULT_TOLERANCES, KINDS, Comparison, GradientReport, Row

Hand = Union[None, Mapping[Any, Any], Callable[[dict], Any]]

def _numbers(value: Any, what: str) -> np.ndarray:
    """``value`` (an array, a nested list, a number or a Tensor) as a float64 array,
    or a ``TypeError`` / ``ValueError`` naming ``what`` and what it is instead."""
    raw = value.data if isinstance(value, Tensor) else value
    if isinstance(raw, (str, bytes)):
        raise TypeError(f"compare_gradients: {what} is a {type(raw).__name__} ({raw!r:.40}), "
                        f"not an array of numbers")
    try:
        arr = np.asarray(raw)
    except ValueError:  # NumPy refuses a nested list whose rows differ in length
        raise ValueError(f"compare_gradients: {what} is a ragged nested sequence (rows of different "
                         f"lengths), not an array: {_shape_sketch(raw)}") from None
    if arr.dtype.kind not in "fiu":
        ragged = arr.dtype.hasobject and not isinstance(raw, np.ndarray)  # older NumPy: no error
        kind = "a ragged nested sequence" if ragged else f"an array of dtype {arr.dtype}"
        raise TypeError(f"compare_gradients: {what} is {kind}, not an array of real numbers")
    return arr.astype(np.float64)  # always a new array


def _shape_sketch(raw: Any) -> str:
    """The lengths of a nested list's rows, for the ragged-input message."""
    try:
        return f"row lengths {[len(r) if hasattr(r, '__len__') else 'scalar' for r in raw][:8]}"
    except TypeError:
        return type(raw).__name__


def _as_params(params: Any, notes: list) -> dict:
    if not isinstance(params, Mapping) or not params:
        raise TypeError("compare_gradients: params must be a non-empty dict name -> array")
    out, cast = {}, []
    for name, v in params.items():
        if not isinstance(name, str):
            raise TypeError(f"compare_gradients: parameter names must be strings, got {name!r}")
        out[name] = _numbers(v, f"parameter {name!r}")  # a copy: nothing of the caller's is touched
        given = np.asarray(v.data if isinstance(v, Tensor) else v).dtype
        if given != np.float64:
            cast.append(f"{name} ({given})")
    if cast:
        notes.append(f"params cast to float64: {', '.join(cast)}")
    return out


def _tolerances(tolerances: Any) -> dict:
    """:data:`DEFAULT_TOLERANCES` with the user's overrides, each checked."""
    tol = dict(DEFAULT_TOLERANCES)
    if tolerances is None:
        return tol
    if not isinstance(tolerances, Mapping):
        raise TypeError(f"compare_gradients: tolerances must be a dict kind -> (rtol, atol), e.g. "
                        f"{{'numeric': (1e-5, 1e-7)}}; got {type(tolerances).__name__}")
    for k, v in tolerances.items():
        if k not in KINDS:
            raise ValueError(f"compare_gradients: unknown comparison {k!r} in tolerances "
                             f"(one of {', '.join(KINDS)})")
        if not isinstance(v, (tuple, list, np.ndarray)) or len(v) != 2:
            raise TypeError(f"compare_gradients: tolerances[{k!r}] must be a pair (rtol, atol), "
                            f"got {v!r}")
        pair = []
        for what, x in zip(("rtol", "atol"), v):
            if not is_number(x):
                raise TypeError(f"compare_gradients: tolerances[{k!r}]: {what} must be a number, "
                                f"got {x!r}")
            if not math.isfinite(x) or x < 0:
                raise ValueError(f"compare_gradients: tolerances[{k!r}]: {what} must be a finite "
                                 f"number >= 0, got {x!r}")
            pair.append(float(x))
        tol[k] = (pair[0], pair[1])
    return tol


def _engine_loss(loss_fn: Callable, tensors: dict) -> Tensor:
    out = loss_fn(tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"compare_gradients: loss_fn must return a Tensor, got {type(out).__name__}")
    if out.size != 1:
        raise ValueError(f"compare_gradients: loss_fn must return a scalar, got shape {out.shape}")
    return out


def _backward_own_nodes(loss: Tensor, leaves: dict) -> None:
    """``loss.backward()`` into the report's leaves and the nodes ``loss_fn`` built
    (those made after the leaves), so the report's graph carries its gradients for
    diagrams. A tensor of the caller's that ``loss_fn`` uses from outside ``params``
    (a closure) is left exactly as it was: its ``.grad`` is not touched."""
    first = min(t.stamp for t in leaves.values())
    own = [t for t in backward_order(loss) if t.stamp >= first] if loss.requires_grad else []
    reached = {id(t) for t in own}
    if not any(id(t) in reached for t in leaves.values()):
        raise ValueError("compare_gradients: the loss does not depend on any parameter "
                         "(did loss_fn use the tensors it was given?)")
    loss.backward(inputs=own)


def _hand_grads(hand: Hand, params: dict, names: Names, tol: tuple,
                notes: list) -> tuple[Optional[float], dict, dict]:
    """The hand side's loss (or None), its gradients by row name, and row name ->
    ``(tensor, consumer)`` of the graph each one is the gradient of."""
    loss = None
    if callable(hand) and not isinstance(hand, Mapping):
        copies = {k: v.copy() for k, v in params.items()}
        result = hand(copies)
        moved = [k for k in params if not np.array_equal(copies[k], params[k], equal_nan=True)]
        if moved:
            notes.append(f"the hand derivation modified its params argument ({', '.join(moved)}); "
                         f"compared values were computed from the original params")
        if isinstance(result, tuple):
            if len(result) != 2 or not isinstance(result[1], Mapping):
                raise TypeError("compare_gradients: hand(params) must return a dict of gradients "
                                "or a (loss, dict) pair")
            loss, result = result
            loss = _numbers(loss, "the loss hand(params) returned")
            if loss.size != 1:
                raise ValueError(f"compare_gradients: hand(params) returned a loss of shape "
                                 f"{loss.shape}; it must be one number")
            loss = float(loss.reshape(-1)[0])
        hand = result
    if not isinstance(hand, Mapping):
        raise TypeError(f"compare_gradients: hand must be a dict name -> gradient, a callable "
                        f"params -> dict or (loss, dict), or None; got {type(hand).__name__}")
    grads, targets = {}, {}
    for key, g in hand.items():
        if isinstance(key, tuple):
            name, t, consumer = names.branch(key, *tol)
            name = f"{name} -> {key[1] if isinstance(key[1], str) else consumer.op.symbol}"
        else:
            (name, t), consumer = names.tensor(key), None
        if name in grads:
            raise ValueError(f"compare_gradients: the hand gradients give {name!r} twice")
        targets[name] = (t, consumer)
        arr = _numbers(g, f"the hand gradient for {name!r}")
        want = t.shape
        if arr.shape != want:
            hint = ""
            if arr.shape == want[::-1] and len(want) == 2:
                engine = names.walk.whole(t) if consumer is None else names.walk.branch(t, consumer)
                hint = (" (transposed?: it equals the engine's gradient transposed)"
                        if agree(arr, engine.T, *tol) else " (transposed?)")
            elif arr.size == t.size:
                hint = " (same number of elements: a missing or extra keepdims/reshape?)"
            elif len(arr.shape) < len(want) or arr.size < t.size:
                hint = " (summed over the wrong axis?)"
            what = "parameter" if name in params else "tensor"
            raise ValueError(f"compare_gradients: the hand gradient for {name!r} has shape "
                             f"{arr.shape}, but {what} {t.name!r} has shape {want}{hint}")
        grads[name] = arr
    return loss, grads, targets


def _numeric(loss_fn: Callable, params: dict, h: float) -> dict:
    """Central differences of ``loss_fn`` in every element of every parameter."""
    def f(values: dict) -> float:
        with no_grad():
            out = _engine_loss(loss_fn, {k: Tensor(v, name=k) for k, v in values.items()})
        return float(out.data.reshape(-1)[0])

    grads = {}
    for name, p in params.items():
        values = dict(params)
        values[name] = x = p.copy()  # perturbed in place by eval_numerical_gradient
        grads[name] = eval_numerical_gradient(lambda _, values=values: f(values), x, h=h)
    return grads


def _torch(loss: Tensor, tensors: dict, mode: Any, notes: list) -> tuple[Optional[float], Optional[dict]]:
    """PyTorch's loss and its gradients of ``tensors`` (name -> a tensor of the graph:
    parameters and intermediates alike)."""
    if mode is False or mode is None:
        return None, None
    if mode not in (True, "auto"):
        raise ValueError(f"compare_gradients: torch must be 'auto', True or False, got {mode!r}")
    try:
        import torch  # noqa: F401  (only: is PyTorch installed?)
    except ImportError:
        if mode is True:
            raise ImportError("compare_gradients: torch=True but PyTorch is not installed "
                              "(pip install 'tinygrad_lite[torch]', or pass torch='auto' to skip "
                              "the torch column)") from None
        notes.append("PyTorch is not installed: the torch comparison was skipped")
        return None, None
    try:
        out, _ = replay_in_torch(loss)
        found = torch_gradients(loss, list(tensors.values()))
    except Exception as e:  # an op without a torch twin, a user op, ...
        if mode is True:
            raise RuntimeError(f"compare_gradients: replaying the graph in PyTorch failed: "
                               f"{type(e).__name__}: {e}") from e
        notes.append(f"replaying the graph in PyTorch failed ({type(e).__name__}: {e}): "
                     f"the torch comparison was skipped")
        return None, None
    grads = {n: g.astype(np.float64) for n, g in zip(tensors, found)}
    return float(out.detach().reshape(-1)[0]), grads


def compare_gradients(loss_fn: Callable[[dict], Tensor], params: Mapping[str, Any], hand: Hand = None,
                      *, numeric: bool = True, torch: Any = "auto", h: float = 1e-5,
                      tolerances: Optional[Mapping[str, tuple]] = None,
                      title: str = "") -> GradientReport:
    """Compare the engine's gradient of ``loss_fn`` with a hand derivation, central
    differences and PyTorch, parameter by parameter.

    - ``loss_fn(tensors)``: builds the scalar loss from Tensor ops, given a dict
      name -> Tensor (leaves with ``requires_grad=True`` and ``name`` set); a tensor
      it uses from outside ``params`` keeps its ``.grad`` as it was;
    - ``params``: dict name -> array (copied to float64; never modified); anything
      but real numbers (a string, a ragged list) is an error naming the parameter;
    - ``hand``: the hand-derived gradients: a dict name -> array, or a callable
      ``params -> dict`` or ``params -> (loss, dict)`` (it gets copies). Keys may
      be the params' names or seed 002's ``dW1`` style. A gradient whose shape
      differs from its parameter's raises ``ValueError`` naming both shapes; a
      parameter it leaves out is a failing row;
    - ``numeric``: central differences with step ``h`` (a finite number > 0, else
      ``ValueError``) on the same ``loss_fn``;
    - ``torch``: ``"auto"`` replays the recorded graph in PyTorch when installed
      (skipped with a note otherwise), ``True`` requires it, ``False`` skips;
    - ``tolerances``: overrides of :data:`DEFAULT_TOLERANCES`, kind -> (rtol, atol),
      each a finite number >= 0 (else an error naming the kind and the tolerance).
    """
    if not is_number(h) or not math.isfinite(h) or h <= 0:
        raise ValueError(f"compare_gradients: h (the central-difference step) must be a finite "
                         f"number > 0, got {h!r}")
    notes: list = []
    tol = _tolerances(tolerances)
    params = _as_params(params, notes)

    # engine: every gradient from one pure walk; backward() too, so the report's graph
    # carries its gradients in .grad for diagrams
    leaves = {k: Tensor(v.copy(), requires_grad=True, name=k) for k, v in params.items()}
    loss = _engine_loss(loss_fn, leaves)
    if not loss.requires_grad:
        raise ValueError("compare_gradients: the loss does not depend on any parameter "
                         "(did loss_fn use the tensors it was given?)")
    walk = EngineGradients(loss)
    _backward_own_nodes(loss, leaves)
    for k, t in leaves.items():
        if not walk.reached(t):
            notes.append(f"{k!r} does not reach the loss: its engine gradient is taken as zeros")
    losses: dict = {"engine": float(loss.data.reshape(-1)[0]), "hand": None, "torch": None}

    # what is compared: the parameters, then what the hand side names, in backward order
    targets = {k: (t, None) for k, t in leaves.items()}
    others: dict = {}
    if hand is not None:
        names = Names(loss, leaves, walk)
        losses["hand"], others["hand"], given = _hand_grads(hand, params, names, tol["hand"], notes)
        extra = {k: v for k, v in given.items() if k not in targets}
        far = len(walk.order)
        order = lambda k: tuple(walk.position.get(id(x), far) if x is not None else -1  # noqa: E731
                                for x in extra[k])
        targets.update((k, extra[k]) for k in sorted(extra, key=order))
    if numeric:
        others["numeric"] = _numeric(loss_fn, params, h)
    whole = {k: t for k, (t, consumer) in targets.items() if consumer is None}
    torch_loss, torch_grads = _torch(loss, whole, torch, notes)
    if torch_grads is not None:
        losses["torch"], others["torch"] = torch_loss, torch_grads
    kinds = tuple(k for k in KINDS if k in others)

    rows = []
    for name, (t, consumer) in targets.items():
        role = "param" if name in leaves else ("branch" if consumer is not None else "intermediate")
        engine = walk.whole(t) if consumer is None else walk.branch(t, consumer)
        row = Row(name, t.shape, engine, role=role, tensor=t, consumer=consumer)
        for k in kinds:
            rtol, atol = tol[k]
            if name in others[k]:
                row.others[k] = others[k][name]
                row.comparisons[k] = Comparison.of(k, engine, others[k][name], rtol, atol)
            elif role == "param" or k == "hand":
                row.comparisons[k] = Comparison.absent(k, t.size, rtol, atol)
        rows.append(row)

    loss_checks = {}
    for k in ("hand", "torch"):
        if losses[k] is not None:
            rtol, atol = tol[k]
            loss_checks[k] = Comparison.of(k, np.array(losses["engine"]), np.array(losses[k]), rtol, atol)

    # a gradient below the absolute tolerance passes whatever the other side says
    if kinds:
        atol = min(tol[k][1] for k in kinds)
        tiny = [r.name for r in rows if r.engine.size and np.max(np.abs(r.engine)) <= atol]
        if tiny:
            notes.append(f"the engine gradient of {', '.join(tiny)} is at most {atol:g} here, so "
                         f"its comparisons pass on the absolute tolerance and cannot tell a right "
                         f"derivation from zeros: check on other data too")
    return GradientReport(rows, kinds, losses, loss_checks, tol, notes, loss, leaves, h, title,
                          walk=walk)
