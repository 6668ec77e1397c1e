"""ps06 — Counting parameters and compute: dense and MoE decoders, 6ND, training days, MFU.

Kept from the learner's sandbox: course_lib's parameter analytics, its MFU module and 6ND.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps06",
    notebook="ps06.ipynb",
    hidden_references=(
        "course_lib.models.analytics",
        "course_lib.hardware.mfu",
        "course_lib.scaling.laws.training_flops",
    ),
)
