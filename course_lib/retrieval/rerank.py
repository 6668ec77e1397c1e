"""Rerankers: rescore a first-stage retriever's top candidates with a costlier model.

Retrieval is usually two stages (Nogueira & Cho, "Passage Re-ranking with BERT", 2019): a
bi-encoder embeds query and passages *separately*, so the passages are embedded once and
searched in an index; a reranker then reads the query with each of the top `n` candidates
and re-orders them. The standard reranker is a *cross-encoder*, a BERT that reads
`[CLS] query [SEP] passage` and outputs a relevance score, trained on MS MARCO.

No cross-encoder ships offline here: the only packaged weights are all-MiniLM-L6-v2 (a
bi-encoder) and SmolLM2-135M-Instruct. So the offline rerankers are built from those two,
and they are honest about what they are:

- `SentenceReranker` (the offline default): all-MiniLM-L6-v2 again, but on windows of a few
  sentences (one by default) of each candidate instead of the whole chunk; a chunk scores the cosine of its
  best window. One 384-vector per chunk averages every topic the chunk touches; a window
  holds one, so the sentence that answers the question is not diluted by its neighbours.
  Still a bi-encoder, not a cross-encoder: query and window never attend to each other.
- `QueryLikelihoodReranker`: the "unsupervised passage re-ranker" (UPR) of Sachan et al.,
  "Improving Passage Retrieval with Zero-Shot Question Generation" (EMNLP 2022): score a
  passage by the language model's log-probability of the *question* given the passage.
  Here the model is SmolLM2-135M; query and passage do meet in one forward pass.
- `CohereReranker`: Cohere Rerank (`POST https://api.cohere.com/v2/rerank`), a hosted
  cross-encoder; needs `CO_API_KEY`. OpenAI has no rerank endpoint (its API offers
  embeddings and chat, so an OpenAI "reranker" would be a prompt to a chat model, not a
  reranking service), so there is no OpenAI reranker here.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from course_lib.embeddings.remote import (
    api_key_from_env,
    cohere_client,
    cohere_is_transient,
    describe_error,
)
from course_lib.embeddings.retry import RetryPolicy, call_with_retries


class Reranker(ABC):
    """Scores passages against a query: `score(query, (n,) passages) -> (n,)`, higher is better."""

    name: str

    @abstractmethod
    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """`(n,)` relevance of each passage to `query`; only the order within one call counts."""

    def rerank(self, query: str, passages: Sequence[str], top_n: int | None = None) -> list[int]:
        """Indices into `passages`, most relevant first (ties keep the given order), `top_n` of them."""
        if not passages:
            return []
        scores = np.asarray(self.score(query, passages), dtype=np.float64)  # (n,)
        if scores.shape != (len(passages),):
            raise ValueError(f"{self.name} gave {scores.shape} scores for {len(passages)} passages")
        return np.argsort(-scores, kind="stable")[:top_n].tolist()


def rerank_ids(
    reranker: Reranker, queries: Sequence[str], texts: Sequence[str], ids: np.ndarray
) -> np.ndarray:
    """Re-order each row of a first stage's `ids (q, k)` by `reranker`: `(q, k)`.

    `texts[i]` is the passage with id `i`; row `j` holds the candidates for `queries[j]`.
    Ids `-1` (a FAISS index's missing results) stay at the end of their row.
    """
    ids = np.atleast_2d(np.asarray(ids))
    if len(ids) != len(queries):
        raise ValueError(f"{len(ids)} rows of candidates but {len(queries)} queries")
    out = np.full_like(ids, -1)
    for row, (query, cand) in enumerate(zip(queries, ids, strict=True)):
        cand = cand[cand >= 0]  # (k',)
        order = reranker.rerank(query, [texts[i] for i in cand])
        out[row, : len(cand)] = cand[order]
    return out


# A sentence ends at . ! ? or : followed by white space (the reference's code examples and
# headings have no full stops, so a line break before an indented block also ends one).
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+|\n\s*\n")


def sentence_windows(text: str, size: int = 2) -> list[str]:
    """Windows of `size` consecutive sentences of `text`, sliding by one; a text of at most
    `size` sentences is one window. `""` gives `[]`."""
    if size < 1:
        raise ValueError(f"a window holds at least 1 sentence, got size={size}")
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if len(sentences) <= size:
        return [" ".join(sentences)] if sentences else []
    return [" ".join(sentences[i : i + size]) for i in range(len(sentences) - size + 1)]


class SentenceReranker(Reranker):
    """A chunk scores the best cosine between the query and its windows of `size` sentences.

    `provider` is an embedding provider (default: the offline all-MiniLM-L6-v2). Costs one
    encoder call over all windows of all candidates per query.
    """

    name = "sentence windows"

    def __init__(self, provider: Any = None, size: int = 1) -> None:
        if provider is None:
            from course_lib.embeddings import get_provider

            provider = get_provider("local", progress=False)
        self.provider, self.size = provider, size

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        windows = [sentence_windows(p, self.size) or [p] for p in passages]
        flat = [w for ws in windows for w in ws]
        vectors = self.provider.embed([query, *flat])  # (1 + windows, d), unit rows
        cosines = vectors[1:] @ vectors[0]  # (windows,)
        bounds = np.cumsum([0, *map(len, windows)])
        return np.array([cosines[a:b].max() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


class QueryLikelihoodReranker(Reranker):
    """UPR (Sachan et al. 2022): score = mean log-probability per token of the query, as the
    chat model's reply to "passage + `instruction`". One forward pass per candidate."""

    name = "query likelihood"
    INSTRUCTION = "Write a question that this passage answers."

    def __init__(self, model: Any, tokenizer: Any, instruction: str = INSTRUCTION) -> None:
        self.model, self.tokenizer, self.instruction = model, tokenizer, instruction

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        from course_lib.retrieval.generation import answer_logprob

        return np.array(
            [
                answer_logprob(
                    self.model, self.tokenizer, f"{p.strip()}\n\n{self.instruction}", query
                )
                for p in passages
            ]
        )


class CohereReranker(Reranker):
    """Cohere Rerank via `cohere.ClientV2().rerank` (`POST /v2/rerank`): a hosted cross-encoder.

    Reads `CO_API_KEY` (or `COHERE_API_KEY`); a missing key raises `MissingAPIKeyError`
    naming them. Scores are the API's `relevance_score` in [0, 1]. Rate limits and 5xx are
    retried with backoff (`retry.py`); `http_client=` is how the tests replay recorded HTTP.
    """

    name = "cohere"
    key_variables = ("CO_API_KEY", "COHERE_API_KEY")
    max_documents = 1000  # Cohere recommends at most 1,000 documents per request

    def __init__(
        self,
        model: str = "rerank-v3.5",
        *,
        api_key: str | None = None,
        http_client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        key = api_key_from_env(
            self.name,
            self.key_variables,
            api_key,
            service="rerank requests",
            offline="SentenceReranker()",
        )
        self.model = model
        self.retry = retry if retry is not None else RetryPolicy()
        self._client = cohere_client(key, http_client)

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        scores = np.full(len(passages), np.nan)  # (n,)
        for lo in range(0, len(passages), self.max_documents):
            batch = list(passages[lo : lo + self.max_documents])
            response = call_with_retries(
                lambda batch=batch: self._client.rerank(
                    model=self.model, query=query, documents=batch
                ),
                is_transient=cohere_is_transient,
                describe=describe_error,
                policy=self.retry,
                what=f"cohere rerank ({self.model})",
            )
            for result in response.results:  # best first; `index` is into `batch`
                scores[lo + result.index] = result.relevance_score
        if np.isnan(scores).any():
            raise RuntimeError(
                f"cohere rerank returned no score for passages {np.flatnonzero(np.isnan(scores))}"
            )
        return scores
