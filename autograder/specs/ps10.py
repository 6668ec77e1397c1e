"""ps10 — Inference hardware: roofline, MBU, decode on the roofline, int8 quantization, tiled
attention.

Kept from the learner's sandbox: course_lib's roofline (the function and the whole-step
FLOPs/bytes that chapter 10 and Exercise 3 share), MFU/MBU and memory functions, its
quantization and attention kernels.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps10",
    notebook="ps10.ipynb",
    hidden_references=(
        "course_lib.hardware.roofline.roofline",
        "course_lib.hardware.roofline.step_flops_and_bytes",
        "course_lib.hardware.roofline.step_roofline",
        "course_lib.hardware.mfu",
        "course_lib.hardware.memory.kv_cache_bytes",
        "course_lib.models.analytics",
        "course_lib.kernels.quant",
        "course_lib.kernels.attention.attention",
        "course_lib.kernels.flash",
    ),
)
