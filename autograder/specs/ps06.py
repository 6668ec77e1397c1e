"""ps06 — Counting parameters and time: Llama and PaLM decoders, training days, MFU.

Kept from the learner's sandbox: course_lib's parameter analytics and its MFU module (the
training time and PaLM's FLOPs per token).
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps06",
    notebook="ps06.ipynb",
    hidden_references=(
        "course_lib.models.analytics",
        "course_lib.hardware.mfu",
    ),
)
