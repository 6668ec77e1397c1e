"""Similarity between embeddings: dot product, cosine, pairwise matrices and top-k search.

All functions take NumPy arrays (or anything `np.asarray` accepts) and work on a single
vector `(d,)` or a batch `(n, d)`. Cosine similarity with a zero vector is defined as 0.
"""

from __future__ import annotations

import numpy as np


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Dot product along the last axis: `(d,),(d,) -> float`, `(n, d),(n, d) -> (n,)`."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    _check_last_dim(a, b)
    out = np.sum(a * b, axis=-1)
    return float(out) if out.ndim == 0 else out


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale each row to unit L2 norm; zero rows stay zero. `(..., d) -> (..., d)`."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > eps, x / np.maximum(norm, eps), 0.0)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Cosine of the angle between `a` and `b` along the last axis, 0 when either is zero.

    `(d,),(d,) -> float`; `(n, d),(n, d) -> (n,)` row by row.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    _check_last_dim(a, b)
    out = np.sum(normalize(a) * normalize(b), axis=-1)
    return float(out) if out.ndim == 0 else out


def pairwise_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All dot products: `(n, d),(m, d) -> (n, m)`."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    _check_last_dim(a, b)
    return a @ b.T


def pairwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All cosine similarities: `(n, d),(m, d) -> (n, m)`, zero rows give 0."""
    return pairwise_dot(normalize(a), normalize(b))


def top_k(query: np.ndarray, corpus: np.ndarray, k: int, metric: str = "cosine"):
    """The `k` corpus rows most similar to `query`, best first.

    query `(d,)`, corpus `(n, d)` -> (indices `(k,)`, scores `(k,)`). Ties keep corpus order.
    `metric` is "cosine" or "dot". `k` larger than `n` returns all `n` rows.
    """
    if metric not in ("cosine", "dot"):
        raise ValueError(f"metric must be 'cosine' or 'dot', got {metric!r}")
    sim = pairwise_cosine if metric == "cosine" else pairwise_dot
    scores = sim(np.asarray(query)[None, :], corpus)[0]  # (n,)
    order = np.argsort(-scores, kind="stable")[: max(0, int(k))]
    return order, scores[order]


def _check_last_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[-1:] != b.shape[-1:]:
        raise ValueError(
            f"embeddings must have the same last dimension: got shapes {a.shape} and {b.shape}"
        )
