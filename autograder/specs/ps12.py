"""ps12 — Post-training: the answer mask, the masked loss, LoRA, the DPO loss, one SFT step.

Kept from the learner's sandbox: the grading module's reference functions and the
course_lib.finetuning implementations they call.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps12",
    notebook="ps12.ipynb",
    hidden_references=(
        "course_lib.grading.finetuning_cases.reference_answer_mask",
        "course_lib.grading.finetuning_cases.reference_masked_loss",
        "course_lib.grading.finetuning_cases.reference_lora_run",
        "course_lib.grading.finetuning_cases._reference_layer",
        "course_lib.grading.finetuning_cases.reference_dpo_loss",
        "course_lib.grading.finetuning_cases.reference_sft_step",
        "course_lib.finetuning.sft",
        "course_lib.finetuning.lora",
        "course_lib.finetuning.preference",
    ),
)
