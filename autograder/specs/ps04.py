"""ps04 — Benchmarks: sequence log-probability, multiple choice, perplexity, Elo, Bradley–Terry.

Kept from the learner's sandbox: course_lib's scoring, perplexity and rating modules.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps04",
    notebook="ps04.ipynb",
    hidden_references=(
        "course_lib.evaluation.multiple_choice",
        "course_lib.evaluation.perplexity",
        "course_lib.evaluation.ratings",
    ),
)
