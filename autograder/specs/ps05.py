"""ps05 — Scaling laws: 6ND, power-law fits, compute-optimal allocation.

Kept from the learner's sandbox: course_lib's fitting and allocation modules and its 6ND.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps05",
    notebook="ps05.ipynb",
    hidden_references=(
        "course_lib.scaling.fit",
        "course_lib.scaling.allocation",
        "course_lib.scaling.laws.training_flops",
    ),
)
