"""course_lib.retrieval.rerank: the reranking stage, offline and Cohere Rerank on recorded HTTP.

Cohere Rerank runs against `httpx.MockTransport` replaying `tests/fixtures/http/cohere_rerank.json`
(written by hand in the documented response shape, see its README); any real network access
fails the test. Expected scores are read from the fixture, never from the reranker's output.
"""

from __future__ import annotations

import json

import http_replay
import httpx
import numpy as np
import pytest
import torch

from course_lib.embeddings.base import MissingAPIKeyError
from course_lib.embeddings.retry import RetriesExhaustedError, RetryPolicy
from course_lib.retrieval.rerank import (
    CohereReranker,
    QueryLikelihoodReranker,
    Reranker,
    SentenceReranker,
    rerank_ids,
    sentence_windows,
)


class Replay(http_replay.Replay):
    """Cohere Rerank's recorded answers."""

    def __init__(self, queued: list[str] = ()) -> None:
        super().__init__("cohere_rerank.json", queued)


class Sleeps(list):
    """A stand-in for time.sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def refused(monkeypatch):
    """No real HTTP (attempts are listed, then fail) and a test key."""
    attempts = http_replay.refuse_network(monkeypatch)
    monkeypatch.setenv("CO_API_KEY", "test-cohere-key")
    return attempts


RECORDED = http_replay.load_fixture("cohere_rerank.json")[0]
QUERY = RECORDED["request"]["json"]["query"]
DOCUMENTS = RECORDED["request"]["json"]["documents"]


def recorded_scores() -> np.ndarray:
    """The relevance score the fixture gives each document, in the documents' order: `(n,)`."""
    scores = np.full(len(DOCUMENTS), np.nan)
    for r in RECORDED["response"]["json"]["results"]:
        scores[r["index"]] = r["relevance_score"]
    return scores


# --- the interface -----------------------------------------------------------------------


class ByLength(Reranker):
    """A toy reranker: longer passages are more relevant."""

    name = "length"

    def score(self, query, passages):
        return np.array([float(len(p)) for p in passages])


def test_rerank_orders_by_score_keeps_ties_in_order_and_cuts_at_top_n():
    passages = ["bb", "a", "cc", "dddd", ""]
    assert ByLength().rerank("q", passages) == [3, 0, 2, 1, 4]  # "bb" before "cc": a tie
    assert ByLength().rerank("q", passages, top_n=2) == [3, 0]
    assert ByLength().rerank("q", []) == []


def test_rerank_ids_reorders_each_row_and_keeps_missing_ids_last():
    texts = ["x" * n for n in (5, 1, 3, 7, 2)]
    ids = np.array([[0, 1, 2], [4, 3, -1]])  # (2 queries, 3 candidates); -1: no result
    out = rerank_ids(ByLength(), ["q1", "q2"], texts, ids)
    expected = [sorted(r[r >= 0], key=lambda i: -len(texts[i])) for r in ids]
    assert out[0].tolist() == expected[0]
    assert out[1].tolist() == [*expected[1], -1]
    with pytest.raises(ValueError, match="2 rows of candidates but 1 queries"):
        rerank_ids(ByLength(), ["q1"], texts, ids)


def test_a_reranker_must_give_one_score_per_passage():
    class Broken(ByLength):
        def score(self, query, passages):
            return np.zeros(len(passages) + 1)

    with pytest.raises(ValueError, match=r"gave \(4,\) scores for 3 passages"):
        Broken().rerank("q", ["a", "b", "c"])


# --- the offline rerankers ---------------------------------------------------------------


def test_sentence_windows_slide_by_one_sentence():
    text = "One is here. Two is there! Three?\n\nFour: five follows. Six."
    sentences = ["One is here.", "Two is there!", "Three?", "Four:", "five follows.", "Six."]
    assert sentence_windows(text, 1) == sentences
    assert sentence_windows(text, 2) == [
        f"{a} {b}" for a, b in zip(sentences[:-1], sentences[1:], strict=True)
    ]
    assert sentence_windows(text, 6) == [" ".join(sentences)]
    assert sentence_windows(text, 9) == [" ".join(sentences)]
    assert sentence_windows("  ", 2) == []
    with pytest.raises(ValueError, match="at least 1 sentence"):
        sentence_windows(text, 0)


class KeywordProvider:
    """A fake encoder: one axis per keyword, counted, scaled to unit length."""

    KEYWORDS = ("generator", "stopiteration", "pass", "name")

    def embed(self, texts):
        counts = np.array([[t.lower().count(k) for k in self.KEYWORDS] for t in texts], float)
        counts[counts.sum(1) == 0, -1] = 1e-3  # no keyword: a tiny vector, still unit length
        return counts / np.linalg.norm(counts, axis=1, keepdims=True)


def test_sentence_reranker_scores_a_chunk_by_its_best_window():
    provider = KeywordProvider()
    passages = [
        "The pass statement. It does nothing. A name is bound. A generator stops.",
        "A generator raises StopIteration. A name is bound.",
        "",
    ]
    got = SentenceReranker(provider, size=1).score("generator StopIteration", passages)
    q = provider.embed(["generator StopIteration"])[0]
    for p, s in zip(passages, got, strict=True):
        windows = sentence_windows(p, 1) or [p]
        assert s == pytest.approx(max(float(provider.embed([w])[0] @ q) for w in windows))
    assert SentenceReranker(provider, size=1).rerank("generator StopIteration", passages)[0] == 1


def test_sentence_reranker_on_the_offline_encoder_matches_windows_embedded_one_by_one():
    from course_lib.embeddings import get_provider

    provider = get_provider("local", cache_dir=None, progress=False)
    passages = [
        "Deleting a name removes its binding. If the name is unbound, a NameError is raised.",
        '"pass" is a null operation. When it is executed, nothing happens.',
    ]
    query = "What does deleting an unbound name raise?"
    got = SentenceReranker(provider, size=1).score(query, passages)
    q = provider.embed([query])[0]
    for p, s in zip(passages, got, strict=True):
        best = max(float(provider.embed([w])[0] @ q) for w in sentence_windows(p, 1))
        assert s == pytest.approx(best, abs=1e-5)


def test_query_likelihood_is_the_log_probability_of_the_question_after_each_passage(
    tiny_chat_llama,
):
    model, tokenizer = tiny_chat_llama
    passages = ["pass is a null operation.", "del removes a binding.", "return leaves a function."]
    query = "What does pass do?"
    got = QueryLikelihoodReranker(model, tokenizer).score(query, passages)
    # the definition, computed here: log_softmax of a full forward pass over prompt + question
    for p, s in zip(passages, got, strict=True):
        prompt = f"{p}\n\n{QueryLikelihoodReranker.INSTRUCTION}"
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        ctx = tokenizer(text, add_special_tokens=False)["input_ids"]
        target = tokenizer(query, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([ctx + target])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids)[0].double(), -1)  # (T, vocab)
        expected = np.mean([float(logp[len(ctx) + j - 1, t]) for j, t in enumerate(target)])
        assert s == pytest.approx(expected, abs=1e-4)
    assert len(set(np.round(got, 6))) == 3  # three different passages, three different scores


# --- Cohere Rerank on recorded HTTP ------------------------------------------------------


def test_cohere_scores_are_the_recorded_relevance_scores(refused):
    replay = Replay()
    reranker = CohereReranker(http_client=replay.client())
    got = reranker.score(QUERY, DOCUMENTS)
    np.testing.assert_allclose(got, recorded_scores())
    assert reranker.rerank(QUERY, DOCUMENTS) == list(np.argsort(-recorded_scores()))
    # the body the SDK sent is the recorded one, field by field (else Replay answers 418)
    assert [json.loads(r.content) for r in replay.requests] == [RECORDED["request"]["json"]] * 2
    assert replay.requests[0].headers["authorization"] == "Bearer test-cohere-key"
    assert not refused


def test_cohere_splits_long_lists_into_requests_and_joins_the_scores():
    replay = Replay()
    reranker = CohereReranker(http_client=replay.client())
    reranker.max_documents = 2
    np.testing.assert_allclose(reranker.score(QUERY, DOCUMENTS), recorded_scores())
    assert [json.loads(r.content)["documents"] for r in replay.requests] == [
        DOCUMENTS[:2],
        DOCUMENTS[2:],
    ]


def test_cohere_retries_a_rate_limit_then_succeeds():
    sleeps = Sleeps()
    replay = Replay(queued=["cohere_429.json"])
    policy = RetryPolicy(base_delay=0.5, sleep=sleeps)
    got = CohereReranker(http_client=replay.client(), retry=policy).score(QUERY, DOCUMENTS)
    np.testing.assert_allclose(got, recorded_scores())
    assert len(replay.requests) == 2 and len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


def test_cohere_gives_up_after_max_attempts_of_server_errors():
    sleeps = Sleeps()
    replay = Replay(queued=["cohere_503.json"] * 3)
    policy = RetryPolicy(max_attempts=3, sleep=sleeps)
    reranker = CohereReranker(http_client=replay.client(), retry=policy)
    with pytest.raises(RetriesExhaustedError, match="cohere rerank .* 3 attempts.*HTTP 503"):
        reranker.score(QUERY, DOCUMENTS)
    assert len(replay.requests) == 3 and len(sleeps) == 2


def test_cohere_does_not_retry_an_unrecorded_request():
    replay = Replay()
    reranker = CohereReranker(http_client=replay.client(), retry=RetryPolicy(sleep=Sleeps()))
    with pytest.raises(Exception, match="unrecorded request"):
        reranker.score("another question", DOCUMENTS)
    assert len(replay.requests) == 1


def test_cohere_missing_a_result_is_an_error():
    def handler(request):
        body = {"id": "x", "results": [{"index": 0, "relevance_score": 0.5}]}
        return httpx.Response(200, json=body)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(RuntimeError, match=r"no score for passages \[1\]"):
        CohereReranker(http_client=client).score(QUERY, DOCUMENTS[:2])


def test_cohere_without_a_key_names_the_variables(monkeypatch):
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError) as err:
        CohereReranker()
    message = str(err.value)
    assert "\n" not in message
    assert "cohere rerank requests need an API key: set CO_API_KEY or COHERE_API_KEY" in message
    monkeypatch.setenv("COHERE_API_KEY", "second-variable-key")
    replay = Replay()
    CohereReranker(http_client=replay.client()).score(QUERY, DOCUMENTS)
    assert replay.requests[0].headers["authorization"] == "Bearer second-variable-key"
