"""course_lib.retrieval.vectordb: sqlite-vec through apsw, against float64 brute force.

Persistence (a new connection to the file answers the same), metadata filters (equal to
brute force over the allowed rows), updates (deleted rows never come back, added rows do)
and transactions (a failing batch leaves nothing behind)."""

from __future__ import annotations

import apsw
import numpy as np
import pytest

from course_lib.retrieval.chunking import Chunk
from course_lib.retrieval.vectordb import SqliteVecStore

DIM = 16


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(query: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int):
    """Cosines and ids of the k best rows, in float64."""
    cos = vectors @ (query / np.linalg.norm(query))  # (n,)
    order = np.argsort(-cos, kind="stable")[:k]
    return cos[order], ids[order]


@pytest.fixture
def corpus():
    rng = np.random.default_rng(0)
    n = 60
    docs = [("pass", "return", "del")[i % 3] for i in range(n)]
    chunks = [Chunk(d, 10 * i, 10 * i + 9, f"chunk {i} of {d}") for i, d in enumerate(docs)]
    ids = np.arange(100, 100 + n)  # ids of our own, not row numbers
    return chunks, unit_rows(rng, n), ids, unit_rows(rng, 5)


def test_search_is_exact_and_persists_across_connections(tmp_path, corpus):
    chunks, vectors, ids, queries = corpus
    path = tmp_path / "store.db"
    store = SqliteVecStore(path, DIM)
    store.add(chunks, 3.0 * vectors, ids)  # not unit length: stored normalized
    before = [store.search(q, 7) for q in queries]
    for q, (scores, found) in zip(queries, before, strict=True):
        exp_scores, exp_ids = brute_force(q, vectors, ids, 7)
        assert found.tolist() == exp_ids.tolist()
        np.testing.assert_allclose(scores, exp_scores, atol=1e-5)  # float32 storage
    store.close()

    reopened = SqliteVecStore(path, DIM)  # a new connection to the same file
    assert len(reopened) == len(chunks)
    for q, (scores, found) in zip(queries, before, strict=True):
        s2, f2 = reopened.search(q, 7)
        assert f2.tolist() == found.tolist()
        np.testing.assert_array_equal(s2, scores)
    assert reopened.get(int(ids[4])) == chunks[4]
    with pytest.raises(KeyError):
        reopened.get(7)
    with pytest.raises(ValueError, match="width 16, not 8"):
        SqliteVecStore(path, 8)


def test_a_filter_equals_brute_force_over_the_allowed_rows(tmp_path, corpus):
    chunks, vectors, ids, queries = corpus
    store = SqliteVecStore(tmp_path / "store.db", DIM)
    store.add(chunks, vectors, ids)
    allowed = np.array([c.doc in ("return", "del") for c in chunks])
    for q in queries:
        _, found = store.search(q, 5, docs=["return", "del"])
        _, expected = brute_force(q, vectors[allowed], ids[allowed], 5)
        assert found.tolist() == expected.tolist()
        _, found = store.search(q, 100, docs=["pass"])
        assert len(found) == int((~allowed).sum())  # k above the row count: all of them


def test_deleted_rows_are_never_returned_and_added_rows_are(tmp_path, corpus):
    chunks, vectors, ids, queries = corpus
    store = SqliteVecStore(tmp_path / "store.db", DIM)
    store.add(chunks, vectors, ids)
    gone = ids[[c.doc == "pass" for c in chunks]]
    store.delete(gone)
    assert len(store) == len(chunks) - len(gone)
    _, found = store.search(queries[0], len(chunks))
    assert not set(found.tolist()) & set(gone.tolist())
    assert len(found) == len(store)

    new = Chunk("yield", 0, 5, "yield")
    store.add([new], queries[1:2], [999])  # a row whose vector is the query itself
    scores, found = store.search(queries[1], 1)
    assert found.tolist() == [999] and scores[0] == pytest.approx(1.0, abs=1e-6)
    assert store.get(999) == new


def test_a_failing_batch_adds_nothing(tmp_path, corpus):
    chunks, vectors, ids, _ = corpus
    store = SqliteVecStore(tmp_path / "store.db", DIM)
    store.add(chunks[:3], vectors[:3], ids[:3])
    with pytest.raises(apsw.Error):  # the third row repeats an existing id
        store.add(chunks[3:6], vectors[3:6], [ids[3], ids[4], ids[0]])
    assert len(store) == 3
    with pytest.raises(ValueError, match=r"shape \(2, 16\)"):
        store.add(chunks[:2], vectors[:3], ids[:2])
