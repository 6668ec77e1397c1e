"""ps09 — Mixture of experts and latent attention: routing, MoE forward, balancing loss, MLA,
total and active parameters of the 2025 MoEs (and a written question, graded by hand).

Kept from the learner's sandbox: the grading module's reference functions, the course_lib
MoE and MLA kernels, and the parameter counts of course_lib.models.analytics (the set-up
cell imports `count_parameters` and `parameter_breakdown` for the test cells only).
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps09",
    notebook="ps09.ipynb",
    hidden_references=(
        "course_lib.grading.moe_cases.reference_top_k_gates",
        "course_lib.grading.moe_cases.reference_moe",
        "course_lib.grading.moe_cases.reference_balancing_loss",
        "course_lib.grading.moe_cases.reference_mla_latent",
        "course_lib.grading.moe_cases.reference_moe_parameters",
        "course_lib.grading.moe_cases.mha_cache_elements",
        "course_lib.grading.moe_cases.mla_cache_elements",
        "course_lib.grading.moe_cases._swiglu",
        "course_lib.kernels.moe",
        "course_lib.kernels.mla",
        "course_lib.models.analytics",
    ),
)
