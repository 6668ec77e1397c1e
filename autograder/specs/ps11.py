"""ps11 — Decoding: greedy, temperature, top-k, top-p, sampling, a KV-cache decode step.

Kept from the learner's sandbox: course_lib's sampling and attention kernels.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps11",
    notebook="ps11.ipynb",
    hidden_references=("course_lib.kernels.sampling", "course_lib.kernels.attention.attention"),
)
