"""Retrieval-augmented generation: chunking, exact and FAISS indexes, prompts with citations.

A retrieval-augmented model answers from passages found in a corpus at question time
instead of from its weights alone (Lewis et al., "Retrieval-Augmented Generation for
Knowledge-Intensive NLP Tasks", NeurIPS 2020). The pieces, one module each:

- `corpus`: an offline corpus (the Python language reference shipped in `pydoc_data`) and a
  small question set with reference answers and the evidence span that answers each;
- `chunking`: fixed-size windows (with overlap) and section-aware chunks, with offsets;
- `index`: exact cosine search (the similarity helpers of `course_lib.embeddings`), FAISS
  flat / IVF / HNSW indexes behind the same `add` / `search`, and recall@k;
- `prompt`: numbered context passages, the question prompt, and the citations in an answer;
- `rerank`: a second stage that re-orders the top candidates (sentence windows of the
  offline encoder, SmolLM2 query likelihood, or Cohere Rerank);
- `vectordb`: an embedded vector database, sqlite-vec through apsw (persistence, metadata
  filters, updates).

`rerank` and `vectordb` are imported from their modules, so that importing this package
needs neither the HTTP client nor apsw.
"""

from course_lib.retrieval.chunking import Chunk, chunk_documents, chunk_fixed, chunk_sections
from course_lib.retrieval.corpus import QUESTIONS, Question, python_reference, relevant_chunks
from course_lib.retrieval.index import ExactIndex, FaissIndex, recall_at_k, retrieve
from course_lib.retrieval.prompt import build_prompt, cited_sources, format_context

__all__ = [
    "QUESTIONS",
    "Chunk",
    "ExactIndex",
    "FaissIndex",
    "Question",
    "build_prompt",
    "chunk_documents",
    "chunk_fixed",
    "chunk_sections",
    "cited_sources",
    "format_context",
    "python_reference",
    "recall_at_k",
    "relevant_chunks",
    "retrieve",
]
