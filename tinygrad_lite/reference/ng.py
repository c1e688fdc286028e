"""Seed 002: the two-layer net of "Understanding formulas for backpropagation"
(Andrew Ng's notation in the post, row layout in its code)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._common import data, like, unpack


def initialize_he_weights(l0: int, l1: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Seed 002's ``initalize_he_weights``: He initialisation for a layer from ``l0``
    to ``l1`` units, ``w = randn(l0, l1) * sqrt(2 / l0)`` and ``b = zeros((1, l1))``.

    ``rng``: None draws from ``np.random`` (as the seed does, so ``np.random.seed``
    works); an int seeds a private ``np.random.RandomState``; a ``RandomState`` or
    ``Generator`` is used as is.
    """
    if rng is None:
        draw = np.random.randn(l0, l1)
    elif isinstance(rng, (int, np.integer)):
        draw = np.random.RandomState(int(rng)).randn(l0, l1)
    elif isinstance(rng, np.random.Generator):
        draw = rng.standard_normal((l0, l1))
    else:
        draw = rng.randn(l0, l1)
    w = draw * np.sqrt(2. / l0)
    b = np.zeros((1, l1))
    return w, b


initalize_he_weights = initialize_he_weights  # the seed's spelling


def init_ng_params(n: int, h1: int, K: int, rng: Any = None) -> dict[str, np.ndarray]:
    """Seed 002's ``main``: ``W1, b1 = he(n, h1)`` then ``W2, b2 = he(h1, K)``.
    With an int ``rng`` both layers draw from one ``RandomState(rng)``."""
    if isinstance(rng, (int, np.integer)):
        rng = np.random.RandomState(int(rng))
    W1, b1 = initialize_he_weights(n, h1, rng)
    W2, b2 = initialize_he_weights(h1, K, rng)
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def ng_two_layer(params: Mapping[str, Any], X: Any, y: Any,
                 lambd: float = 1e-3) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and hand-derived gradients of seed 002's ``NeuralNetwork``
    (``forward_prop`` + ``compute_cost`` + ``backward_prop``).

    Shapes (the code's row layout): X (m, n), W1 (n, h1), b1 (1, h1), W2 (h1, K),
    b2 (1, K), y (m,). Biases of shape (h1,) also work; each gradient comes back in
    its parameter's shape. Returned keys are the params' ``W1, b1, W2, b2`` (the seed
    names them ``dW1, db1, dW2, db2``). ``lambd`` defaults to the seed's ``1e-3``.

    The post writes one example per *column*, ``Z = W A + b``; the code stores one
    example per *row* and so multiplies on the right. Line by line (code ↔ post,
    where the post's ``W[l]`` is the code's ``W{l}.T`` and its ``A[l]`` the code's
    ``a{l}.T``)::

        a0 = X                                  A[0] = X.T               (n, m)
        z1 = a0 @ W1 + b1                       Z[1] = W[1] A[0] + b[1]
        a1 = max(0, z1)                         A[1] = ReLU(Z[1])
        z2 = a1 @ W2 + b2                       Z[2] = W[2] A[1] + b[2]
        probs = exp(z2) / sum(exp(z2), axis=1)  f_j = e^{Z_j} / sum_c e^{Z_c}
        J = sum(-log probs[i, y_i]) / m         L_i = -(1/m) log f_{y_i}
            + 0.5 lambd (|W1|^2 + |W2|^2)       (the code's L2; the post omits it)
        dz2 = (probs - onehot(y)) / m           dL/dZ[2] = (1/m)(f_k - delta_{k, y_i})  (eq. 1)
        dW2 = a1.T @ dz2 + lambd W2             dZ[2]/dW[2] = A[1].T
        db2 = sum(dz2, axis=0, keepdims=True)   dZ[2]/db[2] = I, summed over examples
        dz1 = (dz2 @ W2.T) * (a1 > 0)           dZ[2]/dA[1] = W[2]; ReLU: a 0/1 diagonal
        dW1 = a0.T @ dz1 + lambd W1             (the same three rules, one layer down)
        db1 = sum(dz1, axis=0, keepdims=True)

    The ``0.5`` of the L2 term cancels the 2 of the derivative: ``+ lambd * W``.
    ``exp`` is taken of ``z2 - max(z2)`` per row (softmax does not change; the seed
    leaves the shift out). The seed writes ``dz2 = probs; dz2[...] -= 1`` into its
    cached ``probs``; here ``probs`` is a fresh array, so nothing of the caller's moves.
    """
    who = "ng_two_layer"
    W1, b1, W2, b2 = unpack(params, who)
    X, y = data(X, y, who, n_axis=0)
    m = X.shape[0]

    # forward_prop
    a0 = X
    z1 = np.dot(a0, W1) + b1
    a1 = np.maximum(0, z1)
    z2 = np.dot(a1, W2) + b2
    scores = z2
    exp_scores = np.exp(scores - np.max(scores, axis=1, keepdims=True))
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)

    # compute_cost
    data_loss = np.sum(-np.log(probs[np.arange(m), y]) / m)
    reg_loss = 0.5 * lambd * np.sum(W1 * W1) + 0.5 * lambd * np.sum(W2 * W2)
    J = data_loss + reg_loss

    # backward_prop
    dz2 = probs.copy()
    dz2[np.arange(m), y] -= 1
    dz2 /= m
    dW2 = np.dot(a1.T, dz2) + lambd * W2
    db2 = np.sum(dz2, axis=0, keepdims=True)
    dz1 = np.dot(dz2, W2.T)
    dz1 = dz1 * (a1 > 0)
    dW1 = np.dot(a0.T, dz1) + lambd * W1
    db1 = np.sum(dz1, axis=0, keepdims=True)

    grads = {"W1": dW1, "b1": like(db1, b1), "W2": dW2, "b2": like(db2, b2)}
    return float(J), grads
