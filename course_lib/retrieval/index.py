"""Vector indexes: exact cosine search, FAISS flat / IVF / HNSW, and recall@k.

Exact search scores the query against every stored vector, `O(n d)` per query; it is the
ground truth the approximate indexes are measured against. FAISS (Johnson, Douze & Jégou,
"Billion-scale similarity search with GPUs", 2019; Douze et al., "The Faiss library", 2024)
offers the same exhaustive search (`IndexFlatIP`), an inverted file that clusters the vectors
with k-means and scans only the `nprobe` nearest of `nlist` clusters (`IndexIVFFlat`, Jégou
et al. 2011), and a navigable small-world graph walked greedily from layer to layer
(`IndexHNSWFlat`, Malkov & Yashunin, TPAMI 2020). Every index here stores unit-length rows
and scores by inner product, so a score is a cosine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from course_lib.embeddings.similarity import normalize


class ExactIndex:
    """Exhaustive cosine search in NumPy: `search((q, d), k) -> scores (q, k), ids (q, k)`."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.vectors = np.zeros((0, dim), dtype=np.float32)  # (n, d), unit rows

    def __len__(self) -> int:
        return len(self.vectors)

    def add(self, vectors: np.ndarray) -> None:
        """Append `(m, d)` vectors; they get ids `len(self) ... len(self) + m - 1`."""
        vectors = _check_rows(vectors, self.dim)
        self.vectors = np.concatenate([self.vectors, normalize(vectors).astype(np.float32)])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` most similar stored rows per query, best first; ties keep id order."""
        queries = normalize(_check_rows(queries, self.dim)).astype(np.float32)  # (q, d)
        scores = queries @ self.vectors.T  # (q, n)
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (q, k)
        return np.take_along_axis(scores, ids, axis=1), ids


def retrieve(queries: np.ndarray, corpus: np.ndarray, k: int) -> np.ndarray:
    """Ids `(q, k)` of the `k` corpus rows `(n, d)` most cosine-similar to each query `(q, d)`,
    best first, ties broken by the lower id; `k > n` gives all `n`. Zero rows score 0."""
    corpus = np.atleast_2d(np.asarray(corpus, dtype=np.float64))  # (n, d)
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))  # (q, d)
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"queries and corpus must have the same width: {queries.shape} vs {corpus.shape}"
        )
    scores = normalize(queries) @ normalize(corpus).T  # (q, n)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


class FaissIndex:
    """A FAISS index over unit rows, scored by inner product (= cosine).

    `kind="flat"`: exact (`IndexFlatIP`). `"ivf"`: `IndexIVFFlat` with `nlist` k-means
    cells, trained on the first `add`, searching `nprobe` cells. `"hnsw"`: `IndexHNSWFlat`
    with `m` neighbours per node and search beam `ef_search`. `search` returns
    `scores (q, k), ids (q, k)` like `ExactIndex`; ids of missing results are -1.
    """

    KINDS = ("flat", "ivf", "hnsw")

    def __init__(
        self,
        dim: int,
        kind: str = "flat",
        *,
        nlist: int = 64,
        nprobe: int = 4,
        m: int = 16,
        ef_search: int = 32,
        seed: int = 0,
    ) -> None:
        import faiss

        if kind not in self.KINDS:
            raise ValueError(f"unknown FAISS index kind {kind!r}; valid: {', '.join(self.KINDS)}")
        self.dim, self.kind, self.nlist = dim, kind, nlist
        if kind == "flat":
            self.index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            self.quantizer = faiss.IndexFlatIP(dim)  # kept alive: the IVF index points to it
            self.index = faiss.IndexIVFFlat(self.quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            self.index.cp.seed = seed
            self.index.nprobe = nprobe
        else:
            self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efSearch = ef_search

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append `(m, d)` vectors (normalized here); an IVF index trains on its first batch."""
        vectors = np.ascontiguousarray(normalize(_check_rows(vectors, self.dim)), np.float32)
        if not self.index.is_trained:
            if len(vectors) < self.nlist:
                raise ValueError(
                    f"an IVF index with nlist={self.nlist} needs at least {self.nlist} vectors "
                    f"to train its k-means, got {len(vectors)}: add more or lower nlist"
                )
            self.index.train(vectors)
        self.index.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best stored rows per query: `scores (q, k)`, `ids (q, k)`, best first."""
        queries = np.ascontiguousarray(normalize(_check_rows(queries, self.dim)), np.float32)
        scores, ids = self.index.search(queries, k)
        return scores, ids


def recall_at_k(retrieved: np.ndarray, relevant: Sequence[set[int]], k: int) -> float:
    """Mean over queries of `|top-k ∩ relevant| / min(k, |relevant|)`.

    `retrieved (q, >= k)` holds ids best first; `relevant[i]` the ids that answer query i.
    Dividing by `min(k, |relevant|)` (the "capped" recall of Thakur et al., BEIR 2021) makes
    1.0 reachable at every k: with one relevant chunk it is the hit rate (was it in the top
    k?), with `relevant` = the exact top-k it is the usual ANN recall against exact search.
    """
    retrieved = np.atleast_2d(np.asarray(retrieved))
    if len(retrieved) != len(relevant):
        raise ValueError(f"{len(retrieved)} rows of results but {len(relevant)} relevant sets")
    if k < 1 or retrieved.shape[1] < k:
        raise ValueError(f"need 1 <= k <= {retrieved.shape[1]} (results per query), got k={k}")
    recalls = []
    for row, rel in zip(retrieved, relevant, strict=True):
        if not rel:
            raise ValueError("every query needs at least one relevant id")
        found = len({int(i) for i in row[:k]} & {int(i) for i in rel})
        recalls.append(found / min(k, len(rel)))
    return float(np.mean(recalls))


def _check_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {vectors.shape}")
    return vectors
