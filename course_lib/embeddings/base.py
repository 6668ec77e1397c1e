"""The interface every embedding provider shares: a list of texts in, a matrix out.

A provider turns `n` strings into an `(n, dim)` float32 matrix, one row per text. The
subclasses only say how to embed one batch (`_embed_batch`); this base class does the rest,
the same way for every model:

1. checks the input (a list of `str`, not a bare string),
2. looks every text up in the on-disk cache (see `cache.py`) and keeps only the misses,
3. sends the misses in batches of `batch_size`, with a tqdm progress bar when there is
   more than one batch, storing each batch in the cache as soon as it arrives (an
   interrupted run keeps what it has paid for),
4. puts the rows back in the order of the input.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from course_lib.embeddings.cache import EmbeddingCache, cache_key, default_cache_dir


class _Default:
    """Marker for "the provider's own default" (a cache for remote providers, none locally)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
CacheDir = str | os.PathLike[str] | _Default | None


class MissingAPIKeyError(RuntimeError):
    """A remote provider was asked for, but the environment variable with its key is unset."""


class EmbeddingProvider(ABC):
    """Texts -> `(n, dim)` float32 embeddings, with batching, caching and a progress bar.

    Attributes: `name` (registry name, e.g. "cohere"), `model` (the model id),
    `dim` (embedding width: the model's published width until the first response,
    then the width actually returned; None if unknown), `batch_size`, `cache`
    (an `EmbeddingCache` or None).
    """

    name: str = ""
    caches_by_default: bool = True
    max_batch_size: int | None = None  # the API's limit on texts per request, if any

    def __init__(
        self,
        model: str,
        *,
        dim: int | None,
        batch_size: int,
        cache_dir: CacheDir = DEFAULT,
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if self.max_batch_size is not None and batch_size > self.max_batch_size:
            raise ValueError(
                f"{self.name} accepts at most {self.max_batch_size} texts per request, "
                f"got batch_size={batch_size}"
            )
        self.model = model
        self.dim = dim
        self.batch_size = batch_size
        self.progress = progress
        if isinstance(cache_dir, _Default):
            cache_dir = default_cache_dir() if self.caches_by_default else None
        self.cache = EmbeddingCache(cache_dir) if cache_dir is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, dim={self.dim}, cache={self.cache})"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed `texts`: `n` strings -> `(n, dim)` float32, row `i` for `texts[i]`."""
        return self._embed_cached(texts, variant=None)

    @abstractmethod
    def _embed_batch(self, texts: list[str], variant: str | None) -> np.ndarray:
        """Embed one batch of at most `batch_size` texts: `(b,)` -> `(b, dim)`."""

    def _embed_cached(self, texts: Sequence[str], variant: str | None) -> np.ndarray:
        """`embed` for one cache `variant` (e.g. Cohere's input_type): `(n,)` -> `(n, dim)`."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        keys = [cache_key(self.name, self.model, t, variant) for t in texts]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}  # unique
        if missing:
            found.update(self._embed_missing(list(missing), list(missing.values()), variant))
        dims = {found[k].shape[0] for k in keys}
        if len(dims) != 1:  # e.g. a cache filled by a different version of the model
            raise RuntimeError(f"{self.name}/{self.model}: mixed embedding widths {sorted(dims)}")
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)  # (n, dim)

    def _embed_missing(
        self, keys: list[str], texts: list[str], variant: str | None
    ) -> dict[str, np.ndarray]:
        """Embed `texts` batch by batch, caching each batch: -> `{key: (dim,) vector}`."""
        out: dict[str, np.ndarray] = {}
        n_batches = -(-len(texts) // self.batch_size)  # ceil
        with tqdm(
            total=len(texts),
            desc=f"{self.name} embeddings",
            unit="text",
            disable=not self.progress or n_batches < 2,
        ) as bar:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                vectors = np.asarray(self._embed_batch(batch, variant), dtype=np.float32)
                if vectors.ndim != 2 or vectors.shape[0] != len(batch):
                    raise RuntimeError(
                        f"{self.name}/{self.model} returned an array of shape {vectors.shape} "
                        f"for {len(batch)} texts; expected ({len(batch)}, dim)"
                    )
                self.dim = int(vectors.shape[1])
                batch_keys = keys[start : start + self.batch_size]
                if self.cache is not None:
                    self.cache.put_many(zip(batch_keys, vectors, strict=True))
                out.update(zip(batch_keys, vectors, strict=True))
                bar.update(len(batch))
        return out


def check_texts(texts: Sequence[str]) -> list[str]:
    """`texts` as a list of `str`, or a TypeError that says what is wrong."""
    if isinstance(texts, str | bytes):
        raise TypeError(
            f"embed() takes a list of strings, got a single {type(texts).__name__}; "
            "wrap it in a list: embed([text])"
        )
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"embed() takes a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(
                f"embed() takes a list of strings, but texts[{i}] is {type(t).__name__}"
            )
    return items
