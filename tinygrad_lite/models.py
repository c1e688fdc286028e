"""``TwoLayerNet``: cs231n's two-layer net (assignment 1), built from ``nn`` modules.

The call signatures and numbers are cs231n's (seeds 000 and 001), so the
notebook's code runs unchanged::

    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    np.random.seed(1)
    X, y = 10 * np.random.randn(5, 4), np.array([0, 1, 2, 2, 1])
    scores = net.loss(X)                    # (5, 3) ndarray
    loss, grads = net.loss(X, y, reg=0.05)  # 1.30378789133..., grads['W1'], ...
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100)

The gradients come from the engine (``loss.backward()``), not hand formulas.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import MutableMapping
from typing import Any, Dict, Iterator, Tuple, Union

import numpy as np

from ._checks import is_integer, is_number
from ._files import read_npz
from .autograd import is_traced, no_grad
from .compiler import compile as compile_step
from .functional import cross_entropy, l2_penalty
from .nn import Linear, Module, ReLU
from .optim import SGD
from .tensor import Tensor

__all__ = ["TwoLayerNet", "ParamsView", "Progress", "TrainingDivergedError"]

_NAMES = ("W1", "b1", "W2", "b2")


class ParamsView(MutableMapping):
    """The live ``params`` dict of a model: ``params['W1']`` *is* the module's weight
    array (in-place updates are seen both ways), and ``params['W1'] = arr`` (same
    shape) makes ``arr`` the module's weight. Keys cannot be added or removed."""

    def __init__(self, tensors: Dict[str, Tensor], owner: str) -> None:
        self._tensors = tensors
        self._owner = owner

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._tensors[key].data
        except KeyError:
            raise KeyError(f"{self._owner}.params has no {key!r}; keys are {list(self._tensors)}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._tensors:
            raise KeyError(f"{self._owner}.params has no {key!r} (keys are {list(self._tensors)}); "
                           f"parameters cannot be added")
        t = self._tensors[key]
        arr = value.data if isinstance(value, Tensor) else value
        if arr is t.data:  # `params['W1'] -= lr * dW1` assigns the same array back
            return
        arr = np.asarray(arr)
        if arr.shape != t.shape:
            raise ValueError(f"{self._owner}.params[{key!r}]: expected shape {t.shape}, got {arr.shape}")
        if arr.dtype.kind in "iub":
            arr = arr.astype(t.dtype)
        elif arr.dtype.kind != "f":
            raise TypeError(f"{self._owner}.params[{key!r}]: expected a floating-point array, "
                            f"got dtype {arr.dtype}")
        if not arr.flags.writeable:  # the optimizer updates in place
            arr = arr.copy()
        t.data = arr
        t.grad = None

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"{self._owner}.params: parameters cannot be removed")

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def copy(self) -> Dict[str, np.ndarray]:
        """A plain dict of copies (a snapshot, e.g. of the best model)."""
        return {k: t.data.copy() for k, t in self._tensors.items()}

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: array{t.shape}" for k, t in self._tensors.items()) + "}"


class Progress:
    """A tiny progress bar on stderr (no dependency): redrawn at most ~10 times a second."""

    def __init__(self, total: int, desc: str = "", width: int = 30, stream: Any = None) -> None:
        self.total, self.desc, self.width = max(int(total), 1), desc, width
        self.stream = stream if stream is not None else sys.stderr
        self.start = self.last = time.monotonic()
        self.info = ""
        self.drawn = False  # nothing on the line yet

    def update(self, n: int, info: str = "", force: bool = False) -> None:
        self.info = info or self.info
        now = time.monotonic()
        if not force and now - self.last < 0.1 and n < self.total:
            return
        self.last = now
        frac = min(n / self.total, 1.0)
        fill = int(round(frac * self.width))
        rate = n / max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.desc}[{'#' * fill}{'.' * (self.width - fill)}] "
                          f"{n}/{self.total} {rate:6.0f} it/s {self.info}  ")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        self.update(self.total, force=True)
        self.stream.write("\n")
        self.stream.flush()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class TrainingDivergedError(FloatingPointError):
    """``TwoLayerNet.train`` met a loss that is not finite (nan or inf): ``iteration``,
    ``loss`` and ``learning_rate`` (the one given to ``train``) say where. The
    parameters were put back as they were before ``train``."""

    def __init__(self, message: str, iteration: int, loss: float, learning_rate: float) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.loss = loss
        self.learning_rate = learning_rate


class TwoLayerNet(Module):
    """cs231n's two-layer net: ``fc1`` (Linear D -> H), ``relu``, ``fc2`` (Linear H -> C),
    softmax cross-entropy loss, L2 on the weights.

    ``params`` is a live dict ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,)
    of the modules' arrays; the parameter tensors are named ``W1``... too (in
    ``named_parameters``, ``state_dict`` and diagrams).

    Initialisation as cs231n: ``W1 = std * randn(D, H)`` then ``W2 = std * randn(H, C)``
    from ``np.random``, biases zero. ``dtype`` (default float64) is the parameters'
    type: with ``float32`` and float32 data the whole step runs in float32.

    L2 convention: ``l2_half=False`` (default, seed 000 / today's assignment) adds
    ``reg * (sum(W1**2) + sum(W2**2))`` (``dW += 2 * reg * W``); ``l2_half=True``
    (seed 001's notebook) adds ``0.5 * reg * (...)`` (``dW += reg * W``).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4,
                 l2_half: bool = False, dtype: Any = np.float64) -> None:
        super().__init__()
        if np.dtype(dtype).kind != "f":
            raise TypeError(f"TwoLayerNet: dtype must be a floating type, got {np.dtype(dtype)}")
        self._alias_parameters({"fc1.W": "W1", "fc1.b": "b1", "fc2.W": "W2", "fc2.b": "b2"})
        self.fc1 = Linear(input_size, hidden_size, std=std, dtype=dtype)  # draws W1 first, as cs231n
        self.relu = ReLU()
        self.fc2 = Linear(hidden_size, output_size, std=std, dtype=dtype)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.l2_half = bool(l2_half)
        named = dict(self.named_parameters())
        self.__dict__["_by_name"] = {k: named[k] for k in _NAMES}
        self.__dict__["_params_view"] = ParamsView(self._by_name, "TwoLayerNet")

    @classmethod
    def from_file(cls, path: Any, l2_half: bool = False) -> "TwoLayerNet":
        """A new net holding the parameters ``save(path)`` wrote, its sizes and dtype
        read from the arrays (``l2_half`` is not saved: pass it again). Draws nothing:
        the global ``np.random`` state is left as it was. ``TwoLayerNet(D, H, C).load(path)``
        does the same into a net of known sizes (``load`` returns the net)."""
        return cls._from_arrays(read_npz(path, "TwoLayerNet.from_file"), l2_half,
                                f"TwoLayerNet.from_file: {path}")

    @classmethod
    def from_state_dict(cls, state: Any, l2_half: bool = False) -> "TwoLayerNet":
        """A new net holding copies of ``state``'s arrays ``W1``, ``b1``, ``W2``, ``b2``
        (what ``state_dict()`` returns), its sizes and dtype read from them. Draws
        nothing: the global ``np.random`` state is left as it was."""
        if not hasattr(state, "keys"):
            raise TypeError(f"TwoLayerNet.from_state_dict: expected a mapping of name -> array, "
                            f"got {type(state).__name__}")
        return cls._from_arrays({k: np.asarray(state[k]) for k in state.keys()}, l2_half,
                                "TwoLayerNet.from_state_dict: the state")

    @classmethod
    def _from_arrays(cls, state: Dict[str, np.ndarray], l2_half: bool, where: str) -> "TwoLayerNet":
        if set(state) != set(_NAMES):
            raise ValueError(f"{where} holds {sorted(state)}, expected {list(_NAMES)}")
        W1, W2 = state["W1"], state["W2"]
        if W1.ndim != 2 or W2.ndim != 2 or W1.shape[1] != W2.shape[0]:
            raise ValueError(f"{where}: W1 {W1.shape} and W2 {W2.shape} are not (D, H) and (H, C)")
        rng_state = np.random.get_state()
        try:
            net = cls(W1.shape[0], W1.shape[1], W2.shape[1], l2_half=l2_half,
                      dtype=W1.dtype if W1.dtype.kind == "f" else np.float64)
        finally:
            np.random.set_state(rng_state)
        return net.load_state_dict(state)

    @property
    def params(self) -> ParamsView:
        return self._params_view

    @params.setter
    def params(self, value: Any) -> None:
        if not hasattr(value, "keys") or set(value.keys()) != set(_NAMES):
            raise ValueError(f"TwoLayerNet.params: assign a mapping with exactly the keys {list(_NAMES)}")
        for k in _NAMES:
            self._params_view[k] = value[k]

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, " \
               f"output_size={self.output_size}, l2_half={self.l2_half}"

    # ------------------------------------------------------------ forward and loss
    def forward(self, X: Any) -> Tensor:
        return self.fc2(self.relu(self.fc1(X)))

    def _check_X(self, X: Any, who: str) -> Any:
        if isinstance(X, Tensor):
            arr = X.data
        else:
            arr = X if isinstance(X, np.ndarray) or is_traced(X) else np.asarray(X)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"TwoLayerNet.{who}: X must be a numeric array, got dtype {arr.dtype}")
            X = arr
        if arr.ndim != 2 or arr.shape[1] != self.input_size:
            hint = ""
            if arr.ndim > 2 and int(np.prod(arr.shape[1:])) == self.input_size:
                hint = "; flatten images to rows first: X.reshape(len(X), -1)"
            raise ValueError(f"TwoLayerNet.{who}: X must have shape (N, {self.input_size}), "
                             f"got {arr.shape}{hint}")
        return X

    def loss_tensor(self, X: Any, y: Any, reg: float = 0.0) -> Tensor:
        """The loss as a Tensor (the graph's root, e.g. for ``viz``): mean softmax
        cross-entropy of ``forward(X)`` against ``y`` plus the L2 term."""
        X = self._check_X(X, "loss")
        if not isinstance(X, Tensor):
            X = Tensor(X, name="X")  # labelled as in the posts' diagrams
        scores = self.forward(X)  # fc1, relu, fc2: each a module box in diagrams
        loss = cross_entropy(scores, y)
        if reg:
            loss = loss + l2_penalty([self.fc1.W, self.fc2.W], reg, half=self.l2_half)
        return loss

    def loss(self, X: Any, y: Any = None, reg: float = 0.0) -> Union[np.ndarray, Tuple[float, Dict[str, np.ndarray]]]:
        """cs231n's ``loss``: the scores (N, C) ndarray when ``y`` is None, else
        ``(loss, grads)`` with ``grads`` keyed like ``params``."""
        if y is None:
            X = self._check_X(X, "loss")
            with no_grad():
                return self.forward(X).data
        _check_reg(reg, "loss")
        by_name = self._by_name
        for t in by_name.values():
            t.grad = None
        loss = self.loss_tensor(X, y, reg)
        loss.backward()
        return float(loss.data), {k: t.grad for k, t in by_name.items()}

    def predict(self, X: Any) -> np.ndarray:
        """The predicted class of each row of ``X`` (no graph is recorded)."""
        X = self._check_X(X, "predict")
        with no_grad():
            return np.argmax(self.forward(X).data, axis=1)

    # ------------------------------------------------------------ training
    def train(self, X: Any = True, y: Any = None, X_val: Any = None, y_val: Any = None,
              learning_rate: float = 1e-3, learning_rate_decay: float = 0.95, reg: float = 5e-6,
              num_iters: int = 100, batch_size: int = 200, verbose: bool = False,
              compile: bool = False) -> Any:  # noqa: A002  (tl.compile's name)
        """cs231n's SGD loop. Each iteration samples ``batch_size`` rows *with
        replacement* (``np.random.choice``), takes a step, and once per epoch
        (``it % max(num_train / batch_size, 1) == 0``, which includes it=0) records
        the batch and validation accuracy and multiplies the learning rate by
        ``learning_rate_decay``. Returns ``{'loss_history', 'train_acc_history',
        'val_acc_history'}``. ``verbose`` draws a progress bar on a terminal (else
        prints the loss every 100 iterations, as cs231n).

        A loss that is not finite (a learning rate too large: the weights overflow)
        stops training at once with ``TrainingDivergedError`` (a ``FloatingPointError``)
        naming the iteration, instead of NumPy's overflow warnings and a net of nans;
        the parameters are put back as they were before the call.

        ``compile=True`` traces the step (forward, backward, update) once with
        ``tl.compile`` and replays it at every iteration without building a graph: the
        same numbers (loss history, accuracies, parameters, gradients), faster.

        ``net.train()`` / ``net.train(False)`` without data set the module mode
        (``nn.Module.train``)."""
        if isinstance(X, bool):
            return Module.train(self, X)
        X = self._check_X(X, "train")
        y = _check_y(y, len(X), self.output_size, "y")
        if X_val is None or y_val is None:
            raise ValueError("TwoLayerNet.train: pass the validation data X_val, y_val "
                             "(cs231n's signature; use X, y again if there is none)")
        X_val = self._check_X(X_val, "train")
        y_val = _check_y(y_val, len(X_val), self.output_size, "y_val")
        for name, v in (("num_iters", num_iters), ("batch_size", batch_size)):
            if not is_integer(v) or v < (name == "batch_size"):
                raise ValueError(f"TwoLayerNet.train: {name} must be an int >= "
                                 f"{int(name == 'batch_size')}, got {v!r}")
        _check_reg(reg, "train")
        num_train = X.shape[0]
        if num_train == 0:
            raise ValueError("TwoLayerNet.train: X has no rows")
        iterations_per_epoch = max(num_train / batch_size, 1)
        opt = SGD(self.parameters(), lr=learning_rate)
        step = self._compiled_step(opt, reg) if compile else None
        loss_history, train_acc_history, val_acc_history = [], [], []
        bar = Progress(num_iters, "train ") if verbose and _is_terminal(sys.stderr) else None
        before = self.state_dict()
        # Overflow on the way to a non-finite loss is reported once, below, not as warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for it in range(num_iters):
                indices = np.random.choice(num_train, batch_size)
                X_batch, y_batch = X[indices], y[indices]
                if step is not None:  # forward, backward and update, replayed
                    loss = float(step(X_batch, y_batch).data)
                else:
                    loss, _ = self.loss(X_batch, y=y_batch, reg=reg)
                if not math.isfinite(loss):
                    self._diverged(before, bar, it, num_iters, loss, learning_rate, opt.lr)
                loss_history.append(loss)
                if step is None:
                    opt.step()  # w -= lr * dw, in place
                if bar is not None:
                    bar.update(it + 1, f"loss {loss:.4f}")
                elif verbose and it % 100 == 0:
                    print(f"iteration {it} / {num_iters}: loss {loss:f}")
                if it % iterations_per_epoch == 0:
                    train_acc_history.append(float((self.predict(X_batch) == y_batch).mean()))
                    val_acc_history.append(float((self.predict(X_val) == y_val).mean()))
                    opt.lr = opt.lr * learning_rate_decay
            if num_iters and not all(np.isfinite(p.data).all() for p in self.parameters()):
                self._diverged(before, bar, num_iters, num_iters, math.nan, learning_rate, opt.lr)
        if bar is not None:
            bar.close()
        return {"loss_history": loss_history, "train_acc_history": train_acc_history,
                "val_acc_history": val_acc_history}

    def _compiled_step(self, opt: SGD, reg: float) -> Any:
        """``train``'s step as one ``tl.compile``'d function: ``loss``'s work, then the
        optimizer's update (after a non-finite loss ``train`` puts the parameters back)."""
        def step(X_batch: Any, y_batch: Any) -> Tensor:
            opt.zero_grad()
            loss = self.loss_tensor(X_batch, y_batch, reg)
            loss.backward()
            opt.step()
            return loss
        return compile_step(step)

    def _diverged(self, before: Dict[str, np.ndarray], bar: Any, it: int, num_iters: int,
                  loss: float, learning_rate: float, lr_now: float) -> None:
        self.load_state_dict(before)
        self.zero_grad()
        if bar is not None and bar.drawn:
            bar.stream.write("\n")  # end the progress line: the error starts on its own
        what = (f"the loss is {loss} at iteration {it} of {num_iters}" if it < num_iters
                else f"the parameters hold nan or inf after the last step ({num_iters} iterations)")
        rate = f"learning_rate {learning_rate:g}" + (f" (decayed to {lr_now:g})" if lr_now != learning_rate else "")
        raise TrainingDivergedError(
            f"TwoLayerNet.train: {what}: training diverged with {rate}; lower learning_rate. "
            f"The parameters are back to their values before train().", it, loss, learning_rate)


def _check_reg(reg: Any, who: str) -> None:
    if not is_number(reg):
        raise TypeError(f"TwoLayerNet.{who}: reg must be a number, got {type(reg).__name__}")


def _check_y(y: Any, n: int, classes: int, what: str, who: str = "TwoLayerNet.train") -> np.ndarray:
    if y is None:
        raise ValueError(f"{who}: {what} is required")
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{who}: {what} must hold integer class labels, got dtype {y.dtype} "
                        f"(use {what}.astype(int))")
    if y.shape != (n,):
        raise ValueError(f"{who}: {what} must have shape ({n},) to match the data, got {y.shape}")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"{who}: {what} has labels outside [0, {classes}) "
                         f"(min {y.min()}, max {y.max()})")
    return y
