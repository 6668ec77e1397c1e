"""Known mistakes in ps13's chunking, retrieval and recall@k, for the grader's misconception hints.

Each is called as ps13's tests call their reference: `(text, size, overlap) -> list[str]`,
`(queries, corpus, k) -> ids (q, k)`, `(retrieved, relevant, k) -> float`. When a learner's
output on the case that failed equals one of these, the feedback names the mistake
(autograder.misconception).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from course_lib.embeddings.similarity import normalize


def chunk_without_overlap(text: str, size: int, overlap: int) -> list[str]:
    """Windows that step by `size`: the overlap is ignored."""
    return [text[start : start + size] for start in range(0, len(text), size)]


def chunk_with_tail_windows(text: str, size: int, overlap: int) -> list[str]:
    """Windows every `size - overlap` up to the end, including those that lie inside the
    window that already reached the end."""
    return [text[start : start + size] for start in range(0, len(text), size - overlap)]


def retrieve_by_dot_product(queries: np.ndarray, corpus: np.ndarray, k: int) -> np.ndarray:
    """Rows ranked by the raw dot product, so long rows win, instead of the cosine."""
    scores = np.atleast_2d(queries) @ np.atleast_2d(corpus).T  # (q, n)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def retrieve_least_similar(queries: np.ndarray, corpus: np.ndarray, k: int) -> np.ndarray:
    """The cosines sorted ascending: the k least similar rows."""
    scores = normalize(np.atleast_2d(queries)) @ normalize(np.atleast_2d(corpus)).T  # (q, n)
    return np.argsort(scores, axis=1, kind="stable")[:, :k]


def _recall(retrieved: np.ndarray, relevant: Sequence[set[int]], k: int, denominator) -> float:
    per_query = [
        len({int(i) for i in row[:k]} & set(rel)) / denominator(k, rel)
        for row, rel in zip(retrieved, relevant, strict=True)
    ]
    return float(np.mean(per_query))


def recall_divided_by_k(retrieved: np.ndarray, relevant: Sequence[set[int]], k: int) -> float:
    """Found / k: precision@k, not recall."""
    return _recall(retrieved, relevant, k, lambda k, rel: k)


def recall_uncapped(retrieved: np.ndarray, relevant: Sequence[set[int]], k: int) -> float:
    """Found / |relevant| without the cap min(k, |relevant|), so 1.0 is out of reach for k
    below the number of relevant ids."""
    return _recall(retrieved, relevant, k, lambda k, rel: len(rel))
