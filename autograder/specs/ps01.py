"""ps01 — Embeddings: dot, cosine_similarity, top_k_search, analogy (+ a written answer).

The tests are the notebook's own test cells. Kept from the learner's sandbox: the modules
holding the reference answers, and the grading module's private cosine.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps01",
    notebook="ps01.ipynb",
    hidden_references=(
        "course_lib.embeddings.similarity",
        "course_lib.embeddings.analogy",
        "course_lib.grading.embedding_cases._cosine",
    ),
)
