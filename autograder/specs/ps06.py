"""ps06 — Counting parameters, memory and time: a dense decoder, the heaviest GPU of a
tensor x pipeline grid, training days with attention FLOPs, MFU.

Kept from the learner's sandbox: course_lib's parameter analytics, its MFU module (training
time, PaLM's FLOPs per token) and the chapter's parallel layout.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps06",
    notebook="ps06.ipynb",
    hidden_references=(
        "course_lib.models.analytics",
        "course_lib.hardware.mfu",
        "course_lib.plots.diagrams.parallel_layout",
    ),
)
