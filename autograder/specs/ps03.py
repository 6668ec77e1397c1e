"""ps03 — Training: cross-entropy, AdamW, the schedule, clipping, get_batch, a step, a run.

Kept from the learner's sandbox: course_lib's training package (every reference piece and
the loop) and the PyTorch-based references of the test cells.
Misconceptions: the AdamW mistakes of course_lib.grading.training_mistakes.
"""

from autograder.misconception import Misconception
from autograder.spec import AssignmentSpec

_MISTAKES = "course_lib.grading.training_mistakes."

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
    misconceptions=(
        Misconception(
            "adamw_step",
            "weight decay added to the gradient (Adam with L2) instead of decoupled (AdamW)",
            _MISTAKES + "adam_l2_for_adamw",
        ),
        Misconception(
            "adamw_step",
            "m and v used without the bias correction 1 / (1 - beta^t)",
            _MISTAKES + "adamw_without_bias_correction",
        ),
    ),
)
