"""Seeded inputs for the retrieval exercises (ps13): chunking, top-k retrieval, recall@k, prompts.

Edge cases are where learner code usually breaks: an empty text, a text shorter than one
chunk, a text whose last window ends exactly at the end (no empty or duplicate tail chunk),
`overlap = size - 1`; `k` larger than the corpus, rows of very different norms (cosine, not
dot product), a zero row; more relevant ids than `k` (capped recall); no passages (the
closed-book prompt), passages with stray whitespace. Retrieval cases have no near-ties, so
any correct sort gives the reference's order.
"""

from __future__ import annotations

import numpy as np

from course_lib.grading.checks import Case, random_cases

_GAP = 1e-6  # minimum gap between the cosine scores of one query in retrieval cases
_WORDS = [
    "the",
    "for",
    "loop",
    "while",
    "pass",
    "return",
    "yield",
    "break",
    "class",
    "def",
    "import",
    "raise",
    "try",
    "with",
]


def chunk_cases(seed: int, n: int) -> list[Case]:
    """`(text, size, overlap)` with `0 <= overlap < size`."""
    edge = [
        Case(("", 5, 0), label="empty text"),
        Case(("short", 10, 3), label="text shorter than one chunk"),
        Case(("abcdefghij", 5, 0), label="text of exactly two chunks"),
        Case(("abcdefghij", 4, 2), label="last window ends at the end"),
        Case(("abcdefghijk", 4, 3), label="overlap = size - 1"),
        Case(("abc", 1, 0), label="one character per chunk"),
    ]

    def make(rng: np.random.Generator) -> Case:
        text = " ".join(rng.choice(_WORDS, int(rng.integers(1, 60))))
        size = int(rng.integers(1, 80))
        return Case((text, size, int(rng.integers(0, size))), label="text")

    return random_cases(seed, n, make, edge_cases=edge)


def retrieve_cases(seed: int, n: int) -> list[Case]:
    """`(queries (q, d), corpus (n, d), k)` with distinct cosine scores per query."""
    corpus = np.array(  # (4, 3); cosines with [1, 0, 0]: 0.96, 0 (zero row), -0.71, 0.58
        [[3.0, 0.9, 0.0], [0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.1, 0.1, 0.1]]
    )
    queries = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.2]])
    norms = np.array([[0.01], [1.0], [100.0], [1000.0]])  # dot and cosine disagree
    edge = [
        Case((queries[:1], corpus[:1], 1), label="one query, one row"),
        Case((queries, corpus, 2), label="corpus with a zero row"),
        Case((queries, corpus * norms, 4), label="rows of very different norms"),
        Case((queries, corpus, 6), label="k larger than the corpus"),
    ]

    def make(rng: np.random.Generator) -> Case:
        while True:
            rows, d, q = int(rng.integers(1, 15)), int(rng.integers(2, 9)), int(rng.integers(1, 5))
            corpus = rng.standard_normal((rows, d)) * 10.0 ** rng.uniform(-2, 2, (rows, 1))
            queries = rng.standard_normal((q, d))
            if all(_distinct(_cosines(x, corpus)) for x in queries):
                return Case((queries, corpus, int(rng.integers(1, rows + 3))), label="search")

    return random_cases(seed, n, make, edge_cases=edge)


def recall_cases(seed: int, n: int) -> list[Case]:
    """`(retrieved (q, m) ids, relevant: list of sets, k)` with `1 <= k <= m`."""
    retrieved = np.array([[4, 2, 7, 1], [0, 3, 5, 6]])
    edge = [
        Case((retrieved, [{2}, {6}], 1), label="nothing relevant at rank 1"),
        Case((retrieved, [{2}, {6}], 4), label="one relevant id each, found"),
        Case((retrieved, [{4, 2, 7, 9}, {0, 3}], 2), label="more relevant ids than k: 1.0"),
        Case((retrieved, [{8, 9}, {3, 5}], 3), label="some never retrieved"),
    ]

    def make(rng: np.random.Generator) -> Case:
        q, n_ids = int(rng.integers(1, 6)), int(rng.integers(4, 30))
        m = int(rng.integers(1, min(n_ids, 10) + 1))
        retrieved = np.stack([rng.permutation(n_ids)[:m] for _ in range(q)])  # (q, m)
        relevant = [
            {int(i) for i in rng.choice(n_ids, int(rng.integers(1, 5)), replace=False)}
            for _ in range(q)
        ]
        return Case((retrieved, relevant, int(rng.integers(1, m + 1))), label="rankings")

    return random_cases(seed, n, make, edge_cases=edge)


def prompt_cases(seed: int, n: int) -> list[Case]:
    """`(question, passages, sources)`: one source per passage."""
    edge = [
        Case(("Why is the sky blue?", [], []), label="no passages: the closed-book prompt"),
        Case(
            ("  What does pass do? ", ["\n pass does nothing. \n"], ["pass:0-20"]),
            label="whitespace around the question and the passage",
        ),
        Case(
            ("Which exception?", ["a", "b", "c"], ["x:0-1", "y:0-1", "z:0-1"]),
            label="three passages",
        ),
    ]

    def make(rng: np.random.Generator) -> Case:
        k = int(rng.integers(1, 5))
        passages = [" ".join(rng.choice(_WORDS, int(rng.integers(1, 8)))) for _ in range(k)]
        sources = [f"{rng.choice(_WORDS)}:{10 * i}-{10 * i + 9}" for i in range(k)]
        question = " ".join(rng.choice(_WORDS, 4)).capitalize() + "?"
        return Case((question, passages, sources), label="prompt")

    return random_cases(seed, n, make, edge_cases=edge)


def _cosines(query: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """`(d,), (n, d) -> (n,)`, 0 for zero rows."""
    norms = np.linalg.norm(corpus, axis=-1) * np.linalg.norm(query)  # (n,)
    return np.where(norms > 0, corpus @ query / np.where(norms > 0, norms, 1.0), 0.0)


def _distinct(scores: np.ndarray) -> bool:
    return scores.size < 2 or bool(np.min(np.diff(np.sort(scores))) > _GAP)
