"""ps02 — Benchmarks: sequence log-probability, multiple choice, perplexity, Elo, Bradley–Terry.

Kept from the learner's sandbox: course_lib's scoring, perplexity and rating modules.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps02",
    notebook="ps02.ipynb",
    hidden_references=(
        "course_lib.evaluation.multiple_choice",
        "course_lib.evaluation.perplexity",
        "course_lib.evaluation.ratings",
    ),
)
