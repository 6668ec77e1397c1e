"""Seeded inputs for the embedding exercises (ps01): random cases plus the edge cases.

Edge cases are where learner code usually breaks: zero vectors (cosine must be 0, not NaN),
a one-row batch, one dimension, rows of very different norms (dot and cosine rank them
differently), `k` larger than the corpus. Top-k and analogy cases have no near-ties, so
any correct sort gives the reference's order.
"""

from __future__ import annotations

import numpy as np

from course_lib.grading.checks import Case, random_cases

_GAP = 1e-6  # minimum difference between consecutive scores in top-k and analogy cases


def vector_pairs(seed: int, n: int) -> list[Case]:
    """Pairs of vectors `(d,), (d,)`: random directions and norms, plus edge cases."""
    edge = [
        Case(([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]), label="zero vector a"),
        Case(([1.0, -2.0], [0.0, 0.0]), label="zero vector b"),
        Case(([3.0, 4.0], [-6.0, -8.0]), label="opposite directions"),
        Case(([2.5], [-4.0]), label="one dimension"),
        Case(([1, 2, 3], [4, 5, 6]), label="integer lists"),
    ]

    def make(rng: np.random.Generator) -> Case:
        d = int(rng.integers(2, 17))
        return Case((_random_rows(rng, 1, d)[0], _random_rows(rng, 1, d)[0]), label="vectors")

    return random_cases(seed, n, make, edge_cases=edge)


def batch_pairs(seed: int, n: int) -> list[Case]:
    """Row-wise batches `(n, d), (n, d)`, some rows zero, plus a one-row batch."""
    edge = [
        Case(([[1.0, 2.0, 2.0]], [[2.0, 0.0, 1.0]]), label="one-row batch"),
        Case(([[0.0, 0.0], [1.0, 1.0]], [[3.0, 4.0], [0.0, 0.0]]), label="batch with zero rows"),
        Case(([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]],) * 2, label="batch against itself"),
    ]

    def make(rng: np.random.Generator) -> Case:
        rows, d = int(rng.integers(1, 7)), int(rng.integers(2, 17))
        a, b = _random_rows(rng, rows, d), _random_rows(rng, rows, d)  # (rows, d) each
        if rows > 1 and rng.random() < 0.5:
            zeroed = a if rng.random() < 0.5 else b
            zeroed[int(rng.integers(rows))] = 0.0
        return Case((a, b), label="batch")

    return random_cases(seed, n, make, edge_cases=edge)


def top_k_cases(seed: int, n: int) -> list[Case]:
    """`(query (d,), corpus (n, d), k)` with distinct cosine scores; some k exceed n."""
    query = np.array([1.0, 0.5, -0.3, 0.2])
    corpus = np.array(  # (5, 4); cosines with query: 0.98, -0.72, 0 (zero row), 0.49, 0.17
        [
            [0.9, 0.4, -0.2, 0.0],
            [-1.0, 0.2, 0.5, 0.3],
            [0.0, 0.0, 0.0, 0.0],
            [0.3, 1.0, 0.1, -0.5],
            [0.5, -0.5, 0.5, 0.5],
        ]
    )
    norms = np.array([[0.01], [100.0], [1.0], [10.0], [1000.0]])  # dot and cosine disagree
    edge = [
        Case((query, corpus[:1], 1), label="one-row corpus"),
        Case((query, corpus, 3), label="corpus with a zero row"),
        Case((query, corpus, 5), label="k equal to the corpus size"),
        Case((query, corpus, 8), label="k larger than the corpus"),
        Case((query, corpus * norms, 5), label="rows of very different norms"),
    ]

    def make(rng: np.random.Generator) -> Case:
        while True:
            rows, d = int(rng.integers(1, 13)), int(rng.integers(2, 9))
            query, corpus = rng.standard_normal(d), _random_rows(rng, rows, d)
            if _distinct(_cosine(query, corpus)):
                return Case((query, corpus, int(rng.integers(1, rows + 3))), label="search")

    return random_cases(seed, n, make, edge_cases=edge)


def analogy_cases(seed: int, n: int) -> list[Case]:
    """`(a, b, c, vocab)` over random vocabularies with one clear answer.

    Half of them have `b` close to `a`, so `b - a + c` is nearest to `c` itself unless the
    query words are excluded.
    """

    def make(rng: np.random.Generator) -> Case:
        while True:
            size, d = int(rng.integers(6, 21)), int(rng.integers(3, 13))
            vectors = rng.standard_normal((size, d))  # (size, d)
            ia, ib, ic = (int(i) for i in rng.choice(size, 3, replace=False))
            near = rng.random() < 0.5
            if near:
                vectors[ib] = vectors[ia] + 0.1 * rng.standard_normal(d)
            others = [i for i in range(size) if i not in (ia, ib, ic)]
            scores = _cosine(vectors[ib] - vectors[ia] + vectors[ic], vectors[others])
            if _clear_winner(scores):
                vocab = {f"w{i:02d}": vectors[i] for i in range(size)}
                label = "b close to a" if near else "analogy"
                return Case((f"w{ia:02d}", f"w{ib:02d}", f"w{ic:02d}", vocab), label=label)

    return random_cases(seed, n, make)


def _random_rows(rng: np.random.Generator, rows: int, d: int) -> np.ndarray:
    """`(rows, d)` Gaussian rows scaled by norms spread over 1e-2 … 1e2."""
    return rng.standard_normal((rows, d)) * 10.0 ** rng.uniform(-2, 2, size=(rows, 1))


def _cosine(query: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """`(d,), (n, d) -> (n,)`, 0 for zero rows."""
    query, corpus = np.asarray(query, float), np.atleast_2d(np.asarray(corpus, float))
    norms = np.linalg.norm(corpus, axis=-1) * np.linalg.norm(query)  # (n,)
    return np.where(norms > 0, corpus @ query / np.where(norms > 0, norms, 1.0), 0.0)


def _distinct(scores: np.ndarray) -> bool:
    return scores.size < 2 or bool(np.min(np.diff(np.sort(scores))) > _GAP)


def _clear_winner(scores: np.ndarray) -> bool:
    top_two = np.sort(scores)[-2:]
    return scores.size < 2 or bool(top_two[1] - top_two[0] > _GAP)
