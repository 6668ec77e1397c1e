"""Remote embedding providers: Cohere and OpenAI, through their official Python SDKs.

Hosted embedding models are larger than anything we run on a laptop (Cohere's Embed v3
gives 1024-dimensional vectors and has a multilingual variant covering 100+ languages;
OpenAI's text-embedding-3 models give 1536 or 3072 dimensions). Using them costs money and
needs an API key in an environment variable:

- `get_provider("cohere")` reads `CO_API_KEY` (or `COHERE_API_KEY`). Cohere's v3 models
  embed a text differently depending on its role: `input_type="search_document"` for the
  texts you search in (the default), `"search_query"` for the query, and also
  `"classification"` and `"clustering"`. At most 96 texts per request.
- `get_provider("openai")` reads `OPENAI_API_KEY`. At most 2048 texts per request.

A missing key raises `MissingAPIKeyError` with a one-line message naming the variable.

What the providers add over the bare SDK calls: batching to the API's limit, an on-disk
cache (a text is sent once, ever), and retries with exponential backoff when the API says
"429 Too Many Requests" or a server fails with 5xx (see `retry.py`). The SDKs' own retry
loops are switched off so there is exactly one, testable, retry policy.

Both constructors accept `http_client=` (an `httpx.Client`), which is how the tests replay
recorded API responses without touching the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from course_lib.embeddings.base import DEFAULT, CacheDir, EmbeddingProvider, MissingAPIKeyError
from course_lib.embeddings.retry import RetryPolicy, call_with_retries

# Published output widths (Cohere and OpenAI model pages); other model ids learn it on use.
COHERE_DIMS = {
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
}
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
OPENAI_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def api_key_from_env(
    provider: str,
    variables: tuple[str, ...],
    api_key: str | None,
    *,
    service: str = "embeddings",
    offline: str = "get_provider('local')",
) -> str:
    """`api_key` if given, else the first of `variables` that is set, else MissingAPIKeyError.

    The error is one line naming the variables, e.g. "cohere embeddings need an API key: set
    CO_API_KEY or COHERE_API_KEY (or use get_provider('local') offline)"; `service` and
    `offline` fill in its blanks for other remote calls (e.g. "rerank").
    """
    if api_key:
        return api_key
    for var in variables:
        if os.environ.get(var):
            return os.environ[var]
    raise MissingAPIKeyError(
        f"{provider} {service} need an API key: set {' or '.join(variables)} "
        f"(or use {offline} offline)"
    )


def cohere_client(key: str, http_client: httpx.Client | None) -> Any:
    """A `cohere.ClientV2` with the SDK's own retries off (`call_with_retries` does them)."""
    import cohere

    # max_retries=0: the SDK would otherwise retry 429/5xx itself, with its own sleeps
    return cohere.ClientV2(api_key=key, httpx_client=http_client, max_retries=0)


def cohere_is_transient(exc: BaseException) -> bool:
    """Whether a Cohere SDK error is worth retrying: HTTP 429, 5xx, timeouts, lost connections."""
    from cohere.core import ApiError  # TooManyRequestsError, InternalServerError, ...

    if isinstance(exc, ApiError):
        return exc.status_code is not None and (exc.status_code == 429 or exc.status_code >= 500)
    return RemoteProvider._is_transient(exc)


def describe_error(exc: BaseException) -> str:
    """A short name for an API error, e.g. 'RateLimitError (HTTP 429)'."""
    status = getattr(exc, "status_code", None)
    return type(exc).__name__ + (f" (HTTP {status})" if status else "")


class RemoteProvider(EmbeddingProvider):
    """A provider behind an HTTP API: one request per batch, with retries on transient errors."""

    def __init__(
        self,
        model: str,
        *,
        dim: int | None,
        batch_size: int,
        cache_dir: CacheDir,
        progress: bool,
        retry: RetryPolicy | None,
    ) -> None:
        super().__init__(
            model, dim=dim, batch_size=batch_size, cache_dir=cache_dir, progress=progress
        )
        self.retry = retry if retry is not None else RetryPolicy()

    def _request(self, call: Callable[[], Any]) -> Any:
        """`call()` with backoff on rate limits and 5xx; other errors propagate at once."""
        return call_with_retries(
            call,
            is_transient=self._is_transient,
            describe=describe_error,
            policy=self.retry,
            what=f"{self.name} embeddings ({self.model})",
        )

    @staticmethod
    def _is_transient(exc: BaseException) -> bool:
        """Whether `exc` is worth retrying (rate limit, server error, lost connection)."""
        return isinstance(exc, httpx.TimeoutException | httpx.ConnectError)


class CohereProvider(RemoteProvider):
    """Cohere Embed v3 via `cohere.ClientV2().embed`: `(n,)` texts -> `(n, 1024)`."""

    name = "cohere"
    max_batch_size = 96  # the API's limit on texts per request
    key_variables = ("CO_API_KEY", "COHERE_API_KEY")

    def __init__(
        self,
        model: str | None = None,
        *,
        input_type: str = "search_document",
        api_key: str | None = None,
        http_client: httpx.Client | None = None,
        batch_size: int | None = None,
        cache_dir: CacheDir = DEFAULT,
        progress: bool = True,
        retry: RetryPolicy | None = None,
    ) -> None:
        key = api_key_from_env(self.name, self.key_variables, api_key)
        model = model or "embed-english-v3.0"
        super().__init__(
            model,
            dim=COHERE_DIMS.get(model),
            batch_size=batch_size or self.max_batch_size,
            cache_dir=cache_dir,
            progress=progress,
            retry=retry,
        )
        self.input_type = _check_input_type(input_type)
        self._client = cohere_client(key, http_client)

    def embed(self, texts: list[str], *, input_type: str | None = None) -> np.ndarray:
        """Embed `texts` as `input_type` (default: the provider's): `(n,)` -> `(n, dim)`.

        Use `input_type="search_query"` for queries and the default "search_document" for
        the texts searched in: Embed v3 places the two kinds so that queries land near the
        documents that answer them.
        """
        kind = self.input_type if input_type is None else _check_input_type(input_type)
        return self._embed_cached(texts, variant=kind)

    def _embed_batch(self, texts: list[str], variant: str | None) -> np.ndarray:
        response = self._request(
            lambda: self._client.embed(
                model=self.model, input_type=variant, texts=texts, embedding_types=["float"]
            )
        )
        return np.asarray(response.embeddings.float_, dtype=np.float32)  # (b, dim)

    @staticmethod
    def _is_transient(exc: BaseException) -> bool:
        return cohere_is_transient(exc)


class OpenAIProvider(RemoteProvider):
    """OpenAI text-embedding-3 via `openai.OpenAI().embeddings.create`: `(n,)` -> `(n, 1536)`."""

    name = "openai"
    max_batch_size = 2048  # the API's limit on inputs per request
    key_variables = ("OPENAI_API_KEY",)

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        http_client: httpx.Client | None = None,
        batch_size: int | None = None,
        cache_dir: CacheDir = DEFAULT,
        progress: bool = True,
        retry: RetryPolicy | None = None,
    ) -> None:
        key = api_key_from_env(self.name, self.key_variables, api_key)
        model = model or "text-embedding-3-small"
        super().__init__(
            model,
            dim=OPENAI_DIMS.get(model),
            batch_size=batch_size or 128,
            cache_dir=cache_dir,
            progress=progress,
            retry=retry,
        )
        import openai

        # max_retries=0: the SDK would otherwise retry 429/5xx itself, with its own sleeps
        self._client = openai.OpenAI(api_key=key, http_client=http_client, max_retries=0)

    def _embed_batch(self, texts: list[str], variant: str | None) -> np.ndarray:
        response = self._request(
            lambda: self._client.embeddings.create(
                model=self.model, input=texts, encoding_format="float"
            )
        )
        rows = sorted(response.data, key=lambda item: item.index)  # the API tags each row
        return np.asarray([row.embedding for row in rows], dtype=np.float32)  # (b, dim)

    @staticmethod
    def _is_transient(exc: BaseException) -> bool:
        import openai

        if isinstance(exc, openai.RateLimitError):
            # 429 also means "out of credit", which no amount of waiting fixes
            return exc.code != "insufficient_quota"
        if isinstance(exc, openai.InternalServerError | openai.APIConnectionError):
            return True
        return RemoteProvider._is_transient(exc)


def _check_input_type(input_type: str) -> str:
    if input_type not in COHERE_INPUT_TYPES:
        raise ValueError(
            f"Cohere input_type must be one of {', '.join(COHERE_INPUT_TYPES)}; got {input_type!r}"
        )
    return input_type
