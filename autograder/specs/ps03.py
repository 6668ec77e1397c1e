"""ps03 — Training: cross-entropy, AdamW, the schedule, clipping, get_batch, a step, a run.

Kept from the learner's sandbox: course_lib's training package (every reference piece and
the loop) and the PyTorch-based references of the test cells.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps03",
    notebook="ps03.ipynb",
    hidden_references=(
        "course_lib.training.loss",
        "course_lib.training.adamw",
        "course_lib.training.schedule",
        "course_lib.training.clip",
        "course_lib.training.batches",
        "course_lib.training.loop",
        "course_lib.grading.training_cases.reference_cross_entropy",
        "course_lib.grading.training_cases.reference_adamw_step",
        "course_lib.grading.training_cases.reference_clip",
        "course_lib.grading.training_cases.reference_get_batch",
        "course_lib.grading.training_cases.reference_train_step",
        "course_lib.grading.training_cases.reference_run",
    ),
)
