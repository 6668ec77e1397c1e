"""course_lib.retrieval: chunking offsets and coverage, indexes against brute force, recall@k,
prompts with citations. Expected values come from NumPy float64 brute force written here."""

from __future__ import annotations

import re

import numpy as np
import pytest

from course_lib.embeddings import top_k
from course_lib.retrieval import (
    QUESTIONS,
    ExactIndex,
    FaissIndex,
    build_prompt,
    chunk_documents,
    chunk_fixed,
    chunk_sections,
    cited_sources,
    format_context,
    python_reference,
    recall_at_k,
    relevant_chunks,
    retrieve,
)


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return python_reference()


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force_ids(queries: np.ndarray, corpus: np.ndarray, k: int) -> np.ndarray:
    """Top-k ids by cosine in float64, one query at a time."""
    out = []
    for q in queries:
        s = [float(q @ c) / (np.linalg.norm(q) * np.linalg.norm(c)) for c in corpus]
        out.append(sorted(range(len(corpus)), key=lambda i: (-s[i], i))[:k])
    return np.array(out)


@pytest.mark.parametrize("size, overlap", [(1, 0), (7, 0), (7, 3), (50, 49), (1000, 10)])
def test_fixed_chunks_cover_the_text_with_the_overlap(size, overlap):
    text = "".join(np.random.default_rng(size).choice(list("ab c\n"), 203))
    chunks = chunk_fixed(text, size, overlap, doc="d")
    assert all(c.text == text[c.start : c.end] and len(c.text) <= size for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start == a.start + size - overlap and a.end == min(a.start + size, len(text))
    # every span of overlap + 1 characters lies whole inside some chunk
    span = overlap + 1
    for s in range(len(text) - span + 1):
        assert any(c.start <= s and s + span <= c.end for c in chunks), s


def test_fixed_chunks_reject_bad_sizes_and_empty_text():
    assert chunk_fixed("", 10) == []
    with pytest.raises(ValueError, match="overlap"):
        chunk_fixed("abc", 4, 4)
    with pytest.raises(ValueError, match="size"):
        chunk_fixed("abc", 0)


def test_section_chunks_keep_offsets_stay_small_and_never_cross_a_heading(docs):
    headings = re.compile(r"^[^\n]+\n[*=\-]{3,}[ \t]*$", re.MULTILINE)
    for name in ("try", "for", "assert", "formatstrings"):
        text = docs[name]
        chunks = chunk_sections(text, 300, doc=name)
        covered = np.zeros(len(text), bool)
        for c in chunks:
            assert c.text == text[c.start : c.end] and 0 < len(c.text) <= 300
            assert not any(c.start < m.start() < c.end for m in headings.finditer(text))
            covered[c.start : c.end] = True
        gaps = "".join(ch for ch, cov in zip(text, covered, strict=True) if not cov)
        assert gaps.strip() == "", f"{name}: text outside every chunk: {gaps[:80]!r}"
        assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_chunk_documents_dispatches_and_checks_the_method(docs):
    small = {k: docs[k] for k in ("pass", "break")}
    assert chunk_documents(small, "fixed", size=100, overlap=20) == [
        *chunk_fixed(small["pass"], 100, 20, doc="pass"),
        *chunk_fixed(small["break"], 100, 20, doc="break"),
    ]
    with pytest.raises(ValueError, match="overlap=0"):
        chunk_documents(small, "sections", size=100, overlap=5)
    with pytest.raises(ValueError, match="unknown chunking"):
        chunk_documents(small, "words", size=100)


def test_every_question_has_its_evidence_in_the_small_corpus():
    small = python_reference(max_chars=3000)
    assert len(set(small.values())) == len(small)
    assert ("else" in small) != ("if" in small)  # one page under two names, kept once
    for q in QUESTIONS:
        for method, overlap in (("fixed", 100), ("sections", 0)):
            chunks = chunk_documents(small, method, size=400, overlap=overlap)
            rel = relevant_chunks(chunks, small, q)
            assert rel and all(q.evidence in chunks[i].text for i in rel)
        assert q.is_correct(f"It is {q.answers[0].upper()}.") and not q.is_correct("unknown")


def test_exact_index_and_retrieve_match_brute_force():
    rng = np.random.default_rng(0)
    corpus = unit_rows(rng, 40, 8) * rng.uniform(0.1, 10, (40, 1))  # norms must not matter
    queries = rng.standard_normal((5, 8))
    expected = brute_force_ids(queries, corpus, 6)
    index = ExactIndex(8)
    index.add(corpus[:25])
    index.add(corpus[25:])
    scores, ids = index.search(queries, 6)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(retrieve(queries, corpus, 6), expected)
    np.testing.assert_array_equal(ids[0], top_k(queries[0], corpus, 6)[0])
    np.testing.assert_allclose(scores[0], top_k(queries[0], corpus, 6)[1], rtol=1e-5)
    assert retrieve(queries, corpus, 99).shape == (5, 40)
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        index.add(np.ones((2, 7)))


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_faiss_indexes_agree_with_exact_search_when_searching_everything(kind):
    rng = np.random.default_rng(1)
    corpus, queries = unit_rows(rng, 300, 16), unit_rows(rng, 20, 16)
    # nprobe = nlist scans every cell; a wide HNSW beam on 300 nodes finds the true neighbours
    index = FaissIndex(16, kind, nlist=8, nprobe=8, ef_search=300)
    index.add(corpus)
    assert len(index) == 300
    scores, ids = index.search(queries, 5)
    np.testing.assert_array_equal(ids, brute_force_ids(queries, corpus, 5))
    np.testing.assert_allclose(
        scores, np.sort(queries @ corpus.T, axis=1)[:, ::-1][:, :5], atol=1e-5
    )


def test_ivf_with_one_probe_is_approximate_and_needs_enough_training_vectors():
    rng = np.random.default_rng(2)
    corpus, queries = unit_rows(rng, 2000, 32), unit_rows(rng, 50, 32)
    index = FaissIndex(32, "ivf", nlist=32, nprobe=1)
    index.add(corpus)
    exact = [set(row) for row in brute_force_ids(queries, corpus, 10)]
    recall = recall_at_k(index.search(queries, 10)[1], exact, 10)
    assert 0.0 < recall < 0.9  # random data has no clusters: one cell misses neighbours
    with pytest.raises(ValueError, match="nlist=64"):
        FaissIndex(32, "ivf", nlist=64).add(corpus[:10])
    with pytest.raises(ValueError, match="valid: flat, ivf, hnsw"):
        FaissIndex(32, "lsh")


def test_recall_at_k_caps_at_the_number_of_relevant_ids():
    retrieved = np.array([[3, 1, 4, 1], [5, 9, 2, 6]])
    relevant = [{1, 7}, {6}]
    # query 0: top-1 {3} finds 0 of min(1, 2); top-2 {3, 1} finds 1 of 2; query 1 finds 6 at rank 4
    assert recall_at_k(retrieved, relevant, 1) == 0.0
    assert recall_at_k(retrieved, relevant, 2) == pytest.approx((1 / 2 + 0) / 2)
    assert recall_at_k(retrieved, relevant, 4) == pytest.approx((1 / 2 + 1) / 2)
    with pytest.raises(ValueError, match="k <= 4"):
        recall_at_k(retrieved, relevant, 5)
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k(retrieved, [{1}, set()], 1)


def test_prompt_numbers_the_passages_and_citations_are_read_back():
    context = format_context([" first passage\n", "second"], ["pass:0-10", "del:5-9"])
    assert context == "[1] (pass:0-10) first passage\n\n[2] (del:5-9) second"
    prompt = build_prompt("What is it? ", ["first passage"], ["pass:0-10"])
    assert prompt.endswith("[1] (pass:0-10) first passage\n\nQuestion: What is it?\nAnswer:")
    assert "[n]" in prompt.splitlines()[0]
    assert build_prompt("Why?", [], []) == "Question: Why?\nAnswer:"
    assert cited_sources("It is nothing [2], see [1, 2] and [7][1].", 3) == [2, 1]
    with pytest.raises(ValueError, match="2 passages but 1 sources"):
        format_context(["a", "b"], ["s"])
