"""ps07 — Open models: KV-cache sizes (full and sliding window), weight memory, batch sizes.

Kept from the learner's sandbox: course_lib's KV-cache and weight-memory functions (the
set-up cell even imports one as `reference_kv_cache_bytes`). `count_parameters` stays
available: the exercises build on it.
"""

from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec(
    name="ps07",
    notebook="ps07.ipynb",
    hidden_references=(
        "course_lib.models.analytics.kv_cache_bytes",
        "course_lib.models.analytics.kv_cache_elements_per_token",
        "course_lib.hardware.memory.kv_cache_bytes",
        "course_lib.hardware.memory.weight_bytes",
    ),
)
