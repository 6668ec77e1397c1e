"""ps13 — Retrieval: chunk_text, retrieve, recall_at_k, build_prompt (+ a written answer).

Kept from the learner's sandbox: course_lib's chunking, index (exact search and recall@k) and
prompt modules, and the similarity helpers a learner could call to rank by cosine.
"""

from autograder.spec import AssignmentSpec

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
)
