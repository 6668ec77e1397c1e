"""ps13 — Retrieval: chunk_text, retrieve, recall_at_k, build_prompt (+ a written answer).

Kept from the learner's sandbox: course_lib's chunking, index (exact search and recall@k) and
prompt modules, and the similarity helpers a learner could call to rank by cosine.
Misconceptions: the mistakes of course_lib.grading.retrieval_mistakes.
"""

from autograder.misconception import Misconception
from autograder.spec import AssignmentSpec

_MISTAKES = "course_lib.grading.retrieval_mistakes."

SPEC = AssignmentSpec(
    name="ps13",
    notebook="ps13.ipynb",
    hidden_references=(
        "course_lib.retrieval.chunking",
        "course_lib.retrieval.index",
        "course_lib.retrieval.prompt",
        "course_lib.embeddings.similarity",
        "course_lib.grading.retrieval_cases._cosines",
    ),
    misconceptions=(
        Misconception(
            "chunk_text",
            "windows that step by size: the overlap is ignored",
            _MISTAKES + "chunk_without_overlap",
        ),
        Misconception(
            "chunk_text",
            "windows kept after one already reached the end of the text (they lie inside it)",
            _MISTAKES + "chunk_with_tail_windows",
        ),
        Misconception(
            "retrieve",
            "rows ranked by the dot product instead of the cosine (long rows win)",
            _MISTAKES + "retrieve_by_dot_product",
        ),
        Misconception(
            "retrieve",
            "the scores sorted ascending: the least similar rows first",
            _MISTAKES + "retrieve_least_similar",
        ),
        Misconception(
            "recall_at_k",
            "found / k, which is precision@k, not recall",
            _MISTAKES + "recall_divided_by_k",
        ),
        Misconception(
            "recall_at_k",
            "found / |relevant| without the cap min(k, |relevant|)",
            _MISTAKES + "recall_uncapped",
        ),
    ),
)
